import { BodyTimeoutError, BodyTooLargeError } from "./errors.ts";

export interface BodyPolicy {
  /** bodies up to this many bytes are read whole before an upstream connection is taken; 0: never */
  bufferSize: number;
  /** request body limit, in bytes (→ 413) */
  maxBodySize: number;
  /** longest silence between two reads of the body, ms (→ 408) */
  idleTimeout: number;
}

/**
 * The request body to send upstream. A body that fits `bufferSize` is read whole first, so a slow client holds
 * only its own connection, never an upstream one (nginx's `proxy_request_buffering`); a larger one is streamed,
 * starting with what was read. Either way the size limit and the idle timeout apply to every byte, and a client
 * that goes away (`signal`) ends the read.
 */
export async function readRequestBody(
  body: AsyncIterable<Buffer>,
  declaredLength: number | undefined,
  policy: BodyPolicy,
  signal: AbortSignal,
): Promise<Buffer | AsyncIterable<Buffer>> {
  // One iterator for both phases: breaking out of a for-await would destroy the request.
  const it = body[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let seen = 0;
  const take = (chunk: Buffer): Buffer => {
    seen += chunk.length;
    if (seen > policy.maxBodySize) throw new BodyTooLargeError(policy.maxBodySize);
    return chunk;
  };
  if (policy.bufferSize > 0 && (declaredLength === undefined || declaredLength <= policy.bufferSize)) {
    for (;;) {
      const next = await nextWithin(it, policy.idleTimeout, signal);
      if (next.done) return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, seen);
      chunks.push(take(next.value));
      if (seen > policy.bufferSize) break;
    }
  }
  return (async function* () {
    yield* chunks;
    for (;;) {
      const next = await nextWithin(it, policy.idleTimeout, signal);
      if (next.done) return;
      yield take(next.value);
    }
  })();
}

/** The iterator's next chunk, or BodyTimeoutError after `ms` of silence, or the abort reason. */
function nextWithin(it: AsyncIterator<Buffer>, ms: number, signal: AbortSignal): Promise<IteratorResult<Buffer>> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(() => reject(new BodyTimeoutError(ms))), ms);
    const onAbort = () => done(() => reject(signal.reason));
    const done = (settle: () => void) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      settle();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    it.next().then(
      (r) => done(() => resolve(r)),
      (err: unknown) => done(() => reject(err)),
    );
  });
}
