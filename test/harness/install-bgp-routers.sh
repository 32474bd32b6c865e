#!/usr/bin/env bash
# Installs the BGP routers the interop tests peer with, from Debian: FRR (bgpd, bfdd), BIRD 2 and GoBGP.
# Idempotent; run as root. Until the project has one system-packages script, .ci/run lists the same packages.
# The daemons are never started as services: the tests run them inside their own network namespaces.
set -euo pipefail
packages=(frr bird2 gobgpd)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-bgp-routers: ${packages[*]} installed"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "install-bgp-routers: run as root to install ${missing[*]}" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}"
