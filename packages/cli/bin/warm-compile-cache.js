// `node packages/cli/bin/warm-compile-cache.js`: fills the compile cache (compile-cache.js; BOLLARD_COMPILE_CACHE
// names it) with every module a `bollard` command loads, without running one: the container build runs it as the
// images' user, so that every pod starts warm from a read-only cache; the lab runs it for its non-root speakers.
// Run it with the node binary and the V8 flags that will run `bollard`: Node keys the cache by its version, V8's
// flags and the CPU's features, and by the user id.
import { readdirSync } from "node:fs";
import module from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { exitUnlessNodeCanRun } from "./node-version.js";

exitUnlessNodeCanRun();
const { compileCacheDir } = await import("./compile-cache.js");
const dir = compileCacheDir(process.env);
if (dir === undefined) {
  process.stderr.write("warm-compile-cache: no cache directory (set BOLLARD_COMPILE_CACHE)\n");
  process.exit(2);
}
const result = module.enableCompileCache(dir);
if (result.status === module.constants.compileCacheStatus.FAILED) {
  process.stderr.write(`warm-compile-cache: ${dir}: ${result.message}\n`);
  process.exit(1);
}
const commands = join(import.meta.dirname, "..", "src", "commands");
await import("../src/main.ts");
for (const file of readdirSync(commands).filter((f) => f.endsWith(".ts")).sort()) await import(pathToFileURL(join(commands, file)).href);
module.flushCompileCache();
process.stdout.write(`compile cache warm in ${module.getCompileCacheDir()}\n`);
