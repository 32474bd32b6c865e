// The data planes the proxy suite (test/proxy/) runs against: the native one, and the Node one in
// @bollard/ingress (src/proxy/) while it exists. Each suite file runs every behaviour against every plane here
// (`eachPlane`), so both give the same answers to the same requests; a behaviour the native plane does not have
// yet is named in NATIVE_LACKS and its tests run on the Node plane only.
// BOLLARD_DATA_PLANE=native (or node) narrows a run to one plane.
import { Writable } from "node:stream";
import { describe } from "node:test";
import { createLogger } from "@bollard/core";
import { createProxy, generateDefaultCertificate, type ProxyObserver, type RouteTable } from "@bollard/ingress";
import { createDataPlane, type DataPlaneOptions } from "../src/index.ts";

export type PlaneKind = "native" | "node";

/** Options both planes take (the proxy's limits and timeouts). */
export type PlaneOptions = Partial<Omit<DataPlaneOptions, "defaultCertificate">>;

/** Options only the Node plane takes today: tests using them name the feature they need (NATIVE_LACKS). */
export interface NodeOnlyOptions {
  requestTimeout?: number;
  keepAliveTimeout?: number;
  http2MaxResetsPerSecond?: number;
}

/** The feature each Node-only option belongs to. */
const NODE_ONLY_OPTIONS: Record<keyof NodeOnlyOptions, Feature> = {
  requestTimeout: "keep-alive-and-request-timeouts",
  keepAliveTimeout: "keep-alive-and-request-timeouts",
  http2MaxResetsPerSecond: "http2-reset-budget-per-second",
};

export interface RunningPlane {
  kind: PlaneKind;
  httpPort: number;
  /** null unless started with `https: true` */
  httpsPort: number | null;
  setTable(table: RouteTable): void;
  shutdown(deadlineMs: number): Promise<void>;
  /** responses the plane counted by status class (`2` → 2xx): the Node plane's observer, the native counters */
  responses(statusClass: 1 | 2 | 3 | 4 | 5): number;
  /** requests tried again on another endpoint after a failed connect */
  retries(): number;
  /** requests whose client went away before the answer ended (499, as nginx logs them) */
  clientGone(): number;
}

export interface PlaneFactory {
  kind: PlaneKind;
  start(options?: PlaneOptions & NodeOnlyOptions, listen?: { https?: boolean }): Promise<RunningPlane>;
}

/**
 * Behaviours the native plane does not have yet; a test needing one runs on the Node plane only. Delete an
 * entry when the native plane gains it, and its tests run on both.
 */
export const NATIVE_LACKS = new Set<Feature>([
  // found by this suite (hyper's HTTP/1 parser decides these): a request with both Content-Length and
  // Transfer-Encoding is served as chunked on a connection then closed (RFC 9112 §6.1 allows it; nginx and the
  // Node plane answer 400); headers unfinished in time close the connection without a 408 (as nginx); the
  // header size limit is checked between reads (hyper's max_buf_size, at least 8 KiB), so a head arriving in one
  // read may pass it by up to that read
  "400-for-content-length-with-transfer-encoding",
  "408-after-partial-headers",
  "exact-header-size-limit",
  // the JavaScript request handler's own failure containment (a thrown exception → 500): only the Node plane
  // runs JavaScript per request
  "javascript-request-handler",
]);

export type Feature =
  | "request-duration-histograms"
  | "499-client-closed-request"
  | "keep-alive-and-request-timeouts"
  | "http2-reset-budget-per-second"
  | "upstream-body-silence-timeout"
  | "pino-log-batches"
  | "400-for-content-length-with-transfer-encoding"
  | "408-after-partial-headers"
  | "exact-header-size-limit"
  | "javascript-request-handler";

/** the generated certificate both planes serve when SNI matches nothing */
export const defaultCertificate = generateDefaultCertificate();

