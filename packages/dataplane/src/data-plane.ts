import type { Logger } from "@bollard/core";
import { emptyRouteTable, type KeyPair, type ProxyOptions, type Route, type RouteTable } from "@bollard/ingress";
import { loadNative, type NativeCounters, type NativeDataPlane, type RouteCount } from "./native.ts";
import { SNAPSHOT_VERSION, snapshotFromTable, type TableSnapshot } from "./snapshot.ts";

/** The native side refused a snapshot; it keeps serving the previous one. */
export class InvalidSnapshotError extends Error {
  override name = "InvalidSnapshotError";
  /** the field at fault, a path into the snapshot (`routes[3].path`) */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`snapshot refused at ${field}: ${message}`);
    this.field = field;
  }
}

/** The data plane's options: `bollard ingress`'s limits and timeouts, and where its logs go. */
export interface DataPlaneOptions extends ProxyOptions {
  /** where the plane's warnings (upstream failures, with the request id) and access lines go, in batches */
  logger?: Logger;
  /** a log line per request (info, "request"), in the same batches (default false) */
  accessLog?: boolean;
  /** how often queued log lines are taken to the logger, ms (default 1000) */
  logInterval?: number;
  /**
   * TLS session resumption (default true): TLS 1.2 session ids and TLS 1.3 tickets naming sessions the plane keeps
   * in memory. false: every TLS connection makes a full handshake (the bench measures those).
   */
  tlsSessionResumption?: boolean;
}

/** What the data plane does with a request: its own answer (`status`), and/or the route it matched. */
export interface Decision {
  /** 400, 404, 503, 308 when the proxy answers itself; null when it forwards */
  status: number | null;
  route: Route | null;
  /** the 308's Location */
  location: string | null;
}

export interface DataPlane {
  /** Validates the table's snapshot natively and swaps it in whole; throws InvalidSnapshotError, changing nothing. */
  setTable(table: RouteTable): void;
  /** What the proxy answers to a request head (`target`: the request target as sent, bytes). */
  decide(request: { host: string | Buffer | null; target: string | Buffer; secure?: boolean; hostCount?: number }): Decision;
  /** Only the route lookup for a Host header and a path (as `matchRoute`): null is a 404. */
  routeFor(host: string | null, path: string | Buffer): Route | null;
  /** The certificate for a TLS server name; null: the generated default. */
  certificateFor(serverName: string | null): KeyPair | null;
  /** Opens the listeners (HTTPS: h2 by ALPN, else HTTP/1.1; null: none); `workers` runtime threads serve them. */
  listen(options: { host?: string; httpPort: number; httpsPort?: number | null; workers?: number }): { httpPort: number; httpsPort: number | null };
  /** Stops accepting, lets open requests finish until the deadline, then closes what is left. */
  shutdown(deadlineMs: number): Promise<void>;
  /** The listeners are bound and accepting: false before `listen` and from `shutdown` on (for /readyz). */
  listening(): boolean;
  /** Counters kept natively (read at scrape time, no per-request JavaScript). */
  counters(): NativeCounters;
  /** Responses by Ingress, Service and status class (kept natively, read at scrape time). */
  routeCounters(): RouteCount[];
  /** Client connections open now. */
  openConnections(): number;
}

const MiB = 1024 * 1024;
const bytes = (v: string | Buffer) => (typeof v === "string" ? Buffer.from(v, "utf8") : v);

