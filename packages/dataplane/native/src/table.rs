//! The validated, immutable form of a snapshot that requests are matched against. Built once per swap.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use regex::bytes::{Captures, Regex, RegexBuilder};
use rustls::sign::CertifiedKey;

use crate::metrics::TableCounters;
use crate::paths::{is_valid_rule_host, normalize_path, segments};
use crate::tls::certified_key;
use crate::policy::balance::endpoint_id;
use crate::policy::canary::{self, Canary};
use crate::policy::{self, Policy};
use crate::snapshot::{BackendSpec, ObjectRef, PathType, PortRef, Snapshot, SNAPSHOT_VERSION};

/// The compiled size a regex path may take (the TypeScript side keeps paths far below it).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a snapshot was refused: the field at fault (a JSON path into the snapshot) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SnapshotError {
    SnapshotError { field: field.into(), message: message.into() }
}

pub struct Route {
    pub ingress: ObjectRef,
    pub host: Option<String>,
    pub path: Option<String>,
    pub path_type: Option<PathType>,
    pub backend: usize,
    /// index into `Table::policies`
    pub policy: usize,
    /// plain-HTTP requests get a 308 to HTTPS
    pub ssl_redirect: bool,
    /// a canary Ingress's backend that may serve instead (empty for nearly every route: nothing to allocate)
    pub canaries: Vec<Canary>,
    /// index into `backends`: the route's `default-backend`
    pub error_backend: Option<usize>,
    /// a regex route's path as matched: `^PATH`, case-insensitive (ingress-nginx's `location ~* "^PATH"`)
    pub pattern: Option<Regex>,
}

pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// `host:port`, bracketed for IPv6: the upstream authority
    pub authority: String,
    /// `authority` parsed once, for the upstream request's URI
    pub uri_authority: hyper::http::uri::Authority,
    /// what a session cookie holds for this endpoint, and what upstream-hash-by scores (policy/balance.rs)
    pub id: u64,
}

pub struct Backend {
    pub namespace: String,
    pub service: Option<String>,
    pub port: Option<PortRef>,
    pub endpoints: Vec<Endpoint>,
    next: AtomicUsize,
}

impl Backend {
    /// Round-robin over the endpoints; None when there is none.
    pub fn next_endpoint(&self) -> Option<&Endpoint> {
        self.next_index().and_then(|i| self.endpoints.get(i))
    }

    /// `next_endpoint`'s index.
    pub fn next_index(&self) -> Option<usize> {
        match self.endpoints.len() {
            0 => None,
            // (no shared count to bump, from any thread, when there is nothing to choose)
            1 => Some(0),
            len => Some(self.next.fetch_add(1, Ordering::Relaxed) % len),
        }
    }
}

#[derive(Default)]
struct PathNode {
    route: Option<usize>,
    children: HashMap<Vec<u8>, PathNode>,
}

/// The routes of one host: Exact paths by their normalised bytes, Prefix paths in a trie over elements.
#[derive(Default)]
pub struct HostRoutes {
    exact: HashMap<Vec<u8>, usize>,
    prefix: PathNode,
    /// on a host whose paths are regexes: its routes in the order they are tried (the first match wins)
    regex: Vec<usize>,
    /// the host's default route: what its rules do not match (a `/` Prefix rule beats it)
    default: Option<usize>,
}

pub struct Certificate {
    pub secret: ObjectRef,
    pub id: String,
    pub cert: String,
    pub key: String,
}

