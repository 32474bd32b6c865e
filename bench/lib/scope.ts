// Everything a benchmark part starts registers its undo here; the runner closes the scope in `finally` and on
// SIGINT/SIGTERM, so processes are stopped by PID and namespaces removed also when a part fails.

export interface Scope {
  /** Runs `undo` when the scope closes, last registered first. */
  defer(undo: () => Promise<void> | void): void;
  close(): Promise<void>;
}

export function createScope(): Scope {
  const undos: (() => Promise<void> | void)[] = [];
  return {
    defer(undo) {
      undos.push(undo);
    },
    async close() {
      while (undos.length > 0) {
        const undo = undos.pop() as () => Promise<void> | void;
        try {
          await undo();
        } catch (err) {
          process.stderr.write(`bench: cleanup step failed: ${(err as Error).message}\n`);
        }
      }
    },
  };
}
