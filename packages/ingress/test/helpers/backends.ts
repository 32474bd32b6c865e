// Real HTTP backends on loopback and route tables pointing at them, for the proxy tests.
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { compileRoutes, type CompileOptions, type ConfigMap, type Ingress, type RouteTable, type Secret, type Snapshot } from "../../src/index.ts";

export interface Echo {
  backend: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  bodyBytes: number;
  bodySha256: string;
}

export interface Backend {
  name: string;
  port: number;
  server: Server;
  requests: number;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 answering with an Echo of what it received, unless `handler` takes over. */
export async function startBackend(
  name: string,
  handler?: (req: IncomingMessage, res: ServerResponse, backend: Backend) => boolean | Promise<boolean>,
  listen: { host: string; port: number } = { host: "127.0.0.1", port: 0 },
): Promise<Backend> {
  const backend: Backend = { name, port: 0, server: undefined as unknown as Server, requests: 0, close: async () => {} };
  const server = createServer(async (req, res) => {
    backend.requests++;
    if (handler !== undefined && (await handler(req, res, backend))) return;
    const hash = createHash("sha256");
    let bodyBytes = 0;
    for await (const chunk of req) {
      bodyBytes += (chunk as Buffer).length;
      hash.update(chunk as Buffer);
    }
    const echo: Echo = { backend: name, method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes, bodySha256: hash.digest("hex") };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(echo));
  });
  await new Promise<void>((resolve) => server.listen(listen.port, listen.host, resolve));
  backend.server = server;
  backend.port = (server.address() as AddressInfo).port;
  backend.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return backend;
}

/**
 * An answer in two parts for streaming tests: `answer(res)` sends "first\n" at once and "second\n" only when
 * `release()` is called (which releases the answer written last). A release that comes before the request
 * reached the backend lets the next answer through unheld (a test's request may still be on its way).
 */
export function heldAnswer(): { answer(res: ServerResponse): Promise<true>; release(): void; arrived(): Promise<void> } {
  let early = false;
  let waiting = false;
  const arrivals: (() => void)[] = [];
  let release: () => void = () => {
    early = true;
  };
  return {
    async answer(res) {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("first\n");
      if (!early) {
        waiting = true;
        for (const arrive of arrivals.splice(0)) arrive();
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        waiting = false;
      }
      early = false;
      res.end("second\n");
      return true;
    },
    release: () => release(),
    /** Resolves once a request is held: the backend has it and waits for `release`. */
    arrived: () => (waiting ? Promise.resolve() : new Promise<void>((resolve) => arrivals.push(resolve))),
  };
}

/** A port on 127.0.0.1 that refuses connections: bound once, then closed. */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface RouteSpec {
  host?: string;
  path?: string;
  pathType?: "Exact" | "Prefix" | "ImplementationSpecific";
  /** Service name; its endpoints are 127.0.0.1 at these ports (none: a Service without endpoints) */
  service: string;
  ports?: number[];
}

export interface IngressSpec {
  name: string;
  namespace?: string;
  routes: RouteSpec[];
  tls?: { hosts: string[]; secretName: string }[];
  annotations?: Record<string, string>;
  defaultBackend?: { service: string; ports?: number[] };
}

/** Objects as a cluster would hold them: one IngressClass, the Ingresses, a Service + EndpointSlices per backend. */
export function snapshotOf(ingresses: IngressSpec[], secrets: Secret[] = [], configMaps: ConfigMap[] = []): Snapshot {
  const snapshot: Snapshot = {
    ingresses: [],
    ingressClasses: [{ metadata: { name: "bollard" }, spec: { controller: "bollard.dev/ingress-controller" } }],
    services: [],
    endpointSlices: [],
    secrets,
    configMaps,
  };
  const services = new Map<string, number[] | undefined>();
  for (const spec of ingresses) {
    const namespace = spec.namespace ?? "default";
    const backendOf = (service: string) => ({ service: { name: service, port: { number: 80 } } });
    const ingress: Ingress = {
      metadata: { name: spec.name, namespace, annotations: spec.annotations ?? {} },
      spec: {
        ingressClassName: "bollard",
        ...(spec.tls ? { tls: spec.tls } : {}),
        ...(spec.defaultBackend ? { defaultBackend: backendOf(spec.defaultBackend.service) } : {}),
        rules: spec.routes.map((r) => ({
          ...(r.host ? { host: r.host } : {}),
          http: { paths: [{ path: r.path ?? "/", pathType: r.pathType ?? "Prefix", backend: backendOf(r.service) }] },
        })),
      },
    };
    snapshot.ingresses.push(ingress);
    for (const r of spec.routes) services.set(`${namespace}/${r.service}`, r.ports);
    if (spec.defaultBackend) services.set(`${namespace}/${spec.defaultBackend.service}`, spec.defaultBackend.ports);
  }
  for (const [key, ports] of services) {
    const [namespace = "", name = ""] = key.split("/");
    if (ports === undefined) continue; // no Service at all
    snapshot.services.push({ metadata: { name, namespace }, spec: { ports: [{ name: "http", port: 80, targetPort: "http" }] } });
    ports.forEach((port, i) => {
      snapshot.endpointSlices.push({
        metadata: { name: `${name}-${i}`, namespace, labels: { "kubernetes.io/service-name": name } },
        addressType: "IPv4",
        ports: [{ name: "http", port }],
        endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }],
      });
    });
  }
  return snapshot;
}

export const tableOf = (ingresses: IngressSpec[], secrets: Secret[] = [], options?: CompileOptions, configMaps: ConfigMap[] = []): RouteTable =>
  compileRoutes(snapshotOf(ingresses, secrets, configMaps), options);

export function tlsSecret(name: string, pair: { cert: string; key: string }, namespace = "default"): Secret {
  return {
    metadata: { name, namespace },
    type: "kubernetes.io/tls",
    data: { "tls.crt": Buffer.from(pair.cert).toString("base64"), "tls.key": Buffer.from(pair.key).toString("base64") },
  };
}
