// Gives back what an idle speaker holds for nothing (packages/speaker/README.md "Memory"): the garbage of the last
// burst in V8's heap, and the free pages of glibc's malloc (native/malloc_trim.c says why those stay resident).
import v8 from "node:v8";
import vm from "node:vm";
import { loadSpeakerAddon } from "../l2/packet-socket.ts";

interface MallocTrimAddon {
  trimMalloc(): boolean;
}

const addon = (): MallocTrimAddon => loadSpeakerAddon<MallocTrimAddon>();

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
 * once it has seen the process idle for a while), then `malloc_trim(0)`. It stops the event loop for the whole
 * collection: 140–190 ms for a 23 MiB heap on a 2-CPU VM at load 16 (the speaker's heap with 1,000 Services is
 * ~15 MiB), so it runs after bursts only; the ARP/NDP answers and membership acks come from the addon's thread
 * meanwhile. malloc_trim alone: 0.05–0.25 ms.
 */
export function releaseMemory(): void {
  gcFunction()({ type: "major", execution: "sync", flavor: "last-resort" });
  trimMalloc();
}

/** How often the speaker looks: the V8 heap's size is one call, and malloc_trim costs well under a millisecond. */
export const LOOK_EVERY_MS = 5000;
/**
 * How much the V8 heap may grow over its size after the last full collection before the next: a burst (1,000
 * Services' status written, a relist) grows it by 5–10 MiB, while idle its own collections keep it within ~3 MiB.
 */
export const HEAP_GROWTH_BYTES = 4 * 1024 * 1024;

/**
 * Every `everyMs` until `signal` aborts: malloc_trim, and after a burst (the heap `growthBytes` above
 * what it was after the last) a full collection for memory first. The first look collects: syncing the informers
 * was a burst. The timer keeps no process alive.
 */
export function releaseMemoryWhileIdle(signal: AbortSignal, options: { everyMs?: number; growthBytes?: number } = {}): void {
  const { everyMs = LOOK_EVERY_MS, growthBytes = HEAP_GROWTH_BYTES } = options;
  let afterLast = 0;
  const look = () => {
    if (v8.getHeapStatistics().total_heap_size - afterLast >= growthBytes) {
      releaseMemory();
      afterLast = v8.getHeapStatistics().total_heap_size;
    } else trimMalloc();
  };
  const timer = setInterval(look, everyMs);
  timer.unref();
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
