#!/usr/bin/env bash
# The whole test suite: lint, types, unit, service, browser and real-Kafka integration tests.
# Installs what it needs (virtualenv, Debian's Chromium, Apache Kafka jars from Maven Central)
# on first use.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
ensure_venv
ensure_chromium
ensure_broker
cleanup() { if [[ "$STARTED_BROKER" == 1 ]]; then "$ROOT/scripts/kafka-local.sh" stop >&2 || true; fi; }
trap cleanup EXIT

echo "==> ruff" >&2
"$VENV/bin/ruff" check service tests scripts
echo "==> mypy" >&2
"$VENV/bin/mypy"
echo "==> import contracts" >&2
"$VENV/bin/lint-imports"
echo "==> pytest (broker $BOOTSTRAP)" >&2
CLAIMS_TEST_BOOTSTRAP="$BOOTSTRAP" "$VENV/bin/pytest" "$@"
