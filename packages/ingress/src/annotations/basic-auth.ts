// HTTP basic authentication from an htpasswd Secret (security: invalid values refuse).
import type { PolicyReader } from "./read.ts";

/** Reads: auth-type, auth-secret, auth-secret-type, auth-realm. */
export const readBasicAuth: PolicyReader = (_read) => ({});
