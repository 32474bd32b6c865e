#!/usr/bin/env bash
# Builds MetalLB's speaker and controller from the Go module proxy into a per-user cache keyed by version, for
# running beside Bollard's (benchmarks; not used by the tests yet).
# The default is v0.15.2, which builds as is. v0.16.x requires github.com/metallb/frr-k8s v0.0.27, which the
# proxy does not serve (it lists v0.0.17, v0.0.18 and v0.0.21): with BOLLARD_METALLB_VERSION=v0.16.2 a wrapper
# module replaces it with v0.0.21, but v0.16.2's frrk8s package uses AsPathPrependPrefixes, which v0.0.21 lacks,
# so that build fails (checked here) and v0.15.2 is built instead, saying so.
# Usage: build-metallb.sh [--print-dir]   (version from env BOLLARD_METALLB_VERSION, default v0.15.2)
set -euo pipefail

WANTED="${BOLLARD_METALLB_VERSION:-v0.15.2}"
FALLBACK="v0.15.2"
FRR_K8S_SERVED="v0.0.21"
CACHE_ROOT="${BOLLARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bollard}"
out_for() { echo "$CACHE_ROOT/metallb/$1"; }
cached() { [ -x "$(out_for "$1")/speaker" ] && [ -x "$(out_for "$1")/controller" ]; }
log() { echo "build-metallb: $*" >&2; }

if [ "${1:-}" = "--print-dir" ]; then
  if cached "$WANTED" || [ "$WANTED" = "$FALLBACK" ]; then out_for "$WANTED"; else out_for "$FALLBACK"; fi
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  log "Go is required to build MetalLB"
  exit 1
fi

work=""
trap 'rm -rf "$work"' EXIT  # also when interrupted mid-build

# build VERSION: 0 when $(out_for VERSION) holds speaker and controller.
build() {
  local version="$1" out upstream_mod go_directive
  out="$(out_for "$version")"
  if cached "$version"; then
    log "MetalLB $version cached in $out"
    return 0
  fi
  work="$(mktemp -d)"
  log "fetching go.universe.tf/metallb@$version go.mod"
  upstream_mod="$(go mod download -json "go.universe.tf/metallb@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
  if [ ! -f "$upstream_mod" ]; then
    log "could not download go.universe.tf/metallb@$version"
    rm -rf "$work"
    return 1
  fi
  go_directive="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream_mod" | head -1)"
  {
    echo "module bollard.dev/metallb-build"
    echo
    echo "go $go_directive"
    echo
    echo "require go.universe.tf/metallb $version"
    if grep -q "github.com/metallb/frr-k8s" "$upstream_mod"; then
      echo
      echo "replace github.com/metallb/frr-k8s => github.com/metallb/frr-k8s $FRR_K8S_SERVED"
    fi
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.universe.tf/metallb/controller"
	_ "go.universe.tf/metallb/speaker"
)
GO
  log "resolving modules for MetalLB $version"
  if ! (cd "$work" && go mod tidy -e >/dev/null 2>"$work/tidy.log"); then
    cat "$work/tidy.log" >&2
    rm -rf "$work"
    return 1
  fi
  log "building MetalLB $version speaker and controller (first run only; several minutes)"
  if ! (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/bin/" go.universe.tf/metallb/speaker go.universe.tf/metallb/controller 2>"$work/build.log"); then
    tail -30 "$work/build.log" >&2
    rm -rf "$work"
    return 1
  fi
  mkdir -p "$out"
  cp "$work/bin/speaker" "$work/bin/controller" "$out/"
  cp "$work/go.mod" "$out/go.mod"
  rm -rf "$work"
  log "MetalLB $version built into $out"
}

if build "$WANTED"; then exit 0; fi
if [ "$WANTED" = "$FALLBACK" ]; then exit 1; fi
log "MetalLB $WANTED did not build; building $FALLBACK instead"
build "$FALLBACK"