pub struct Table {
    pub routes: Vec<Route>,
    /// what the routes' annotations ask, compiled; a route names one by index
    pub policies: Vec<Policy>,
    pub backends: Vec<Backend>,
    exact_hosts: HashMap<Vec<u8>, HostRoutes>,
    /// `*.foo.com` keyed by `foo.com`
    wildcard_hosts: HashMap<Vec<u8>, HostRoutes>,
    any_host: Option<HostRoutes>,
    /// `server-alias` → the host (a key of `exact_hosts`) whose rules serve it
    aliases: HashMap<Vec<u8>, Vec<u8>>,
    /// `from-to-www-redirect`: host → the twin its requests are redirected to
    www_redirects: HashMap<Vec<u8>, String>,
    default_route: Option<usize>,
    pub certificates: Vec<Certificate>,
    /// `certificates`, parsed for the TLS handshake
    pub certified: Vec<Arc<CertifiedKey>>,
    cert_exact: HashMap<Vec<u8>, usize>,
    cert_wildcard: HashMap<Vec<u8>, usize>,
    pub cert_fallback: Option<usize>,
    /// responses counted per route (by Ingress and Service, kept across swaps); attached by `RouteMetrics`
    pub counters: TableCounters,
    /// TLS host → the policy whose client certificate check its handshake prepares (policy/client_tls.rs)
    pub client_tls_hosts: HashMap<Vec<u8>, usize>,
    /// `ssl-passthrough`, by exact host and by a wildcard's suffix; empty in nearly every table, and then no
    /// ClientHello is read ahead of the handshake
    passthrough_exact: HashMap<Vec<u8>, Passthrough>,
    passthrough_wildcard: HashMap<Vec<u8>, Passthrough>,
}

/// Where the TLS connections to a passthrough host go.
pub struct Passthrough {
    pub ingress: ObjectRef,
    /// index into `backends`
    pub backend: usize,
    /// index into `policies`: the passthrough Ingress's
    pub policy: Option<usize>,
}

impl Table {
    pub fn empty() -> Table {
        Table {
            routes: Vec::new(),
            policies: Vec::new(),
            backends: Vec::new(),
            exact_hosts: HashMap::new(),
            wildcard_hosts: HashMap::new(),
            any_host: None,
            aliases: HashMap::new(),
            www_redirects: HashMap::new(),
            default_route: None,
            certificates: Vec::new(),
            certified: Vec::new(),
            cert_exact: HashMap::new(),
            cert_wildcard: HashMap::new(),
            cert_fallback: None,
            counters: TableCounters::default(),
            client_tls_hosts: HashMap::new(),
            passthrough_exact: HashMap::new(),
            passthrough_wildcard: HashMap::new(),
        }
    }

