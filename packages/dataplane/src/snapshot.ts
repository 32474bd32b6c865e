// The snapshot: the one thing TypeScript hands the native data plane. Typed data only — hosts, paths,
// backends with endpoints, certificates and per-route policy — validated again on the native side
// (native/src/snapshot.rs mirrors these types) and swapped in whole.
import type { Backend, BalancePolicy, CanaryRule, KeyPair, ObjectRef, PathNode, Route, RoutePathType, RoutePolicy, RouteTable } from "@bollard/ingress";

/** Bumped whenever a field changes meaning; the native side refuses other versions. */
export const SNAPSHOT_VERSION = 2;

export interface DataPlaneSnapshot {
  version: typeof SNAPSHOT_VERSION;
  /**
   * every host that has rules, also those without paths (a named host is claimed: its requests never fall to
   * wildcard or host-less rules); lower case, wildcards as `*.foo.com`
   */
  hosts: string[];
  /** `server-alias`: hosts served by another host's rules (`host` is one of `hosts`) */
  aliases: { alias: string; host: string }[];
  /** `from-to-www-redirect`: hosts (in neither `hosts` nor the aliases) redirected (308) to their twin `to` */
  wwwRedirects: { from: string; to: string }[];
  routes: SnapshotRoute[];
  /** what the routes' Ingress annotations ask, each distinct policy once (native/src/policy/ executes them) */
  policies: NativePolicy[];
  /** index into `routes` of the Ingress `defaultBackend` route; null: 404 for what no rule matches */
  defaultRoute: number | null;
  backends: SnapshotBackend[];
  certificates: SnapshotCertificate[];
  tls: {
    /** SNI → certificate; wildcard hosts as `*.foo.com` */
    hosts: { host: string; certificate: number }[];
    /** `--default-ssl-certificate`; null means the generated self-signed one */
    fallback: number | null;
  };
  /**
   * `ssl-passthrough`: TLS server names (lower case, a wildcard as `*.foo.com`) whose connections go to
   * `backends[backend]` unterminated
   */
  passthrough: { host: string; ingress: { namespace: string; name: string }; backend: number; policy: number }[];
}

export interface SnapshotRoute {
  ingress: { namespace: string; name: string };
  /** the rule's host as written (`*.foo.com` for a wildcard); null for host-less rules and the default route */
  host: string | null;
  /**
   * the rule's path as written (the native side normalises it as it normalises requests); null with a null
   * pathType for the default route and for a host's default (its Ingress's defaultBackend, below its rules)
   */
  path: string | null;
  pathType: RoutePathType | null;
  /** index into `backends` */
  backend: number;
  /** index into `policies` */
  policy: number;
  /** plain-HTTP requests get a 308 to HTTPS */
  sslRedirect: boolean;
  /** a canary Ingress's backend that may serve instead (at most one) */
  canaries: SnapshotCanary[];
  /** index into `backends`: `default-backend`, answering `custom-http-errors` and while `backend` has no endpoints */
  errorBackend: number | null;
  /**
   * the path is a case-insensitive regex anchored at the start; a host's regex routes are tried longest path
   * first (then the greater path in byte order, then Exact before the others)
   */
  regex: boolean;
}

export interface SnapshotCanary {
  ingress: { namespace: string; name: string };
  /** index into `backends` */
  backend: number;
  rule: CanaryRule;
  /** the canary Ingress's own choice of endpoint (affinity, hash); the route's policy does the rest */
  balance: BalancePolicy | null;
}

/** A policy as the data plane reads it: without what the compiler already acted on (canary, service-upstream). */
export type NativePolicy = Omit<RoutePolicy, "canary" | "serviceUpstream" | "sslPassthrough">;

const nativePolicy = ({ canary: _canary, serviceUpstream: _serviceUpstream, sslPassthrough: _sslPassthrough, ...rest }: RoutePolicy): NativePolicy => rest;

export interface SnapshotBackend {
  namespace: string;
  service: string | null;
  port: number | string | null;
  /** ready endpoints (IP or DNS name, port); empty means 503 */
  endpoints: { host: string; port: number }[];
  unavailable: string | null;
}

export interface SnapshotCertificate {
  secret: { namespace: string; name: string };
  id: string;
  /** PEM, possibly a chain */
  cert: string;
  /** PEM */
  key: string;
}

/** A snapshot and the table objects its indexes stand for (to read answers back as the compiler's objects). */
export interface TableSnapshot {
  snapshot: DataPlaneSnapshot;
  routes: readonly Route[];
  certificates: readonly KeyPair[];
}

