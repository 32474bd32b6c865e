const SHUTDOWN_SIGNALS = ["SIGTERM", "SIGINT"] as const;

/**
 * Turns the first SIGTERM/SIGINT into an abort of the returned controller (after calling
 * `handler`), so every loop holding its signal winds down. A second signal exits at once, for
 * the operator whose process is stuck stopping.
 */
export function onShutdown(handler?: (signal: NodeJS.Signals) => void): AbortController {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.exit(signal === "SIGINT" ? 130 : 143);
    }
    handler?.(signal);
    controller.abort(new ShutdownSignal(signal));
  };
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, onSignal);
  return controller;
}

/** The abort reason when a process signal asked for shutdown. */
export class ShutdownSignal extends Error {
  override name = "ShutdownSignal";
  readonly signal: NodeJS.Signals;
  constructor(signal: NodeJS.Signals) {
    super(`received ${signal}`);
    this.signal = signal;
  }
}