    /// Checks a snapshot completely and builds its lookup structures; any fault refuses the whole snapshot
    /// (the caller keeps serving the previous table).
    pub fn build(snapshot: Snapshot) -> Result<Table, SnapshotError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(invalid("version", format!("snapshot version {} is not {SNAPSHOT_VERSION}, the version this data plane reads", snapshot.version)));
        }
        let backends = snapshot.backends.into_iter().enumerate().map(|(i, b)| backend_of(b, i)).collect::<Result<Vec<_>, _>>()?;
        let policies = snapshot
            .policies
            .into_iter()
            .enumerate()
            .map(|(i, p)| policy::compile(p).map_err(|(area, message)| invalid(format!("policies[{i}].{area}"), message)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut table = Table { backends, policies, ..Table::empty() };
        for (i, h) in snapshot.hosts.iter().enumerate() {
            let lower = h.to_ascii_lowercase();
            if !is_valid_rule_host(&lower) {
                return Err(invalid(format!("hosts[{i}]"), format!("host {h:?} is not a DNS name with at most one leading \"*\" label")));
            }
            match lower.strip_prefix("*.") {
                Some(suffix) => table.wildcard_hosts.entry(suffix.as_bytes().to_vec()).or_default(),
                None => table.exact_hosts.entry(lower.into_bytes()).or_default(),
            };
        }
        table.routes.reserve(snapshot.routes.len());
        for (i, spec) in snapshot.routes.into_iter().enumerate() {
            // (the field's name is made only for an error: this loop runs once per route of the cluster)
            let field = || format!("routes[{i}]");
            if spec.backend >= table.backends.len() {
                return Err(invalid(format!("{}.backend", field()), format!("backend {} does not exist ({} backends)", spec.backend, table.backends.len())));
            }
            if spec.policy >= table.policies.len() {
                return Err(invalid(format!("{}.policy", field()), format!("policy {} does not exist ({} policies)", spec.policy, table.policies.len())));
            }
            if spec.error_backend.is_some_and(|b| b >= table.backends.len()) {
                return Err(invalid(format!("{}.errorBackend", field()), format!("backend {:?} does not exist ({} backends)", spec.error_backend, table.backends.len())));
            }
            let canaries = spec
                .canaries
                .into_iter()
                .enumerate()
                .map(|(j, c)| canary::compile(c, table.backends.len()).map_err(|m| invalid(format!("{}.canaries[{j}]", field()), m)))
                .collect::<Result<Vec<_>, _>>()?;
            let mut route = Route { ingress: spec.ingress, host: spec.host, path: spec.path, path_type: spec.path_type, backend: spec.backend, policy: spec.policy, ssl_redirect: spec.ssl_redirect, canaries, error_backend: spec.error_backend, pattern: None };
            if spec.regex && route.path.is_none() {
                return Err(invalid(format!("{}.regex", field()), "a route without a path has no regex"));
            }
            if Some(i) == snapshot.default_route {
                if route.host.is_some() || route.path.is_some() || route.path_type.is_some() {
                    return Err(invalid(field(), "the default route has no host, path or pathType"));
                }
                table.routes.push(route);
                continue;
            }
            if route.path.is_none() && route.path_type.is_none() {
                let Some(h) = route.host.as_deref() else {
                    return Err(invalid(field(), "a route without host and path is the default route, and defaultRoute does not name it"));
                };
                let lower = h.to_ascii_lowercase();
                let rules = match lower.strip_prefix("*.") {
                    Some(suffix) => table.wildcard_hosts.get_mut(suffix.as_bytes()),
                    None => table.exact_hosts.get_mut(lower.as_bytes()),
                };
                let Some(rules) = rules else {
                    return Err(invalid(format!("{}.host", field()), format!("host {h:?} has a default route but is not in hosts")));
                };
                if let Some(holder) = rules.default.replace(i) {
                    return Err(invalid(field(), format!("host {h:?} already has its default route, routes[{holder}]")));
                }
                table.routes.push(route);
                continue;
            }
            let (Some(path), Some(path_type)) = (route.path.as_deref(), route.path_type) else {
                return Err(invalid(field(), "a rule route needs a path and a pathType"));
            };
            // (an Ingress whose annotations make its hosts' paths regexes has no other kind of rule route)
            if !spec.regex && table.policies[spec.policy].rewrite.as_ref().is_some_and(|r| r.use_regex || r.target.is_some()) {
                return Err(invalid(format!("{}.regex", field()), "the route's policy makes its path a regex (use-regex or rewrite-target), and the route is not one"));
            }
            let host = match route.host.as_deref() {
                None => None,
                Some(h) => {
                    let lower = h.to_ascii_lowercase();
                    if !is_valid_rule_host(&lower) {
                        return Err(invalid(format!("{}.host", field()), format!("host {h:?} is not a DNS name with at most one leading \"*\" label")));
                    }
                    Some(lower)
                }
            };
            let rules = match host.as_deref() {
                None => table.any_host.get_or_insert_with(HostRoutes::default),
                Some(h) => match h.strip_prefix("*.") {
                    Some(suffix) => table.wildcard_hosts.entry(suffix.as_bytes().to_vec()).or_default(),
                    None => table.exact_hosts.entry(h.as_bytes().to_vec()).or_default(),
                },
            };
            if spec.regex {
                let pattern = regex_path(path).map_err(|m| invalid(format!("{}.path", field()), m))?;
                route.pattern = Some(pattern);
                rules.regex.push(i);
                table.routes.push(route);
                continue;
            }
            let Some(normalized) = normalize_path(path.as_bytes()) else {
                return Err(invalid(format!("{}.path", field()), format!("path {path:?} does not normalise (no leading \"/\", a malformed %-escape, an encoded NUL or a \"..\" above the root)")));
            };
            // Two routes on one host with the same type and path: the compiler resolves conflicts before the data
            // plane sees them, so this is a broken snapshot, refused.
            let holder = if path_type == PathType::Exact {
                rules.exact.insert(normalized.to_vec(), i)
            } else {
                let mut node = &mut rules.prefix;
                for s in segments(&normalized) {
                    node = node.children.entry(s.to_vec()).or_default();
                }
                node.route.replace(i)
            };
            if let Some(holder) = holder {
                return Err(invalid(field(), format!("host {} path {path:?} is already routes[{holder}]: the compiler resolves conflicts before the data plane sees them", host.as_deref().unwrap_or("*"))));
            }
            table.routes.push(route);
        }
        let routes = &table.routes;
        for rules in table.exact_hosts.values_mut().chain(table.wildcard_hosts.values_mut()).chain(table.any_host.as_mut()) {
            rules.regex.sort_by(|&a, &b| regex_order(&routes[a], &routes[b]));
            if let Some(w) = rules.regex.windows(2).find(|w| regex_order(&routes[w[0]], &routes[w[1]]) == std::cmp::Ordering::Equal) {
                return Err(invalid(format!("routes[{}]", w[1]), format!("its regex path is already routes[{}]: the compiler resolves conflicts before the data plane sees them", w[0])));
            }
        }
        for (i, a) in snapshot.aliases.into_iter().enumerate() {
            let alias = a.alias.to_ascii_lowercase();
            let host = a.host.to_ascii_lowercase();
            if !is_valid_rule_host(&alias) || alias.starts_with('*') {
                return Err(invalid(format!("aliases[{i}].alias"), format!("{:?} is not a DNS name", a.alias)));
            }
            if table.exact_hosts.contains_key(alias.as_bytes()) {
                return Err(invalid(format!("aliases[{i}].alias"), format!("{:?} is a host of its own", a.alias)));
            }
            if !table.exact_hosts.contains_key(host.as_bytes()) {
                return Err(invalid(format!("aliases[{i}].host"), format!("{:?} is not in hosts", a.host)));
            }
            if table.aliases.insert(alias.into_bytes(), host.into_bytes()).is_some() {
                return Err(invalid(format!("aliases[{i}].alias"), format!("{:?} is aliased twice", a.alias)));
            }
        }
        for (i, w) in snapshot.www_redirects.into_iter().enumerate() {
            let from = w.from.to_ascii_lowercase();
            let to = w.to.to_ascii_lowercase();
            if !is_valid_rule_host(&from) || from.starts_with('*') || table.exact_hosts.contains_key(from.as_bytes()) || table.aliases.contains_key(from.as_bytes()) {
                return Err(invalid(format!("wwwRedirects[{i}].from"), format!("{:?} is not a DNS name, or is a host or an alias", w.from)));
            }
            if !is_valid_rule_host(&to) || to.starts_with('*') {
                return Err(invalid(format!("wwwRedirects[{i}].to"), format!("{:?} is not a DNS name", w.to)));
            }
            table.www_redirects.insert(from.into_bytes(), to);
        }
        if let Some(d) = snapshot.default_route {
            if d >= table.routes.len() {
                return Err(invalid("defaultRoute", format!("route {d} does not exist ({} routes)", table.routes.len())));
            }
            table.default_route = Some(d);
        }
        for (i, c) in snapshot.certificates.into_iter().enumerate() {
            let certified = certified_key(&c.cert, &c.key).map_err(|m| invalid(format!("certificates[{i}]"), m))?;
            table.certified.push(certified);
            table.certificates.push(Certificate { secret: c.secret, id: c.id, cert: c.cert, key: c.key });
        }
        let certs = table.certificates.len();
        for (i, t) in snapshot.tls.hosts.into_iter().enumerate() {
            let lower = t.host.to_ascii_lowercase();
            if !is_valid_rule_host(&lower) {
                return Err(invalid(format!("tls.hosts[{i}].host"), format!("host {:?} is not a DNS name with at most one leading \"*\" label", t.host)));
            }
            if t.certificate >= certs {
                return Err(invalid(format!("tls.hosts[{i}].certificate"), format!("certificate {} does not exist ({certs} certificates)", t.certificate)));
            }
            match lower.strip_prefix("*.") {
                Some(suffix) => table.cert_wildcard.insert(suffix.as_bytes().to_vec(), t.certificate),
                None => table.cert_exact.insert(lower.into_bytes(), t.certificate),
            };
        }
        if let Some(f) = snapshot.tls.fallback {
            if f >= certs {
                return Err(invalid("tls.fallback", format!("certificate {f} does not exist ({certs} certificates)")));
            }
            table.cert_fallback = Some(f);
        }
        table.client_tls_hosts = policy::client_tls::hosts(&table.routes, &table.policies);
        for (i, p) in snapshot.passthrough.into_iter().enumerate() {
            let lower = p.host.to_ascii_lowercase();
            if !is_valid_rule_host(&lower) {
                return Err(invalid(format!("passthrough[{i}].host"), format!("host {:?} is not a DNS name with at most one leading \"*\" label", p.host)));
            }
            if p.backend >= table.backends.len() {
                return Err(invalid(format!("passthrough[{i}].backend"), format!("backend {} does not exist ({} backends)", p.backend, table.backends.len())));
            }
            if p.policy.is_some_and(|k| k >= table.policies.len()) {
                return Err(invalid(format!("passthrough[{i}].policy"), format!("policy {:?} does not exist ({} policies)", p.policy, table.policies.len())));
            }
            let pass = Passthrough { ingress: p.ingress, backend: p.backend, policy: p.policy };
            let held = match lower.strip_prefix("*.") {
                Some(suffix) => table.passthrough_wildcard.insert(suffix.as_bytes().to_vec(), pass),
                None => table.passthrough_exact.insert(lower.into_bytes(), pass),
            };
            if held.is_some() {
                return Err(invalid(format!("passthrough[{i}].host"), format!("host {:?} is passed through twice: the compiler resolves conflicts before the data plane sees them", p.host)));
            }
        }
        Ok(table)
    }

    /// The route for a normalised path on a (normalised) request host: exact host, else the one-label
    /// wildcard, else the host-less rules; within them an Exact path, else the longest Prefix; else the
    /// default route. None: 404.
    pub fn match_route(&self, host: &[u8], path: &[u8]) -> Option<usize> {
        self.host_rules(host).and_then(|rules| match_path(rules, path, &self.routes)).or(self.default_route)
    }

    fn host_rules(&self, host: &[u8]) -> Option<&HostRoutes> {
        if let Some(rules) = self.exact_hosts.get(host) {
            return Some(rules);
        }
        if let Some(target) = self.aliases.get(host) {
            return self.exact_hosts.get(target);
        }
        if let Some(dot) = host.iter().position(|&b| b == b'.') {
            if dot > 0 {
                if let Some(rules) = self.wildcard_hosts.get(&host[dot + 1..]) {
                    return Some(rules);
                }
            }
        }
        self.any_host.as_ref()
    }

    /// The twin host a request for `host` is redirected to (`from-to-www-redirect`).
    pub fn www_redirect(&self, host: &[u8]) -> Option<&str> {
        if self.www_redirects.is_empty() {
            return None;
        }
        self.www_redirects.get(host).map(String::as_str)
    }

    /// The groups of a regex route's match on a normalised path (`$1`…); None for other routes.
    pub fn captures<'p>(&self, route: usize, path: &'p [u8]) -> Option<Captures<'p>> {
        self.routes.get(route)?.pattern.as_ref()?.captures(path)
    }

    /// An Ingress names a certificate for this host (the fallback and the generated one do not count).
    pub fn has_certificate_for(&self, host: &[u8]) -> bool {
        if self.cert_exact.contains_key(host) {
            return true;
        }
        host.iter().position(|&b| b == b'.').is_some_and(|dot| dot > 0 && self.cert_wildcard.contains_key(&host[dot + 1..]))
    }

    /// Some host's TLS connections are passed through (`ssl-passthrough`): ClientHellos are read ahead.
    pub fn has_passthrough(&self) -> bool {
        !self.passthrough_exact.is_empty() || !self.passthrough_wildcard.is_empty()
    }

    /// Where a TLS server name's connections are passed through to: exact host, else one-label wildcard.
    pub fn match_passthrough(&self, server_name: &[u8]) -> Option<&Passthrough> {
        if let Some(p) = self.passthrough_exact.get(server_name) {
            return Some(p);
        }
        let dot = server_name.iter().position(|&b| b == b'.').filter(|&d| d > 0)?;
        self.passthrough_wildcard.get(&server_name[dot + 1..])
    }

    /// The certificate for a TLS server name: exact host, else one-label wildcard, else the fallback.
    pub fn match_certificate(&self, server_name: &[u8]) -> Option<usize> {
        if !server_name.is_empty() {
            if let Some(&c) = self.cert_exact.get(server_name) {
                return Some(c);
            }
            if let Some(dot) = server_name.iter().position(|&b| b == b'.') {
                if dot > 0 {
                    if let Some(&c) = self.cert_wildcard.get(&server_name[dot + 1..]) {
                        return Some(c);
                    }
                }
            }
        }
        self.cert_fallback
    }
}

