import { request as httpRequest, type IncomingMessage, type Server, type ServerResponse, createServer as createHttpServer } from "node:http";
import { constants as h2constants, createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import type { Logger } from "@bollard/core";
import { emptyRouteTable } from "../router/compile.ts";
import { matchNormalizedRoute } from "../router/match.ts";
import { normalizePath, requestHost } from "../router/paths.ts";
import type { Backend, Endpoint, Route, RouteTable } from "../router/table.ts";
import { createCertificateStore } from "../tls/contexts.ts";
import type { PemPair } from "../tls/default-certificate.ts";
import { BodyTimeoutError, BodyTooLargeError, errorCode, isConnectFailure, isReadTimeout } from "./errors.ts";
import { downstreamHeaders, type ForwardContext, type RequestHead, readRequestHead, requestIdOf, unsupportedTransferCoding, upstreamHeaders } from "./headers.ts";
import { createPools } from "./pools.ts";
import { type BodyPolicy, readRequestBody } from "./request-body.ts";
import { type ReplyStatus, reply, replyRaw } from "./replies.ts";
import { parseTrustedProxies } from "./trust.ts";

export interface ProxyOptions {
  /** the certificate for TLS clients whose SNI matches nothing (and clients without SNI) */
  defaultCertificate: PemPair;
  /** CIDRs whose X-Forwarded-* headers are believed */
  trustedProxies?: readonly string[];
  /** request body limit in bytes → 413 (default 1 MiB, like ingress-nginx) */
  maxBodySize?: number;
  /**
   * bodies up to this many bytes are read whole before an upstream connection is taken, so slow clients hold
   * no upstream connection (default 64 KiB; 0 streams every body: ingress-nginx's `proxy-request-buffering: off`)
   */
  requestBufferSize?: number;
  /** longest silence between two reads of a request body, ms (default 60 s, nginx's client_body_timeout) → 408 */
  clientBodyTimeout?: number;
  /** forward header names containing `_` (default false: dropped, as nginx's `underscores_in_headers off`) */
  underscoresInHeaders?: boolean;
  /** HTTP/2 streams open at once on one connection (default 128, as nginx); more are refused */
  http2MaxConcurrentStreams?: number;
  /** HTTP/2 streams a client may reset per second on one connection (burst: 10 s worth); past it → GOAWAY */
  http2MaxResetsPerSecond?: number;
  /** request line + headers limit in bytes → 431 (default 16 KiB) */
  maxHeaderSize?: number;
  /** upstream connect timeout, ms (default 5 s) → another endpoint, then 502 */
  connectTimeout?: number;
  /** upstream silence while waiting for headers or body, ms (default 60 s) → 504 */
  readTimeout?: number;
  /** client must send all headers within this, ms (default 60 s) → 408 */
  headersTimeout?: number;
  /** client must send the whole request within this, ms (default 300 s) → 408 */
  requestTimeout?: number;
  /** idle keep-alive client connections are closed after this, ms (default 75 s) */
  keepAliveTimeout?: number;
  /** idle upstream keep-alive connections are closed after this, ms (default 4 s) */
  upstreamKeepAliveTimeout?: number;
  /** the port written into HTTP → HTTPS redirects (default 443, left out of the URL) */
  httpsRedirectPort?: number;
  observer?: ProxyObserver;
  logger?: Logger;
}

/** What the proxy reports, for metrics. */
export interface ProxyObserver {
  requestFinished(e: { route: Route | null; status: number; seconds: number; upstreamSeconds: number | null }): void;
  connectionOpened(): void;
  connectionClosed(): void;
  tableSwapped(): void;
}

export interface ListenOptions {
  host?: string;
  httpPort: number;
  /** null: no HTTPS listener */
  httpsPort: number | null;
  /** SO_REUSEPORT, so that several worker processes share the ports */
  reusePort?: boolean;
}

export interface IngressProxy {
  /** Swaps in a new route table: requests already routed keep theirs; nothing is reopened. */
  setTable(table: RouteTable): void;
  readonly table: RouteTable;
  readonly http: Server;
  /** ALPN h2, with HTTP/1.1 for clients that do not offer h2 (and for WebSocket) */
  readonly https: Http2SecureServer;
  listen(options: ListenOptions): Promise<{ httpPort: number; httpsPort: number | null }>;
  /** Stops accepting, lets requests and upgraded connections finish until the deadline, then cuts them. */
  shutdown(deadlineMs: number): Promise<void>;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/** A request and its response, over HTTP/1.1 or (on the HTTPS listener) HTTP/2. */
type ClientRequest = IncomingMessage | Http2ServerRequest;
type ClientResponse = ServerResponse | Http2ServerResponse;
const MiB = 1024 * 1024;

export function createProxy(options: ProxyOptions): IngressProxy {
  const maxBodySize = options.maxBodySize ?? MiB;
  const connectTimeout = options.connectTimeout ?? 5_000;
  const readTimeout = options.readTimeout ?? 60_000;
  const headersTimeout = options.headersTimeout ?? 60_000;
  const requestTimeout = Math.max(options.requestTimeout ?? 300_000, headersTimeout);
  const redirectPort = options.httpsRedirectPort ?? 443;
  const trusted = parseTrustedProxies(options.trustedProxies ?? []);
  const observer = options.observer;
  const logger = options.logger;
  const bodyPolicy: BodyPolicy = {
    bufferSize: Math.min(options.requestBufferSize ?? 64 * 1024, maxBodySize),
    maxBodySize,
    idleTimeout: options.clientBodyTimeout ?? 60_000,
  };
  const underscoresInHeaders = options.underscoresInHeaders ?? false;
  const resetsPerSecond = options.http2MaxResetsPerSecond ?? 100;
  const pools = createPools({ connectTimeout, readTimeout, keepAliveTimeout: options.upstreamKeepAliveTimeout ?? 4_000, connections: null });
  const certificates = createCertificateStore(options.defaultCertificate);
  const roundRobin = new WeakMap<Backend, number>();

  let current = emptyRouteTable();
  let closing = false;
  let inFlight = 0;
  const upgraded = new Set<Duplex>();
  const sessions = new Set<ServerHttp2Session>();
  const tlsSockets = new Set<Socket>();

  const serverOptions = {
    maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: options.keepAliveTimeout ?? 75_000,
    // How often Node looks for connections past headersTimeout/requestTimeout.
    connectionsCheckingInterval: Math.min(30_000, Math.max(10, Math.floor(headersTimeout / 4))),
  };
  const http = createHttpServer(serverOptions, (req, res) => guardRequest(req, res, false));
  // node:http2 hands connections that do not negotiate h2 to node:http's own connection handling, so HTTP/1.1
  // clients meet the same code (measured: no HTTP/1.1 throughput cost, see README).
  const https = createSecureServer(
    {
      ...serverOptions,
      allowHTTP1: true,
      // node:https turns Nagle off by default; node:http2 does not.
      noDelay: true,
      settings: { maxHeaderListSize: serverOptions.maxHeaderSize, maxConcurrentStreams: options.http2MaxConcurrentStreams ?? 128 },
      cert: options.defaultCertificate.cert,
      key: options.defaultCertificate.key,
      SNICallback: (name, done) => {
        try {
          done(null, certificates.forServerName(current, name));
        } catch (err) {
          done(err as Error, undefined);
        }
      },
    },
    (req: ClientRequest, res: ClientResponse) => guardRequest(req, res, true),
  );
  http.on("clientError", answerClientError);
  https.on("clientError", answerClientError);
  http.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => guardUpgrade(req, socket, head, false));
  https.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => guardUpgrade(req, socket, head, true));
  const countConnection = (socket: Socket) => {
    observer?.connectionOpened();
    socket.once("close", () => observer?.connectionClosed());
  };
  http.on("connection", countConnection);
  https.on("secureConnection", (socket: Socket) => {
    countConnection(socket);
    tlsSockets.add(socket);
    socket.once("close", () => tlsSockets.delete(socket));
  });
  https.on("session", (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    // An idle HTTP/2 connection is closed like an idle keep-alive one (GOAWAY: open streams still finish).
    session.setTimeout(serverOptions.keepAliveTimeout, () => session.close());
    if (closing) session.close();
    limitResets(session);
  });

  /**
   * Rapid reset (CVE-2023-44487): a client that opens and resets streams faster than the budget is sent GOAWAY
   * (ENHANCE_YOUR_CALM) and cut off, so resets cannot make us dispatch upstream requests without end.
   */
  function limitResets(session: ServerHttp2Session): void {
    const burst = resetsPerSecond * 10;
    let tokens = burst;
    let last = performance.now();
    session.on("stream", (stream) => {
      stream.once("aborted", () => {
        const now = performance.now();
        tokens = Math.min(burst, tokens + ((now - last) / 1000) * resetsPerSecond);
        last = now;
        if (--tokens >= 0 || session.destroyed) return;
        logger?.warn({ peer: session.socket?.remoteAddress, resetsPerSecond }, "HTTP/2 client reset streams past its budget; closing the connection");
        session.destroy(new Error("HTTP/2 stream reset budget exceeded"), h2constants.NGHTTP2_ENHANCE_YOUR_CALM);
      });
    });
  }

  /**
   * One request's handling must never end the process: an unexpected exception ends that request (500, or a cut
   * connection once the answer has begun) and is logged with the request id.
   */
  function guardRequest(req: ClientRequest, res: ClientResponse, secure: boolean): void {
    try {
      handleRequest(req, res, secure);
    } catch (err) {
      failInternally(err, req, () => {
        if (res.headersSent) res.destroy();
        else reply(res, 500, req.httpVersionMajor !== 2);
      });
    }
  }

  function guardUpgrade(req: IncomingMessage, socket: Duplex, early: Buffer, secure: boolean): void {
    try {
      handleUpgrade(req, socket, early, secure);
    } catch (err) {
      failInternally(err, req, () => (socket.writable ? replyRaw(socket, 500) : socket.destroy()));
    }
  }

  function failInternally(err: unknown, req: ClientRequest, answer: () => void): void {
    logger?.error({ err, requestId: requestIdOf(readRequestHead(req.rawHeaders)), method: req.method, url: req.url }, "request failed inside the proxy");
    try {
      answer();
    } catch {
      req.socket?.destroy();
    }
  }

  function nextEndpoint(backend: Backend): Endpoint {
    const n = roundRobin.get(backend) ?? 0;
    roundRobin.set(backend, n + 1);
    return backend.endpoints[n % backend.endpoints.length] as Endpoint;
  }

  /** Routes a request or says why not: the route, or the status to answer with. */
  function route(table: RouteTable, req: ClientRequest, head: RequestHead, h2: boolean): Route | ReplyStatus {
    // Node's HTTP/1 parser reads any `HTTP/x.y`; only 1.0 and 1.1 are HTTP/1 (HTTP/2 arrives through ALPN).
    if (!h2 && (req.httpVersionMajor !== 1 || req.httpVersionMinor > 1)) return 505;
    if (head.hostCount > 1 || head.hostConflict) return 400;
    if (head.chunked && !h2) {
      if (req.httpVersionMinor === 0) return 400; // HTTP/1.0 has no chunked coding
      if (unsupportedTransferCoding(head)) return 501;
    }
    const url = req.url ?? "";
    // origin-form only: absolute-form is for forward proxies, and `*` has no route
    if (url.charCodeAt(0) !== 47 /* / */) return 400;
    const q = url.indexOf("?");
    // Matched on the normalised path (a broken one is 400, as nginx answers); forwarded exactly as sent.
    const path = normalizePath(q < 0 ? url : url.slice(0, q));
    if (path === null) return 400;
    return matchNormalizedRoute(table, head.host, path) ?? 404;
  }

  function handleRequest(req: ClientRequest, res: ClientResponse, secure: boolean): void {
    const table = current; // this request's table, whatever is swapped in meanwhile
    const started = performance.now();
    // HTTP/2 forbids connection-specific headers (a `connection: close` would fail the response): a stream ends
    // by itself, and shutting down sends GOAWAY instead. Only node:http2 requests have a stream: an HTTP/1
    // request line may say `HTTP/2.0` too.
    const h2 = (req as Http2ServerRequest).stream !== undefined;
    const head = readRequestHead(req.rawHeaders);
    const routed = route(table, req, head, h2);
    const found = typeof routed === "number" ? null : routed;
    let upstreamSeconds: number | null = null;
    inFlight++;
    // Whether we ended the answer: `finish` and `writableFinished` cannot tell, as node:http2's compat response
    // reports both for a stream the client reset before any answer.
    const answered = () => res.writableEnded;
    res.once("close", () => {
      inFlight--;
      const status = answered() ? res.statusCode : 499;
      observer?.requestFinished({ route: found, status, seconds: (performance.now() - started) / 1000, upstreamSeconds });
    });
    if (closing && !h2) res.setHeader("connection", "close");
    // The proxy's own answer, before the request body was read: HTTP/1.1 closes the connection after it; HTTP/2
    // resets just this stream with NO_ERROR once the answer is out, so the client stops sending (RFC 9113 §8.1).
    const answer = (status: ReplyStatus, bodyUnread: boolean) => {
      reply(res, status, bodyUnread && !h2);
      // (node:http2 sends a NO_ERROR reset only after the ended response has gone out)
      if (bodyUnread && h2) (res as Http2ServerResponse).stream.close(h2constants.NGHTTP2_NO_ERROR);
    };
    if (typeof routed === "number") {
      answer(routed, true);
      return;
    }
    if (!secure && routed.sslRedirect && head.host !== undefined) {
      const port = redirectPort === 443 ? "" : `:${redirectPort}`;
      (res as ServerResponse).writeHead(308, { location: `https://${requestHost(head.host)}${port}${req.url}`, "content-length": 0, connection: "close" }).end();
      return;
    }
    const backend = routed.backend;
    if (backend.endpoints.length === 0) {
      answer(503, true);
      return;
    }
    if (head.contentLength !== undefined && Number(head.contentLength) > maxBodySize) {
      answer(413, true);
      return;
    }
    // HTTP/2 frames bodies itself: a request has one unless its headers ended the stream.
    const hasBody = head.contentLength !== undefined ? head.contentLength !== "0" : h2 ? !(req as Http2ServerRequest).stream.endAfterHeaders : head.chunked;
    const method = req.method ?? "GET";
    const requestId = requestIdOf(head);
    const ctx: ForwardContext = { peer: req.socket.remoteAddress ?? "", secure, localPort: req.socket.localPort ?? 0, trusted, requestId, underscoresInHeaders };
    const headers = upstreamHeaders(req, head, ctx);
    const abort = new AbortController();
    const clientGone = () => {
      if (!answered()) abort.abort(new Error("client went away"));
    };
    // (also a reset HTTP/2 stream: its upstream request is freed at once, even while its body is expected)
    res.once("close", clientGone);
    const retryable = !hasBody && IDEMPOTENT.has(method) && backend.endpoints.length > 1;
    const failed = (err: unknown, endpoint: Endpoint | null, upstreamStarted: number) => {
      if (abort.signal.aborted) return; // the client left
      if (upstreamSeconds === null && endpoint !== null) upstreamSeconds = (performance.now() - upstreamStarted) / 1000;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof BodyTooLargeError) return answer(413, true);
      if (err instanceof BodyTimeoutError) return answer(408, true);
      const status = isReadTimeout(err) ? 504 : 502;
      logger?.warn({ code: errorCode(err), message: (err as Error).message, endpoint, ingress: routed.ingress, service: backend.service, requestId }, "upstream request failed");
      answer(status, hasBody);
    };

    const attempt = (body: Buffer | AsyncIterable<Buffer> | null, tries: number): void => {
      const endpoint = nextEndpoint(backend);
      const upstreamStarted = performance.now();
      pools
        .get(endpoint)
        .stream({ path: req.url ?? "/", method: method as "GET", headers, body: body as Buffer, signal: abort.signal, opaque: res }, ({ statusCode, headers: upstream }) => {
          upstreamSeconds = (performance.now() - upstreamStarted) / 1000;
          const out = downstreamHeaders(upstream);
          if (closing && !h2) out.connection = "close";
          (res as ServerResponse).writeHead(statusCode, out);
          return res as ServerResponse;
        })
        .catch((err: unknown) => {
          if (!abort.signal.aborted && isConnectFailure(err) && retryable && tries < 2) {
            logger?.debug({ err, endpoint, ingress: routed.ingress, requestId }, "upstream connect failed; trying another endpoint");
            return attempt(body, tries + 1);
          }
          failed(err, endpoint, upstreamStarted);
        })
        .catch((err: unknown) => failInternally(err, req, () => res.destroy()));
    };
    if (!hasBody) {
      attempt(null, 1);
      return;
    }
    const declared = head.contentLength === undefined ? undefined : Number(head.contentLength);
    readRequestBody(req as AsyncIterable<Buffer>, declared, bodyPolicy, abort.signal).then(
      (body) => attempt(body, 1),
      (err: unknown) => failed(err, null, 0),
    );
  }

  function handleUpgrade(req: IncomingMessage, socket: Duplex, early: Buffer, secure: boolean): void {
    const table = current;
    const head = readRequestHead(req.rawHeaders);
    let routed = route(table, req, head, false);
    // The bytes after an Upgrade request's head belong to the new protocol, so a declared body cannot be told
    // apart from them: forwarding it would let a client smuggle a request onto the upstream connection.
    if (typeof routed !== "number" && ((head.contentLength !== undefined && head.contentLength !== "0") || head.chunked)) routed = 400;
    const started = performance.now();
    let status = 0;
    const finish = () => observer?.requestFinished({ route: typeof routed === "number" ? null : routed, status, seconds: (performance.now() - started) / 1000, upstreamSeconds: null });
    socket.on("error", () => socket.destroy());
    const fail = (s: ReplyStatus) => {
      status = s;
      replyRaw(socket, s);
      finish();
    };
    if (typeof routed === "number") {
      fail(routed);
      return;
    }
    if (routed.backend.endpoints.length === 0) {
      fail(503);
      return;
    }
    const endpoint = nextEndpoint(routed.backend);
    const ctx: ForwardContext = { peer: req.socket.remoteAddress ?? "", secure, localPort: req.socket.localPort ?? 0, trusted, requestId: requestIdOf(head), underscoresInHeaders };
    const upstream = httpRequest({
      // A connection of its own, never reused: after the switch it belongs to this client alone.
      agent: false,
      host: endpoint.host,
      port: endpoint.port,
      method: req.method,
      path: req.url,
      headers: upstreamHeaders(req, head, ctx, true),
      setHost: false,
      timeout: connectTimeout,
    });
    upstream.once("timeout", () => {
      // Still connecting: the endpoint never answered (502); connected: it did not answer the request (504).
      const code = upstream.socket?.connecting === false ? "UND_ERR_HEADERS_TIMEOUT" : "UND_ERR_CONNECT_TIMEOUT";
      upstream.destroy(Object.assign(new Error("upstream timed out"), { code }));
    });
    upstream.once("error", (err) => {
      if (status !== 0) return;
      logger?.warn({ code: errorCode(err), endpoint, ingress: routed.ingress }, "upstream upgrade failed");
      fail(isReadTimeout(err) ? 504 : 502);
    });
    upstream.once("upgrade", (res: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
      status = res.statusCode ?? 101;
      upSocket.setTimeout(0);
      socket.write(rawHead(res));
      if (upHead.length > 0) socket.write(upHead);
      // Bytes the client sent right after its request head belong to the switched protocol.
      if (early.length > 0) upSocket.write(early);
      upgraded.add(socket);
      const done = () => {
        upgraded.delete(socket);
        socket.destroy();
        upSocket.destroy();
      };
      socket.once("close", done);
      upSocket.once("close", done);
      upSocket.on("error", done);
      upSocket.pipe(socket);
      socket.pipe(upSocket);
      finish();
    });
    upstream.once("response", (res: IncomingMessage) => {
      // The upstream declined to switch: relay its answer and close.
      status = res.statusCode ?? 502;
      socket.write(rawHead(res, true));
      res.pipe(socket);
      finish();
    });
    upstream.end();
  }

  return {
    setTable(table) {
      const fallbackChanged = table.certificates.fallback?.id !== current.certificates.fallback?.id;
      current = table;
      pools.retain(table);
      certificates.retain(table);
      if (fallbackChanged) https.setSecureContext(certificates.fallback(table));
      observer?.tableSwapped();
    },
    get table() {
      return current;
    },
    http,
    https,
    async listen(opts) {
      const listen = (server: Server | Http2SecureServer, port: number) =>
        new Promise<number>((resolve, reject) => {
          server.once("error", reject);
          server.listen({ port, host: opts.host, reusePort: opts.reusePort ?? false, exclusive: true }, () => {
            server.off("error", reject);
            resolve((server.address() as AddressInfo).port);
          });
        });
      const httpPort = await listen(http, opts.httpPort);
      const httpsPort = opts.httpsPort === null ? null : await listen(https, opts.httpsPort);
      return { httpPort, httpsPort };
    },
    async shutdown(deadlineMs) {
      closing = true;
      const stopped = Promise.all([http, https].map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
      const deadline = performance.now() + deadlineMs;
      // HTTP/2 connections get GOAWAY: their open streams finish, no new ones start.
      for (const session of sessions) session.close();
      while ((inFlight > 0 || upgraded.size > 0) && performance.now() < deadline) {
        http.closeIdleConnections();
        // node:http2 keeps node:http's connection tracking for its HTTP/1.1 connections (not in its types).
        (https as unknown as Server).closeIdleConnections();
        await new Promise((r) => setTimeout(r, 25));
      }
      http.closeAllConnections();
      for (const session of sessions) session.destroy();
      for (const socket of tlsSockets) socket.destroy();
      for (const socket of upgraded) socket.destroy();
      await stopped;
      await pools.close();
    },
  };
}

/**
 * What Node's HTTP/1 parser could not take. Node's own answer is 400 for all but oversized heads and timeouts;
 * a version it cannot speak is 505 (as nginx answers).
 */
function answerClientError(err: Error & { code?: string }, socket: Duplex & { _httpMessage?: { headersSent?: boolean } }): void {
  const status = err.code === "HPE_INVALID_VERSION" ? 505 : err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
  // Only when no answer has begun on this connection: a half-written response must not get a second one.
  if (socket.writable && socket._httpMessage?.headersSent !== true) replyRaw(socket, status);
  else socket.destroy(err);
}

/** The status line and header lines of an upstream response, for writing onto a raw client socket. */
function rawHead(res: IncomingMessage, close = false): string {
  let out = `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ""}\r\n`;
  const raw = res.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (close && (name === "connection" || name === "keep-alive" || name === "transfer-encoding")) continue;
    out += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  if (close) out += "connection: close\r\n";
  return `${out}\r\n`;
}
