import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Registry } from "prom-client";
import type { Logger } from "../log/logger.ts";
import type { PemPair } from "../tls/self-signed.ts";
import type { RequestAuthorizer } from "./authorize.ts";

// Not imported as ES modules: node:http's would load Node's undici (../kube/request.ts says why).
const { createServer: createHttpServer } = process.getBuiltinModule("node:http");
const { createServer: createHttpsServer } = process.getBuiltinModule("node:https");

/**
 * A prom-client registry with the process's default metrics (CPU, memory, event loop, GC). The event loop delay
 * is sampled every 100 ms, not prom-client's default 10 ms: that timer woke the JavaScript thread 100 times a
 * second for ever, and in `bollard ingress` the JavaScript thread shares its CPUs with the data plane's threads.
 */
export function createMetricsRegistry(options: { prefix?: string } = {}): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100, ...(options.prefix ? { prefix: options.prefix } : {}) });
  return registry;
}

/** What /metrics serves: a prom-client Registry, or anything that renders like one. */
export type MetricsSource = Pick<Registry, "contentType" | "metrics">;

/**
 * HTTPS, and /metrics only for callers the API server authorises (a bearer token whose user may `get` the
 * non-resource URL /metrics) — as MetalLB v0.16 serves its metrics. /healthz and /readyz stay open: the kubelet's
 * probes carry no token, and they say only "ok".
 */
export type SecureMetrics = { certificate: PemPair; authorize: RequestAuthorizer };

export type HealthServerOptions = {
  /** 0 picks a free port; the chosen one is in the result. */
  port: number;
  host?: string;
  registry: MetricsSource;
  isReady: () => boolean;
  isHealthy?: () => boolean;
  logger: Logger;
  /** Absent: plain HTTP, no authorisation (the lab's and MetalLB v0.15's way). */
  secure?: SecureMetrics;
};

export type HealthServer = { port: number; secure: boolean; close(): Promise<void> };

/** Serves /metrics, /healthz and /readyz (200 "ok" or 503), for Prometheus and the kubelet. */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { registry, isReady, logger, secure } = options;
  const isHealthy = options.isHealthy ?? (() => true);
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0] as string;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    try {
      if (path === "/metrics") {
        if (secure !== undefined) {
          const decision = await secure.authorize(req.headers.authorization, path, "get");
          if (decision.status !== 200) {
            if (decision.status === 500) logger.warn({ path, reason: decision.message }, "metrics request not reviewed");
            const headers = { "content-type": "text/plain", ...(decision.status === 401 ? { "www-authenticate": 'Bearer realm="metrics"' } : {}) };
            res.writeHead(decision.status, headers).end(`${decision.message}\n`);
            return;
          }
        }
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
  };
  const server = secure === undefined ? createHttpServer(handle) : createHttpsServer({ cert: secure.certificate.cert, key: secure.certificate.key }, handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, host: options.host ?? "0.0.0.0", secure: secure !== undefined }, "health server listening");
  return {
    port,
    secure: secure !== undefined,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