/** The snapshot of a compiled route table. Pure; each Route, Backend and KeyPair appears once. */
export function snapshotFromTable(table: RouteTable): TableSnapshot {
  const routes: Route[] = [];
  const routeIndex = new Map<Route, number>();
  const backends: Backend[] = [];
  const backendIndex = new Map<Backend, number>();
  const policies: RoutePolicy[] = [];
  const policyIndex = new Map<RoutePolicy, number>();
  const addBackend = (backend: Backend) => {
    if (!backendIndex.has(backend)) backendIndex.set(backend, backends.push(backend) - 1);
  };
  const addRoute = (route: Route): number => {
    let i = routeIndex.get(route);
    if (i === undefined) {
      i = routes.push(route) - 1;
      routeIndex.set(route, i);
      addBackend(route.backend);
      for (const c of route.canaries) addBackend(c.backend);
      if (route.errorBackend !== null) addBackend(route.errorBackend);
      if (!policyIndex.has(route.policy)) policyIndex.set(route.policy, policies.push(route.policy) - 1);
    }
    return i;
  };
  const addHost = (rules: { exact: ReadonlyMap<string, Route>; prefix: PathNode; regex: readonly { route: Route }[] }) => {
    for (const r of rules.regex) addRoute(r.route);
    for (const route of rules.exact.values()) addRoute(route);
    const walk = (node: PathNode) => {
      if (node.route !== null) addRoute(node.route);
      for (const child of node.children.values()) walk(child);
    };
    walk(rules.prefix);
  };
  for (const rules of table.exactHosts.values()) addHost(rules);
  for (const rules of table.wildcardHosts.values()) addHost(rules);
  if (table.anyHost !== null) addHost(table.anyHost);
  const defaultRoute = table.defaultRoute === null ? null : addRoute(table.defaultRoute);
  for (const p of table.passthrough.values()) {
    addBackend(p.backend);
    if (!policyIndex.has(p.policy)) policyIndex.set(p.policy, policies.push(p.policy) - 1);
  }

  const certificates: KeyPair[] = [];
  const certificateIndex = new Map<string, number>();
  const addCertificate = (pair: KeyPair): number => {
    let i = certificateIndex.get(pair.id);
    if (i === undefined) {
      i = certificates.push(pair) - 1;
      certificateIndex.set(pair.id, i);
    }
    return i;
  };
  const tlsHosts: { host: string; certificate: number }[] = [];
  for (const [host, pair] of table.certificates.exactHosts) tlsHosts.push({ host, certificate: addCertificate(pair) });
  for (const [suffix, pair] of table.certificates.wildcardHosts) tlsHosts.push({ host: `*.${suffix}`, certificate: addCertificate(pair) });
  const fallback = table.certificates.fallback === null ? null : addCertificate(table.certificates.fallback);

  const snapshot: DataPlaneSnapshot = {
    version: SNAPSHOT_VERSION,
    hosts: [...table.exactHosts.keys(), ...[...table.wildcardHosts.keys()].map((suffix) => `*.${suffix}`)],
    aliases: [...table.aliases].map(([alias, host]) => ({ alias, host })),
    wwwRedirects: [...table.wwwRedirects].map(([from, to]) => ({ from, to })),
    routes: routes.map((r) => ({
      ingress: refOf(r.ingress),
      host: r.host,
      path: r.path,
      pathType: r.pathType,
      backend: backendIndex.get(r.backend) as number,
      policy: policyIndex.get(r.policy) as number,
      sslRedirect: r.sslRedirect,
      canaries: r.canaries.map((c) => ({ ingress: refOf(c.ingress), backend: backendIndex.get(c.backend) as number, rule: c.rule, balance: c.balance })),
      errorBackend: r.errorBackend === null ? null : (backendIndex.get(r.errorBackend) as number),
      regex: r.regex,
    })),
    policies: policies.map(nativePolicy),
    defaultRoute,
    backends: backends.map((b) => ({
      namespace: b.namespace,
      service: b.service,
      port: b.port,
      endpoints: b.endpoints.map((e) => ({ host: e.host, port: e.port })),
      unavailable: b.unavailable,
    })),
    certificates: certificates.map((c) => ({ secret: refOf(c.secret), id: c.id, cert: c.cert, key: c.key })),
    tls: { hosts: tlsHosts, fallback },
    passthrough: [...table.passthrough].map(([host, p]) => ({ host, ingress: refOf(p.ingress), backend: backendIndex.get(p.backend) as number, policy: policyIndex.get(p.policy) as number })),
  };
  return { snapshot, routes, certificates };
}

const refOf = (ref: ObjectRef) => ({ namespace: ref.namespace, name: ref.name });
