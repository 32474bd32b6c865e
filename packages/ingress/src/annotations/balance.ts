// Which endpoint serves: cookie affinity and consistent hashing.
import type { PolicyReader } from "./read.ts";

/** Reads: affinity, affinity-mode, session-cookie-*, upstream-hash-by. */
export const readBalance: PolicyReader = (_read) => ({});
