// Response headers: custom-headers (from a ConfigMap, literal values) and HSTS.
import type { PolicyReader } from "./read.ts";

/** Reads: custom-headers, and the hsts global. */
export const readHeaders: PolicyReader = (_read) => ({});
