// Client certificate authentication (security: invalid values refuse).
import type { PolicyReader } from "./read.ts";

/** Reads: auth-tls-*. */
export const readClientTls: PolicyReader = (_read) => ({});