/// Compiles a regex path as ingress-nginx writes it for nginx (`~* "^PATH"`), in the dialect the TypeScript side
/// validated: ASCII case folding, `.` matching neither `\r` nor `\n` (as JavaScript's), on the path's bytes.
pub(crate) fn regex_path(path: &str) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^{path}"))
        .case_insensitive(true)
        .unicode(false)
        .crlf(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("path {path:?} is not a regex this data plane reads: {e}"))
}

/// ingress-nginx's order of a server's locations, which it tries in turn: the longer path first, then the greater
/// (byte order), then Exact before the others. Mirrors `compareRegexRoutes` in compile.ts.
fn regex_order(a: &Route, b: &Route) -> std::cmp::Ordering {
    let (pa, pb) = (a.path.as_deref().unwrap_or(""), b.path.as_deref().unwrap_or(""));
    let exact_last = |r: &Route| r.path_type != Some(PathType::Exact);
    pb.len().cmp(&pa.len()).then_with(|| pb.as_bytes().cmp(pa.as_bytes())).then_with(|| exact_last(a).cmp(&exact_last(b)))
}

fn match_path(rules: &HostRoutes, path: &[u8], routes: &[Route]) -> Option<usize> {
    if !rules.regex.is_empty() {
        let hit = rules.regex.iter().copied().find(|&r| routes[r].pattern.as_ref().is_some_and(|p| p.is_match(path)));
        return hit.or(rules.prefix.route).or(rules.default);
    }
    if let Some(&exact) = rules.exact.get(path) {
        return Some(exact); // an Exact match is at least as long as any Prefix match, and wins ties
    }
    let mut node = &rules.prefix;
    let mut best = node.route.or(rules.default);
    for s in segments(path) {
        match node.children.get(s) {
            None => break,
            Some(child) => {
                node = child;
                if node.route.is_some() {
                    best = node.route;
                }
            }
        }
    }
    best
}

