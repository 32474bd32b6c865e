import { DEFAULT_POLICY, type RoutePolicy, type Template } from "../annotations/policy.ts";
import { templateText } from "../annotations/template.ts";
import { refKey } from "../model/objects.ts";
import type { Backend, HostRoutes, PathNode, Route, RouteTable } from "./table.ts";

/** What `bollard explain route` prints for one URL. */
export type RouteAnswer =
  | {
      match: true;
      namespace: string;
      ingress: string;
      host: string | null;
      path: string | null;
      pathType: string | null;
      service: string | null;
      port: number | string | null;
    }
  | { match: false; status: 404 };

export function describeMatch(route: Route | null): RouteAnswer {
  if (route === null) return { match: false, status: 404 };
  return {
    match: true,
    namespace: route.ingress.namespace,
    ingress: route.ingress.name,
    host: route.host,
    path: route.path,
    pathType: route.pathType,
    service: route.backend.service,
    port: route.backend.port,
  };
}

/**
 * A plain-JSON view of a route table for fixtures and debugging, one line per route:
 * `Prefix /api → shop/web api:http → 10.0.0.1:8080 10.0.0.3:8080 [ssl-redirect]`. Hosts and routes sorted.
 */
export function describeTable(table: RouteTable) {
  const hosts: Record<string, string[]> = {};
  const add = (name: string, rules: HostRoutes) => {
    const routes = [...rules.exact.values(), ...prefixRoutes(rules.prefix)];
    routes.sort((a, b) => compareStrings(`${a.path} ${a.pathType}`, `${b.path} ${b.pathType}`));
    // regex routes in the order they are tried, then the host's default
    hosts[name] = [...rules.regex.map((r) => r.route), ...routes].map(describeRoute);
  };
  for (const [host, rules] of [...table.exactHosts].sort(byKey)) add(host, rules);
  for (const [suffix, rules] of [...table.wildcardHosts].sort(byKey)) add(`*.${suffix}`, rules);
  if (table.anyHost !== null) add("(any host)", table.anyHost);
  const certificates: Record<string, string> = {};
  for (const [host, pair] of [...table.certificates.exactHosts].sort(byKey)) certificates[host] = refKey(pair.secret);
  for (const [suffix, pair] of [...table.certificates.wildcardHosts].sort(byKey)) certificates[`*.${suffix}`] = refKey(pair.secret);
  const extra: { aliases?: Record<string, string>; wwwRedirects?: Record<string, string>; passthrough?: Record<string, string> } = {};
  if (table.aliases.size > 0) extra.aliases = Object.fromEntries([...table.aliases].sort(byKey));
  if (table.wwwRedirects.size > 0) extra.wwwRedirects = Object.fromEntries([...table.wwwRedirects].sort(byKey));
  if (table.passthrough.size > 0) extra.passthrough = Object.fromEntries([...table.passthrough].sort(byKey).map(([host, p]) => [host, `${refKey(p.ingress)} ${describeBackend(p.backend)}`]));
  return {
    ingresses: table.ingresses.map(refKey),
    hosts,
    ...extra,
    defaultBackend: table.defaultRoute === null ? null : describeRoute(table.defaultRoute),
    certificates,
    diagnostics: table.diagnostics.map((d) => `${refKey(d.ingress)} ${d.severity} ${d.reason} ${d.field}: ${d.message}`),
  };
}

function describeRoute(route: Route): string {
  const where = route.pathType === null ? "default" : `${route.pathType} ${route.path}`;
  return `${where} → ${refKey(route.ingress)} ${describeBackend(route.backend)}${route.sslRedirect ? " [ssl-redirect]" : ""}${route.regex ? " [regex]" : ""}`;
}

function describeBackend(backend: Backend): string {
  const to =
    backend.unavailable !== null
      ? `503 (${backend.unavailable})`
      : backend.endpoints.length === 0
        ? "503 (no ready endpoint)"
        : backend.endpoints.map((e) => (e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`)).join(" ");
  return `${backend.service ?? "-"}:${backend.port ?? "-"} → ${to}`;
}

function prefixRoutes(node: PathNode): Route[] {
  const out: Route[] = node.route === null ? [] : [node.route];
  for (const child of node.children.values()) out.push(...prefixRoutes(child));
  return out;
}

const compareStrings = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byKey = (a: [string, unknown], b: [string, unknown]) => compareStrings(a[0], b[0]);

/**
 * What a route's policy asks beyond the defaults, for `explain route`: each area that is set, as plain JSON, with
 * secrets left out (password hashes, private keys and CA bundles are summarised, never printed).
 */
export function describePolicy(policy: RoutePolicy): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [area, value] of Object.entries(policy) as [keyof RoutePolicy, unknown][]) {
    const fallback = DEFAULT_POLICY[area];
    if (value === fallback || JSON.stringify(value) === JSON.stringify(fallback)) continue;
    out[area] = JSON.parse(JSON.stringify(value, redact));
  }
  return out;
}

const redacted = new Set(["hash", "key", "ca", "cert"]);
/** (JSON.stringify replacer: PEM and password hashes become a short mark of what was there) */
function redact(this: unknown, name: string, value: unknown): unknown {
  if (redacted.has(name) && typeof value === "string") return `(${name}, ${value.length} bytes)`;
  if ((name === "url" || name === "target" || name === "upstreamVhost" || name === "signin" || name === "hashBy") && Array.isArray(value)) return templateText(value as Template);
  return value;
}
