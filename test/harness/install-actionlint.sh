#!/usr/bin/env bash
# Installs actionlint (the GitHub Actions workflow linter) from the Go module proxy into a per-user cache keyed by
# version (idempotent). Usage: install-actionlint.sh [--print-path]   (version from env BOLLARD_ACTIONLINT_VERSION)
set -euo pipefail

ACTIONLINT_VERSION="${BOLLARD_ACTIONLINT_VERSION:-v1.7.12}"
CACHE_ROOT="${BOLLARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bollard}"
OUT="$CACHE_ROOT/actionlint-$ACTIONLINT_VERSION"

if [ "${1:-}" = "--print-path" ]; then echo "$OUT/actionlint"; exit 0; fi
if [ -x "$OUT/actionlint" ]; then
  echo "install-actionlint: cached in $OUT"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-actionlint: Go is required to build actionlint $ACTIONLINT_VERSION (or put actionlint into $OUT)" >&2
  exit 1
fi
# Build into a temporary directory and move into place, so an interrupted build never leaves a half binary.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "install-actionlint: building actionlint $ACTIONLINT_VERSION (first run only)" >&2
GOBIN="$WORK" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
mkdir -p "$OUT"
install -m 0755 "$WORK/actionlint" "$OUT/actionlint.tmp"
mv -f "$OUT/actionlint.tmp" "$OUT/actionlint"
echo "install-actionlint: built into $OUT"
