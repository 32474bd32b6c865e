#!/usr/bin/env bash
# Checks, and as root installs, the Debian packages and tools Bollard's commands need — the one shared first step
# of `npm test`, `npm run demo`, `npm run image` and .ci/run, run before any long build so a missing package costs
# seconds, not a control-plane build. Packages are listed by group in scripts/system-packages.list.
#
#   bash scripts/system-packages.sh [--check] [--build] [GROUP...]     (default group: lab)
#     --check  report only; exit 1 if anything is missing (never installs)
#     --build  also check what the builds after it need: the pinned Node 24 from `npm ci`, and Go >= 1.24 unless
#              the Go-built test binaries (control plane, helm) are already cached
# Non-root with packages missing: prints the one command to run and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

check_only=false
need_build=false
groups=()
for arg in "$@"; do
  case "$arg" in
    --check) check_only=true ;;
    --build) need_build=true ;;
    -*) echo "system-packages: unknown option $arg" >&2; exit 2 ;;
    *) groups+=("$arg") ;;
  esac
done
[ ${#groups[@]} -gt 0 ] || groups=(lab)

say() { echo "system-packages: $*" >&2; }
failed=0

# --- the machine -----------------------------------------------------------------------------------------------
if [ "$(uname -s)" != Linux ]; then say "Linux is required (network namespaces, AF_PACKET)"; exit 1; fi
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  say "a Debian-based system (dpkg, apt-get) is required; needed packages: $(sed -n 's/^\([a-z]\+\) /\1: /p' scripts/system-packages.list | tr '\n' ';')"
  exit 1
fi

# --- Debian packages --------------------------------------------------------------------------------------------
wanted=()
for group in "${groups[@]}"; do
  line_found=false
  while read -r g rest; do
    [ "$g" = "$group" ] || continue
    line_found=true
    read -r -a pkgs <<<"$rest"
    wanted+=("${pkgs[@]}")
  done < <(grep -v '^[[:space:]]*#' scripts/system-packages.list)
  $line_found || { say "unknown group '$group' (see scripts/system-packages.list)"; exit 2; }
done
missing=()
for p in "${wanted[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if $check_only || [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${missing[*]} — run: sudo apt-get install --no-install-recommends ${missing[*]}"
    failed=1
  else
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Other apt users on the machine: wait for the dpkg lock rather than fail.
    apt_opts=(-o DPkg::Lock::Timeout=600 -qq)
    apt-get "${apt_opts[@]}" update
    apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
    say "installed ${missing[*]}"
  fi
else
  say "ok: ${groups[*]} packages present (${#wanted[@]})"
fi

# --- the pinned Node, and Go only when a Go-built binary is not cached yet ---------------------------------------
if $need_build; then
  if [ ! -x node_modules/.bin/node ]; then
    say "the pinned Node 24 is not installed: run npm ci first"
    failed=1
  else
    say "ok: node $(node_modules/.bin/node --version) (pinned)"
  fi

  cp_dir="$(bash test/harness/build-control-plane.sh --print-dir)"
  helm="$(bash test/harness/install-helm.sh --print-path)"
  if { [ -n "${KUBEBUILDER_ASSETS:-}" ] || [ -x "$cp_dir/kube-apiserver" ]; } && [ -x "$helm" ]; then
    say "ok: control plane and helm cached (Go not needed)"
  elif ! command -v go >/dev/null 2>&1; then
    say "Go >= 1.24 is required once, to build kube-apiserver, etcd, kubectl and helm from the Go module proxy — install it from https://go.dev/dl and put it on PATH (or set KUBEBUILDER_ASSETS)"
    failed=1
  else
    go_version="$(go env GOVERSION)"          # go1.26.8
    minor="$(echo "${go_version#go1.}" | cut -d. -f1)"
    if [ "${go_version#go1.}" = "$go_version" ] || [ "${minor:-0}" -lt 24 ]; then
      say "Go >= 1.24 is required to build the control plane; found $go_version at $(command -v go)"
      failed=1
    else
      say "ok: $go_version"
    fi
  fi
fi

exit "$failed"
