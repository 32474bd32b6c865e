#!/bin/sh
# Native code, compiled inside the image build (the `build` stage of the Containerfile) by the same scripts a
# developer runs: the workspaces' `build` npm scripts. The speaker's AF_PACKET addon (node-gyp against the stage's
# Node headers, BOLLARD_NODEDIR) always; the Rust data plane (packages/dataplane) once its toolchain (Rust >= 1.85,
# which Debian bookworm does not ship) is in the build root — add it to BUILD_PACKAGES in deploy/container/build.sh
# or mount it there. Until then the images carry no data plane; `bollard ingress` does not load it yet.
set -eu
npm_cli=/usr/local/lib/node_modules/npm/bin/npm-cli.js
node "$npm_cli" run build --workspace @bollard/speaker
test -f packages/speaker/build/Release/packet_socket.node
for dir in packages/*/; do
  name="$(node -p "require('./${dir}package.json').name")"
  [ "$name" = @bollard/speaker ] && continue
  node -e "process.exit(require('./${dir}package.json').scripts?.build ? 0 : 1)" || continue
  if [ "$name" = @bollard/dataplane ] && ! command -v cargo >/dev/null 2>&1; then
    echo "build-native: $name not built: no cargo in the build root (see deploy/container/build-native.sh)"
    continue
  fi
  node "$npm_cli" run build --workspace "$name"
done
