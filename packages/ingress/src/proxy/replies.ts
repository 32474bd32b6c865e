import type { ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import type { Duplex } from "node:stream";

const TEXT = {
  400: "400 bad request",
  404: "404 page not found",
  408: "408 request timeout",
  413: "413 request entity too large",
  431: "431 request header fields too large",
  500: "500 internal server error",
  501: "501 not implemented",
  502: "502 bad gateway",
  503: "503 service unavailable",
  504: "504 gateway timeout",
  505: "505 http version not supported",
} as const;

export type ReplyStatus = keyof typeof TEXT;

/** A short plain-text answer of the proxy's own. `close` when the request body was not read (HTTP/1.1 only). */
export function reply(res: ServerResponse | Http2ServerResponse, status: ReplyStatus, close = false): void {
  const body = `${TEXT[status]}\n`;
  const headers: Record<string, string | number> = { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body) };
  if (close) headers.connection = "close";
  (res as ServerResponse).writeHead(status, headers).end(body);
}

/** The same on a raw socket (an Upgrade request has no ServerResponse); the connection is closed after. */
export function replyRaw(socket: Duplex, status: ReplyStatus): void {
  const body = `${TEXT[status]}\n`;
  const reason = TEXT[status].slice(4);
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
