import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { realClientAddress, type TrustedProxies, unmapIPv4 } from "./trust.ts";

// RFC 9110 §7.6.1 connection-specific fields, plus ones undici must not be handed (it frames the body and
// handles `expect` itself) and proxy-only ones.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
  "expect",
]);

// Set by us from what we saw; copied from the request only when the peer is a trusted proxy.
const FORWARDED = new Set(["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip", "forwarded"]);

/** What routing and forwarding need from a request's header lines, read in one pass. */
export interface RequestHead {
  /** `Host`, or HTTP/2's `:authority` */
  host: string | undefined;
  /** `Host` header lines (two are refused) */
  hostCount: number;
  /** HTTP/2: a `Host` line that names another authority than `:authority` (refused, RFC 9113 §8.3.1) */
  hostConflict: boolean;
  /** an HTTP/2 request without a `Host` line: upstream (HTTP/1.1) needs one made from `:authority` */
  hostFromAuthority: boolean;
  forwardedFor: string | undefined;
  forwardedProto: string | undefined;
  forwardedHost: string | undefined;
  forwardedPort: string | undefined;
  requestId: string | undefined;
  upgrade: string | undefined;
  contentLength: string | undefined;
  /** a Transfer-Encoding was sent (Node's parser only lets `chunked` last through) */
  chunked: boolean;
  /** the Transfer-Encoding codings, lower-cased, in order (only `chunked` alone is accepted) */
  transferCodings: string[];
  /** lower-cased names listed in `Connection`, which are hop-by-hop too */
  connectionTokens: string[];
}

export function readRequestHead(raw: readonly string[]): RequestHead {
  const head: RequestHead = {
    host: undefined,
    hostCount: 0,
    hostConflict: false,
    hostFromAuthority: false,
    forwardedFor: undefined,
    forwardedProto: undefined,
    forwardedHost: undefined,
    forwardedPort: undefined,
    requestId: undefined,
    upgrade: undefined,
    contentLength: undefined,
    chunked: false,
    transferCodings: [],
    connectionTokens: [],
  };
  let authority: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    switch (name) {
      case "host":
        if (head.hostFromAuthority) {
          head.host = value;
          head.hostFromAuthority = false;
        } else head.host ??= value;
        head.hostCount++;
        break;
      case ":authority":
        authority = value;
        if (head.host === undefined) {
          head.host = value;
          head.hostFromAuthority = true;
        }
        break;
      case "x-forwarded-for":
        head.forwardedFor = head.forwardedFor === undefined ? value : `${head.forwardedFor}, ${value}`;
        break;
      case "x-forwarded-proto":
        head.forwardedProto ??= value;
        break;
      case "x-forwarded-host":
        head.forwardedHost ??= value;
        break;
      case "x-forwarded-port":
        head.forwardedPort ??= value;
        break;
      case "x-request-id":
        head.requestId ??= value;
        break;
      case "upgrade":
        head.upgrade ??= value;
        break;
      case "content-length":
        head.contentLength ??= value;
        break;
      case "transfer-encoding":
        head.chunked = true;
        for (const coding of value.split(",")) head.transferCodings.push(coding.trim().toLowerCase());
        break;
      case "connection":
        for (const token of value.split(",")) {
          const t = token.trim().toLowerCase();
          if (t !== "" && t !== "close" && t !== "keep-alive" && t !== "upgrade") head.connectionTokens.push(t);
        }
        break;
    }
  }
  if (authority !== undefined && head.hostCount > 0 && head.host !== undefined && head.host.toLowerCase() !== authority.toLowerCase()) head.hostConflict = true;
  return head;
}

/** Only `chunked`, alone, frames a request body we forward; other codings are not ours to undo (nginx: 501). */
export const unsupportedTransferCoding = (head: RequestHead): boolean => head.chunked && (head.transferCodings.length !== 1 || head.transferCodings[0] !== "chunked");

/** A header name with `_`: CGI/WSGI back ends read `X_Real_IP` as `X-Real-IP`, so it is dropped unless allowed. */
export const hasUnderscore = (name: string): boolean => name.includes("_");

const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

/** The client's X-Request-ID when it is a sane token, else a new one: the id logs and the upstream both see. */
export const requestIdOf = (head: RequestHead): string => (head.requestId !== undefined && REQUEST_ID.test(head.requestId) ? head.requestId : randomUUID());

// What `Connection: close, Host` must not strip: routing used Host, so the upstream has to see the same one.
const NEVER_CONNECTION_TOKEN = new Set(["host"]);

export interface ForwardContext {
  peer: string;
  secure: boolean;
  localPort: number;
  trusted: TrustedProxies;
  requestId: string;
  /** forward header names containing `_` (nginx: `underscores_in_headers`, off by default) */
  underscoresInHeaders: boolean;
}

/**
 * The header lines sent upstream, as a flat [name, value, …] list: the client's lines minus hop-by-hop and
 * forwarding ones (Host kept as sent), then X-Forwarded-*, X-Real-IP and X-Request-ID. `upgrade` keeps the
 * Connection/Upgrade pair for protocol switches.
 */
export function upstreamHeaders(req: { rawHeaders: string[] }, head: RequestHead, ctx: ForwardContext, upgrade = false): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  const peer = unmapIPv4(ctx.peer);
  const trusted = ctx.trusted.has(peer);
  const dropped = head.connectionTokens;
  if (head.hostFromAuthority && head.host !== undefined) out.push("host", head.host);
  let cookies: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    // HTTP/2 pseudo-headers (`:method`, `:path`, …) are not headers for an HTTP/1.1 upstream.
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || FORWARDED.has(lower) || lower === "x-request-id") continue;
    if (dropped.length > 0 && dropped.includes(lower) && !NEVER_CONNECTION_TOKEN.has(lower)) continue;
    if (!ctx.underscoresInHeaders && hasUnderscore(lower)) continue;
    if (lower === "cookie") {
      // HTTP/2 may split Cookie into several fields; HTTP/1.1 wants one (RFC 9113 §8.2.3).
      if (cookies === null) cookies = [];
      cookies.push(raw[i + 1] as string);
      continue;
    }
    out.push(name, raw[i + 1] as string);
  }
  if (cookies !== null) out.push("cookie", cookies.join("; "));
  if (trusted && head.forwardedFor !== undefined) out.push("x-forwarded-for", `${head.forwardedFor}, ${peer}`);
  else out.push("x-forwarded-for", peer);
  out.push("x-forwarded-proto", (trusted && head.forwardedProto) || (ctx.secure ? "https" : "http"));
  const host = (trusted && head.forwardedHost) || head.host;
  if (host !== undefined) out.push("x-forwarded-host", host);
  out.push("x-forwarded-port", (trusted && head.forwardedPort) || String(ctx.localPort));
  out.push("x-real-ip", realClientAddress(peer, head.forwardedFor, ctx.trusted));
  out.push("x-request-id", ctx.requestId);
  if (upgrade && head.upgrade !== undefined) out.push("connection", "upgrade", "upgrade", head.upgrade);
  return out;
}

/** Response headers without hop-by-hop fields, ready for `writeHead`. */
export function downstreamHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const connection = headers.connection;
  const listed = typeof connection === "string" ? connection.split(",").map((t) => t.trim().toLowerCase()) : [];
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || listed.includes(name)) continue;
    out[name] = headers[name];
  }
  return out;
}
