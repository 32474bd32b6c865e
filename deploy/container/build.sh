#!/usr/bin/env bash
# `npm run image`: builds Bollard's two OCI images with buildah — no daemon, no registry, no external base image.
# The same script runs in the tests, in CI and in the release workflow (one architecture per run: the machine's).
#
#   deploy/container/build.sh [--no-cache] [--out DIR]
#
# Steps: the system packages (scripts/system-packages.sh image); two Debian root file systems from mmdebstrap,
# cached by their package lists; a build context with the pinned Node (node_modules/node, so `npm ci` first), the npm
# CLI and the sources of the working tree's commit; `buildah build` of the targets `bollard` and `speaker`.
# Writes DIR/images.env (names, digests, sizes) and DIR/<image>.oci.tar; the images also stay in buildah's local
# storage under their published names, where `podman run` finds them.
#
# Environment: SOURCE_DATE_EPOCH (default: the commit's time) makes the digests reproducible;
# BOLLARD_IMAGE_REGISTRY (default ghcr.io/bollard); BOLLARD_CACHE_DIR (default ~/.cache/bollard).
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { echo "image: $*" >&2; }

out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-cache) ;; # every build is uncached (see build_args); kept for scripts that pass it
    --out) out="$2"; shift ;;
    *) say "unknown argument $1"; exit 2 ;;
  esac
  shift
done

bash scripts/system-packages.sh image
[ "$(id -u)" = 0 ] || { say "run as root: buildah's chroot isolation and file capabilities need it"; exit 1; }

arch="$(dpkg --print-architecture)"
case "$arch" in
  amd64) node_arch=x64 ;;
  arm64) node_arch=arm64 ;;
  *) say "no pinned Node for architecture $arch"; exit 1 ;;
esac
node_pkg="node_modules/node/node_modules/node-linux-$node_arch"
[ -x "$node_pkg/bin/node" ] && [ -f "$node_pkg/include/node/node_api.h" ] || {
  say "the pinned Node is not installed ($node_pkg): run npm ci first"
  exit 1
}
# The Rust toolchain for the data plane (packages/dataplane): Debian bookworm ships no Rust >= 1.85, so the build
# stage borrows the host's (rustup's, what `npm test` already needs), mounted read-only; the crate is compiled
# inside the stage against its own glibc from the commit's sources, never copied from the host's build.
cargo_bin="$(command -v cargo || true)"
for candidate in "${CARGO:-}" "$HOME/.cargo/bin/cargo" /usr/local/cargo/bin/cargo; do
  [ -n "$cargo_bin" ] && break
  [ -n "$candidate" ] && [ -x "$candidate" ] && cargo_bin="$candidate"
done
[ -n "$cargo_bin" ] || { say "cargo (Rust >= 1.85, e.g. from rustup) is needed to build the data plane into the image"; exit 1; }
rust_sysroot="$(PATH="$(dirname "$cargo_bin"):$PATH" rustc --print sysroot)"
rust_version="$("$rust_sysroot/bin/rustc" --version | cut -d' ' -f2)"
case "$rust_version" in
  1.[0-7][0-9].* | 1.8[0-4].*) say "Rust $rust_version is too old for the data plane (>= 1.85)"; exit 1 ;;
esac
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' packages/cli/package.json)"
registry="${BOLLARD_IMAGE_REGISTRY:-ghcr.io/bollard}"
cache_root="${BOLLARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bollard}/image"
out="${out:-$cache_root/out}"
mkdir -p "$cache_root" "$out"

# The sources of the working tree: its uncommitted changes to tracked files too (git stash create), so a
# developer's build shows what they test; a clean tree builds exactly HEAD.
tree="$(git stash create 2>/dev/null || true)"
tree="${tree:-HEAD}"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}"

# --- Debian root file systems ----------------------------------------------------------------------------------
# Debian's packages only (mmdebstrap), cached by suite, architecture and package list: a cached tar is what makes
# two builds byte-identical; delete it to take Debian's newest packages.
suite=bookworm
BUILD_PACKAGES=(python3 make g++ binutils libcap2-bin)   # g++ brings cc, the linker rustc calls
RUNTIME_PACKAGES=(libc6 libstdc++6 libgcc-s1)           # what the pinned node links against
rootfs() { # NAME VARIANT PACKAGE...
  local name="$1" variant="$2"
  shift 2
  local key
  key="$(printf '%s\n' "$suite" "$arch" "$variant" "$@" | sha256sum | cut -c1-16)"
  local tar="$cache_root/$name-$suite-$arch-$key.tar"
  if [ ! -f "$tar" ]; then
    # mmdebstrap picks its output format from the name: it must end in .tar.
    local tmp="${tar%.tar}.partial.tar"
    rm -f "$tmp"
    say "assembling the $name root file system from Debian $suite ($*)"
    local started=$SECONDS
    # Debian's own keyring, so the same call works on Debian and on Ubuntu build machines.
    mmdebstrap --quiet --variant="$variant" --arch="$arch" --include="$(IFS=,; echo "$*")" \
      --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
      --skip=output/dev --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      "$suite" "$tmp" >&2
    mv "$tmp" "$tar"
    say "$name root file system in $((SECONDS - started)) s"
  fi
  echo "$tar"
}
build_root="$(rootfs build apt "${BUILD_PACKAGES[@]}")"
runtime_root="$(rootfs runtime extract "${RUNTIME_PACKAGES[@]}")"

