// The worker thread of a BfdThreadSession (thread.ts): runs one BfdSession and reports to the main thread.
import { parentPort, workerData } from "node:worker_threads";
import { BfdSession, type BfdSessionOptions } from "./session.ts";
import type { BfdWorkerMessage } from "./thread.ts";

const port = parentPort;
if (!port) throw new Error("bfd/worker.ts runs as a worker thread (BfdThreadSession)");
const post = (message: BfdWorkerMessage) => port.postMessage(message);

const session = new BfdSession(workerData as BfdSessionOptions);
session.on("state", (change) => post({ type: "state", change }));
session.on("discarded", ({ reason }) => post({ type: "discarded", reason }));
let starting: Promise<void> = Promise.resolve();
port.on("message", (message: { type: "stop" }) => {
  if (message.type !== "stop") return;
  void starting.then(() => session.stop()).then(() => {
    post({ type: "stopped" });
    port.close();
  });
});
starting = session.start().then(
  () => post({ type: "started" }),
  (err: Error) => post({ type: "start-failed", message: err.message }),
);
