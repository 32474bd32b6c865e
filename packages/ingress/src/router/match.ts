import { normalizePath, requestHost } from "./paths.ts";
import type { HostRoutes, KeyPair, Passthrough, Route, RouteTable } from "./table.ts";

/**
 * The route for a request: the host picks a set of rules first (exact host, else a `server-alias`, else the
 * one-label wildcard, else the host-less rules), then the path picks within it (an Exact path, else the longest
 * Prefix; on a host whose paths are regexes, the first regex that matches);
 * what no rule matches goes to the default backend, and without one the answer is null (404). The path is
 * the request target's path as sent (without the query); it is matched in its normalised form
 * (`normalizePath`), and one that does not normalise matches nothing.
 * Cost: two hash lookups plus one per path segment, whatever the number of Ingresses.
 */
export function matchRoute(table: RouteTable, hostHeader: string | undefined, path: string): Route | null {
  const normalized = normalizePath(path);
  return normalized === null ? null : matchNormalizedRoute(table, hostHeader, normalized);
}

/** `matchRoute` for a path already normalised (the proxy normalises first, to answer 400 to a broken path). */
export function matchNormalizedRoute(table: RouteTable, hostHeader: string | undefined, normalizedPath: string): Route | null {
  const rules = hostRules(table, requestHost(hostHeader));
  return (rules === null ? null : matchPath(rules, normalizedPath)) ?? table.defaultRoute;
}

function hostRules(table: RouteTable, host: string): HostRoutes | null {
  const exact = table.exactHosts.get(host);
  if (exact !== undefined) return exact;
  const alias = table.aliases.get(host);
  if (alias !== undefined) return table.exactHosts.get(alias) ?? null;
  const dot = host.indexOf(".");
  if (dot > 0) {
    const wildcard = table.wildcardHosts.get(host.slice(dot + 1));
    if (wildcard !== undefined) return wildcard;
  }
  return table.anyHost;
}

/** `path` is a normalised request path. */
function matchPath(rules: HostRoutes, path: string): Route | null {
  if (rules.regex.length > 0) {
    for (const r of rules.regex) if (r.pattern.test(path)) return r.route;
    return rules.prefix.route;
  }
  const exact = rules.exact.get(path);
  if (exact !== undefined) return exact; // an Exact match is at least as long as any Prefix match, and wins ties
  let node = rules.prefix;
  let best = node.route;
  const end = path.length;
  let i = 0;
  while (i < end) {
    while (i < end && path.charCodeAt(i) === 47 /* / */) i++;
    if (i >= end) break;
    let j = path.indexOf("/", i);
    if (j < 0) j = end;
    const child = node.children.get(path.slice(i, j));
    if (child === undefined) break;
    node = child;
    if (node.route !== null) best = node.route;
    i = j;
  }
  return best;
}

/** The certificate for a TLS server name: exact host, else one-label wildcard, else the fallback (or null). */
export function matchCertificate(table: RouteTable, serverName: string | undefined): KeyPair | null {
  const host = requestHost(serverName);
  if (host !== "") {
    const exact = table.certificates.exactHosts.get(host);
    if (exact !== undefined) return exact;
    const dot = host.indexOf(".");
    if (dot > 0) {
      const wildcard = table.certificates.wildcardHosts.get(host.slice(dot + 1));
      if (wildcard !== undefined) return wildcard;
    }
  }
  return table.certificates.fallback;
}

/** Where a TLS server name's connections are passed through (`ssl-passthrough`): exact host, else one-label wildcard. */
export function matchPassthrough(table: RouteTable, serverName: string | undefined): Passthrough | null {
  const host = requestHost(serverName);
  if (host === "" || table.passthrough.size === 0) return null;
  const exact = table.passthrough.get(host);
  if (exact !== undefined) return exact;
  const dot = host.indexOf(".");
  return dot > 0 ? (table.passthrough.get(`*${host.slice(dot)}`) ?? null) : null;
}
