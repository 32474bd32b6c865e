// The typed per-route policy an Ingress's annotations compile to: plain data the native data plane executes
// (packages/dataplane/native/src/policy/ mirrors it). Nothing here is text another program parses as
// configuration: values are validated numbers, CIDRs, header names, and templates split into literal parts and
// variables from a fixed list.
import { DEFAULT_GLOBALS } from "./globals.ts";

/**
 * A string that may use a few nginx variables (`$host`, `$escaped_request_uri`…), already split: the data plane
 * joins the parts per request. Only the variables in `TEMPLATE_VARIABLES` and the three parameterised families
 * exist; anything else that starts with `$` is refused when the annotation is read, so no user text is ever
 * interpreted at request time.
 */
export type Template = readonly TemplatePart[];
export type TemplatePart =
  | { readonly text: string }
  | { readonly variable: TemplateVariable }
  | { readonly capture: number }
  /** `$http_NAME`: the request's lines of that header, joined with ", " ("; " for Cookie); absent: empty. The
   * name is nginx's with `-` for `_`, lower case (`$http_x_user_id` → `x-user-id`). */
  | { readonly header: string }
  /** `$cookie_NAME`: that cookie's value in the Cookie lines (name case-insensitive); absent: empty */
  | { readonly cookie: string }
  /** `$arg_NAME`: that query argument's value as sent, not decoded (name case-insensitive); absent: empty */
  | { readonly arg: string };

/** The nginx variables a template may name, with the meaning nginx gives them. */
export const TEMPLATE_VARIABLES = [
  "host", // the request's host, lower case, without port
  "http_host", // the Host header as sent
  "scheme", // http or https
  "request_uri", // path and query as sent
  "escaped_request_uri", // request_uri, URL-encoded (for a query parameter)
  "uri", // the normalised path, without query
  "args", // the query string, without "?"
  "query_string", // same as args
  "remote_addr", // the client address (after trusted X-Forwarded-For)
  "request_method",
  "server_port", // the port the request came in on
  "best_http_host", // ingress-nginx: the host the route matched ($host)
  "service_name", // the route's Service
  "service_port",
  "namespace", // the Ingress's namespace
  "ingress_name",
] as const;
export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number];

/** Fail closed: the route answers `status` itself and never forwards (an invalid security annotation). */
export interface RefusePolicy {
  readonly status: 503;
  /** for the log line and `explain route`: which annotation and why */
  readonly reason: string;
}

export interface RedirectPolicy {
  /** `ssl-redirect` (default true; the route's host must have TLS for it to act) */
  readonly sslRedirect: boolean;
  /** `force-ssl-redirect`: redirect to HTTPS even when the host has no TLS */
  readonly forceSslRedirect: boolean;
  /** `preserve-trailing-slash`: keep a trailing `/` in HTTPS redirects (dropped by default, as nginx does) */
  readonly preserveTrailingSlash: boolean;
  /** `permanent-redirect` / `temporal-redirect`: every request of the route is redirected there */
  readonly to: { readonly url: Template; readonly code: number } | null;
  /** `app-root`: a request for `/` is redirected (302) here */
  readonly appRoot: string | null;
  /** `from-to-www-redirect`: the www./non-www. twin of each host redirects (308) here, port kept */
  readonly fromToWww: boolean;
}

export interface RewritePolicy {
  /**
   * `use-regex`: the paths of every Ingress of the Ingress's hosts are matched as regexes (a `rewrite-target`
   * does the same, as in ingress-nginx)
   */
  readonly useRegex: boolean;
  /** `rewrite-target`: the upstream path; `capture` parts are the route's regex groups ($1…) */
  readonly target: Template | null;
  /** `x-forwarded-prefix`: sent upstream as X-Forwarded-Prefix */
  readonly forwardedPrefix: string | null;
  /** `upstream-vhost`: the Host header sent upstream */
  readonly upstreamVhost: Template | null;
}

