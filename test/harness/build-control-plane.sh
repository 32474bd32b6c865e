#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from the Go module proxy into a per-user cache keyed by version.
# The wrapper go.mod is generated from the Kubernetes release's own go.mod: every staging module it replaces
# with ./staging/src/... is replaced here by that module's published v0.x version.
# Usage: build-control-plane.sh [--print-dir]   (versions from env BOLLARD_K8S_VERSION / BOLLARD_ETCD_VERSION)
set -euo pipefail

K8S_VERSION="${BOLLARD_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${BOLLARD_ETCD_VERSION:-v3.5.35}"
CACHE_ROOT="${BOLLARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bollard}"
OUT="$CACHE_ROOT/control-plane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

if [ "${1:-}" = "--print-dir" ]; then echo "$OUT"; exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  echo "build-control-plane: Go is required to build kube-apiserver and etcd (or set KUBEBUILDER_ASSETS to a directory holding kube-apiserver and etcd)" >&2
  exit 1
fi

if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/etcd" ] && [ -x "$OUT/kubectl" ]; then
  echo "build-control-plane: cached in $OUT"
  exit 0
fi

mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
log() { echo "build-control-plane: $*" >&2; }

# --- kube-apiserver + kubectl ---------------------------------------------------------------------------
minor="${K8S_VERSION#v1.}"               # 36.3
staging_version="v0.$minor"             # v0.36.3
log "fetching k8s.io/kubernetes@$K8S_VERSION go.mod"
upstream_mod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
[ -f "$upstream_mod" ] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
go_directive="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream_mod" | head -1)"

mkdir -p "$WORK/k8s"
{
  echo "module bollard.dev/control-plane-build"
  echo
  echo "go $go_directive"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  # Staging modules that k8s.io/kubernetes requires at v0.0.0 and replaces with a local path.
  required="$(awk '/^[[:space:]]*k8s.io\/[^ ]+ v0.0.0$/ {print $1}' "$upstream_mod")"
  awk '$2 == "=>" && $3 ~ /^\.\/staging\/src\// {print $1}' "$upstream_mod" | while read -r mod; do
    if grep -qx "$mod" <<<"$required"; then echo "	$mod => $mod $staging_version"; fi
  done
  echo ")"
} > "$WORK/k8s/go.mod"
cat > "$WORK/k8s/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
log "resolving modules for kube-apiserver $K8S_VERSION (staging at $staging_version)"
(cd "$WORK/k8s" && go mod tidy -e >/dev/null 2>"$WORK/tidy.log") || { cat "$WORK/tidy.log" >&2; exit 1; }
log "building kube-apiserver and kubectl (first run only; several minutes)"
(cd "$WORK/k8s" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" -o "$WORK/bin/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)

# --- etcd ------------------------------------------------------------------------------------------------
mkdir -p "$WORK/etcd"
cat > "$WORK/etcd/go.mod" <<MOD
module bollard.dev/etcd-build

go 1.23

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
cat > "$WORK/etcd/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
log "building etcd $ETCD_VERSION"
(cd "$WORK/etcd" && go mod tidy -e >/dev/null 2>"$WORK/tidy-etcd.log") || { cat "$WORK/tidy-etcd.log" >&2; exit 1; }
(cd "$WORK/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$WORK/bin/etcd" go.etcd.io/etcd/server/v3)

install -m 0755 "$WORK/bin/kube-apiserver" "$WORK/bin/kubectl" "$WORK/bin/etcd" "$OUT/"
log "built into $OUT"
