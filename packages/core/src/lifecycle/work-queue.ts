// A work queue keyed like client-go's: work is done per key, reading the latest state when it runs,
// so adding a key that already waits changes nothing (coalescing). One run per key at a time; a key
// added while it runs runs once more after. A run that throws is retried after the key's own
// exponential backoff. Stops with the signal: nothing new starts, and `idle()` says when the runs
// in progress are over.
import { type Backoff, type BackoffOptions, createBackoff } from "./backoff.ts";

export type WorkQueueOptions<K> = {
  /** The work for one key. Throwing retries the key after its backoff; returning resets that backoff. */
  work: (key: K, signal: AbortSignal) => Promise<void>;
  /** Runs at once, over all keys (default 1). */
  concurrency?: number;
  /** The backoff of a failing key (core's defaults when unset). */
  backoff?: BackoffOptions;
  /** Told of each failure before the retry is scheduled (to log it). */
  onError?: (key: K, error: unknown, retryInMs: number) => void;
  signal: AbortSignal;
};

export type WorkQueue<K> = {
  /** Asks for `key`'s work: at once when a slot is free, after its current run, or when its backoff ends. */
  add(key: K): void;
  /** Resolves when no key waits or runs (keys backing off do not count), or once stopped and no run is left. */
  idle(): Promise<void>;
  /** Keys waiting, running or backing off. */
  readonly size: number;
};

export function createWorkQueue<K>(options: WorkQueueOptions<K>): WorkQueue<K> {
  const { work, signal } = options;
  const concurrency = options.concurrency ?? 1;
  if (!(concurrency >= 1)) throw new RangeError(`invalid work queue concurrency: ${concurrency}`);
  /** In the order added; a Set keeps a key's first place. */
  const waiting = new Set<K>();
  const running = new Set<K>();
  /** Added while running: waits again once the run ends. */
  const again = new Set<K>();
  const backingOff = new Map<K, ReturnType<typeof setTimeout>>();
  const backoffs = new Map<K, Backoff>();
  let idleWaiters: (() => void)[] = [];

  const isIdle = () => running.size === 0 && (waiting.size === 0 || signal.aborted);

  signal.addEventListener(
    "abort",
    () => {
      for (const timer of backingOff.values()) clearTimeout(timer);
      backingOff.clear();
      waiting.clear();
      again.clear();
      pump();
    },
    { once: true },
  );

  function finished(key: K, error: unknown, failed: boolean): void {
    running.delete(key);
    if (signal.aborted) return;
    if (failed) {
      const backoff = backoffs.get(key) ?? createBackoff(options.backoff);
      backoffs.set(key, backoff);
      const delay = backoff.next();
      options.onError?.(key, error, delay);
      again.delete(key); // the retry runs the latest work anyway
      backingOff.set(
        key,
        setTimeout(() => {
          backingOff.delete(key);
          waiting.add(key);
          pump();
        }, delay),
      );
      return;
    }
    backoffs.delete(key);
    if (again.delete(key)) waiting.add(key);
  }

  function pump(): void {
    if (!signal.aborted) {
      for (const key of waiting) {
        if (running.size >= concurrency) break;
        waiting.delete(key);
        running.add(key);
        work(key, signal).then(
          () => {
            finished(key, undefined, false);
            pump();
          },
          (error: unknown) => {
            finished(key, error, true);
            pump();
          },
        );
      }
    }
    if (isIdle()) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  return {
    add(key) {
      if (signal.aborted || backingOff.has(key)) return;
      if (running.has(key)) again.add(key);
      else waiting.add(key);
      pump();
    },
    idle() {
      if (isIdle()) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    get size() {
      return new Set([...waiting, ...running, ...backingOff.keys()]).size;
    },
  };
}
