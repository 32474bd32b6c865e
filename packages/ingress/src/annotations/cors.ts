// CORS: preflight answers and response headers.
import type { PolicyReader } from "./read.ts";

/** Reads: enable-cors, cors-*. */
export const readCors: PolicyReader = (_read) => ({});