export interface HeadersPolicy {
  /** `custom-headers` (a ConfigMap's keys and values, literal): added to the response */
  readonly response: readonly (readonly [string, string])[];
  /**
   * HSTS (`hsts*` ConfigMap keys): the Strict-Transport-Security value on HTTPS responses of hosts with a
   * certificate of their own (as ingress-nginx); null: none
   */
  readonly hsts: string | null;
}

export interface AccessPolicy {
  /** `allowlist-source-range` / `whitelist-source-range`: CIDRs; empty: everyone (before the deny list) */
  readonly allow: readonly string[];
  /** `denylist-source-range`: CIDRs, checked first */
  readonly deny: readonly string[];
}

export interface LimitPolicy {
  /** `limit-rps` per client address; null: none */
  readonly rps: number | null;
  /** `limit-rpm` per client address; null: none */
  readonly rpm: number | null;
  /** `limit-burst-multiplier` (default 5): burst = limit × multiplier */
  readonly burstMultiplier: number;
  /** `limit-connections` concurrent per client address; null: none */
  readonly connections: number | null;
  /** `limit-allowlist`: CIDRs the limits do not apply to */
  readonly allowlist: readonly string[];
  /** the answer when a limit is hit (`limit-req-status-code`, default 503) */
  readonly status: number;
}

export interface CorsPolicy {
  /** `cors-allow-origin`: `*`, or origins (scheme://host[:port], `*.` wildcards allowed) */
  readonly allowOrigins: readonly string[];
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly allowCredentials: boolean;
  readonly maxAge: number;
}

export interface BasicAuthPolicy {
  readonly realm: string;
  /** user name → password hash as htpasswd holds it (`$apr1$`, `{SHA}`, `$2y$`, `$5$`, `$6$`, crypt) */
  readonly users: readonly { readonly user: string; readonly hash: string }[];
}

export interface ExternalAuthPolicy {
  /** `auth-url` */
  readonly url: Template;
  /** `auth-method` (default GET) */
  readonly method: string;
  /** `auth-signin`: a 401 from the auth service becomes a 302 here */
  readonly signin: Template | null;
  /** `auth-signin-redirect-param` (default `rd`) */
  readonly signinRedirectParam: string;
  /** `auth-response-headers`: copied from the auth answer onto the upstream request */
  readonly responseHeaders: readonly string[];
  /** `auth-request-redirect`: sent to the auth service as X-Auth-Request-Redirect */
  readonly requestRedirect: Template | null;
  /** `auth-always-set-cookie`: pass the auth answer's Set-Cookie to the client also on failure */
  readonly alwaysSetCookie: boolean;
  /** `auth-cache-duration` for 2xx answers in seconds, keyed by the credentials sent; 0: no cache */
  readonly cacheSeconds: number;
  /** `auth-cache-key`, added to the key (never replacing the credentials in it) */
  readonly cacheKey: Template | null;
  /** `auth-proxy-set-headers`: headers (literal values) added to the auth request */
  readonly proxySetHeaders: readonly (readonly [string, string])[];
}

export interface ClientTlsPolicy {
  /** `auth-tls-secret`: the CA bundle (PEM) client certificates are checked against */
  readonly ca: string;
  /** `auth-tls-verify-client`: on (default), off, optional, optional_no_ca */
  readonly verify: "on" | "off" | "optional" | "optional_no_ca";
  /** `auth-tls-verify-depth` (default 1) */
  readonly depth: number;
  /** `auth-tls-pass-certificate-to-upstream`: the client certificate (URL-encoded PEM) in `ssl-client-cert` */
  readonly passCertificate: boolean;
  /** `auth-tls-error-page`: a failed check redirects here instead of answering 400 */
  readonly errorPage: string | null;
}

