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

/** What `readGlobals` made of one ConfigMap key that is not simply honoured. */
export interface GlobalFinding {
  readonly key: string;
  readonly value: string;
  readonly verdict: "different" | "invalid" | "unsupported";
  readonly message: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** An nginx size (`8m`, `512k`, `1048576`, `0`) in bytes; undefined when it is not one. */
export function parseNginxSize(value: string): number | undefined {
  const m = /^(\d+)([kKmMgG]?)$/.exec(value.trim());
  if (m === null) return undefined;
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? "").toLowerCase()] ?? 1;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** nginx seconds as ingress-nginx writes them in timeouts: a plain integer of seconds. */
const secondsMs = (value: string): number | undefined => (/^\d{1,6}$/.test(value.trim()) ? Number(value.trim()) * 1000 : undefined);

/**
 * The ingress-nginx controller ConfigMap's data → GlobalSettings, and what each key not simply honoured came to.
 * Pure. An invalid value keeps the default for that key.
 */
export function readGlobals(data: Readonly<Record<string, string>> | undefined): { globals: GlobalSettings; findings: GlobalFinding[] } {
  const findings: GlobalFinding[] = [];
  const g: Mutable<GlobalSettings> = { ...DEFAULT_GLOBALS };
  const cors: Mutable<GlobalSettings["cors"]> = { ...DEFAULT_GLOBALS.cors };
  const report = (key: string, value: string, verdict: GlobalFinding["verdict"], message: string) => findings.push({ key, value, verdict, message });
  const bool = (key: string, value: string, set: (b: boolean) => void) => {
    if (value === "true" || value === "false") set(value === "true");
    else report(key, value, "invalid", `"${value}" is neither "true" nor "false"; the default is kept`);
  };
  const ms = (key: string, value: string, set: (n: number) => void) => {
    const n = secondsMs(value);
    if (n === undefined || n === 0) report(key, value, "invalid", `"${value}" is not a whole number of seconds above 0; the flag's value is kept`);
    else set(n);
  };
  let hsts = true;
  let hstsMaxAge = "31536000";
  let hstsSubdomains = true;
  let hstsPreload = false;
  for (const [key, raw] of Object.entries(data ?? {}).sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const value = raw.trim();
    switch (key) {
      case "proxy-body-size": {
        const n = parseNginxSize(value);
        if (n === undefined) report(key, value, "invalid", `"${value}" is not a size like 8m, 512k or 0; the --max-body-size flag applies`);
        else g.proxyBodySize = n;
        break;
      }
      case "ssl-redirect":
        bool(key, value, (b) => {
          g.sslRedirect = b;
        });
        break;
      case "force-ssl-redirect":
        bool(key, value, (b) => {
          g.forceSslRedirect = b;
        });
        break;
      case "proxy-connect-timeout":
        ms(key, value, (n) => {
          g.proxyConnectTimeoutMs = n;
        });
        break;
      case "proxy-read-timeout":
        ms(key, value, (n) => {
          g.proxyReadTimeoutMs = n;
        });
        break;
      case "proxy-send-timeout":
        ms(key, value, (n) => {
          g.proxySendTimeoutMs = n;
        });
        break;
      case "cors-allow-origin":
        cors.allowOrigin = value;
        break;
      case "cors-allow-methods":
        cors.allowMethods = value;
        break;
      case "cors-allow-headers":
        cors.allowHeaders = value;
        break;
      case "cors-expose-headers":
        cors.exposeHeaders = value;
        break;
      case "cors-allow-credentials":
        bool(key, value, (b) => {
          cors.allowCredentials = b;
        });
        break;
      case "cors-max-age":
        if (/^\d{1,9}$/.test(value)) cors.maxAge = Number(value);
        else report(key, value, "invalid", `"${value}" is not a number of seconds; ${DEFAULT_GLOBALS.cors.maxAge} is kept`);
        break;
      case "custom-http-errors": {
        const codes = value === "" ? [] : value.split(",").map((c) => c.trim());
        if (codes.every((c) => /^[45]\d\d$/.test(c))) g.customHttpErrors = Object.freeze(codes.map(Number));
        else report(key, value, "invalid", `"${value}" is not a comma-separated list of 4xx/5xx status codes; none are intercepted`);
        break;
      }
      case "hsts":
        bool(key, value, (b) => {
          hsts = b;
        });
        break;
      case "hsts-max-age":
        if (/^\d{1,10}$/.test(value)) hstsMaxAge = value;
        else report(key, value, "invalid", `"${value}" is not a number of seconds; ${hstsMaxAge} is kept`);
        break;
      case "hsts-include-subdomains":
        bool(key, value, (b) => {
          hstsSubdomains = b;
        });
        break;
      case "hsts-preload":
        bool(key, value, (b) => {
          hstsPreload = b;
        });
        break;
      case "global-auth-url":
        g.globalAuthUrl = value === "" ? null : value;
        break;
      case "global-auth-method":
        g.globalAuthMethod = value === "" ? null : value;
        break;
      case "global-auth-signin":
        g.globalAuthSignin = value === "" ? null : value;
        break;
      case "global-auth-response-headers":
        g.globalAuthResponseHeaders = Object.freeze(
          value
            .split(",")
            .map((h) => h.trim())
            .filter((h) => h !== ""),
        );
        break;
      case "limit-req-status-code":
        if (/^[45]\d\d$/.test(value)) g.limitReqStatusCode = Number(value);
        else report(key, value, "invalid", `"${value}" is not a 4xx/5xx status; 503 is kept`);
        break;
      case "allow-snippet-annotations":
        if (value === "true") report(key, value, "different", "snippets are never evaluated, whatever this says: each *-snippet annotation is reported UnsupportedAnnotation");
        break;
      case "server-tokens":
        report(key, value, "different", "Bollard never names itself in a Server header; the backend's Server header is passed as is");
        break;
      case "use-forwarded-headers":
      case "compute-full-forwarded-for":
      case "proxy-real-ip-cidr":
        report(key, value, "different", "set `bollard ingress --trusted-proxies CIDR,…` to the addresses of the proxies in front: their X-Forwarded-For is believed and extended (the client address is the right-most untrusted hop)");
        break;
      case "forwarded-for-header":
        if (value.toLowerCase() !== "x-forwarded-for") report(key, value, "unsupported", "the client address is read from X-Forwarded-For only");
        break;
      case "log-format-upstream":
      case "log-format-escape-json":
        report(key, value, "unsupported", "access lines are JSON with fixed fields (time, method, path, status, duration, route, upstream, request id)");
        break;
      default:
        report(key, value, "unsupported", "not a ConfigMap key Bollard reads");
    }
  }
  const hstsValue = `max-age=${hstsMaxAge}${hstsSubdomains ? "; includeSubDomains" : ""}${hstsPreload ? "; preload" : ""}`;
  g.hsts = hsts ? hstsValue : null;
  g.cors = Object.freeze(cors);
  return { globals: Object.freeze(g) as GlobalSettings, findings };
}
