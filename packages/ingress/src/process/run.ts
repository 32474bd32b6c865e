// `bollard ingress`: wires the control plane (informers → compiler) and the data plane the command injects (the
// native one, @bollard/dataplane). The KubeConfig, metrics server and shutdown signal come from the command.
import { hostname } from "node:os";
import { type ComponentContext, createEventRecorder, type Logger, type RunningComponent } from "@bollard/core";
import type { Registry } from "prom-client";
import { CONTROLLER_NAME } from "../model/ingress-class.ts";
import type { ObjectRef } from "../model/objects.ts";
import type { RouteTable } from "../router/table.ts";
import { startIngressController } from "../reconciler/controller.ts";
import { createConfigMetrics, type IngressMetrics } from "../status/metrics.ts";
import { generateDefaultCertificate, type PemPair } from "../tls/default-certificate.ts";

/** The data plane's limits and timeouts (`bollard ingress` flags), as the injected data plane takes them. */
export interface ProxyOptions {
  /** the certificate for TLS clients whose SNI matches nothing (and clients without SNI) */
  defaultCertificate: PemPair;
  /** CIDRs whose X-Forwarded-* headers are believed */
  trustedProxies?: readonly string[];
  /** request body limit in bytes → 413 (default 1 MiB) */
  maxBodySize?: number;
  /**
   * bodies up to this many bytes are read whole before an upstream connection is taken, so slow clients hold
   * no upstream connection (default 64 KiB; 0 streams every body)
   */
  requestBufferSize?: number;
  /** longest silence between two reads of a request body, ms (default 60 s) → 408 */
  clientBodyTimeout?: number;
  /** forward header names containing `_` (default false: dropped, as nginx's `underscores_in_headers off`) */
  underscoresInHeaders?: boolean;
  /** HTTP/2 streams open at once on one connection (default 128, as nginx); more are refused */
  http2MaxConcurrentStreams?: number;
  /** request line + headers limit in bytes → 431 (default 16 KiB) */
  maxHeaderSize?: number;
  /** upstream connect timeout, ms (default 5 s) → another endpoint, then 502 */
  connectTimeout?: number;
  /**
   * upstream silence, ms (default 60 s): before the response head (connecting included) → 504; between two
   * chunks of the response body → the answer is cut (HTTP/1.1: the connection closed; HTTP/2: the stream reset)
   */
  readTimeout?: number;
  /** a request head must arrive whole within this of its first byte, ms (default 60 s) → 408 */
  headersTimeout?: number;
  /** the whole request (head and body) must arrive within this, ms (default 300 s; never below headersTimeout) → 408 */
  requestTimeout?: number;
  /** idle keep-alive client connections (HTTP/2: with no open stream) are closed after this, ms (default 75 s) */
  keepAliveTimeout?: number;
  /**
   * HTTP/2 streams a client may abandon (reset before their answer) per second on one connection, with a burst
   * of ten seconds' worth (default 100); past it, GOAWAY ENHANCE_YOUR_CALM and the connection is closed
   */
  http2MaxResetsPerSecond?: number;
  /** idle upstream keep-alive connections are closed after this, ms (default 4 s) */
  upstreamKeepAliveTimeout?: number;
  /** the port written into HTTP → HTTPS redirects (default 443, left out of the URL) */
  httpsRedirectPort?: number;
}

/** Where the data plane listens. */
export interface ListenOptions {
  /** an IP address (default: all addresses) */
  host?: string;
  httpPort: number;
  /** null: no HTTPS listener */
  httpsPort: number | null;
  /** threads serving the ports */
  workers: number;
}

export interface IngressRunOptions {
  ingressClass: string;
  /** `spec.controller` of the IngressClasses served (default bollard.dev/ingress-controller) */
  controllerClass?: string;
  /** IngressClass names served whatever their controller */
  watchIngressClasses?: string[];
  /** serve Ingresses without a class */
  watchWithoutClass?: boolean;
  /** the annotation prefix read (default nginx.ingress.kubernetes.io) */
  annotationsPrefix?: string;
  /** an ingress-nginx controller ConfigMap whose keys set cluster-wide defaults */
  configMap?: ObjectRef;
  watchNamespace?: string;
  publishService?: ObjectRef;
  defaultSslCertificate?: ObjectRef;
  bindAddress?: string;
  httpPort: number;
  httpsPort: number;
  /** the data plane's threads */
  workers: number;
  trustedProxies: string[];
  maxBodySize: number;
  /** how long SIGTERM waits for in-flight requests */
  shutdownGraceMs: number;
  /** Lease namespace (default: env POD_NAMESPACE, else the watched namespace, else "default") */
  electionNamespace?: string;
  proxy?: Partial<Omit<ProxyOptions, "defaultCertificate">>;
  /** makes the data plane (the CLI injects the native one) */
  dataPlane: DataPlaneFactory;
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
  listen: ListenOptions,
  logger: Logger,
  /** where its request metrics go */
  registry: Registry,
) => Promise<InjectedDataPlane>;

/** The data plane could not listen on the HTTP/HTTPS ports. */
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
  const listen = { host: options.bindAddress, httpPort: options.httpPort, httpsPort: options.httpsPort, workers: options.workers };
  const configMetrics: IngressMetrics = createConfigMetrics(context.registry);
  let dataPlane: InjectedDataPlane;
  try {
    dataPlane = await options.dataPlane(proxyOptions, listen, logger, context.registry);
  } catch (err) {
    throw new ProxyListenError(`the data plane could not start: ${(err as Error).message}`, { cause: err });
  }

  const events = createEventRecorder({ kubeConfig, component: CONTROLLER_NAME, logger });
  const controller = startIngressController({
    kubeConfig,
    logger,
    signal,
    ingressClass: options.ingressClass,
    controllerName: options.controllerClass ?? CONTROLLER_NAME,
    watchIngressClasses: options.watchIngressClasses ?? [],
    watchWithoutClass: options.watchWithoutClass ?? false,
    annotationsPrefix: options.annotationsPrefix,
    configMap: options.configMap,
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
    apply(table) {
      try {
        dataPlane.setTable(table);
      } catch (err) {
        // (the compiler validates what it emits, so this is a bug between the two; the last table keeps serving)
        logger.error({ err }, "the data plane refused the route table; it keeps serving the previous one");
      }
    },
  });
  // Ready = a route table is built AND the data plane serves it on bound listeners (so not while draining).
  const isReady = () => controller.isReady() && dataPlane.listening();
  const done = (async () => {
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await dataPlane.shutdown(options.shutdownGraceMs);
    await controller.done;
    await events.flush();
  })();
  return { isReady, done };
}
