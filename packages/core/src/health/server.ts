import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Registry } from "prom-client";
import type { Logger } from "../log/logger.ts";

/** A prom-client registry with the process's default metrics (CPU, memory, event loop, GC). */
export function createMetricsRegistry(options: { prefix?: string } = {}): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, ...(options.prefix ? { prefix: options.prefix } : {}) });
  return registry;
}

export type HealthServerOptions = {
  /** 0 picks a free port; the chosen one is in the result. */
  port: number;
  host?: string;
  registry: Registry;
  isReady: () => boolean;
  isHealthy?: () => boolean;
  logger: Logger;
};

export type HealthServer = { port: number; close(): Promise<void> };

/** Serves /metrics, /healthz and /readyz (200 "ok" or 503), for Prometheus and the kubelet. */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { registry, isReady, logger } = options;
  const isHealthy = options.isHealthy ?? (() => true);
  const server = createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    try {
      if (path === "/metrics") {
        const body = await registry.metrics();
        res.writeHead(200, { "content-type": registry.contentType }).end(body);
      } else if (path === "/healthz" || path === "/readyz") {
        const ok = path === "/healthz" ? isHealthy() : isReady();
        res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ok\n" : "not ok\n");
      } else {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      }
    } catch (error) {
      logger.error({ err: error, path }, "health server request failed");
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, host: options.host ?? "0.0.0.0" }, "health server listening");
  return {
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