const native: PlaneFactory = {
  kind: "native",
  async start(options = {}, listen = {}) {
    // An option of a feature the native plane lacks is a test that forgot to say what it needs.
    const lacking = (Object.keys(NODE_ONLY_OPTIONS) as (keyof NodeOnlyOptions)[]).filter((o) => options[o] !== undefined && NATIVE_LACKS.has(NODE_ONLY_OPTIONS[o]));
    if (lacking.length > 0) throw new Error(`${lacking.join(", ")} given to the native plane, which lacks it: the test must name the feature it needs (NATIVE_LACKS)`);
    // (once the native plane has a feature, its options go through as they are)
    const plane = createDataPlane({ defaultCertificate, ...(options as PlaneOptions) });
    const ports = plane.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: listen.https ? 0 : null, workers: 2 });
    const classes = ["responses1xx", "responses2xx", "responses3xx", "responses4xx", "responses5xx"] as const;
    return {
      kind: "native",
      ...ports,
      setTable: (table) => plane.setTable(table),
      shutdown: (ms) => plane.shutdown(ms),
      responses: (c) => plane.counters()[classes[c - 1] as (typeof classes)[number]],
      retries: () => plane.counters().upstreamRetries,
      clientGone: () => plane.counters().clientGone,
    };
  },
};

const node: PlaneFactory = {
  kind: "node",
  async start(options = {}, listen = {}) {
    const counts = [0, 0, 0, 0, 0];
    let gone = 0;
    const observer: ProxyObserver = {
      requestFinished: ({ status }) => {
        if (status === 499) gone++;
        else counts[Math.floor(status / 100) - 1] = (counts[Math.floor(status / 100) - 1] ?? 0) + 1;
      },
      connectionOpened() {},
      connectionClosed() {},
      tableSwapped() {},
    };
    // Its debug log tells the retries (the Node plane counts them nowhere else).
    let retries = 0;
    const lines = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString("utf8").split("\n")) if (line.includes('"msg":"upstream connect failed; trying another endpoint"')) retries++;
        if (process.env.BOLLARD_TEST_LOG_LEVEL !== undefined) process.stderr.write(chunk);
        done();
      },
    });
    const logger = createLogger({ name: "node-plane-under-test", level: "debug", destination: lines });
    const proxy = createProxy({ defaultCertificate, ...options, logger, observer });
    const ports = await proxy.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: listen.https ? 0 : null });
    return {
      kind: "node",
      ...ports,
      setTable: (table) => proxy.setTable(table),
      shutdown: (ms) => proxy.shutdown(ms),
      responses: (c) => counts[c - 1] ?? 0,
      retries: () => retries,
      clientGone: () => gone,
    };
  },
};

const all: PlaneFactory[] = [native, node];

/** The planes this run tests (BOLLARD_DATA_PLANE=native|node narrows it to one). */
export function planes(): PlaneFactory[] {
  const only = process.env.BOLLARD_DATA_PLANE;
  if (only === undefined || only === "") return all;
  const chosen = all.filter((p) => p.kind === only);
  if (chosen.length === 0) throw new Error(`BOLLARD_DATA_PLANE=${only}: no such data plane (have: ${all.map((p) => p.kind).join(", ")})`);
  return chosen;
}

/** The planes that have every feature named. */
export const planesWith = (needs: readonly Feature[]): PlaneFactory[] => planes().filter((p) => p.kind === "node" || needs.every((f) => !NATIVE_LACKS.has(f)));

/**
 * `describe(name)` once per plane, `[native] name`, `[node] name`; with `needs`, only on the planes that have
 * those features.
 */
export function eachPlane(name: string, body: (plane: PlaneFactory) => void): void;
export function eachPlane(name: string, needs: { needs: readonly Feature[] }, body: (plane: PlaneFactory) => void): void;
export function eachPlane(name: string, a: { needs: readonly Feature[] } | ((plane: PlaneFactory) => void), b?: (plane: PlaneFactory) => void): void {
  const [needs, body] = typeof a === "function" ? [[], a] : [a.needs, b as (plane: PlaneFactory) => void];
  for (const plane of planesWith(needs)) describe(`[${plane.kind}] ${name}`, () => body(plane));
}
