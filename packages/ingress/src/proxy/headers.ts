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
  /** lower-cased names listed in `Connection`, which are hop-by-hop too */
  connectionTokens: string[];
}

export function readRequestHead(raw: readonly string[]): RequestHead {
  const head: RequestHead = {
    host: undefined,
    hostCount: 0,
    hostFromAuthority: false,
    forwardedFor: undefined,
    forwardedProto: undefined,
    forwardedHost: undefined,
    forwardedPort: undefined,
    requestId: undefined,
    upgrade: undefined,
    contentLength: undefined,
    chunked: false,
    connectionTokens: [],
  };
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
        break;
      case "connection":
        for (const token of value.split(",")) {
          const t = token.trim().toLowerCase();
          if (t !== "" && t !== "close" && t !== "keep-alive" && t !== "upgrade") head.connectionTokens.push(t);
        }
        break;
    }
  }
  return head;
}

const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

export interface ForwardContext {
  peer: string;
  secure: boolean;
  localPort: number;
  trusted: TrustedProxies;
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
    if (dropped.length > 0 && dropped.includes(lower)) continue;
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
  out.push("x-request-id", head.requestId !== undefined && REQUEST_ID.test(head.requestId) ? head.requestId : randomUUID());
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