export function createDataPlane(options: DataPlaneOptions): DataPlane {
  const native = loadNative();
  if (native.snapshotVersion() !== SNAPSHOT_VERSION) {
    throw new Error(`the native data plane reads snapshot version ${native.snapshotVersion()}, this code writes ${SNAPSHOT_VERSION}: rebuild it (npm run build:dataplane)`);
  }
  const plane: NativeDataPlane = new native.DataPlane({
    trustedProxies: [...(options.trustedProxies ?? [])],
    maxBodySize: options.maxBodySize ?? MiB,
    maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
    requestBufferSize: options.requestBufferSize ?? 64 * 1024,
    clientBodyTimeoutMs: options.clientBodyTimeout ?? 60_000,
    underscoresInHeaders: options.underscoresInHeaders ?? false,
    http2MaxConcurrentStreams: options.http2MaxConcurrentStreams ?? 128,
    connectTimeoutMs: options.connectTimeout ?? 5_000,
    readTimeoutMs: options.readTimeout ?? 60_000,
    headersTimeoutMs: options.headersTimeout ?? 60_000,
    requestTimeoutMs: options.requestTimeout ?? 300_000,
    keepAliveTimeoutMs: options.keepAliveTimeout ?? 75_000,
    http2MaxResetsPerSecond: options.http2MaxResetsPerSecond ?? 100,
    accessLog: options.accessLog ?? false,
    upstreamKeepAliveTimeoutMs: options.upstreamKeepAliveTimeout ?? 4_000,
    httpsRedirectPort: options.httpsRedirectPort ?? 443,
    defaultCert: options.defaultCertificate.cert,
    defaultKey: options.defaultCertificate.key,
    tlsSessionResumption: options.tlsSessionResumption ?? true,
  });
  // Log lines reach pino in batches: one native call per interval takes all that were queued.
  const logger = options.logger;
  const drainLogs = () => {
    const { lines, dropped } = plane.drainLogs();
    if (logger === undefined) return;
    for (const line of lines) {
      const { level, msg, ...fields } = JSON.parse(line) as { level: "info" | "warn" | "error"; msg: string };
      logger[level](fields, msg);
    }
    if (dropped > 0) logger.warn({ dropped }, "the data plane's log queue was full; lines were dropped");
  };
  const logTimer = setInterval(drainLogs, options.logInterval ?? 1000);
  logTimer.unref();
  // The objects the current snapshot's indexes stand for.
  let current: TableSnapshot = { snapshot: snapshotFromTable(emptyRouteTable()).snapshot, routes: [], certificates: [] };

  return {
    setTable(table) {
      const next = snapshotFromTable(table);
      const result = plane.setSnapshot(JSON.stringify(next.snapshot));
      if (!result.accepted) throw new InvalidSnapshotError(result.field ?? "", result.message ?? "");
      current = next;
    },
    decide({ host, target, secure = false, hostCount }) {
      const seen = current;
      const outcome = plane.decide(host === null ? null : bytes(host), hostCount ?? (host === null ? 0 : 1), bytes(target), secure);
      // (napi-rs leaves None fields out: undefined, not null)
      return { status: outcome.status ?? null, route: outcome.route == null ? null : (seen.routes[outcome.route] ?? null), location: outcome.location ?? null };
    },
    routeFor(host, path) {
      const seen = current;
      const i = plane.routeFor(host === null ? null : bytes(host), bytes(path));
      return i == null ? null : (seen.routes[i] ?? null);
    },
    certificateFor(serverName) {
      const i = plane.certificateFor(serverName);
      return i == null ? null : (current.certificates[i] ?? null);
    },
    listen({ host = "0.0.0.0", httpPort, httpsPort = null, workers = 1 }) {
      // (napi-rs reads an absent optional field as undefined, never null)
      const ports = plane.listen({ host, httpPort, workers, ...(httpsPort === null ? {} : { httpsPort }) });
      return { httpPort: ports.httpPort, httpsPort: ports.httpsPort ?? null };
    },
    async shutdown(deadlineMs) {
      await plane.shutdown(deadlineMs);
      clearInterval(logTimer);
      drainLogs();
    },
    listening: () => plane.listening(),
    routeCounters: () => plane.routeCounters(),
    openConnections: () => plane.openConnections(),
    counters() {
      const { responses1Xx, responses2Xx, responses3Xx, responses4Xx, responses5Xx, ...rest } = plane.counters();
      return { ...rest, responses1xx: responses1Xx, responses2xx: responses2Xx, responses3xx: responses3Xx, responses4xx: responses4Xx, responses5xx: responses5Xx };
    },
  };
}
