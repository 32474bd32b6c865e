// Per-route access logging.
import type { PolicyReader } from "./read.ts";

/** Reads: enable-access-log. */
export const readLogging: PolicyReader = (_read) => ({});
