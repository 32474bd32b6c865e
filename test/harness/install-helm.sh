#!/usr/bin/env bash
# Installs the helm binary from the Go module proxy into a per-user cache keyed by version (idempotent).
# Usage: install-helm.sh [--print-path]   (version from env BOLLARD_HELM_VERSION)
set -euo pipefail

HELM_VERSION="${BOLLARD_HELM_VERSION:-v3.17.4}"
CACHE_ROOT="${BOLLARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bollard}"
OUT="$CACHE_ROOT/helm-$HELM_VERSION"

if [ "${1:-}" = "--print-path" ]; then echo "$OUT/helm"; exit 0; fi

if [ -x "$OUT/helm" ]; then
  echo "install-helm: cached in $OUT"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-helm: Go is required to build helm $HELM_VERSION (or put helm into $OUT)" >&2
  exit 1
fi

# Build into a temporary directory and move into place, so an interrupted build never leaves a half binary.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "install-helm: building helm $HELM_VERSION (first run only)" >&2
# Stamp what helm's own Makefile stamps: its version, and the Kubernetes version that `helm template` and
# `helm lint` assume (one minor above the client-go it is built with), so charts' kubeVersion checks work.
helm_mod="$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
[ -f "$helm_mod" ] || { echo "install-helm: could not download helm.sh/helm/v3@$HELM_VERSION" >&2; exit 1; }
client_go="$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$helm_mod")"   # v0.32.2
k8s_minor="$(echo "$client_go" | cut -d. -f2)"
[ -n "$k8s_minor" ] || { echo "install-helm: no k8s.io/client-go in helm's go.mod" >&2; exit 1; }
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags="$ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
GOBIN="$WORK" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
mkdir -p "$OUT"
install -m 0755 "$WORK/helm" "$OUT/helm.tmp"
mv -f "$OUT/helm.tmp" "$OUT/helm"
echo "install-helm: built into $OUT"
