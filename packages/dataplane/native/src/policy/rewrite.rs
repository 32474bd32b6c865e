//! rewrite-target (with the route's regex captures), x-forwarded-prefix, upstream-vhost: what changes in the
//! request sent upstream.

use hyper::header::{HeaderMap, HeaderValue};
use regex::bytes::Captures;
use serde::Deserialize;

use super::template::{expand, Template, TemplatePart, Vars};
use crate::paths::{normalize_path, request_host};
use crate::table::Table;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RewriteSpec {
    /// the routes of the Ingress are regex routes (checked when the table is built)
    pub use_regex: bool,
    pub target: Option<Template>,
    pub forwarded_prefix: Option<String>,
    pub upstream_vhost: Option<Template>,
}

/// As requests use it (compiled once per snapshot).
pub struct Rewrite {
    pub use_regex: bool,
    pub target: Option<Template>,
    pub forwarded_prefix: Option<HeaderValue>,
    pub upstream_vhost: Option<Template>,
    /// a template names a request value: only then are the variables worked out per request
    reads_request: bool,
}

pub fn compile(spec: RewriteSpec) -> Result<Rewrite, String> {
    let forwarded_prefix = match spec.forwarded_prefix {
        None => None,
        Some(p) => Some(HeaderValue::from_str(&p).map_err(|_| format!("x-forwarded-prefix {p:?} is not a header value"))?),
    };
    if spec.upstream_vhost.as_deref().is_some_and(|t| t.iter().any(|p| matches!(p, TemplatePart::Capture { .. }))) {
        return Err("upstream-vhost has no regex captures".into());
    }
    let reads_request = [&spec.target, &spec.upstream_vhost].into_iter().flatten().flatten().any(|p| !matches!(p, TemplatePart::Text { .. } | TemplatePart::Capture { .. }));
    Ok(Rewrite { use_regex: spec.use_regex, target: spec.target, forwarded_prefix, upstream_vhost: spec.upstream_vhost, reads_request })
}

/// What the upstream request gets instead of the client's.
#[derive(Default)]
pub struct UpstreamEdits {
    /// the request target (path and query)
    pub target: Option<Vec<u8>>,
    /// the Host header
    pub host: Option<Vec<u8>>,
    pub forwarded_prefix: Option<HeaderValue>,
}

/// The request as the rewrite's variables see it.
pub struct RequestFacts<'a> {
    /// the Host header (or `:authority`) as sent
    pub host: Option<&'a [u8]>,
    /// the request target as sent (origin-form)
    pub target: &'a [u8],
    pub secure: bool,
    pub remote_addr: &'a str,
    pub method: &'a str,
    pub server_port: u16,
    pub headers: &'a HeaderMap,
}

/// The edits the route's policy asks of its upstream request (none without a rewrite; nothing is computed then).
pub fn route_edits(table: &Table, route: usize, req: &RequestFacts<'_>) -> UpstreamEdits {
    let r = &table.routes[route];
    let Some(rewrite) = &table.policies[r.policy].rewrite else {
        return UpstreamEdits::default();
    };
    if rewrite.target.is_none() && rewrite.upstream_vhost.is_none() && rewrite.forwarded_prefix.is_none() {
        return UpstreamEdits::default();
    }
    let path = req.target.iter().position(|&b| b == b'?').map_or(req.target, |q| &req.target[..q]);
    // (`decide` already refused a path that does not normalise)
    let normalized = normalize_path(path).unwrap_or_default();
    let captures = if rewrite.target.is_some() { table.captures(route, &normalized) } else { None };
    if !rewrite.reads_request {
        // text and regex groups only (`/$1`): no variable to work out
        return upstream_edits(rewrite, &Vars::default(), req.target, captures.as_ref());
    }
    let host = String::from_utf8_lossy(&req.host.map(request_host).unwrap_or_default()).into_owned();
    let http_host = req.host.map(String::from_utf8_lossy).unwrap_or_default();
    let request_uri = String::from_utf8_lossy(req.target);
    let uri = String::from_utf8_lossy(&normalized);
    let backend = &table.backends[r.backend];
    let service_port = backend.port.as_ref().map(|p| p.to_string()).unwrap_or_default();
    let vars = Vars {
        host: &host,
        http_host: &http_host,
        secure: req.secure,
        request_uri: &request_uri,
        uri: &uri,
        remote_addr: req.remote_addr,
        method: req.method,
        server_port: req.server_port,
        service_name: backend.service.as_deref().unwrap_or(""),
        service_port: &service_port,
        namespace: &r.ingress.namespace,
        ingress_name: &r.ingress.name,
        headers: Some(req.headers),
    };
    upstream_edits(rewrite, &vars, req.target, captures.as_ref())
}

