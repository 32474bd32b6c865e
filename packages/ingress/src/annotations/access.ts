// Source address allow and deny lists (security: invalid values refuse).
import type { PolicyReader } from "./read.ts";

/** Reads: allowlist-source-range, whitelist-source-range, denylist-source-range. */
export const readAccess: PolicyReader = (_read) => ({});
