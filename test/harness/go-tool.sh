# Sourced by the install-*.sh scripts: a Go command built from the Go module proxy into a per-user cache keyed by
# its version, so a second run costs nothing and an interrupted build never leaves a half binary behind.
#
#   go_tool NAME VERSION PACKAGE [LDFLAGS] [--print-path]
#     --print-path  only print where the binary is (or will be)
#     otherwise     exit 0 when cached, else `go install PACKAGE@VERSION` into $CACHE/NAME-VERSION/NAME
# A caller that must compute LDFLAGS from the module first (helm) checks `go_tool_cached` before doing so.

go_tool_dir() { echo "${BOLLARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bollard}/$1-$2"; }

go_tool_cached() { [ -x "$(go_tool_dir "$1" "$2")/$1" ]; }

go_tool() {
  local name="$1" version="$2" package="$3" ldflags="${4:--s -w}" out
  out="$(go_tool_dir "$name" "$version")"
  if [ "${5:-}" = "--print-path" ]; then echo "$out/$name"; return 0; fi
  if go_tool_cached "$name" "$version"; then
    echo "install-$name: cached in $out"
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "install-$name: Go is required to build $name $version (or put $name into $out)" >&2
    return 1
  fi
  local work
  work="$(mktemp -d)"
  echo "install-$name: building $name $version (first run only)" >&2
  if ! GOBIN="$work" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "$package@$version"; then
    rm -rf "$work"
    return 1
  fi
  mkdir -p "$out"
  install -m 0755 "$work/$name" "$out/$name.tmp"
  mv -f "$out/$name.tmp" "$out/$name"
  rm -rf "$work"
  echo "install-$name: built into $out"
}
