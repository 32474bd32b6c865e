import type { Agent, IncomingMessage } from "node:http";
import type { RequestOptions } from "node:https";
import { createInterface } from "node:readline";
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeConfigError } from "./config.ts";

// Not `import http from "node:http"`: Node 24's ES module of node:http reads every export of the CommonJS one, and
// so its lazy WebSocket, CloseEvent and MessageEvent, which load Node's own undici (~3 MiB of RSS in every process)
// for nothing Bollard uses. (The same in ../health/server.ts; client-node's import is answered in ./config.ts.)
const http = process.getBuiltinModule("node:http");
const https = process.getBuiltinModule("node:https");

/** The API server answered with an error status; `reason` is the Status object's (e.g. "Expired"). */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  readonly status: number;
  readonly method: string;
  readonly path: string;
  readonly reason: string | undefined;
  constructor(method: string, path: string, status: number, reason: string | undefined, message: string) {
    super(`${method} ${path}: ${status}${reason ? ` ${reason}` : ""}: ${message}`);
    this.method = method;
    this.path = path;
    this.status = status;
    this.reason = reason;
  }
}

/** No answer from the API server: connection refused or reset, timeout, or our own abort. */
export class KubeRequestError extends Error {
  override name = "KubeRequestError";
  readonly method: string;
  readonly path: string;
  constructor(method: string, path: string, cause: unknown) {
    super(`${method} ${path}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.method = method;
    this.path = path;
  }
}

export function isGone(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 410;
}

export function isStatus(error: unknown, status: number): boolean {
  return error instanceof KubeApiError && error.status === status;
}

/** Connections to one API server for ordinary requests: more requests than this wait for a free one. */
export const MAX_REQUEST_CONNECTIONS = 32;
/**
 * We close an idle connection after this long ourselves, so that a new request seldom meets a
 * connection the server is just closing for being idle.
 */
const IDLE_CONNECTION_MS = 30_000;

/**
 * The connections of one KubeConfig: kept-alive ones for requests, so a request does not pay a
 * TLS handshake; separate ones for watches, which hold a connection each for minutes and so
 * must never take the places of requests; and one kept-alive connection for Lease renewals, so a
 * burst of other writes (Events, statuses) can never queue a renewal behind it and cost the lease.
 */
export type KubeAgents = { requests: Agent; watches: Agent; leases: Agent };

const agentsByConfig = new WeakMap<KubeConfig, KubeAgents>();

export function kubeAgents(kubeConfig: KubeConfig): KubeAgents {
  let agents = agentsByConfig.get(kubeConfig);
  if (agents === undefined) {
    const Agent = kubeConfig.getCurrentCluster()?.server.startsWith("http:") ? http.Agent : https.Agent;
    agents = {
      requests: new Agent({
        keepAlive: true,
        maxSockets: MAX_REQUEST_CONNECTIONS,
        maxFreeSockets: MAX_REQUEST_CONNECTIONS,
        timeout: IDLE_CONNECTION_MS,
        // The most recently used connection first: a quiet period lets the others time out.
        scheduling: "lifo",
      }),
      watches: new Agent({ keepAlive: false }),
      leases: new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, timeout: IDLE_CONNECTION_MS }),
    };
    agentsByConfig.set(kubeConfig, agents);
  }
  return agents;
}

export type KubeRequest = {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** URL path from the API root, e.g. /apis/coordination.k8s.io/v1/namespaces/x/leases/y. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Defaults to application/json; PATCH callers name their patch type. */
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Which connections carry it: "requests" (default) or "leases", a connection of its own for leader election. */
  connection?: "requests" | "leases";
};

/**
 * One JSON request to the API server, authenticated and TLS-configured from the KubeConfig
 * (client certificates, bearer tokens, exec plugins — whatever client-node supports).
 */
export async function kubeRequest<T>(kubeConfig: KubeConfig, request: KubeRequest): Promise<T> {
  const method = request.method ?? "GET";
  const signal = withTimeout(request.signal, request.timeoutMs ?? 30_000);
  const body = request.body === undefined ? undefined : JSON.stringify(request.body);
  // content-length always: Node sends a DELETE's body (preconditions) neither chunked nor with a length, so the
  // API server would read it as the start of the next request on the kept-alive connection (a 400).
  const headers: Record<string, string> = body === undefined ? {} : { "content-type": request.contentType ?? "application/json", "content-length": String(Buffer.byteLength(body)) };
  const res = await open(kubeConfig, method, request.path, request.query, headers, body, signal, request.connection ?? "requests");
  let text: string;
  try {
    text = await readAll(res);
  } catch (error) {
    throw new KubeRequestError(method, request.path, error);
  }
  if (res.statusCode === undefined || res.statusCode >= 300) throw statusError(method, request.path, res.statusCode ?? 0, text);
  return (text === "" ? undefined : JSON.parse(text)) as T;
}

export type WatchLine = { type: string; object: unknown };

/**
 * Streams a watch: calls `onEvent` for each event line until the server ends the stream
 * (resolves) or the connection fails (rejects). If nothing arrives for `idleTimeoutMs` the
 * connection is presumed dead and dropped, so a vanished API server cannot hang the caller.
 */
export async function kubeWatch(
  kubeConfig: KubeConfig,
  request: { path: string; query: Record<string, string | number | boolean | undefined>; signal: AbortSignal; idleTimeoutMs: number },
  onEvent: (event: WatchLine) => void,
): Promise<void> {
  const query = { ...request.query, watch: true };
  const res = await open(kubeConfig, "GET", request.path, query, {}, undefined, request.signal, "watches");
  if (res.statusCode !== 200) {
    throw statusError("GET", request.path, res.statusCode ?? 0, await readAll(res).catch(() => ""));
  }
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (error?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      lines.close();
      res.destroy();
      if (error === undefined) resolve();
      else reject(error instanceof KubeApiError ? error : new KubeRequestError("GET", request.path, error));
    };
    let idle = setTimeout(() => finish(new Error("watch idle timeout")), request.idleTimeoutMs);
    const lines = createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY });
    lines.on("line", (line) => {
      if (settled || line.trim() === "") return;
      clearTimeout(idle);
      idle = setTimeout(() => finish(new Error("watch idle timeout")), request.idleTimeoutMs);
      let event: WatchLine;
      try {
        event = JSON.parse(line) as WatchLine;
      } catch {
        finish(new Error(`malformed watch event: ${line.slice(0, 200)}`));
        return;
      }
      try {
        onEvent(event);
      } catch (error) {
        finish(error);
      }
    });
    res.on("error", finish);
    res.on("aborted", () => finish(new Error("watch connection aborted")));
    res.on("end", () => finish());
    res.on("close", () => finish(res.complete ? undefined : new Error("watch connection closed")));
  });
}

function statusError(method: string, path: string, status: number, text: string): KubeApiError {
  let reason: string | undefined;
  let message = text.slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { reason?: string; message?: string };
    reason = parsed.reason;
    message = parsed.message ?? message;
  } catch {
    // not a Status object (e.g. a proxy's HTML page): keep the raw text
  }
  return new KubeApiError(method, path, status, reason, message);
}

async function open(
  kubeConfig: KubeConfig,
  method: string,
  path: string,
  query: Record<string, string | number | boolean | undefined> | undefined,
  headers: Record<string, string>,
  body: string | undefined,
  signal: AbortSignal | undefined,
  use: keyof KubeAgents,
): Promise<IncomingMessage> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new KubeConfigError("kubeconfig has no current cluster");
  const url = new URL(cluster.server.replace(/\/+$/, "") + path);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  // Authentication is applied afresh on every request (exec plugins and token files refresh it);
  // only the connection is reused. The TLS settings stay in the request options: Node's agent
  // pools connections by them, so a rotated client certificate or CA gets a connection of its own.
  const options: RequestOptions = { method, headers: { accept: "application/json", ...headers } };
  await kubeConfig.applyToHTTPSOptions(options);
  const plain = url.protocol === "http:";
  // A proxy agent from client-node is kept as it is; otherwise client-node's agent (one per
  // cluster and user, without keep-alive) gives way to ours.
  if (cluster.proxyUrl === undefined || cluster.proxyUrl === "") options.agent = kubeAgents(kubeConfig)[use];
  return new Promise((resolve, reject) => {
    const req = (plain ? http : https).request(url, { ...options, ...(signal ? { signal } : {}) }, resolve);
    req.on("error", (error) => reject(new KubeRequestError(method, path, error)));
    req.end(body);
  });
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (chunk: Buffer) => chunks.push(chunk));
    res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.on("error", reject);
    res.on("aborted", () => reject(new Error("response aborted")));
  });
}

function withTimeout(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(Math.max(1, Math.ceil(timeoutMs)));
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}
