// Loads the N-API module that scripts/build-native.ts builds from native/ (never a downloaded binary).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

export const nativeModulePath = join(import.meta.dirname, "..", "build", "dataplane.node");

/** The data plane's native module is not built. */
export class DataPlaneNotBuiltError extends Error {
  override name = "DataPlaneNotBuiltError";
  readonly path: string;
  constructor(path: string) {
    super(`the native data plane is not built (${path} is missing): run \`npm run build:dataplane\``);
    this.path = path;
  }
}

/** (napi-rs leaves out fields that are None, so "absent" reads as undefined) */
export interface NativeOutcome {
  status?: number;
  route?: number;
  location?: string;
}

/** The counters as napi-rs names them (`responses_2xx` → `responses2Xx`). */
export interface RawCounters extends Omit<NativeCounters, "responses1xx" | "responses2xx" | "responses3xx" | "responses4xx" | "responses5xx"> {
  responses1Xx: number;
  responses2Xx: number;
  responses3Xx: number;
  responses4Xx: number;
  responses5Xx: number;
}

/** Responses of one Ingress (`namespace/name`) and Service by status class (1xx … 5xx); "" for no route. */
export interface RouteCount {
  ingress: string;
  service: string;
  responses: number[];
  /** requests whose client went away before the answer ended (499) */
  clientGone: number;
  /** request durations: counts per bucket (DURATION_BUCKETS, then +Inf), not cumulative; sum in seconds */
  durationCounts: number[];
  durationSum: number;
  /** from sending upstream to the response head, the same way */
  upstreamCounts: number[];
  upstreamSum: number;
}

export interface NativeCounters {
  requests: number;
  responses1xx: number;
  responses2xx: number;
  responses3xx: number;
  responses4xx: number;
  responses5xx: number;
  localResponses: number;
  upstreamRetries: number;
  upstreamErrors: number;
  upstreamTimeouts: number;
  clientGone: number;
  connectionsOpened: number;
  connectionsClosed: number;
  tableSwaps: number;
  snapshotsRefused: number;
}

export interface NativeDataPlane {
  setSnapshot(json: string): { accepted: boolean; field?: string; message?: string };
  decide(host: Buffer | null, hostCount: number, target: Buffer, secure: boolean): NativeOutcome;
  routeFor(host: Buffer | null, path: Buffer): number | null | undefined;
  certificateFor(serverName: string | null): number | null | undefined;
  listen(options: { host: string; httpPort: number; httpsPort?: number; workers: number }): { httpPort: number; httpsPort?: number };
  shutdown(deadlineMs: number): Promise<void>;
  listening(): boolean;
  counters(): RawCounters;
  routeCounters(): RouteCount[];
  openConnections(): number;
  drainLogs(): { lines: string[]; dropped: number };
}

export interface NativeModule {
  DataPlane: new (options: {
    trustedProxies: string[];
    maxBodySize: number;
    maxHeaderSize: number;
    requestBufferSize: number;
    clientBodyTimeoutMs: number;
    underscoresInHeaders: boolean;
    http2MaxConcurrentStreams: number;
    connectTimeoutMs: number;
    readTimeoutMs: number;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    http2MaxResetsPerSecond: number;
    accessLog: boolean;
    upstreamKeepAliveTimeoutMs: number;
    httpsRedirectPort: number;
    defaultCert: string;
    defaultKey: string;
    tlsSessionResumption?: boolean;
  }) => NativeDataPlane;
  normalizePath(path: Buffer): Buffer | null | undefined;
  snapshotVersion(): number;
}

let loaded: NativeModule | undefined;

export function loadNative(): NativeModule {
  if (loaded === undefined) {
    if (!existsSync(nativeModulePath)) throw new DataPlaneNotBuiltError(nativeModulePath);
    loaded = createRequire(import.meta.url)(nativeModulePath) as NativeModule;
  }
  return loaded;
}
