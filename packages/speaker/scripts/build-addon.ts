// Builds the AF_PACKET addon with node-gyp against headers already on this machine: node-gyp must
// never download headers here, so it always gets --nodedir. N-API is ABI-stable, so any installed
// Node's node_api.h (>= N-API 8) builds an addon that loads in Node 24.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, join, resolve } from "node:path";

const packageDir = resolve(import.meta.dirname, "..");
const require = createRequire(join(packageDir, "package.json"));

// npm runs `install` on every `npm install` in the workspace (a binding.gyp would otherwise make it
// run a bare `node-gyp rebuild`, which downloads headers); building once is enough there.
if (process.argv.includes("--if-missing") && existsSync(join(packageDir, "build", "Release", "packet_socket.node"))) process.exit(0);

// On a fresh machine `npm ci` comes before the C++ toolchain: there the install-time build steps aside, and
// `npm test` / `npm run demo` build the addon after scripts/system-packages.sh has installed the toolchain.
const missingTools = ["python3", "make", "g++"].filter(
  (tool) => !(process.env.PATH ?? "").split(delimiter).some((dir) => dir !== "" && existsSync(join(dir, tool))),
);
if (process.argv.includes("--if-missing") && missingTools.length > 0) {
  process.stdout.write(
    `build-addon: not built yet (no ${missingTools.join(", ")}); npm test and npm run demo install them and build it\n`,
  );
  process.exit(0);
}

function nodeDirCandidates(): string[] {
  const candidates: string[] = [];
  if (process.env.BOLLARD_NODEDIR) candidates.push(process.env.BOLLARD_NODEDIR);
  try {
    // The `node` dev dependency's architecture package, when npm installed it.
    const nodePackage = dirname(require.resolve("node/package.json"));
    candidates.push(join(nodePackage, "node_modules", `node-linux-${process.arch}`));
  } catch {
    // not installed: fall through to the running Node's prefix and the system's headers
  }
  candidates.push(resolve(dirname(process.execPath), ".."), "/usr/local", "/usr");
  return candidates;
}

const nodeDir = nodeDirCandidates().find((dir) => existsSync(join(dir, "include", "node", "node_api.h")));
if (nodeDir === undefined) {
  process.stderr.write(
    `build-addon: no Node headers (include/node/node_api.h) under any of:\n  ${nodeDirCandidates().join("\n  ")}\n` +
      "set BOLLARD_NODEDIR to a Node install prefix that has them\n",
  );
  process.exit(1);
}

const nodeGyp = require.resolve("node-gyp/bin/node-gyp.js");
process.stdout.write(`build-addon: node-gyp rebuild --nodedir=${nodeDir}\n`);
const result = spawnSync(process.execPath, [nodeGyp, "rebuild", `--nodedir=${nodeDir}`], { cwd: packageDir, stdio: "inherit" });
process.exit(result.status ?? 1);
