// `--workers N`: N processes each run the proxy on the same ports (SO_REUSEPORT, so the kernel spreads
// connections); this process keeps the one API watch and sends each worker every new snapshot, which the
// worker compiles itself — the route table never crosses a process boundary.
import cluster, { type Worker } from "node:cluster";
import { fileURLToPath } from "node:url";
import { createBackoff, type Logger } from "@bollard/core";
import type { Snapshot } from "../model/objects.ts";
import type { CompileOptions } from "../router/compile.ts";
import type { ListenOptions, ProxyOptions } from "../proxy/server.ts";

/** What a worker needs to run its proxy: plain data, sent over IPC (never argv or env: it holds a key). */
export interface WorkerConfig {
  proxy: Omit<ProxyOptions, "observer" | "logger">;
  listen: ListenOptions;
  logLevel: string;
}

export type ToWorker =
  | { type: "config"; config: WorkerConfig }
  | { type: "snapshot"; snapshot: Snapshot; compile: CompileOptions }
  | { type: "shutdown"; deadlineMs: number };

export type FromWorker = { type: "listening" } | { type: "applied" } | { type: "fatal"; message: string };

export interface WorkerFleet {
  /** resolves when every worker listens; rejects if one cannot */
  listening: Promise<void>;
  send(snapshot: Snapshot, compile: CompileOptions): void;
  /** every live worker listens and serves a route table (so none answers from an empty one); false once stopping */
  isReady(): boolean;
  shutdown(deadlineMs: number): Promise<void>;
}

export function startWorkers(count: number, config: WorkerConfig, logger: Logger): WorkerFleet {
  cluster.setupPrimary({ exec: fileURLToPath(new URL("./worker-main.ts", import.meta.url)), serialization: "advanced", silent: false });
  let latest: ToWorker | null = null;
  let stopping = false;
  const backoff = createBackoff({ initialMs: 500, maxMs: 30_000 });
  const live = new Set<Worker>();
  const listeningWorkers = new Set<Worker>();
  const servingWorkers = new Set<Worker>();
  let pending = count;
  let resolveListening!: () => void;
  let rejectListening!: (err: Error) => void;
  const listening = new Promise<void>((resolve, reject) => {
    resolveListening = resolve;
    rejectListening = reject;
  });
  listening.catch(() => {});

  const fork = (first: boolean) => {
    const worker = cluster.fork();
    live.add(worker);
    worker.on("online", () => {
      worker.send({ type: "config", config } satisfies ToWorker);
      if (latest !== null) worker.send(latest);
    });
    worker.on("message", (msg: FromWorker) => {
      if (msg.type === "listening") listeningWorkers.add(worker);
      if (msg.type === "applied") servingWorkers.add(worker);
      if (msg.type === "listening" && first && --pending === 0) resolveListening();
      if (msg.type === "fatal") {
        logger.error({ worker: worker.process.pid, problem: msg.message }, "ingress worker failed");
        if (first) rejectListening(new Error(msg.message));
      }
    });
    worker.on("exit", (code, signal) => {
      live.delete(worker);
      listeningWorkers.delete(worker);
      servingWorkers.delete(worker);
      if (stopping) return;
      const delay = backoff.next();
      logger.error({ worker: worker.process.pid, code, signal, restartInMs: Math.round(delay) }, "ingress worker exited; restarting it");
      setTimeout(() => {
        if (!stopping) fork(false);
      }, delay).unref();
    });
  };
  for (let i = 0; i < count; i++) fork(true);

  return {
    listening,
    send(snapshot, compile) {
      latest = { type: "snapshot", snapshot, compile };
      for (const w of live) if (w.isConnected()) w.send(latest);
    },
    isReady() {
      if (stopping || live.size === 0) return false;
      for (const w of live) if (!listeningWorkers.has(w) || !servingWorkers.has(w)) return false;
      return true;
    },
    async shutdown(deadlineMs) {
      stopping = true;
      const exits = [...live].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once("exit", () => resolve()))));
      for (const w of live) if (w.isConnected()) w.send({ type: "shutdown", deadlineMs } satisfies ToWorker);
      const killer = setTimeout(() => {
        for (const w of live) w.process.kill("SIGKILL");
      }, deadlineMs + 2_000);
      await Promise.all(exits);
      clearTimeout(killer);
    },
  };
}
