// Gives back what an idle speaker holds for nothing (packages/speaker/README.md "Memory"): the garbage of the last
// burst in V8's heap, and the free pages of glibc's malloc (native/malloc_trim.c says why those stay resident).
import { createRequire } from "node:module";
import v8 from "node:v8";
import vm from "node:vm";
import { AddonNotBuiltError } from "../l2/packet-socket.ts";

interface MallocTrimAddon {
  trimMalloc(): boolean;
}

const addonPath = new URL("../../build/Release/packet_socket.node", import.meta.url).pathname;
let loaded: MallocTrimAddon | undefined;
function addon(): MallocTrimAddon {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)(addonPath) as MallocTrimAddon;
    } catch (cause) {
      throw new AddonNotBuiltError(addonPath, { cause });
    }
  }
  return loaded;
}

/** `malloc_trim(0)`: whether any memory went back to the kernel (always false with a C library other than glibc). */
export function trimMalloc(): boolean {
  return addon().trimMalloc();
}

type GcFunction = (options: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;
let collect: GcFunction | undefined;
/**
 * V8's `gc` (the one `--expose-gc` gives), fetched from a context made while the flag is on, then off again: the
 * global `gc` stays absent and no flag of the process changes for good (the flag is in the key of Node's compile
 * cache: on the command line it would need a cache of its own). The context it belongs to stays: ~170 KiB of heap.
 */
function gcFunction(): GcFunction {
  if (collect === undefined) {
    v8.setFlagsFromString("--expose-gc");
    try {
      collect = vm.runInNewContext("gc") as GcFunction;
    } finally {
      v8.setFlagsFromString("--no-expose-gc");
    }
  }
  return collect;
}

/**
 * A full collection for memory (V8's "last resort": what it does on a low-memory notification — it compacts the
 * old space and gives its empty pages back, which the memory reducer of `--memory-saver-mode` also does, but only
 * once it has seen the process idle for a while), then `malloc_trim(0)`. ~40 ms on the event loop with
 * 1,000 Services; the ARP/NDP answers and membership acks come from the addon's thread meanwhile.
 */
export function releaseMemory(): void {
  gcFunction()({ type: "major", execution: "sync", flavor: "last-resort" });
  trimMalloc();
}

/**
 * How often: an idle speaker frees and allocates a little all the time (its watches, membership rounds, metrics
 * scrapes), so often enough that neither V8's garbage nor malloc's free pages pile up.
 */
export const RELEASE_EVERY_MS = 30_000;

/** releaseMemory every `everyMs` until `signal` aborts; the timer keeps no process alive. */
export function releaseMemoryEvery(everyMs: number, signal: AbortSignal): void {
  const timer = setInterval(releaseMemory, everyMs);
  timer.unref();
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
