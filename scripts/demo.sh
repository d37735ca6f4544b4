#!/usr/bin/env bash
# The main job end to end: local Apache Kafka, the service, the sample claims in, verdicts out.
# Installs what it needs on first use. A broker named in CLAIMS_TEST_BOOTSTRAP is used instead.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
ensure_venv
ensure_broker
export CLAIMS_KAFKA__BOOTSTRAP_SERVERS="$BOOTSTRAP"
mkdir -p "$ROOT/.cache/demo"
LOG="$ROOT/.cache/demo/service.log"

"$PY" "$ROOT/scripts/demo.py" --topics-only
"$VENV/bin/claims-validator" serve >"$LOG" 2>&1 &
SERVICE=$!
cleanup() {
  if kill -0 "$SERVICE" 2>/dev/null; then kill -TERM "$SERVICE"; wait "$SERVICE" || true; fi
  if [[ "$STARTED_BROKER" == 1 ]]; then "$ROOT/scripts/kafka-local.sh" stop >&2 || true; fi
}
trap cleanup EXIT
echo "==> service started (pid $SERVICE, JSON logs in $LOG)" >&2

status=0; "$PY" "$ROOT/scripts/demo.py" "$@" || status=$?
PAGE="http://127.0.0.1:${CLAIMS_HTTP__PORT:-8000}/"
echo "==> the same service serves the what-if page and the HTTP API at $PAGE" >&2
if [[ -t 0 && "$status" == 0 ]]; then
  # On a terminal, keep it serving so the page can be opened; Enter stops it.
  read -r -p "==> open $PAGE in a browser; press Enter to stop the service " _ || true
fi
kill -TERM "$SERVICE"
svc_status=0; wait "$SERVICE" || svc_status=$?
echo "==> service stopped on SIGTERM with exit code $svc_status; last log lines:" >&2
tail -n 3 "$LOG" >&2
exit $(( status != 0 ? status : svc_status ))
