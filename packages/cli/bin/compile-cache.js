// Node's module compile cache for every `bollard` process, plain JavaScript like bollard.js. Node runs our
// TypeScript by stripping its types with a WebAssembly module (amaro) that stays in memory (~25 MiB RSS of a
// process that is ~110 MiB in all); the cache keeps the stripped JavaScript and V8's code cache of every module, so a
// warm start loads neither amaro nor the parser's work. See packages/cli/README.md "Compile cache".
import module from "node:module";
import { join } from "node:path";

/**
 * Where the cache lives: BOLLARD_COMPILE_CACHE (a directory, or "off"), else $XDG_CACHE_HOME/bollard/compile-cache,
 * else $HOME/.cache/bollard/compile-cache; undefined when off or when there is no home. Never a shared directory
 * such as /tmp: a cache entry is code this process runs, so it must live where only its user (or the image) can write.
 */
export function compileCacheDir(env) {
  const explicit = env.BOLLARD_COMPILE_CACHE;
  if (explicit === "off") return undefined;
  if (explicit !== undefined && explicit !== "") return explicit;
  if (env.XDG_CACHE_HOME?.startsWith("/")) return join(env.XDG_CACHE_HOME, "bollard", "compile-cache");
  if (env.HOME?.startsWith("/") && env.HOME !== "/") return join(env.HOME, ".cache", "bollard", "compile-cache");
  return undefined;
}

/**
 * Turns the cache on for this process. Never fails the command: a cache that cannot be used (a directory that
 * cannot be created, a read-only file system without a matching pre-filled cache) only costs memory and start time.
 * Returns a line for stderr when a directory the operator named explicitly could not be used, else undefined.
 */
export function startCompileCache(env) {
  const dir = compileCacheDir(env);
  // Node < 22.1 has no compile cache; bollard.js refuses such a Node before it gets here.
  if (dir === undefined || typeof module.enableCompileCache !== "function") return undefined;
  // Node itself spins forever creating a directory under /proc or /sys (mkdir answers ENOENT there and its
  // recursive mkdir retries): no cache in a pseudo file system.
  if (/^\/(proc|sys)(\/|$)/.test(dir)) return env.BOLLARD_COMPILE_CACHE === undefined ? undefined : `bollard: compile cache: ${dir} is not a usable directory; running without it`;
  const result = module.enableCompileCache(dir);
  if (result.status !== module.constants.compileCacheStatus.FAILED) return undefined;
  if (env.BOLLARD_COMPILE_CACHE === undefined) return undefined;
  return `bollard: compile cache in ${dir} not used (${result.message}); running without it`;
}
