#!/bin/sh
# Native code, compiled inside the image build (the `build` stage of the Containerfile) by the same scripts a
# developer runs: the workspaces' `build` npm scripts. The speaker's AF_PACKET addon (node-gyp against the stage's
# Node headers, BOLLARD_NODEDIR) and the Rust data plane (packages/dataplane: cargo from the toolchain build.sh
# mounts, offline against the mounted registry). Either missing fails the build.
set -eu
npm_cli=/usr/local/lib/node_modules/npm/bin/npm-cli.js
node "$npm_cli" run build --workspace @bollard/speaker
test -f packages/speaker/build/Release/packet_socket.node
for dir in packages/*/; do
  name="$(node -p "require('./${dir}package.json').name")"
  [ "$name" = @bollard/speaker ] && continue
  node -e "process.exit(require('./${dir}package.json').scripts?.build ? 0 : 1)" || continue
  node "$npm_cli" run build --workspace "$name"
done
test -f packages/dataplane/build/dataplane.node
