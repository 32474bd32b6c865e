// `bollard ingress`: wires the control plane (informers → compiler), the data plane (proxy, in this process
// or in `--workers` processes), the health/metrics server and shutdown.
import { hostname } from "node:os";
import { AggregatorRegistry, Registry } from "prom-client";
import { createEventRecorder, createKubeConfig, createLogger, createMetricsRegistry, onShutdown, startHealthServer } from "@bollard/core";
import { CONTROLLER_NAME } from "../model/ingress-class.ts";
import type { ObjectRef } from "../model/objects.ts";
import { createProxy, type IngressProxy, type ProxyOptions } from "../proxy/server.ts";
import { startIngressController } from "../reconciler/controller.ts";
import { createConfigMetrics, createProxyMetrics, type IngressMetrics } from "../status/metrics.ts";
import { generateDefaultCertificate } from "../tls/default-certificate.ts";
import { startWorkers, type WorkerFleet } from "./workers.ts";

export interface IngressRunOptions {
  kubeconfig?: string;
  ingressClass: string;
  watchNamespace?: string;
  publishService?: ObjectRef;
  defaultSslCertificate?: ObjectRef;
  bindAddress?: string;
  httpPort: number;
  httpsPort: number;
  metricsPort: number;
  workers: number;
  logLevel: string;
  trustedProxies: string[];
  maxBodySize: number;
  /** how long SIGTERM waits for in-flight requests */
  shutdownGraceMs: number;
  /** Lease namespace (default: env POD_NAMESPACE, else the watched namespace, else "default") */
  electionNamespace?: string;
  proxy?: Partial<Omit<ProxyOptions, "defaultCertificate" | "observer" | "logger">>;
}

/** Runs until SIGTERM/SIGINT; resolves with the exit code. */
export async function runIngress(options: IngressRunOptions): Promise<number> {
  const logger = createLogger({ name: "bollard-ingress", level: options.logLevel });
  const stop = onShutdown((signal) => logger.info({ signal }, "shutting down"));
  const kubeConfig = createKubeConfig(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {});
  const defaultCertificate = generateDefaultCertificate();
  const proxyOptions: ProxyOptions = {
    ...options.proxy,
    defaultCertificate,
    trustedProxies: options.trustedProxies,
    maxBodySize: options.maxBodySize,
  };
  const listen = { host: options.bindAddress, httpPort: options.httpPort, httpsPort: options.httpsPort };

  let proxy: IngressProxy | null = null;
  let fleet: WorkerFleet | null = null;
  let registry: Registry;
  let configMetrics: IngressMetrics;
  if (options.workers > 1) {
    // This process only watches the API; its registry adds the workers' request metrics on each scrape.
    const aggregator = new AggregatorRegistry();
    const own = createMetricsRegistry();
    registry = new (class extends Registry {
      override async metrics() {
        return `${await own.metrics()}\n${await aggregator.clusterMetrics()}`;
      }
    })();
    configMetrics = createConfigMetrics(own);
    fleet = startWorkers(options.workers, { proxy: proxyOptions, listen, logLevel: options.logLevel }, logger);
    try {
      await fleet.listening;
    } catch (err) {
      logger.error({ err }, "workers could not listen");
      await fleet.shutdown(0);
      return 1;
    }
  } else {
    registry = createMetricsRegistry();
    configMetrics = createConfigMetrics(registry);
    proxy = createProxy({ ...proxyOptions, logger, observer: createProxyMetrics(registry) });
    try {
      const ports = await proxy.listen(listen);
      logger.info(ports, "proxy listening");
    } catch (err) {
      logger.error({ err }, "proxy could not listen");
      return 1;
    }
  }

  const events = createEventRecorder({ kubeConfig, component: CONTROLLER_NAME, logger });
  const controller = startIngressController({
    kubeConfig,
    logger,
    signal: stop.signal,
    ingressClass: options.ingressClass,
    controllerName: CONTROLLER_NAME,
    watchNamespace: options.watchNamespace,
    publishService: options.publishService,
    defaultCertificate: options.defaultSslCertificate,
    election: {
      namespace: options.electionNamespace ?? process.env.POD_NAMESPACE ?? options.watchNamespace ?? "default",
      name: `bollard-ingress-${options.ingressClass}`,
      identity: process.env.POD_NAME ?? `${hostname()}-${process.pid}`,
    },
    events,
    metrics: configMetrics,
    apply(table, snapshot) {
      if (proxy !== null) proxy.setTable(table);
      else
        fleet?.send(snapshot, {
          controllerName: CONTROLLER_NAME,
          ingressClass: options.ingressClass,
          defaultCertificate: options.defaultSslCertificate ?? null,
        });
    },
  });
  // Ready = a route table is built AND the data plane serves it on bound listeners (so not while draining).
  const dataPlaneReady = () => (proxy !== null ? proxy.http.listening && proxy.https.listening : (fleet?.isReady() ?? false));
  const isReady = () => controller.isReady() && dataPlaneReady();
  const health = await startHealthServer({ port: options.metricsPort, host: options.bindAddress, registry, isReady, logger });

  await new Promise<void>((resolve) => stop.signal.addEventListener("abort", () => resolve(), { once: true }));
  await Promise.all([proxy?.shutdown(options.shutdownGraceMs), fleet?.shutdown(options.shutdownGraceMs)]);
  await controller.done;
  await events.flush();
  await health.close();
  logger.info("stopped");
  return 0;
}
