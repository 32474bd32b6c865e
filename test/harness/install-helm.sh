#!/usr/bin/env bash
# Installs the helm binary from the Go module proxy into a per-user cache keyed by version (idempotent).
# Usage: install-helm.sh [--print-path]   (version from env BOLLARD_HELM_VERSION)
set -euo pipefail
. "$(dirname "$0")/go-tool.sh"

HELM_VERSION="${BOLLARD_HELM_VERSION:-v3.17.4}"
if [ "${1:-}" = "--print-path" ] || go_tool_cached helm "$HELM_VERSION"; then
  go_tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "" "${1:-}"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "install-helm: Go is required to build helm $HELM_VERSION (or put helm into $(go_tool_dir helm "$HELM_VERSION"))" >&2; exit 1; }

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
go_tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "$ldflags"