fn backend_of(b: BackendSpec, i: usize) -> Result<Backend, SnapshotError> {
    let mut endpoints = Vec::with_capacity(b.endpoints.len());
    for (j, e) in b.endpoints.into_iter().enumerate() {
        let field = format!("backends[{i}].endpoints[{j}]");
        let port = u16::try_from(e.port).ok().filter(|&p| p > 0).ok_or_else(|| invalid(format!("{field}.port"), format!("port {} is not 1-65535", e.port)))?;
        let valid_host = !e.host.is_empty() && e.host.len() <= 253 && e.host.bytes().all(|c| c.is_ascii_alphanumeric() || b".-:_".contains(&c));
        if !valid_host {
            return Err(invalid(format!("{field}.host"), format!("{:?} is not an IP address or DNS name", e.host)));
        }
        let authority = if e.host.contains(':') { format!("[{}]:{port}", e.host) } else { format!("{}:{port}", e.host) };
        let uri_authority = authority.parse().map_err(|_| invalid(format!("{field}.host"), format!("{:?} is not an IP address or DNS name", e.host)))?;
        let id = endpoint_id(&authority);
        endpoints.push(Endpoint { host: e.host, port, authority, uri_authority, id });
    }
    if b.unavailable.is_some() && !endpoints.is_empty() {
        return Err(invalid(format!("backends[{i}].unavailable"), "a backend the configuration leaves without endpoints cannot list endpoints"));
    }
    Ok(Backend { namespace: b.namespace, service: b.service, port: b.port, endpoints, next: AtomicUsize::new(0) })
}

#[cfg(test)]
pub mod tests_support {
    use super::*;

    /// A backend of these hosts on port 80.
    pub fn backend_with(hosts: &[&str]) -> Backend {
        let spec = BackendSpec { namespace: "d".into(), service: Some("s".into()), port: None, endpoints: hosts.iter().map(|h| crate::snapshot::EndpointSpec { host: (*h).into(), port: 80 }).collect(), unavailable: None };
        backend_of(spec, 0).expect("valid endpoints")
    }
}
