//! What the proxy does with a request, decided from its head alone: the one place that answers "which route,
//! or which status". The proxy and `explain route` both ask here.

use hyper::HeaderMap;

use crate::paths::{normalize_path, request_host};
use crate::policy::redirect;
use crate::policy::template::Vars;
use crate::table::Table;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// the proxy answers itself: 400 (bad target or Host), 404 (no route)
    Status(u16),
    /// 503: the route's backend has no endpoint
    Unavailable { route: usize },
    /// the route's policy refuses every request (fail closed: an invalid security annotation)
    Refused { route: usize, status: u16 },
    /// a redirect the proxy answers itself: 308 to HTTPS (the route's host has TLS and the request came in plain),
    /// 308 to a www./non-www. twin (no route: the whole host redirects), app-root's 302, permanent-/temporal-redirect
    Redirect { route: Option<usize>, status: u16, location: String },
    /// forward to the route's backend
    Forward { route: usize },
}

/// The request head as far as routing needs it.
pub struct RequestHead<'a> {
    /// the `Host` header (or HTTP/2 `:authority`), raw
    pub host: Option<&'a [u8]>,
    /// how many `Host` lines were sent (two are refused)
    pub host_count: usize,
    /// the request target as sent
    pub target: &'a [u8],
    /// came in over TLS
    pub secure: bool,
    /// the header lines, for the variables of a redirect's URL (None for `explain route`: they are empty)
    pub headers: Option<&'a HeaderMap>,
}

