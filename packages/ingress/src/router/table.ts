import type { AnnotationFinding } from "../annotations/read.ts";
import type { BalancePolicy, CanaryRule, RoutePolicy } from "../annotations/policy.ts";
import type { ObjectRef } from "../model/objects.ts";

/** A place a request can be sent: an endpoint address (IP or DNS name) and port. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface Backend {
  readonly namespace: string;
  /** null for `resource` backends, which this controller does not serve */
  readonly service: string | null;
  /** the Service port as the Ingress wrote it: a number or a name */
  readonly port: number | string | null;
  /** ready endpoints, sorted; empty means 503 */
  readonly endpoints: readonly Endpoint[];
  /** why the configuration gives no endpoints (missing Service, unknown port…); null when it is fine */
  readonly unavailable: string | null;
}

export type RoutePathType = "Exact" | "Prefix" | "ImplementationSpecific";

export interface Route {
  readonly ingress: ObjectRef;
  /** the rule's host as written (`*.foo.com` for a wildcard); null for a host-less rule or the default backend */
  readonly host: string | null;
  /** null when the Ingress `defaultBackend` serves */
  readonly path: string | null;
  readonly pathType: RoutePathType | null;
  readonly backend: Backend;
  /**
   * plain-HTTP requests get a 308 to HTTPS: the host has TLS and the Ingress did not opt out (`ssl-redirect`),
   * or the Ingress forces it (`force-ssl-redirect`)
   */
  readonly sslRedirect: boolean;
  /**
   * the path is a case-insensitive regex anchored at the start (ingress-nginx's `~* "^PATH"`): use-regex or
   * rewrite-target on an Ingress of the host makes every path of the host one
   */
  readonly regex: boolean;
  /** what the Ingress's annotations ask (one object shared by the routes of an Ingress) */
  readonly policy: RoutePolicy;
  /** the canary Ingress's backend that may serve this route's requests instead (at most one, as ingress-nginx) */
  readonly canaries: readonly Canary[];
  /** `default-backend`: the Service answering `custom-http-errors`, and requests while `backend` has no endpoints */
  readonly errorBackend: Backend | null;
}

/**
 * A canary Ingress's backend on a main Ingress's route. The main route's policy applies to its requests but for
 * the choice of endpoint, which is the canary Ingress's own (as in ingress-nginx).
 */
export interface Canary {
  readonly ingress: ObjectRef;
  readonly backend: Backend;
  readonly rule: CanaryRule;
  readonly balance: BalancePolicy | null;
}

/** The backend TLS connections to a passthrough host are relayed to: that of the host's `/` path. */
export interface Passthrough {
  readonly ingress: ObjectRef;
  readonly backend: Backend;
  /** the passthrough Ingress's policy: its source ranges are checked on the connection's peer address, and auth makes the data plane refuse (close) the connection */
  readonly policy: RoutePolicy;
}

export interface PathNode {
  readonly route: Route | null;
  readonly children: ReadonlyMap<string, PathNode>;
}

/** A regex route with its compiled path. */
export interface RegexRoute {
  readonly route: Route;
  readonly pattern: RegExp;
}

/**
 * The routes of one host: Exact paths by their literal path, Prefix paths in a trie over path segments; or, on a
 * host whose paths are regexes, those in the order they are tried (longest path first, as ingress-nginx writes
 * them: the first that matches wins, whatever the length of the match). The host's default route is the trie's root.
 */
export interface HostRoutes {
  readonly exact: ReadonlyMap<string, Route>;
  readonly prefix: PathNode;
  readonly regex: readonly RegexRoute[];
}

/** A certificate and key from a `kubernetes.io/tls` Secret, checked to be a pair. */
export interface KeyPair {
  readonly secret: ObjectRef;
  /** PEM, possibly a chain */
  readonly cert: string;
  /** PEM */
  readonly key: string;
  /** sha256 over cert and key: equal ids mean the same pair */
  readonly id: string;
  /** the certificate's DNS subjectAltNames, lower case (clients ignore the subject CN) */
  readonly dnsNames: readonly string[];
}

export type DiagnosticReason =
  | "InvalidHost"
  | "InvalidPath"
  | "UnsupportedBackend"
  | "ServiceNotFound"
  | "ServicePortNotFound"
  | "RouteConflict"
  | "DefaultBackendConflict"
  | "SecretNotFound"
  | "InvalidCertificate"
  | "CertificateHostMismatch"
  | "TLSConflict"
  | "InvalidAnnotation"
  | "UnsupportedAnnotation"
  | "CanaryWithoutMain"
  | "CanaryConflict"
  | "PassthroughConflict"
  | "PassthroughWithoutRoot"
  | "PassthroughUnprotected";

/** A problem with one Ingress: reported as a Warning Event on it; never affects other Ingresses. */
export interface Diagnostic {
  readonly ingress: ObjectRef;
  readonly severity: "error" | "warning";
  readonly reason: DiagnosticReason;
  /** the field at fault, e.g. `spec.rules[0].http.paths[1].backend.service.name` */
  readonly field: string;
  readonly message: string;
}

export interface RouteTable {
  /** hosts without a wildcard, lower case */
  readonly exactHosts: ReadonlyMap<string, HostRoutes>;
  /** `*.foo.com` keyed by `foo.com` */
  readonly wildcardHosts: ReadonlyMap<string, HostRoutes>;
  /** rules without a host */
  readonly anyHost: HostRoutes | null;
  /** `server-alias`: a host served by another host's rules (alias → that host, a key of `exactHosts`) */
  readonly aliases: ReadonlyMap<string, string>;
  /** `from-to-www-redirect`: a host every request of which is redirected (308) to its www./non-www. twin */
  readonly wwwRedirects: ReadonlyMap<string, string>;
  /** the oldest Ingress `defaultBackend` */
  readonly defaultRoute: Route | null;
  /**
   * `ssl-passthrough`: TLS server name (lower case, a wildcard as `*.foo.com`, matching one label) → where its
   * connections go unterminated
   */
  readonly passthrough: ReadonlyMap<string, Passthrough>;
  readonly certificates: {
    readonly exactHosts: ReadonlyMap<string, KeyPair>;
    readonly wildcardHosts: ReadonlyMap<string, KeyPair>;
    /** from `--default-ssl-certificate`; null means the generated self-signed one */
    readonly fallback: KeyPair | null;
  };
  /** the Ingresses of our class, sorted */
  readonly ingresses: readonly ObjectRef[];
  readonly diagnostics: readonly Diagnostic[];
  /** per Ingress (`namespace/name`): what each of its annotations came to (`bollard migrate`, `explain`) */
  readonly annotations: ReadonlyMap<string, readonly AnnotationFinding[]>;
  /** why `--default-ssl-certificate` could not be used; null when fine or unset */
  readonly defaultCertificateError: string | null;
}
