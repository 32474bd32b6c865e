// A BFD session on a worker thread of its own: its packets go out and its detection timer runs on that
// thread's event loop, so a busy main loop (a reconcile of thousands of Services, a long GC) does not starve
// them — with 200 ms × 3 a peer would take a 600 ms stall of ours for the path gone and reset BGP. The main
// thread only learns of state changes.
import { EventEmitter } from "node:events";
import { Worker } from "node:worker_threads";
import type { BfdState } from "./packet.ts";
import type { BfdSessionEvents, BfdSessionOptions } from "./session.ts";

/** Messages from the worker (bfd/worker.ts). */
export type BfdWorkerMessage =
  | { type: "started" }
  | { type: "start-failed"; message: string }
  | { type: "state"; change: BfdSessionEvents["state"][0] }
  | { type: "discarded"; reason: string }
  | { type: "stopped" };

export type BfdThreadEvents = BfdSessionEvents & {
  /** The worker thread died after the session had started: the session is gone, nothing is sent any more. */
  failed: [Error];
};

export class BfdThreadSession extends EventEmitter<BfdThreadEvents> {
  private readonly options: BfdSessionOptions;
  private worker: Worker | undefined;
  private state: BfdState = "Down";
  private stopped: Promise<void> | undefined;
  private exited = false;

  constructor(options: BfdSessionOptions) {
    super();
    this.options = options;
  }

  /** The last state the worker reported. */
  get sessionState(): BfdState {
    return this.state;
  }

  /** Resolves once the session's sockets are bound; rejects as BfdSession.start does (address taken, not local). */
  start(): Promise<void> {
    // No node options for the worker: it needs none, and some of a process's are refused by a worker (--input-type
    // of `node -e`, the test runner's per-process flags).
    const worker = new Worker(new URL("./worker.ts", import.meta.url), { workerData: this.options, execArgv: [] });
    this.worker = worker;
    worker.once("exit", () => {
      this.exited = true;
    });
    return new Promise<void>((resolve, reject) => {
      let started = false;
      worker.on("message", (message: BfdWorkerMessage) => {
        switch (message.type) {
          case "started":
            started = true;
            resolve();
            break;
          case "start-failed":
            reject(new Error(message.message));
            void worker.terminate();
            break;
          case "state":
            this.state = message.change.to;
            this.emit("state", message.change);
            break;
          case "discarded":
            this.emit("discarded", { reason: message.reason });
            break;
          case "stopped":
            break;
        }
      });
      worker.on("error", (err) => {
        if (!started) reject(err);
        else if (!this.stopped) this.emit("failed", err);
      });
      worker.on("exit", (code) => {
        if (!started) reject(new Error(`the BFD thread exited with code ${code} before the session started`));
      });
    });
  }

  /** Tells the peer AdminDown (as BfdSession.stop), then ends the thread. */
  stop(): Promise<void> {
    const worker = this.worker;
    // Never started, or its thread already ended (a failed start): nothing to tell the peer, nothing to wait for.
    if (!worker || this.exited) return Promise.resolve();
    this.stopped ??= new Promise<void>((resolve) => {
      worker.once("exit", () => resolve());
      worker.on("message", (message: BfdWorkerMessage) => {
        if (message.type === "stopped") void worker.terminate();
      });
      // A worker that never started (or already died) has nobody to say AdminDown: it just ends.
      worker.postMessage({ type: "stop" });
      setTimeout(() => void worker.terminate(), 2000).unref();
    });
    return this.stopped;
  }
}
