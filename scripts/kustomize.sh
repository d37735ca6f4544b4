#!/usr/bin/env bash
# Project-pinned kustomize, built from the Go module proxy into <repo>/.cache/bin.
# (No download site is reachable here, so it is built from source with the local Go;
# the first build takes about 30-60 s, later calls reuse the binary.)
#
# Usage:
#   scripts/kustomize.sh install        build if missing, print the binary's path
#   scripts/kustomize.sh ARGS...        run the pinned kustomize, e.g. build deploy/overlays/dev
#
# v5.8.3 and later need Go >= 1.27; v5.8.2 builds with this machine's Go 1.26.
set -euo pipefail

KUSTOMIZE_VERSION="v5.8.2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$ROOT/.cache/bin"
BIN="$BIN_DIR/kustomize-$KUSTOMIZE_VERSION"

install_kustomize() {
  if [[ -x "$BIN" ]]; then
    return
  fi
  local go=go
  if ! command -v go >/dev/null 2>&1; then
    go=/usr/local/go/bin/go   # where the Go tarball installs, when PATH lacks it
    if [[ ! -x "$go" ]]; then
      echo "kustomize.sh: 'go' is not on PATH; it is needed to build kustomize $KUSTOMIZE_VERSION" >&2
      exit 1
    fi
  fi
  mkdir -p "$BIN_DIR"
  local tmp
  tmp="$(mktemp -d "$BIN_DIR/.build.XXXXXX")"
  trap 'rm -rf "$tmp"' RETURN
  echo "==> building kustomize $KUSTOMIZE_VERSION from the Go module proxy (once)" >&2
  # Run outside any Go module; use this machine's Go (no toolchain download).
  (cd "$tmp" && GOBIN="$tmp" GOFLAGS=-mod=mod GOTOOLCHAIN=local \
    "$go" install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION") >&2
  mv -f "$tmp/kustomize" "$BIN"
}

if [[ "${1:-}" == "install" ]]; then
  install_kustomize
  echo "$BIN"
  exit 0
fi
install_kustomize
exec "$BIN" "$@"
