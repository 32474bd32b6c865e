#!/usr/bin/env bash
# Installs actionlint (the GitHub Actions workflow linter) from the Go module proxy into a per-user cache keyed by
# version (idempotent). Usage: install-actionlint.sh [--print-path]   (version from env BOLLARD_ACTIONLINT_VERSION)
set -euo pipefail
. "$(dirname "$0")/go-tool.sh"

go_tool actionlint "${BOLLARD_ACTIONLINT_VERSION:-v1.7.12}" github.com/rhysd/actionlint/cmd/actionlint "-s -w" "${1:-}"
