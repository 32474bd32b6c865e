// Gives glibc malloc's free pages back to the kernel now and then (native/malloc_trim.c says why).
import { createRequire } from "node:module";
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

/**
 * How often: an idle speaker frees and allocates a little all the time (its watches, membership rounds, metrics
 * scrapes), and a trim costs well under a millisecond, so often enough that the free pages do not pile up.
 */
export const TRIM_EVERY_MS = 30_000;

/** `malloc_trim(0)`: whether any memory went back to the kernel (always false with a C library other than glibc). */
export function trimMalloc(): boolean {
  return addon().trimMalloc();
}

/** Trims every `everyMs` until `signal` aborts; the timer keeps no process alive. */
export function trimMallocEvery(everyMs: number, signal: AbortSignal): void {
  const timer = setInterval(trimMalloc, everyMs);
  timer.unref();
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
