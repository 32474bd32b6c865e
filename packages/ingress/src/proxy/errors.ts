/** The request body grew past `maxBodySize` while streaming (no Content-Length to check up front). */
export class BodyTooLargeError extends Error {
  override name = "BodyTooLargeError";
  readonly limit: number;
  constructor(limit: number) {
    super(`request body larger than ${limit} bytes`);
    this.limit = limit;
  }
}

// Failures where nothing reached the upstream, so another endpoint may be tried.
const CONNECT_FAILURES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "UND_ERR_CONNECT_TIMEOUT", "ENOTFOUND", "EAI_AGAIN", "EADDRNOTAVAIL"]);

export const errorCode = (err: unknown): string => (err as { code?: unknown })?.code?.toString() ?? "";

export const isConnectFailure = (err: unknown): boolean => CONNECT_FAILURES.has(errorCode(err));

export const isReadTimeout = (err: unknown): boolean => {
  const code = errorCode(err);
  return code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
};

/** The client stopped sending its request body for longer than the client body timeout (→ 408). */
export class BodyTimeoutError extends Error {
  override name = "BodyTimeoutError";
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super(`no request body data for ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}