/// The edits a route's rewrite asks for one request. `captures`: the route's regex match on the normalised path.
pub fn upstream_edits(rewrite: &Rewrite, vars: &Vars<'_>, target: &[u8], captures: Option<&Captures<'_>>) -> UpstreamEdits {
    UpstreamEdits {
        target: rewrite.target.as_deref().map(|t| rewritten_target(t, vars, target, captures)),
        // (an empty value keeps the client's Host line; nginx would send none at all)
        host: rewrite.upstream_vhost.as_deref().map(|t| expand(t, vars, &[]).into_bytes()).filter(|h| !h.is_empty()),
        forwarded_prefix: rewrite.forwarded_prefix.clone(),
    }
}

/// nginx's `rewrite REGEX TARGET break`: the whole path becomes the target, `$n` the route's groups (percent-encoded
/// where a path cannot hold them). A `?` in the target starts new arguments, followed by the request's own unless the
/// target ends in `?`; without one, the request's query is kept.
fn rewritten_target(template: &[TemplatePart], vars: &Vars<'_>, target: &[u8], captures: Option<&Captures<'_>>) -> Vec<u8> {
    let mut path = Vec::with_capacity(target.len() + 16);
    let mut args: Option<Vec<u8>> = None;
    for part in template {
        match part {
            TemplatePart::Text { text } => {
                let bytes = text.as_bytes();
                match bytes.iter().position(|&b| b == b'?') {
                    Some(q) if args.is_none() => {
                        path.extend_from_slice(&bytes[..q]);
                        args = Some(bytes[q + 1..].to_vec());
                    }
                    _ => args.as_mut().unwrap_or(&mut path).extend_from_slice(bytes),
                }
            }
            TemplatePart::Capture { capture } => {
                let group = captures.and_then(|c| c.get(usize::from(*capture))).map_or(&b""[..], |m| m.as_bytes());
                escape_path(args.as_mut().unwrap_or(&mut path), group);
            }
            // A value is the request's (a header, a cookie, the query…): in the path it is escaped as nginx escapes a
            // rewritten URI; in the arguments it goes as given (nginx's `$args`), but for the bytes a request line
            // cannot carry.
            TemplatePart::Variable { .. } | TemplatePart::Header { .. } | TemplatePart::Cookie { .. } | TemplatePart::Arg { .. } => {
                let value = expand(std::slice::from_ref(part), vars, &[]);
                match args.as_mut() {
                    None => escape_path(&mut path, value.as_bytes()),
                    Some(args) => escape_line_breakers(args, value.as_bytes()),
                }
            }
        }
    }
    if path.first() != Some(&b'/') {
        path.insert(0, b'/');
    }
    let query = target.iter().position(|&b| b == b'?').map(|q| &target[q + 1..]).filter(|q| !q.is_empty());
    let ends_in_question_mark = matches!(template.last(), Some(TemplatePart::Text { text }) if text.ends_with('?'));
    match (args, query) {
        (Some(mut new), _) if ends_in_question_mark => {
            // (`/new?` leaves no arguments; `/new?a=1?` leaves `a=1`)
            if new.last() == Some(&b'?') {
                new.pop();
            }
            push_query(&mut path, &new);
        }
        (Some(mut new), Some(old)) => {
            if !new.is_empty() {
                new.push(b'&');
            }
            new.extend_from_slice(old);
            push_query(&mut path, &new);
        }
        (Some(new), None) => push_query(&mut path, &new),
        (None, Some(old)) => push_query(&mut path, old),
        (None, None) => {}
    }
    path
}

