# Sourced by the other scripts: a project-local virtualenv with the package and its dev tools.
# Re-installs only when pyproject.toml changed (a stamp holds its hash), so repeated runs are quick.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CLAIMS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

ensure_venv() {
  local stamp="$VENV/.claims-validator-installed" want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-64)"
  if [[ ! -x "$PY" ]]; then
    echo "==> creating virtualenv $VENV" >&2
    python3 -m venv "$VENV"
  fi
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "==> installing claims-validator and its dev tools into $VENV" >&2
    "$PY" -m pip install --quiet --upgrade pip >&2
    "$PY" -m pip install --quiet -e "$ROOT[dev]" >&2
    echo "$want" >"$stamp"
  fi
}

# A broker named in the environment always wins; otherwise the project's local Apache Kafka.
# Sets BOOTSTRAP and STARTED_BROKER (1 when this script started it, so it may stop it again).
ensure_broker() {
  STARTED_BROKER=0
  if [[ -n "${CLAIMS_TEST_BOOTSTRAP:-}" ]]; then
    BOOTSTRAP="$CLAIMS_TEST_BOOTSTRAP"
    echo "==> using the broker named in CLAIMS_TEST_BOOTSTRAP: $BOOTSTRAP" >&2
    return
  fi
  if ! "$ROOT/scripts/kafka-local.sh" status >/dev/null 2>&1; then
    "$ROOT/scripts/kafka-local.sh" start >&2
    STARTED_BROKER=1
  fi
  BOOTSTRAP="127.0.0.1:${KAFKA_LOCAL_PORT:-19092}"
}

# The what-if page's browser test drives Debian's Chromium (Playwright never downloads one).
# Installs it once, as root (CI and the developers' machines); elsewhere says how.
ensure_chromium() {
  if [[ -x /usr/bin/chromium ]]; then
    return
  fi
  if [[ "$(id -u)" != 0 ]]; then
    echo "==> the browser tests need Debian's Chromium: sudo apt-get install chromium" >&2
    return
  fi
  echo "==> installing Debian's chromium for the browser tests" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >&2
}