/// `https_port`: the port named in redirects (443 is left out of the URL).
pub fn decide(table: &Table, head: &RequestHead<'_>, https_port: u16) -> Outcome {
    if head.host_count > 1 {
        return Outcome::Status(400);
    }
    // origin-form only: absolute-form is for forward proxies, and `*` has no route
    if head.target.first() != Some(&b'/') {
        return Outcome::Status(400);
    }
    let path = match head.target.iter().position(|&b| b == b'?') {
        Some(q) => &head.target[..q],
        None => head.target,
    };
    // Matched on the normalised path (a broken one is 400, as nginx answers); forwarded exactly as sent.
    let Some(normalized) = normalize_path(path) else {
        return Outcome::Status(400);
    };
    let host = head.host.map(request_host).unwrap_or_default();
    if let Some(to) = table.www_redirect(&host) {
        return Outcome::Redirect { route: None, status: 308, location: redirect::www_location(head.secure, to, https_port, head.target) };
    }
    let Some(route) = table.match_route(&host, &normalized) else {
        return Outcome::Status(404);
    };
    let r = &table.routes[route];
    let policy = &table.policies[r.policy];
    if let Some(refuse) = &policy.refuse {
        return Outcome::Refused { route, status: refuse.status };
    }
    // In nginx's order: app-root in the server, a `return` in the location, then the HTTPS redirect (Lua, last).
    if let (Some(root), Some(http_host), b"/") = (&policy.redirect.app_root, head.host, &normalized[..]) {
        return Outcome::Redirect { route: Some(route), status: 302, location: redirect::app_root_location(head.secure, http_host, root) };
    }
    if let Some(to) = &policy.redirect.to {
        let host_text = String::from_utf8_lossy(&host);
        let http_host = head.host.map(String::from_utf8_lossy).unwrap_or_default();
        let request_uri = String::from_utf8_lossy(head.target);
        let uri = String::from_utf8_lossy(&normalized);
        let backend = &table.backends[r.backend];
        let service_port = backend.port.as_ref().map(|p| p.to_string()).unwrap_or_default();
        let vars = Vars {
            host: &host_text,
            http_host: &http_host,
            secure: head.secure,
            request_uri: &request_uri,
            uri: &uri,
            service_name: backend.service.as_deref().unwrap_or(""),
            service_port: &service_port,
            namespace: &r.ingress.namespace,
            ingress_name: &r.ingress.name,
            headers: head.headers,
            ..Vars::default()
        };
        return Outcome::Redirect { route: Some(route), status: to.code, location: redirect::to_location(to, &vars) };
    }
    if !head.secure && r.ssl_redirect && head.host.is_some() {
        let location = redirect::https_location(&host, https_port, head.target, policy.redirect.preserve_trailing_slash);
        return Outcome::Redirect { route: Some(route), status: 308, location };
    }
    if table.backends[r.backend].endpoints.is_empty() {
        return Outcome::Unavailable { route };
    }
    Outcome::Forward { route }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;

    fn table() -> Table {
        let json = r#"{
          "version": 2, "policies": [{"refuse": null, "redirect": {"sslRedirect": true, "forceSslRedirect": false, "preserveTrailingSlash": false, "to": null, "appRoot": null, "fromToWww": false}, "rewrite": null, "headers": null, "access": null, "limits": null, "cors": null, "basicAuth": null, "externalAuth": null, "clientTls": null, "upstream": null, "balance": null, "errors": null, "accessLog": true}],
          "routes": [
            {"ingress": {"namespace": "d", "name": "a"}, "host": "foo.com", "path": "/api", "pathType": "Prefix", "backend": 0, "policy": 0, "sslRedirect": false},
            {"ingress": {"namespace": "d", "name": "a"}, "host": "foo.com", "path": "/api", "pathType": "Exact", "backend": 1, "policy": 0, "sslRedirect": false},
            {"ingress": {"namespace": "d", "name": "a"}, "host": "*.foo.com", "path": "/", "pathType": "Prefix", "backend": 0, "policy": 0, "sslRedirect": true},
            {"ingress": {"namespace": "d", "name": "a"}, "host": null, "path": "/x", "pathType": "ImplementationSpecific", "backend": 2, "policy": 0, "sslRedirect": false}
          ],
          "defaultRoute": null,
          "backends": [
            {"namespace": "d", "service": "s", "port": 80, "endpoints": [{"host": "10.0.0.1", "port": 80}, {"host": "fd00::1", "port": 80}], "unavailable": null},
            {"namespace": "d", "service": "t", "port": "http", "endpoints": [{"host": "10.0.0.2", "port": 8080}], "unavailable": null},
            {"namespace": "d", "service": "u", "port": 80, "endpoints": [], "unavailable": "Service d/u not found"}
          ],
          "hosts": ["foo.com", "*.foo.com"], "certificates": [],
          "tls": {"hosts": [], "fallback": null}
        }"#;
        Table::build(serde_json::from_str::<Snapshot>(json).unwrap()).unwrap()
    }

    fn decide_on(t: &Table, host: &str, target: &str, secure: bool) -> Outcome {
        decide(t, &RequestHead { host: Some(host.as_bytes()), host_count: 1, target: target.as_bytes(), secure, headers: None }, 443)
    }

    #[test]
    fn exact_beats_prefix_on_a_tie_and_longest_prefix_wins() {
        let t = table();
        assert_eq!(decide_on(&t, "foo.com", "/api", false), Outcome::Forward { route: 1 });
        assert_eq!(decide_on(&t, "FOO.com:80", "/api/x?q=1", false), Outcome::Forward { route: 0 });
        assert_eq!(decide_on(&t, "foo.com", "/apix", false), Outcome::Status(404));
    }

    #[test]
    fn wildcard_redirects_plain_http_and_serves_tls() {
        let t = table();
        assert_eq!(decide_on(&t, "a.foo.com", "/p?q", false), Outcome::Redirect { route: Some(2), status: 308, location: "https://a.foo.com/p?q".into() });
        assert_eq!(decide_on(&t, "a.foo.com", "/p/", false), Outcome::Redirect { route: Some(2), status: 308, location: "https://a.foo.com/p".into() });
        assert_eq!(decide_on(&t, "a.foo.com", "/p", true), Outcome::Forward { route: 2 });
        assert_eq!(decide_on(&t, "a.b.foo.com", "/x/y", true), Outcome::Unavailable { route: 3 });
    }

    #[test]
    fn refuses_what_is_not_a_path_or_has_two_hosts() {
        let t = table();
        assert_eq!(decide_on(&t, "foo.com", "http://foo.com/api", false), Outcome::Status(400));
        assert_eq!(decide_on(&t, "foo.com", "*", false), Outcome::Status(400));
        assert_eq!(decide_on(&t, "foo.com", "/../api", false), Outcome::Status(400));
        assert_eq!(decide_on(&t, "foo.com", "/foo%zz", false), Outcome::Status(400));
        let two = RequestHead { host: Some(b"foo.com"), host_count: 2, target: b"/api", secure: false, headers: None };
        assert_eq!(decide(&t, &two, 443), Outcome::Status(400));
    }

    #[test]
    fn round_robin_goes_through_every_endpoint() {
        let t = table();
        let b = &t.backends[0];
        let seen: Vec<&str> = (0..4).map(|_| b.next_endpoint().unwrap().authority.as_str()).collect();
        assert_eq!(seen, ["10.0.0.1:80", "[fd00::1]:80", "10.0.0.1:80", "[fd00::1]:80"]);
    }

    #[test]
    fn refuses_a_snapshot_with_a_dangling_index_or_a_duplicate_route() {
        let bad = r#"{"version": 2, "policies": [{"refuse": null, "redirect": {"sslRedirect": true, "forceSslRedirect": false, "preserveTrailingSlash": false, "to": null, "appRoot": null, "fromToWww": false}, "rewrite": null, "headers": null, "access": null, "limits": null, "cors": null, "basicAuth": null, "externalAuth": null, "clientTls": null, "upstream": null, "balance": null, "errors": null, "accessLog": true}], "routes": [{"ingress": {"namespace": "d", "name": "a"}, "host": null, "path": "/", "pathType": "Prefix", "backend": 3, "policy": 0, "sslRedirect": false}],
          "defaultRoute": null, "backends": [], "hosts": [], "certificates": [], "tls": {"hosts": [], "fallback": null}}"#;
        let err = Table::build(serde_json::from_str(bad).unwrap()).err().unwrap();
        assert_eq!(err.field, "routes[0].backend");
        let dup = r#"{"version": 2, "policies": [{"refuse": null, "redirect": {"sslRedirect": true, "forceSslRedirect": false, "preserveTrailingSlash": false, "to": null, "appRoot": null, "fromToWww": false}, "rewrite": null, "headers": null, "access": null, "limits": null, "cors": null, "basicAuth": null, "externalAuth": null, "clientTls": null, "upstream": null, "balance": null, "errors": null, "accessLog": true}], "routes": [
            {"ingress": {"namespace": "d", "name": "a"}, "host": null, "path": "/a", "pathType": "Prefix", "backend": 0, "policy": 0, "sslRedirect": false},
            {"ingress": {"namespace": "d", "name": "b"}, "host": null, "path": "/a/", "pathType": "ImplementationSpecific", "backend": 0, "policy": 0, "sslRedirect": false}],
          "defaultRoute": null, "backends": [{"namespace": "d", "service": "s", "port": 80, "endpoints": [], "unavailable": null}], "hosts": [], "certificates": [], "tls": {"hosts": [], "fallback": null}}"#;
        let err = Table::build(serde_json::from_str(dup).unwrap()).err().unwrap();
        assert_eq!(err.field, "routes[1]");
        let version = r#"{"version": 3, "policies": [], "routes": [], "defaultRoute": null, "backends": [], "hosts": [], "certificates": [], "tls": {"hosts": [], "fallback": null}}"#;
        assert_eq!(Table::build(serde_json::from_str(version).unwrap()).err().unwrap().field, "version");
    }

    /// A host whose paths are regexes, an alias of it, a www. twin, and redirecting policies.
    fn annotated() -> Table {
        let policy = |redirect: &str, rewrite: &str| format!(r#"{{"refuse": null, "redirect": {{"sslRedirect": true, "forceSslRedirect": false, "preserveTrailingSlash": false, "fromToWww": false, {redirect}}}, "rewrite": {rewrite}, "headers": null, "access": null, "limits": null, "cors": null, "basicAuth": null, "externalAuth": null, "clientTls": null, "upstream": null, "balance": null, "errors": null, "accessLog": true}}"#);
        let plain = policy(r#""to": null, "appRoot": null"#, "null");
        let rooted = policy(r#""to": null, "appRoot": "/app""#, "null");
        let regex = policy(r#""to": null, "appRoot": null"#, r#"{"useRegex": true, "target": null, "forwardedPrefix": null, "upstreamVhost": null}"#);
        let moved = policy(r#""to": {"url": [{"text": "https://new.test"}, {"variable": "request_uri"}], "code": 301}, "appRoot": null"#, "null");
        let route = |path: &str, policy: u32, regex: bool, host: &str| format!(r#"{{"ingress": {{"namespace": "d", "name": "a"}}, "host": "{host}", "path": "{path}", "pathType": "Prefix", "backend": 0, "policy": {policy}, "sslRedirect": false, "regex": {regex}}}"#);
        let json = format!(
            r#"{{"version": 2, "policies": [{plain}, {regex}, {moved}, {rooted}], "hosts": ["r.test", "m.test", "app.test"], "aliases": [{{"alias": "alias.test", "host": "r.test"}}], "wwwRedirects": [{{"from": "www.r.test", "to": "r.test"}}],
              "routes": [{}, {}, {}, {}, {}], "defaultRoute": null, "certificates": [], "tls": {{"hosts": [], "fallback": null}},
              "backends": [{{"namespace": "d", "service": "s", "port": 80, "endpoints": [{{"host": "10.0.0.1", "port": 80}}], "unavailable": null}}]}}"#,
            route("/foo/bar/bar", 0, true, "r.test"),
            route("/foo/bar/[a-z]{3}", 1, true, "r.test"),
            route("/a.c", 1, true, "r.test"),
            route("/", 2, false, "m.test"),
            route("/", 3, false, "app.test"),
        );
        Table::build(serde_json::from_str::<Snapshot>(&json).unwrap()).unwrap()
    }

    #[test]
    fn regex_paths_are_tried_longest_first_case_insensitive_and_anchored_at_the_start() {
        let t = annotated();
        // the longer regex wins over the literal path it also matches (ingress-nginx's documented caveat)
        assert_eq!(t.match_route(b"r.test", b"/foo/bar/bar"), Some(1));
        assert_eq!(t.match_route(b"r.test", b"/FOO/bar/xyz/more"), Some(1));
        assert_eq!(t.match_route(b"r.test", b"/foo/bar/b"), None);
        assert_eq!(t.match_route(b"r.test", b"/abc"), Some(2));
        assert_eq!(t.match_route(b"r.test", b"/x/abc"), None);
        // `.` matches neither CR nor LF, as in JavaScript
        assert_eq!(t.match_route(b"r.test", b"/a\rc"), None);
        assert_eq!(t.match_route(b"alias.test", b"/abc"), Some(2));
        assert_eq!(t.captures(1, b"/foo/bar/bar").map(|c| c.len()), Some(1));
    }

    #[test]
    fn redirects_come_in_nginx_s_order() {
        let t = annotated();
        let www = Outcome::Redirect { route: None, status: 308, location: "http://r.test/x".into() };
        assert_eq!(decide_on(&t, "www.r.test:8080", "/x/", false), www);
        assert_eq!(decide_on(&t, "App.test:8080", "/?q=1", false), Outcome::Redirect { route: Some(4), status: 302, location: "http://App.test:8080/app".into() });
        assert_eq!(decide_on(&t, "app.test", "/x", false), Outcome::Forward { route: 4 });
        assert_eq!(decide_on(&t, "m.test", "/a?b", true), Outcome::Redirect { route: Some(3), status: 301, location: "https://new.test/a?b".into() });
    }

    #[test]
    fn refuses_an_invalid_regex_and_a_regex_policy_on_a_plain_route() {
        let json = |path: &str, regex: bool, rewrite: &str| format!(r#"{{"version": 2, "policies": [{{"refuse": null, "redirect": {{"sslRedirect": true, "forceSslRedirect": false, "preserveTrailingSlash": false, "to": null, "appRoot": null, "fromToWww": false}}, "rewrite": {rewrite}, "headers": null, "access": null, "limits": null, "cors": null, "basicAuth": null, "externalAuth": null, "clientTls": null, "upstream": null, "balance": null, "errors": null, "accessLog": true}}],
            "routes": [{{"ingress": {{"namespace": "d", "name": "a"}}, "host": null, "path": "{path}", "pathType": "Prefix", "backend": 0, "policy": 0, "sslRedirect": false, "regex": {regex}}}],
            "defaultRoute": null, "backends": [{{"namespace": "d", "service": "s", "port": 80, "endpoints": [], "unavailable": null}}], "hosts": [], "certificates": [], "tls": {{"hosts": [], "fallback": null}}}}"#);
        let build = |j: String| Table::build(serde_json::from_str::<Snapshot>(&j).unwrap()).err().map(|e| e.field);
        assert_eq!(build(json("/a(", true, "null")), Some("routes[0].path".into()));
        assert_eq!(build(json("/a", false, r#"{"useRegex": true, "target": null, "forwardedPrefix": null, "upstreamVhost": null}"#)), Some("routes[0].regex".into()));
        assert_eq!(build(json("/a(b)", true, "null")), None);
    }
}
