// `bollard ingress`: wires the control plane (informers → compiler) and the data plane (proxy, in this process
// or in `--workers` processes). The KubeConfig, metrics server and shutdown signal come from the command.
import { hostname } from "node:os";
import { AggregatorRegistry } from "prom-client";
import { type ComponentContext, createEventRecorder, type Logger, type MetricsSource, type RunningComponent } from "@bollard/core";
import type { Registry } from "prom-client";
import { CONTROLLER_NAME } from "../model/ingress-class.ts";
import type { ObjectRef } from "../model/objects.ts";
import { createProxy, type IngressProxy, type ListenOptions, type ProxyOptions } from "../proxy/server.ts";
import type { RouteTable } from "../router/table.ts";
import { startIngressController } from "../reconciler/controller.ts";
import { createConfigMetrics, createProxyMetrics, type IngressMetrics } from "../status/metrics.ts";
import { generateDefaultCertificate } from "../tls/default-certificate.ts";
import { startWorkers, type WorkerFleet } from "./workers.ts";

export interface IngressRunOptions {
  ingressClass: string;
  watchNamespace?: string;
  publishService?: ObjectRef;
  defaultSslCertificate?: ObjectRef;
  bindAddress?: string;
  httpPort: number;
  httpsPort: number;
  workers: number;
  /** The worker processes' log level (this process logs through the context's logger). */
  logLevel: string;
  trustedProxies: string[];
  maxBodySize: number;
  /** how long SIGTERM waits for in-flight requests */
  shutdownGraceMs: number;
  /** Lease namespace (default: env POD_NAMESPACE, else the watched namespace, else "default") */
  electionNamespace?: string;
  proxy?: Partial<Omit<ProxyOptions, "defaultCertificate" | "observer" | "logger">>;
  /** a data plane in place of the built-in Node proxy (`--data-plane native`); `workers` is then its threads */
  dataPlane?: DataPlaneFactory;
}

/** A data plane serving the route tables this process compiles, listening once made. */
export interface InjectedDataPlane {
  /** Swaps in a new route table; throws when the plane refuses it (the previous one keeps serving). */
  setTable(table: RouteTable): void;
  /** listeners bound and accepting (false once shutdown began): half of /readyz */
  listening(): boolean;
  /** Stops accepting, lets requests in flight finish until the deadline, then cuts them. */
  shutdown(deadlineMs: number): Promise<void>;
}

/**
 * Makes and starts a data plane; rejects when it cannot listen. Injected by the CLI: the native plane
 * (@bollard/dataplane) depends on this package, so this package cannot depend on it.
 */
export type DataPlaneFactory = (
  options: ProxyOptions,
  listen: Omit<ListenOptions, "reusePort"> & { workers: number },
  logger: Logger,
  /** where its request metrics go (the Node plane's names) */
  registry: Registry,
) => Promise<InjectedDataPlane>;

/** The proxy (or its worker processes) could not listen on the HTTP/HTTPS ports. */
export class ProxyListenError extends Error {
  override name = "ProxyListenError";
}

/** Listens, then serves until `context.signal`; rejects with ProxyListenError if the ports cannot be had. */
export async function runIngress(options: IngressRunOptions, context: ComponentContext): Promise<RunningComponent> {
  const { kubeConfig, logger, signal } = context;
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
  let injected: InjectedDataPlane | null = null;
  let metrics: MetricsSource | undefined;
  const configMetrics: IngressMetrics = createConfigMetrics(context.registry);
  if (options.dataPlane !== undefined) {
    try {
      injected = await options.dataPlane(proxyOptions, { ...listen, workers: options.workers }, logger, context.registry);
    } catch (err) {
      throw new ProxyListenError(`the data plane could not start: ${(err as Error).message}`, { cause: err });
    }
  } else if (options.workers > 1) {
    // This process only watches the API; /metrics adds the workers' request metrics on each scrape.
    const aggregator = new AggregatorRegistry();
    metrics = {
      contentType: context.registry.contentType,
      metrics: async () => `${await context.registry.metrics()}\n${await aggregator.clusterMetrics()}`,
    };
    fleet = startWorkers(options.workers, { proxy: proxyOptions, listen, logLevel: options.logLevel }, logger);
    try {
      await fleet.listening;
    } catch (err) {
      await fleet.shutdown(0);
      throw new ProxyListenError(`workers could not listen: ${(err as Error).message}`, { cause: err });
    }
  } else {
    proxy = createProxy({ ...proxyOptions, logger, observer: createProxyMetrics(context.registry) });
    try {
      const ports = await proxy.listen(listen);
      logger.info(ports, "proxy listening");
    } catch (err) {
      throw new ProxyListenError(`proxy could not listen: ${(err as Error).message}`, { cause: err });
    }
  }

  const events = createEventRecorder({ kubeConfig, component: CONTROLLER_NAME, logger });
  const controller = startIngressController({
    kubeConfig,
    logger,
    signal,
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
      if (injected !== null) {
        try {
          injected.setTable(table);
        } catch (err) {
          // (the compiler validates what it emits, so this is a bug between the two; the last table keeps serving)
          logger.error({ err }, "the data plane refused the route table; it keeps serving the previous one");
        }
      } else if (proxy !== null) proxy.setTable(table);
      else
        fleet?.send(snapshot, {
          controllerName: CONTROLLER_NAME,
          ingressClass: options.ingressClass,
          defaultCertificate: options.defaultSslCertificate ?? null,
        });
    },
  });
  // Ready = a route table is built AND the data plane serves it on bound listeners (so not while draining).
  const dataPlaneReady = () => (injected !== null ? injected.listening() : proxy !== null ? proxy.http.listening && proxy.https.listening : (fleet?.isReady() ?? false));
  const isReady = () => controller.isReady() && dataPlaneReady();
  const done = (async () => {
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await Promise.all([proxy?.shutdown(options.shutdownGraceMs), fleet?.shutdown(options.shutdownGraceMs), injected?.shutdown(options.shutdownGraceMs)]);
    await controller.done;
    await events.flush();
  })();
  return { isReady, done, ...(metrics === undefined ? {} : { metrics }) };
}