fn push_query(path: &mut Vec<u8>, query: &[u8]) {
    if !query.is_empty() {
        path.push(b'?');
        path.extend_from_slice(query);
    }
}

/// What nginx escapes in a rewritten URI it sends upstream: controls, space, non-ASCII and the characters that
/// would end or change the path (`?`, `#`, `%`) or that a request line does not carry.
fn escape_path(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b <= 0x20 || b >= 0x7f || b"\"#%<>?\\^`{|}".contains(&b) {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            out.push(b);
        }
    }
}

/// Percent-encodes what would end or break a request line: controls, space, `#`, DEL and non-ASCII.
fn escape_line_breakers(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b <= 0x20 || b >= 0x7f || b == b'#' {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::regex_path;

    /// `path_regex` is a route's path (anchored and case-insensitive as the table compiles it).
    fn rewrite(target: &str, path_regex: &str, path: &[u8], request_target: &[u8]) -> String {
        let template: Template = serde_json::from_str(target).unwrap();
        let re = regex_path(path_regex).unwrap();
        let caps = re.captures(path);
        String::from_utf8(rewritten_target(&template, &Vars::default(), request_target, caps.as_ref())).unwrap()
    }

    #[test]
    fn the_whole_path_becomes_the_target_with_the_groups() {
        let t = r#"[{"text":"/"},{"capture":2}]"#;
        assert_eq!(rewrite(t, r"/something(/|$)(.*)", b"/something/new", b"/something/new?x=1"), "/new?x=1");
        assert_eq!(rewrite(t, r"/something(/|$)(.*)", b"/something", b"/something"), "/");
        assert_eq!(rewrite(r#"[{"text":"/"}]"#, r"/foo", b"/foo/bar", b"/foo/bar"), "/");
        // a decoded group is encoded again for the request line
        assert_eq!(rewrite(t, r"/a(/|$)(.*)", b"/a/x y?#", b"/a/x%20y%3F%23"), "/x%20y%3F%23");
    }

    #[test]
    fn new_arguments_come_before_the_request_s_unless_the_target_ends_in_a_question_mark() {
        assert_eq!(rewrite(r#"[{"text":"/new?a=1"}]"#, r"/", b"/x", b"/x?b=2"), "/new?a=1&b=2");
        assert_eq!(rewrite(r#"[{"text":"/new?"}]"#, r"/", b"/x", b"/x?b=2"), "/new");
        assert_eq!(rewrite(r#"[{"text":"/new?a="},{"capture":1}]"#, r"/(.*)", b"/x", b"/x"), "/new?a=x");
        assert_eq!(rewrite(r#"[{"capture":1}]"#, r"/p/(.*)", b"/p/q", b"/p/q"), "/q");
    }

    #[test]
    fn request_values_never_break_the_request_line() {
        let mut h = HeaderMap::new();
        h.insert("x-v", HeaderValue::from_bytes(b"a b%25?&#\xe9\t").unwrap());
        let vars = Vars { headers: Some(&h), request_uri: "/x?q=%0d%0a", ..Vars::default() };
        let target = |json: &str| String::from_utf8(rewritten_target(&serde_json::from_str::<Template>(json).unwrap(), &vars, b"/x?q=%0d%0a", None)).unwrap();
        // in the path escaped as nginx escapes a rewritten URI; in the arguments as given but for what ends a line
        assert_eq!(target(r#"[{"text":"/u/"},{"header":"x-v"},{"text":"?"}]"#), "/u/a%20b%2525%3F&%23%EF%BF%BD%09");
        assert_eq!(target(r#"[{"text":"/u?v="},{"header":"x-v"},{"text":"&q="},{"arg":"q"},{"text":"?"}]"#), "/u?v=a%20b%25?&%23%EF%BF%BD%09&q=%0d%0a");
    }
}
