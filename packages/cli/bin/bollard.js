#!/usr/bin/env node
// The installed `bollard` command. Plain JavaScript on purpose: it must parse in any Node, so that an older one
// (Debian's, or a machine's default Node 20) says what to do instead of failing on the `.ts` import with a bare
// ERR_UNKNOWN_FILE_EXTENSION. Node 24 runs the TypeScript sources directly (type stripping), from Node's compile
// cache when it is warm (compile-cache.js).
import { exitUnlessNodeCanRun } from "./node-version.js";

exitUnlessNodeCanRun();
const { startCompileCache } = await import("./compile-cache.js");
const cacheProblem = startCompileCache(process.env);
if (cacheProblem !== undefined) process.stderr.write(`${cacheProblem}\n`);
// What bollard.ts does, without a module of its own to compile (or cache).
const { main } = await import("../src/main.ts");
process.exitCode = await main(process.argv.slice(2));
