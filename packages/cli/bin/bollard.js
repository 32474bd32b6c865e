#!/usr/bin/env node
// The installed `bollard` command. Plain JavaScript on purpose: it must parse in any Node, so that an older one
// (Debian's, or a machine's default Node 20) says what to do instead of failing on the `.ts` import with a bare
// ERR_UNKNOWN_FILE_EXTENSION. Node 24 runs the TypeScript sources directly (type stripping).
import { nodeVersionProblem } from "./node-version.js";

const problem = nodeVersionProblem(process.versions.node, process.execPath);
if (problem !== undefined) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
await import("./bollard.ts");
