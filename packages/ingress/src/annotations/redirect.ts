// Redirects: ssl-redirect, force-ssl-redirect, preserve-trailing-slash, permanent-/temporal-redirect(-code),
// app-root, from-to-www-redirect; and server-alias, which the compiler applies (hosts are its business).
import { isValidRuleHost } from "../router/paths.ts";
import { DEFAULT_REDIRECT, type RedirectPolicy } from "./policy.ts";
import type { AnnotationReader, PolicyReader } from "./read.ts";
import { isTemplateError, parseTemplate } from "./template.ts";

/** Bollard's own spelling of `ssl-redirect`, from before the ingress-nginx annotations (still honoured). */
export const BOLLARD_SSL_REDIRECT = "bollard.dev/ssl-redirect";

export const readRedirect: PolicyReader = (read) => {
  const globals = read.context.globals;
  const redirect: RedirectPolicy = {
    sslRedirect: read.bool("ssl-redirect", globals.sslRedirect),
    forceSslRedirect: read.bool("force-ssl-redirect", globals.forceSslRedirect),
    preserveTrailingSlash: read.bool("preserve-trailing-slash", false),
    to: readTo(read),
    appRoot: readAppRoot(read),
    fromToWww: read.bool("from-to-www-redirect", false),
  };
  const alias = read.value("server-alias");
  if (alias !== undefined) {
    const { invalid } = parseServerAliases(alias);
    if (invalid.length > 0) read.invalid("server-alias", `${invalid.map((h) => `"${h}"`).join(", ")} ${invalid.length === 1 ? "is not a DNS name" : "are not DNS names"} (wildcards are not served as aliases); the other names are served`);
  }
  const same = (Object.keys(redirect) as (keyof RedirectPolicy)[]).every((k) => redirect[k] === DEFAULT_REDIRECT[k]);
  return same ? {} : { redirect: Object.freeze(redirect) };
};

/**
 * `temporal-redirect` wins over `permanent-redirect` when both are set (as in ingress-nginx); the codes default to
 * 302 and 301, and ingress-nginx's ranges apply (300–307 temporal, 300–308 permanent).
 */
function readTo(read: AnnotationReader): RedirectPolicy["to"] {
  const temporal = redirectTo(read, "temporal-redirect", 302, 307);
  const permanent = redirectTo(read, "permanent-redirect", 301, 308);
  return temporal ?? permanent;
}

/** Redirects are decided from the request's head and route alone (see the data plane's `decide`). */
const NOT_IN_REDIRECTS = new Set(["remote_addr", "request_method", "server_port"]);

function redirectTo(read: AnnotationReader, name: string, fallbackCode: number, maxCode: number): RedirectPolicy["to"] {
  const value = read.value(name);
  const code = read.int(`${name}-code`, fallbackCode, 300, maxCode);
  if (value === undefined || value === "") return null;
  if (!/^https?:\/\/[^/?#]/i.test(value)) {
    read.invalid(name, "only absolute http:// and https:// URLs are redirected to (as in ingress-nginx)");
    return null;
  }
  const url = parseTemplate(value);
  if (isTemplateError(url)) {
    read.invalid(name, url.error);
    return null;
  }
  const unknown = url.find((p) => "variable" in p && NOT_IN_REDIRECTS.has(p.variable));
  if (unknown !== undefined && "variable" in unknown) {
    read.invalid(name, `$${unknown.variable} is not known when a redirect is answered`);
    return null;
  }
  if (url.some((p) => "text" in p && !/^[\x21-\x7e]*$/.test(p.text))) {
    read.invalid(name, "a URL has no spaces, control or non-ASCII characters (percent-encode them)");
    return null;
  }
  return Object.freeze({ url, code });
}

/** `app-root`: a path (absolute URLs are refused, as ingress-nginx does), sent as the Location of a 302 for `/`. */
function readAppRoot(read: AnnotationReader): string | null {
  const value = read.value("app-root");
  if (value === undefined || value === "") return null;
  if (!/^\/[\x21-\x7e]*$/.test(value) || value.startsWith("//")) {
    read.invalid("app-root", "the app root is a path starting with one \"/\", without spaces, control or non-ASCII characters");
    return null;
  }
  return value;
}

/** `server-alias`: comma-separated host names, lower case; what is not a DNS name is `invalid`. */
export function parseServerAliases(value: string): { hosts: string[]; invalid: string[] } {
  const hosts: string[] = [];
  const invalid: string[] = [];
  for (const raw of value.split(",")) {
    const host = raw.trim().toLowerCase();
    if (host === "") continue;
    if (host.startsWith("*") || !isValidRuleHost(host)) invalid.push(raw.trim());
    else if (!hosts.includes(host)) hosts.push(host);
  }
  return { hosts, invalid };
}
