// Why an annotation is not served: the ingress-nginx annotations Bollard deliberately does not implement, with
// the reason a user reads in the Warning Event and in `bollard migrate`. Anything not named here and not read
// by a policy reader is reported as unknown.

const reasons: readonly (readonly [RegExp, string])[] = [
  [/-snippet$/, "snippets are nginx configuration text; Bollard never evaluates user text (ingress-nginx itself disables them by default)"],
  [/^(enable-)?modsecurity/, "no web application firewall is built in; put one in front of or behind the ingress"],
  [/^enable-owasp-core-rules$/, "no web application firewall is built in; put one in front of or behind the ingress"],
  [/^mirror-/, "request mirroring is not implemented"],
  [/^(enable-)?opentelemetry|^opentracing|^enable-opentracing|^jaeger|^zipkin|^datadog/, "tracing is not built in; the X-Request-ID header is forwarded for correlation"],
  [/^influxdb-/, "InfluxDB export is not implemented; use the Prometheus metrics"],
  [/^load-balance$/, "endpoints are balanced round-robin (upstream-hash-by and affinity are supported)"],
  [/^ssl-ciphers$|^ssl-prefer-server-ciphers$/, "TLS cipher suites are the data plane's fixed modern set"],
  [/^proxy-redirect-(from|to)$/, "Location headers from the backend are passed unchanged"],
  [/^proxy-cookie-(domain|path)$/, "Set-Cookie headers from the backend are passed unchanged"],
  [/^http2-push-preload$/, "HTTP/2 server push is not implemented (browsers dropped it)"],
  [/^satisfy$/, "auth methods are all required (no 'satisfy any')"],
  [/^connection-proxy-header$/, "the Connection header sent upstream is managed by the data plane"],
  [/^global-rate-limit/, "global (memcached) rate limiting is not implemented; limit-rps/limit-rpm apply per replica"],
  [/^server-snippet$|^stream-snippet$/, "snippets are nginx configuration text; Bollard never evaluates user text"],
  [/^use-port-in-redirects$/, "not implemented"],
];

/** Every ingress-nginx annotation a user may expect to be served (the docs table has one row for each). */
export const NGINX_ANNOTATIONS: readonly string[] = Object.freeze(
  `auth-type auth-secret auth-secret-type auth-realm auth-url auth-method auth-signin auth-signin-redirect-param
  auth-response-headers auth-request-redirect auth-always-set-cookie auth-cache-key auth-cache-duration
  auth-proxy-set-headers enable-global-auth auth-tls-secret auth-tls-verify-client auth-tls-verify-depth
  auth-tls-pass-certificate-to-upstream auth-tls-error-page ssl-redirect force-ssl-redirect preserve-trailing-slash
  ssl-passthrough use-regex rewrite-target app-root permanent-redirect permanent-redirect-code temporal-redirect
  temporal-redirect-code from-to-www-redirect server-alias affinity affinity-mode affinity-canary-behavior
  session-cookie-name session-cookie-secure session-cookie-path session-cookie-domain session-cookie-samesite
  session-cookie-conditional-samesite-none session-cookie-max-age session-cookie-expires
  session-cookie-change-on-failure service-upstream upstream-hash-by backend-protocol proxy-ssl-secret
  proxy-ssl-verify proxy-ssl-verify-depth proxy-ssl-name proxy-ssl-server-name proxy-ssl-protocols
  proxy-connect-timeout proxy-read-timeout proxy-send-timeout proxy-next-upstream proxy-next-upstream-tries
  proxy-next-upstream-timeout proxy-http-version enable-cors cors-allow-origin cors-allow-methods
  cors-allow-headers cors-expose-headers cors-allow-credentials cors-max-age enable-access-log
  whitelist-source-range allowlist-source-range denylist-source-range limit-rps limit-rpm limit-burst-multiplier
  limit-connections limit-allowlist limit-whitelist custom-headers upstream-vhost x-forwarded-prefix
  custom-http-errors default-backend proxy-request-buffering client-body-buffer-size proxy-body-size
  proxy-buffering proxy-buffer-size proxy-buffers-number proxy-max-temp-file-size canary canary-by-header
  canary-by-header-value canary-by-header-pattern canary-by-cookie canary-weight canary-weight-total`
    .split(/\s+/)
    .filter((n) => n !== ""),
);
const known = new Set(NGINX_ANNOTATIONS);

export function unsupportedReason(name: string): string {
  for (const [pattern, reason] of reasons) if (pattern.test(name)) return reason;
  return known.has(name) ? "not implemented in this version of Bollard" : "not an ingress-nginx annotation Bollard knows";
}
