// External authentication: a sub-request to auth-url before forwarding (security: invalid values refuse).
import type { ExternalAuthPolicy, Template } from "./policy.ts";
import type { AnnotationReader, PolicyReader } from "./read.ts";
import { isTemplateError, parseTemplate, templateText } from "./template.ts";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]);
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
// the headers ingress-nginx itself sets on the auth request (a ConfigMap may not replace them)
const AUTH_REQUEST_OWN = new Set(["host", "content-length", "x-original-url", "x-original-method", "x-sent-from", "x-real-ip", "x-forwarded-for", "x-forwarded-proto", "x-request-id", "x-auth-request-redirect"]);
/** ingress-nginx's auth-cache-duration default: 2xx (and 401, which is not cached here) for five minutes */
const DEFAULT_CACHE_SECONDS = 300;

/**
 * Where a URL template's host may come from: `literal` only; `request` — also exactly `$host` (or `$best_http_host`),
 * for an Ingress whose every rule names an exact host, so the request's host is one of those and never the client's
 * choice (oauth2-proxy's `https://$host/oauth2/auth`); `any` — any template (a redirect the client itself follows).
 */
type HostRule = "literal" | "request" | "any";

const REQUEST_HOST = new Set(["host", "best_http_host"]);

/** A URL template, http or https, whose host follows `hosts` (a Host header must never choose where credentials go). */
function urlTemplate(value: string, relativeAllowed: boolean, hosts: HostRule): Template | { error: string } {
  const t = parseTemplate(value);
  if (isTemplateError(t)) return t;
  const first = t[0];
  const literal = first !== undefined && "text" in first ? first.text : "";
  if (relativeAllowed && literal.startsWith("/") && !literal.startsWith("//")) return t;
  const scheme = /^(https?):\/\//i.exec(literal);
  if (scheme === null) return { error: `"${value}" is not an http:// or https:// URL` };
  // A literal host ends inside the first text part (at "/", "?" or "#", or with the whole value): "http://auth.$host/"
  // and "http://a$http_x/" are not literal.
  const literalHost = /^(https?):\/\/([^/?#]+)[/?#]/i.test(literal) || (t.length === 1 && /^(https?):\/\/[^/?#]+$/i.test(literal));
  if (hosts !== "any" && !literalHost) {
    // the authority is a variable: only the request's host, and only where that host is not the client's choice
    const second = t[1];
    const third = t[2];
    const requestHost = literal.length === scheme[0].length && second !== undefined && "variable" in second && REQUEST_HOST.has(second.variable) && (third === undefined || ("text" in third && /^(:\d{1,5})?([/?#]|$)/.test(third.text)));
    if (!requestHost) return { error: `"${value}": the host must be literal, or exactly $host (a literal port may follow)` };
    if (hosts === "literal") {
      return { error: `"${value}": $host as the auth server needs every rule of the Ingress to name an exact host (no wildcard, no rule without host, no defaultBackend), so that a client cannot choose where credentials are sent` };
    }
  }
  // the whole URL parses once each variable is given a harmless value
  const sample = t.map((p) => ("text" in p ? p.text : "x")).join("");
  try {
    const u = new URL(sample);
    if (u.username !== "" || u.password !== "") return { error: `"${value}" holds credentials; send them with auth-proxy-set-headers` };
  } catch {
    return { error: `"${value}" is not a valid URL` };
  }
  return t;
}

/**
 * The auth-signin URL as the 302 names it: ingress-nginx appends `<param>=$scheme://$http_host$escaped_request_uri`
 * unless the URL's query already has that parameter.
 */
function signinWithRedirect(t: Template, param: string): Template {
  const text = templateText(t);
  const query = text.includes("?") ? text.slice(text.indexOf("?") + 1).split("#")[0] ?? "" : "";
  if (query.split("&").some((kv) => kv.split("=")[0] === param)) return t;
  const joiner = query === "" ? (text.endsWith("?") ? "" : "?") : "&";
  return Object.freeze([...t, { text: `${joiner}${param}=` }, { variable: "scheme" }, { text: "://" }, { variable: "http_host" }, { variable: "escaped_request_uri" }] as Template);
}

/** `auth-cache-duration`: `[codes…] duration` entries (nginx proxy_cache_valid), comma separated; the 2xx time. */
function cacheSeconds(read: AnnotationReader): number {
  const v = read.value("auth-cache-duration");
  if (v === undefined) return DEFAULT_CACHE_SECONDS;
  const units: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400 };
  let seconds: number | null = null;
  let others = false;
  for (const entry of v.split(",")) {
    const words = entry.trim().split(/\s+/).filter((w) => w !== "");
    const m = /^(\d+)(s|m|h|d|)$/.exec(words.at(-1) ?? "");
    const codes = words.slice(0, -1);
    if (m === null || !codes.every((c) => c === "any" || /^[1-5]\d\d$/.test(c))) {
      read.invalid("auth-cache-duration", `"${entry.trim()}" is not "[status codes…] duration" (e.g. "200 202 10m")`);
      return 0;
    }
    const s = Number(m[1]) * (units[m[2] ?? ""] ?? 1);
    // (without codes nginx caches 200, 301 and 302)
    if (codes.length === 0 || codes.some((c) => c === "any" || c.startsWith("2"))) seconds = Math.max(seconds ?? 0, s);
    if (codes.some((c) => c !== "any" && !c.startsWith("2"))) others = true;
  }
  if (others) read.differs("auth-cache-duration", "only successful (2xx) auth answers are cached; other statuses always ask the auth service again");
  return seconds ?? 0;
}

/** `auth-proxy-set-headers`: a ConfigMap (`name` or `namespace/name`) of header → literal value. */
function proxySetHeaders(read: AnnotationReader): readonly (readonly [string, string])[] {
  const ref = read.value("auth-proxy-set-headers");
  if (ref === undefined || ref === "") return [];
  const cm = read.context.configMap(ref);
  if (cm === undefined) {
    read.invalid("auth-proxy-set-headers", `ConfigMap ${ref} not found`);
    return [];
  }
  const out: (readonly [string, string])[] = [];
  for (const [name, value] of Object.entries(cm.data ?? {}).sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (!HEADER_NAME.test(name) || AUTH_REQUEST_OWN.has(name.toLowerCase())) {
      read.invalid("auth-proxy-set-headers", `ConfigMap ${ref}: "${name}" is not a header name the auth request may set`);
      return [];
    }
    // values are sent as written; nginx would expand variables in them, which this data plane never does
    if (value.includes("$") || /[\0-\x08\x0a-\x1f\x7f]/.test(value)) {
      read.invalid("auth-proxy-set-headers", `ConfigMap ${ref}: the value of ${name} holds "$" or a control character; values are literal`);
      return [];
    }
    out.push(Object.freeze([name, value] as const));
  }
  return Object.freeze(out);
}

function headerList(read: AnnotationReader, name: string, value: string | undefined): readonly string[] {
  if (value === undefined) return [];
  const names = value.split(",").map((h) => h.trim()).filter((h) => h !== "");
  const bad = names.find((h) => !HEADER_NAME.test(h));
  if (bad !== undefined) {
    read.invalid(name, `"${bad}" is not a header name`);
    return [];
  }
  return Object.freeze(names);
}

/** Reads: auth-url, auth-method, auth-signin, auth-response-headers, auth-*, enable-global-auth. */
export const readExternalAuth: PolicyReader = (read) => {
  const globals = read.context.globals;
  const enableGlobal = read.bool("enable-global-auth", true);
  const own = read.value("auth-url");
  const names = ["auth-method", "auth-signin", "auth-signin-redirect-param", "auth-response-headers", "auth-request-redirect", "auth-always-set-cookie", "auth-cache-key", "auth-cache-duration", "auth-proxy-set-headers"];
  if (own === undefined) {
    // without auth-url the others mean nothing: said so, and never a reason to refuse
    for (const n of names) if (read.has(n)) read.differs(n, "has no effect without auth-url");
    if (globals.globalAuthUrl === null || globals.globalAuthUrl === "" || !enableGlobal) return {};
    return globalAuth(read);
  }
  const url = urlTemplate(own, false, read.context.fixedHosts ? "request" : "literal");
  if (isTemplateError(url)) {
    read.invalid("auth-url", url.error);
    for (const n of names) read.touch(n);
    return {};
  }
  let method = (read.value("auth-method") ?? "GET").toUpperCase();
  if (!METHODS.has(method)) {
    read.invalid("auth-method", `"${method}" is not an HTTP method (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE)`);
    method = "GET"; // (the route refuses anyway; the data plane gets a method it can send)
  }
  const param = read.value("auth-signin-redirect-param") ?? "rd";
  if (!/^[A-Za-z0-9_.~-]+$/.test(param)) read.invalid("auth-signin-redirect-param", `"${param}" is not a query parameter name`);
  let signin: Template | null = null;
  const signinText = read.value("auth-signin");
  if (signinText !== undefined && signinText !== "") {
    const t = urlTemplate(signinText, true, "any");
    if (isTemplateError(t)) read.invalid("auth-signin", t.error);
    else signin = signinWithRedirect(t, param);
  }
  let requestRedirect: Template | null = null;
  const redirectText = read.value("auth-request-redirect");
  if (redirectText !== undefined && redirectText !== "") {
    const t = parseTemplate(redirectText);
    if (isTemplateError(t)) read.invalid("auth-request-redirect", t.error);
    else requestRedirect = t;
  }
  let cacheKey: Template | null = null;
  const keyText = read.value("auth-cache-key");
  if (keyText !== undefined && keyText !== "") {
    const t = parseTemplate(keyText);
    if (isTemplateError(t)) read.invalid("auth-cache-key", t.error);
    else cacheKey = t;
  }
  // ingress-nginx caches only when auth-cache-key is set; the duration is read (and checked) either way
  const duration = cacheSeconds(read);
  const policy: ExternalAuthPolicy = Object.freeze({
    url,
    method,
    signin,
    signinRedirectParam: param,
    responseHeaders: headerList(read, "auth-response-headers", read.value("auth-response-headers")),
    requestRedirect,
    alwaysSetCookie: read.bool("auth-always-set-cookie", false),
    cacheSeconds: cacheKey === null ? 0 : duration,
    cacheKey,
    proxySetHeaders: proxySetHeaders(read),
  });
  return { externalAuth: policy };
};

/** The controller ConfigMap's global-auth-* for an Ingress without its own auth-url. */
function globalAuth(read: AnnotationReader): ReturnType<PolicyReader> {
  const g = read.context.globals;
  const refuse = (reason: string) => ({ refuse: Object.freeze({ status: 503 as const, reason }) });
  const url = urlTemplate(g.globalAuthUrl ?? "", false, read.context.fixedHosts ? "request" : "literal");
  if (isTemplateError(url)) return refuse(`global-auth-url: ${url.error}`);
  const method = (g.globalAuthMethod ?? "GET").toUpperCase();
  if (!METHODS.has(method)) return refuse(`global-auth-method: "${method}" is not an HTTP method`);
  let signin: Template | null = null;
  if (g.globalAuthSignin !== null && g.globalAuthSignin !== "") {
    const t = urlTemplate(g.globalAuthSignin, true, "any");
    if (isTemplateError(t)) return refuse(`global-auth-signin: ${t.error}`);
    signin = signinWithRedirect(t, "rd");
  }
  const bad = g.globalAuthResponseHeaders.find((h) => !HEADER_NAME.test(h));
  if (bad !== undefined) return refuse(`global-auth-response-headers: "${bad}" is not a header name`);
  const policy: ExternalAuthPolicy = Object.freeze({
    url,
    method,
    signin,
    signinRedirectParam: "rd",
    responseHeaders: Object.freeze([...g.globalAuthResponseHeaders]),
    requestRedirect: null,
    alwaysSetCookie: false,
    cacheSeconds: 0,
    cacheKey: null,
    proxySetHeaders: Object.freeze([]),
  });
  return { externalAuth: policy };
}
