#!/usr/bin/env bash
# The fresh-machine test: a newcomer's README commands, `npm ci` then `npm run demo`, in a throw-away clone on a
# machine where the lab's system packages are absent — and the shared step (scripts/system-packages.sh) installs
# them before any long build. Run by .ci/run as one step (about 5-8 min; too long for `npm test`).
#
#   sudo bash test/fresh-machine.sh      exit 0 when every check passed
#
# How "absent" is made true without touching this machine: a private mount namespace whose root is an overlay
# (lower: this machine's /, read-only; upper: a tmpfs thrown away at exit), chrooted into, where
# `apt-get remove` really removes the packages (dpkg's database agrees: the binaries and their status are gone).
# The network namespace is the machine's, so apt and npm reach their registries; the demo's own namespaces live in
# the overlay's fresh /run/netns. Caches in $HOME (npm's, the Go-built control plane) are visible read-only
# through the overlay, as on a developer's machine that ran the README once before; the order check below holds
# either way. In .ci/run the control plane is cached by the time this runs (npm test built it), so the run takes
# minutes; with nothing cached it also builds kube-apiserver (20+ min on a loaded 2-core machine).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
say() { echo "fresh-machine: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root (mount namespace, chroot, apt-get)"; exit 1; }

# What the test removes: the lab group of scripts/system-packages.list, less what a Debian machine with Node
# cannot lack (util-linux is essential; python3, openssl and ca-certificates come with nodejs and npm).
absent=(iproute2 nftables arping iputils-ping ndisc6 curl libcap2-bin make g++)
timeout_s="${BOLLARD_FRESH_TIMEOUT:-1200}"

work="$(mktemp -d /var/tmp/bollard-fresh.XXXXXX)"
cleanup() {
  # The namespace's mounts die with it; --one-file-system in case one outlived it.
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
git clone --quiet --no-hardlinks "$root" "$work/bollard"
git -C "$work/bollard" log -1 --format='fresh-machine: clone of %h %s' >&2

# Everything below runs in a private mount namespace; the overlay, chroot and removals vanish with it.
inner="$work/inner.sh"
cat > "$inner" <<'INNER'
set -euo pipefail
work="$1"; shift
absent=("$@")
mount --make-rprivate /
mkdir -p "$work/ovl"
mount -t tmpfs -o size=4g bollard-fresh "$work/ovl"
mkdir -p "$work/ovl/upper" "$work/ovl/work" "$work/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/ovl/upper,workdir=$work/ovl/work" "$work/root"
for m in proc sys dev; do mount --rbind "/$m" "$work/root/$m"; done
mount -t tmpfs bollard-fresh-run "$work/root/run"
mkdir -p "$work/root/fresh"
mount --bind "$work/bollard" "$work/root/fresh"
exec chroot "$work/root" /usr/bin/env -i HOME=/root PATH="$PATH" TERM=dumb LANG=C.UTF-8 \
  ${NODE_EXTRA_CA_CERTS:+NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS} ${SSL_CERT_FILE:+SSL_CERT_FILE=$SSL_CERT_FILE} bash -s -- "${absent[@]}" <<'CHROOT'
set -euo pipefail
absent=("$@")
export DEBIAN_FRONTEND=noninteractive
apt-get -qq remove -y "${absent[@]}" >/dev/null 2>&1
for p in "${absent[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ]; then echo "CHECK-FAIL $p still installed"; fi
done
for tool in ip nft arping ping ndisc6 curl setcap make g++; do
  if command -v "$tool" >/dev/null; then echo "CHECK-FAIL $tool still on PATH"; fi
done
echo "MARK absent: ${absent[*]}"
cd /fresh
echo "MARK npm ci"
npm ci --no-audit --no-fund 2>&1 | grep -v '^npm warn EBADENGINE' || { echo "CHECK-FAIL npm ci"; exit 1; }
# npm hides install scripts' output: the addon's absence shows that its install-time build stepped aside.
if [ -e packages/speaker/build/Release/packet_socket.node ]; then echo "CHECK-FAIL npm ci built the addon without g++"; else echo "MARK npm ci left the addon to npm run demo"; fi
echo "MARK npm run prerequisites as a non-root user"
if setpriv --reuid 65534 --regid 65534 --clear-groups env HOME=/tmp npm run --silent prerequisites 2>&1; then
  echo "CHECK-FAIL the prerequisites passed as non-root with packages missing"
fi
echo "MARK npm run demo"
npm run demo 2>&1 || echo "CHECK-FAIL npm run demo exited $?"
echo "MARK npm run prerequisites (the first step of npm test)"
npm run --silent prerequisites 2>&1 || echo "CHECK-FAIL prerequisites after the demo"
echo "MARK done"
CHROOT
INNER

started=$SECONDS
log="$work/log"
set +e
timeout --kill-after=30 "$timeout_s" unshare --mount --fork bash "$inner" "$work" "${absent[@]}" > "$log" 2>&1
rc=$?
set -e
cp "$log" "${BOLLARD_FRESH_LOG:-/tmp/bollard-fresh-machine.log}"
say "ran in $((SECONDS - started)) s (exit $rc); log in ${BOLLARD_FRESH_LOG:-/tmp/bollard-fresh-machine.log}"

# --- checks over the log ---------------------------------------------------------------------------------------
failures=()
[ "$rc" = 0 ] || failures+=("the run exited $rc (timeout ${timeout_s}s is 124)")
while IFS= read -r line; do failures+=("${line#CHECK-FAIL }"); done < <(grep '^CHECK-FAIL' "$log" || true)
grep -q '^MARK done' "$log" || failures+=("the run did not finish")
line_of() { grep -n -m1 -e "$1" "$log" | cut -d: -f1; }
# npm ci on the fresh machine: the addon's install-time build steps aside instead of failing without g++.
[ -n "$(line_of 'MARK npm ci left the addon')" ] || failures+=("npm ci did not step the addon build aside")
# Non-root: one line naming the command.
[ -n "$(line_of 'missing Debian packages: .* run: sudo apt-get install')" ] || failures+=("no one-line advice for non-root")
# The demo: the shared step installs, and before the addon build and the control-plane build.
installed="$(line_of 'system-packages: installed ')"
addon="$(line_of 'build-addon: node-gyp rebuild')"
control_plane="$(line_of '^build-control-plane: ')"
demo="$(line_of 'MARK npm run demo')"
if [ -z "$installed" ] || [ -z "$demo" ] || [ "$installed" -lt "$demo" ]; then
  failures+=("the demo's shared step did not install the packages")
else
  [ -n "$addon" ] && [ "$installed" -lt "$addon" ] || failures+=("the addon build did not come after the install")
  [ -n "$control_plane" ] && [ "$installed" -lt "$control_plane" ] || failures+=("the control-plane build did not come after the install")
fi
# The story itself: both backends answered through the elected node.
grep -q 'demo-node1' "$log" && grep -q 'demo-node2' "$log" || failures+=("the demo's curl did not reach both backends")
[ -n "$(line_of 'system-packages: ok: lab packages present')" ] || failures+=("npm test's prerequisite step did not pass afterwards")

if [ ${#failures[@]} -gt 0 ]; then
  say "FAILED:"
  printf '  - %s\n' "${failures[@]}" >&2
  tail -40 "$log" >&2
  exit 1
fi
say "ok: packages absent, npm ci passed, non-root got the command, the demo installed them before any build and ran"
