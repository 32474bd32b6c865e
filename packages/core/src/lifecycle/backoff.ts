export type BackoffOptions = {
  /** First delay, in milliseconds (default 200). */
  initialMs?: number;
  /** Cap on the delay, in milliseconds (default 10 000). */
  maxMs?: number;
  /** Growth per failure (default 2). */
  factor?: number;
  /** Random source in [0, 1); injectable so tests are deterministic. */
  random?: () => number;
};

export type Backoff = {
  /** Delay before the next retry; grows with each call until `reset()`. */
  next(): number;
  /** Call after a success so the next failure starts from the initial delay again. */
  reset(): void;
  /** Failures since the last reset. */
  readonly attempts: number;
};

/**
 * Exponential backoff with "equal jitter": the delay is uniformly spread over the upper half of
 * the exponential step, so retrying clients spread out but never retry at once.
 */
export function createBackoff(options: BackoffOptions = {}): Backoff {
  const initialMs = options.initialMs ?? 200;
  const maxMs = options.maxMs ?? 10_000;
  const factor = options.factor ?? 2;
  const random = options.random ?? Math.random;
  if (!(initialMs > 0) || !(maxMs >= initialMs) || !(factor >= 1)) {
    throw new RangeError(`invalid backoff: initialMs=${initialMs} maxMs=${maxMs} factor=${factor}`);
  }
  let attempts = 0;
  return {
    next() {
      const step = Math.min(maxMs, initialMs * factor ** attempts);
      attempts++;
      return step / 2 + random() * (step / 2);
    },
    reset() {
      attempts = 0;
    },
    get attempts() {
      return attempts;
    },
  };
}

/**
 * Waits `ms`, or less if `signal` aborts. Never rejects: loops check `signal.aborted` afterwards.
 * Resolves true when the full time elapsed, false when cut short.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
