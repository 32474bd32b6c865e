// Rewrites of the upstream request: rewrite-target (with regex captures), x-forwarded-prefix, upstream-vhost.
import type { PolicyReader } from "./read.ts";

/** Reads: use-regex (compile-level), rewrite-target, x-forwarded-prefix, upstream-vhost. */
export const readRewrite: PolicyReader = (_read) => ({});
