// Custom error pages: upstream error statuses answered by the error backend.
import type { PolicyReader } from "./read.ts";

/** Reads: custom-http-errors (default-backend is compile-level). */
export const readErrors: PolicyReader = (_read) => ({});