export interface UpstreamTlsPolicy {
  /** `proxy-ssl-secret` ca.crt (PEM): the roots `verify` checks against; null: none (verification then fails) */
  readonly ca: string | null;
  /** `proxy-ssl-secret` tls.crt / tls.key: a client certificate to present */
  readonly cert: string | null;
  readonly key: string | null;
  /** `proxy-ssl-verify` (default off, as nginx) */
  readonly verify: boolean;
  /** `proxy-ssl-name` (default `$service_name.$namespace.svc`): the name checked, and sent as SNI when `serverName` */
  readonly name: Template;
  /** `proxy-ssl-server-name`: send SNI */
  readonly serverName: boolean;
}

/** The conditions `proxy-next-upstream` may list (`off` is the empty list). */
export const NEXT_UPSTREAM_CONDITIONS = [
  "error",
  "timeout",
  "invalid_header",
  "http_500",
  "http_502",
  "http_503",
  "http_504",
  "http_403",
  "http_404",
  "http_429",
  "non_idempotent",
] as const;
export type NextUpstreamCondition = (typeof NEXT_UPSTREAM_CONDITIONS)[number];

export interface UpstreamPolicy {
  /** `backend-protocol`; AUTO_HTTP: HTTPS to the endpoint when the request came over TLS, else HTTP */
  readonly protocol: "HTTP" | "HTTPS" | "AUTO_HTTP" | "GRPC" | "GRPCS";
  /** how TLS to the endpoint is done; null when the protocol never uses TLS */
  readonly tls: UpstreamTlsPolicy | null;
  /** `proxy-connect-timeout` / `proxy-read-timeout` in milliseconds; null: the `bollard ingress` flag */
  readonly connectTimeoutMs: number | null;
  readonly readTimeoutMs: number | null;
  /** `proxy-next-upstream` conditions (empty for `off`) */
  readonly nextUpstream: readonly NextUpstreamCondition[];
  /** `proxy-next-upstream-tries`: attempts in all (default 3; 0: as many as there are endpoints) */
  readonly nextUpstreamTries: number;
  /** `proxy-next-upstream-timeout` in milliseconds: no attempt starts after it; 0: none */
  readonly nextUpstreamTimeoutMs: number;
  /** `proxy-http-version` */
  readonly httpVersion: "1.0" | "1.1";
  /** `proxy-body-size` in bytes; null: the flag; 0: no limit */
  readonly maxBodySize: number | null;
  /**
   * `client-body-buffer-size` in bytes: bodies up to this are read whole before forwarding (0 with
   * `proxy-request-buffering: off`: every body streams); null: the flag
   */
  readonly bodyBufferSize: number | null;
}

export interface AffinityPolicy {
  /** `session-cookie-name` (default INGRESSCOOKIE) */
  readonly name: string;
  /** `affinity-mode`: balanced (default) or persistent (served alike: see balance.ts) */
  readonly mode: "balanced" | "persistent";
  /**
   * `affinity-canary-behavior`: sticky (default): a request whose cookie names an endpoint of the main or the
   * canary backend stays there; legacy: the canary rule decides every request, the cookie only within a backend
   */
  readonly canaryBehavior: "sticky" | "legacy";
  /** `session-cookie-secure`; the cookie is Secure over HTTPS whatever this says (as ingress-nginx) */
  readonly secure: boolean;
  /** `session-cookie-path`; null: the route's path */
  readonly path: string | null;
  readonly domain: string | null;
  readonly sameSite: "None" | "Lax" | "Strict" | null;
  /** `session-cookie-conditional-samesite-none` */
  readonly conditionalSameSiteNone: boolean;
  /** `session-cookie-max-age` in seconds; null: none */
  readonly maxAge: number | null;
  /** `session-cookie-expires` in seconds from the answer; null: none (with neither: a session cookie) */
  readonly expires: number | null;
  /** `session-cookie-change-on-failure` */
  readonly changeOnFailure: boolean;
}

