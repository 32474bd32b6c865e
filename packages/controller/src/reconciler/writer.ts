// Writes to the API server with bounded concurrency. The writes of one object run one at a time,
// in the order they were submitted; a write still waiting for its turn is replaced by a newer one
// for the same object (it would only be overwritten), keeping its place in the queue.

/** One object's write. It must not reject: it reports its own failures. */
export type Write = (signal: AbortSignal) => Promise<void>;

export type Writer = {
  /** Queues `write` for the object `key`, replacing a write for it that has not started yet. */
  submit(key: string, write: Write): void;
  /** Resolves once no write is waiting or running (at once if none is). */
  idle(): Promise<void>;
};

export function createWriter(options: { concurrency: number; signal: AbortSignal }): Writer {
  const { concurrency, signal } = options;
  /** In submission order; Map.set on a waiting key keeps its place. */
  const waiting = new Map<string, Write>();
  const running = new Set<string>();
  let idleWaiters: (() => void)[] = [];

  const isIdle = () => running.size === 0 && (waiting.size === 0 || signal.aborted);

  function pump(): void {
    if (!signal.aborted) {
      for (const [key, write] of waiting) {
        if (running.size >= concurrency) break;
        if (running.has(key)) continue; // its previous write first
        waiting.delete(key);
        running.add(key);
        void write(signal).finally(() => {
          running.delete(key);
          pump();
        });
      }
    }
    if (isIdle()) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  return {
    submit(key, write) {
      waiting.set(key, write);
      pump();
    },
    idle() {
      if (isIdle()) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}
