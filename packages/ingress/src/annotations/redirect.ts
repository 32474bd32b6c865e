// Redirects: ssl-redirect, force-ssl-redirect, preserve-trailing-slash, permanent-/temporal-redirect(-code),
// app-root, from-to-www-redirect.
import { DEFAULT_REDIRECT } from "./policy.ts";
import type { PolicyReader } from "./read.ts";

/** Bollard's own spelling of `ssl-redirect`, from before the ingress-nginx annotations (still honoured). */
export const BOLLARD_SSL_REDIRECT = "bollard.dev/ssl-redirect";

export const readRedirect: PolicyReader = (read) => {
  const globals = read.context.globals;
  const sslRedirect = read.bool("ssl-redirect", globals.sslRedirect);
  const forceSslRedirect = read.bool("force-ssl-redirect", globals.forceSslRedirect);
  if (sslRedirect === DEFAULT_REDIRECT.sslRedirect && forceSslRedirect === DEFAULT_REDIRECT.forceSslRedirect) return {};
  return { redirect: Object.freeze({ ...DEFAULT_REDIRECT, sslRedirect, forceSslRedirect }) };
};
