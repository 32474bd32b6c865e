// Rate and connection limits per client address.
import type { PolicyReader } from "./read.ts";

/** Reads: limit-rps, limit-rpm, limit-burst-multiplier, limit-connections, limit-allowlist. */
export const readLimits: PolicyReader = (_read) => ({});