export interface BalancePolicy {
  /** `affinity: cookie` */
  readonly affinity: AffinityPolicy | null;
  /** `upstream-hash-by`: consistent hashing on this template's value */
  readonly hashBy: Template | null;
}

export interface ErrorsPolicy {
  /** `custom-http-errors`: upstream answers with these statuses are replaced by the error backend's answer */
  readonly codes: readonly number[];
  /**
   * `default-backend`: a Service in the Ingress's namespace (its first port), the route's `errorBackend`: it answers
   * the `codes`, and every request while the route's own Service has no endpoints
   */
  readonly defaultBackend: string | null;
}

/**
 * `canary: "true"` on an Ingress: its backend takes a share of the requests of the main Ingress's route with the
 * same host and path. Tried in this order: header, cookie, weight.
 */
export interface CanaryRule {
  /** `canary-by-header`: "always" sends to the canary, "never" never, other values as below */
  readonly header: string | null;
  /** `canary-by-header-value`: the value that sends to the canary (instead of "always") */
  readonly headerValue: string | null;
  /**
   * `canary-by-header-pattern`: a regex the header value must match (when no headerValue), in the syntax both
   * JavaScript and the data plane's regex engine read (no look-around, no back-references)
   */
  readonly headerPattern: string | null;
  /** `canary-by-cookie`: "always" / "never" */
  readonly cookie: string | null;
  /** `canary-weight` out of `canary-weight-total` (default 100) */
  readonly weight: number;
  readonly weightTotal: number;
}

/** Everything an Ingress's annotations ask of its routes. */
export interface RoutePolicy {
  readonly refuse: RefusePolicy | null;
  readonly redirect: RedirectPolicy;
  readonly rewrite: RewritePolicy | null;
  readonly headers: HeadersPolicy | null;
  readonly access: AccessPolicy | null;
  readonly limits: LimitPolicy | null;
  readonly cors: CorsPolicy | null;
  readonly basicAuth: BasicAuthPolicy | null;
  readonly externalAuth: ExternalAuthPolicy | null;
  readonly clientTls: ClientTlsPolicy | null;
  readonly upstream: UpstreamPolicy | null;
  readonly balance: BalancePolicy | null;
  readonly errors: ErrorsPolicy | null;
  /** `enable-access-log` (default true) */
  readonly accessLog: boolean;
  /**
   * `canary: "true"`: the Ingress's backend joins the main Ingress's routes of the same host and path (the
   * compiler attaches it there; not sent to the data plane as part of a policy)
   */
  readonly canary: CanaryRule | null;
  /**
   * `service-upstream`: the backend is the Service's ClusterIP and port instead of its endpoints (the compiler
   * acts on it; not sent to the data plane as part of a policy)
   */
  readonly serviceUpstream: boolean;
  /**
   * `ssl-passthrough`: TLS connections naming the Ingress's hosts go to the backend of its `/` path unterminated
   * (the compiler builds the passthrough table; not sent to the data plane as part of a policy)
   */
  readonly sslPassthrough: boolean;
}

export const DEFAULT_REDIRECT: RedirectPolicy = Object.freeze({
  sslRedirect: true,
  forceSslRedirect: false,
  preserveTrailingSlash: false,
  to: null,
  appRoot: null,
  fromToWww: false,
});

/** The policy of an Ingress without annotations (and the default globals, whose HSTS every route sends). */
export const DEFAULT_POLICY: RoutePolicy = Object.freeze({
  refuse: null,
  redirect: DEFAULT_REDIRECT,
  rewrite: null,
  headers: Object.freeze({ response: Object.freeze([]), hsts: DEFAULT_GLOBALS.hsts }),
  access: null,
  limits: null,
  cors: null,
  basicAuth: null,
  externalAuth: null,
  clientTls: null,
  upstream: null,
  balance: null,
  errors: null,
  accessLog: true,
  canary: null,
  serviceUpstream: false,
  sslPassthrough: false,
});
