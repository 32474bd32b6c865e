// Cluster-wide settings: the keys of an ingress-nginx controller ConfigMap that Bollard honours (named by
// `bollard ingress --configmap NAMESPACE/NAME`). They are the defaults the annotation readers start from.

export interface GlobalSettings {
  /** `proxy-body-size` in bytes; null: the `--max-body-size` flag */
  readonly proxyBodySize: number | null;
  /** `ssl-redirect` (default true) */
  readonly sslRedirect: boolean;
  /** `force-ssl-redirect` (default false) */
  readonly forceSslRedirect: boolean;
  /** `proxy-connect-timeout` / `proxy-read-timeout` / `proxy-send-timeout` in ms; null: the flags */
  readonly proxyConnectTimeoutMs: number | null;
  readonly proxyReadTimeoutMs: number | null;
  readonly proxySendTimeoutMs: number | null;
  /** `cors-allow-*` etc.: the defaults of `enable-cors` routes */
  readonly cors: {
    readonly allowOrigin: string;
    readonly allowMethods: string;
    readonly allowHeaders: string;
    readonly exposeHeaders: string;
    readonly allowCredentials: boolean;
    readonly maxAge: number;
  };
  /** `custom-http-errors` */
  readonly customHttpErrors: readonly number[];
  /** HSTS: `hsts`, `hsts-max-age`, `hsts-include-subdomains`, `hsts-preload`; null when `hsts: "false"` */
  readonly hsts: string | null;
  /** `global-auth-url` etc.: external auth for every route without `enable-global-auth: "false"` */
  readonly globalAuthUrl: string | null;
  readonly globalAuthMethod: string | null;
  readonly globalAuthSignin: string | null;
  readonly globalAuthResponseHeaders: readonly string[];
  /** `limit-req-status-code` (default 503) */
  readonly limitReqStatusCode: number;
}

export const DEFAULT_GLOBALS: GlobalSettings = Object.freeze({
  proxyBodySize: null,
  sslRedirect: true,
  forceSslRedirect: false,
  proxyConnectTimeoutMs: null,
  proxyReadTimeoutMs: null,
  proxySendTimeoutMs: null,
  cors: Object.freeze({
    allowOrigin: "*",
    allowMethods: "GET, PUT, POST, DELETE, PATCH, OPTIONS",
    allowHeaders: "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization",
    exposeHeaders: "",
    allowCredentials: true,
    maxAge: 1728000,
  }),
  customHttpErrors: Object.freeze([]),
  hsts: "max-age=31536000; includeSubDomains",
  globalAuthUrl: null,
  globalAuthMethod: null,
  globalAuthSignin: null,
  globalAuthResponseHeaders: Object.freeze([]),
  limitReqStatusCode: 503,
});
