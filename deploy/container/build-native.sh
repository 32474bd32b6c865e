#!/bin/sh
# Native code, compiled inside the image build (the `build` stage of the Containerfile) by the same scripts a
# developer runs: every workspace's `build` npm script. Today that is the speaker's AF_PACKET addon
# (node-gyp against the stage's Node headers, BOLLARD_NODEDIR); the Rust data plane (packages/dataplane) joins by
# having a `build` script of its own — its toolchain goes into BUILD_PACKAGES in deploy/container/build.sh.
set -eu
node /usr/local/lib/node_modules/npm/bin/npm-cli.js run build --workspaces --if-present
test -f packages/speaker/build/Release/packet_socket.node