# --- build context ---------------------------------------------------------------------------------------------
context="$(mktemp -d "$cache_root/context.XXXXXX")"
trap 'rm -rf "$context"' EXIT
ln "$build_root" "$context/build-root.tar"
ln "$runtime_root" "$context/runtime-root.tar"
mkdir -p "$context/node" "$context/extra/etc" "$context/extra/tmp"
cp -a "$node_pkg/bin" "$node_pkg/include" "$context/node/"
npm_cli="${npm_execpath:-$(npm root -g)/npm/bin/npm-cli.js}"
cp -a "$(dirname "$npm_cli")/.." "$context/npm"
# Re-packed with fixed times and owners, so the same sources give the same src.tar and buildah's layer cache hits.
mkdir "$context/src"
git archive --format=tar "$tree" package.json package-lock.json packages deploy/container/build-native.sh |
  tar -x -C "$context/src"
tar -C "$context/src" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=go-w --format=gnu \
  -cf "$context/src.tar" .
rm -rf "$context/src"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin\n' \
  > "$context/extra/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$context/extra/etc/group"
chmod 1777 "$context/extra/tmp"

# The data plane's crates, fetched on the host into cargo's registry (a no-op when `npm run build:dataplane` already
# did): the stage builds offline from there, as it runs `npm ci` offline from the npm cache.
"$cargo_bin" fetch --locked --manifest-path packages/dataplane/native/Cargo.toml >&2
mkdir -p "$cargo_home/registry" "$cache_root/native"

# --- buildah ---------------------------------------------------------------------------------------------------
# chroot isolation: no OCI runtime and no cgroups are needed to build; the network is the host's, though the only
# step that could use it (npm ci) is offline against the npm cache the host's `npm ci` filled.
npm_cache="$(npm config get cache)"
# No layer cache: buildah 1.28 keys cached layers on neither --timestamp nor the build's labels, and picked layers
# stamped with an older commit's time — every build starts from the cached root file systems instead.
build_args=(--isolation chroot --network host --pull=never --timestamp "$SOURCE_DATE_EPOCH" --layers=false
  -v "$npm_cache:/npm-cache" -v "$rust_sysroot:/usr/local/rust:ro" -v "$cargo_home/registry:/cargo-home/registry"
  -v "$cache_root/native:/native-cache" -f deploy/container/Containerfile)
images=(bollard "bollard-speaker")
targets=(bollard speaker)
: > "$out/images.env.tmp"
for i in 0 1; do
  name="$registry/${images[$i]}:$version"
  started=$SECONDS
  say "buildah build --target ${targets[$i]} -t $name (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH, $tree)"
  previous="$(buildah images --quiet --no-trunc "$name" 2>/dev/null || true)"
  buildah build --quiet "${build_args[@]}" --target "${targets[$i]}" -t "$name" "$context" >/dev/null
  # The image this build replaced under the same name: removed, so rebuilds do not pile up in local storage.
  if [ -n "$previous" ] && [ "$previous" != "$(buildah images --quiet --no-trunc "$name")" ]; then
    buildah rmi "$previous" >/dev/null 2>&1 || true
  fi
  archive="$out/${images[$i]}-$version-$arch.oci.tar"
  rm -f "$archive"
  buildah push --quiet --digestfile "$out/digest" "$name" "oci-archive:$archive:$name" >/dev/null
  digest="$(cat "$out/digest")"
  size="$(podman image inspect --format '{{.Size}}' "$name")"
  var="$(echo "${images[$i]}" | tr 'a-z-' 'A-Z_')"
  {
    echo "${var}_IMAGE=$name"
    echo "${var}_DIGEST=$digest"
    echo "${var}_ARCHIVE_BYTES=$(stat -c %s "$archive")"
    echo "${var}_UNPACKED_BYTES=$size"
  } >> "$out/images.env.tmp"
  say "$name@$digest — $((size / 1048576)) MiB unpacked, $(($(stat -c %s "$archive") / 1048576)) MiB as OCI archive, built in $((SECONDS - started)) s"
done
rm -f "$out/digest"
mv "$out/images.env.tmp" "$out/images.env"
