// Entry point of one `--workers` process: a proxy fed by the primary over IPC.
import { AggregatorRegistry, register } from "prom-client";
import { createLogger } from "@bollard/core";
import { createProxy, type IngressProxy } from "../proxy/server.ts";
import { compileRoutes } from "../router/compile.ts";
import { createProxyMetrics } from "../status/metrics.ts";
import type { FromWorker, ToWorker } from "./workers.ts";

const send = (msg: FromWorker) => process.send?.(msg);
// Constructing one makes prom-client answer the primary's metric requests from this worker's global registry.
new AggregatorRegistry();
let proxy: IngressProxy | null = null;
// The primary decides when to stop; a terminal's Ctrl-C reaches the whole process group.
for (const s of ["SIGINT", "SIGTERM"] as const) process.on(s, () => {});

process.on("message", async (msg: ToWorker) => {
  switch (msg.type) {
    case "config": {
      const logger = createLogger({ name: "bollard-ingress-worker", level: msg.config.logLevel });
      // prom-client's cluster aggregation reads the global registry of each worker.
      proxy = createProxy({ ...msg.config.proxy, logger, observer: createProxyMetrics(register) });
      try {
        await proxy.listen({ ...msg.config.listen, reusePort: true });
        send({ type: "listening" });
      } catch (err) {
        send({ type: "fatal", message: (err as Error).message });
        process.exit(1);
      }
      return;
    }
    case "snapshot":
      if (proxy === null) return;
      proxy.setTable(compileRoutes(msg.snapshot, msg.compile));
      send({ type: "applied" });
      return;
    case "shutdown":
      await proxy?.shutdown(msg.deadlineMs);
      process.exit(0);
  }
});
process.on("disconnect", async () => {
  await proxy?.shutdown(5_000);
  process.exit(0);
});
