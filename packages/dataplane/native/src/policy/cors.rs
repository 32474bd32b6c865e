//! CORS: preflight answers and response headers (enable-cors, cors-*), as ingress-nginx's template sets them:
//! when the request's Origin is allowed (always, with `*`), every answer of the route carries the
//! Access-Control-* headers, replacing the upstream's, and an OPTIONS request is answered 204 by the proxy.

use hyper::header::{HeaderMap, HeaderName, HeaderValue, ORIGIN, VARY};
use serde::Deserialize;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsSpec {
    pub allow_origins: Vec<String>,
    pub allow_methods: String,
    pub allow_headers: String,
    pub expose_headers: String,
    pub allow_credentials: bool,
    pub max_age: u64,
}

/// An allowed origin: scheme and host (its first label `*` when `wildcard`) and port as written, lower case.
#[derive(Debug)]
struct Origin {
    scheme: String,
    /// after `*.` when `wildcard`
    host: String,
    wildcard: bool,
    /// `:port` or ""
    port: String,
}

/// As requests use it (compiled once per snapshot).
#[derive(Debug)]
pub struct Cors {
    /// `*`: every origin, answered `*` (not echoed)
    any: bool,
    origins: Vec<Origin>,
    /// the Access-Control-* headers but Allow-Origin, made once
    headers: Vec<(HeaderName, HeaderValue)>,
}

const ALLOW_ORIGIN: HeaderName = HeaderName::from_static("access-control-allow-origin");

pub fn compile(spec: CorsSpec) -> Result<Cors, String> {
    let any = spec.allow_origins.iter().any(|o| o == "*");
    let origins = if any { Vec::new() } else { spec.allow_origins.iter().map(|o| parse_origin(o)).collect::<Result<Vec<_>, _>>()? };
    let value = |name: &str, v: &str| HeaderValue::from_str(v).map_err(|_| format!("{name} {v:?} is not a header value"));
    let mut headers = Vec::new();
    if spec.allow_credentials {
        headers.push((HeaderName::from_static("access-control-allow-credentials"), HeaderValue::from_static("true")));
    }
    headers.push((HeaderName::from_static("access-control-allow-methods"), value("allowMethods", &spec.allow_methods)?));
    headers.push((HeaderName::from_static("access-control-allow-headers"), value("allowHeaders", &spec.allow_headers)?));
    if !spec.expose_headers.is_empty() {
        headers.push((HeaderName::from_static("access-control-expose-headers"), value("exposeHeaders", &spec.expose_headers)?));
    }
    headers.push((HeaderName::from_static("access-control-max-age"), HeaderValue::from(spec.max_age)));
    Ok(Cors { any, origins, headers })
}

fn parse_origin(text: &str) -> Result<Origin, String> {
    let bad = || format!("allowOrigins: {text:?} is not scheme://host[:port]");
    let lower = text.to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(bad)?;
    let (host, port) = match rest.rfind(':') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, wildcard) = match host.strip_prefix("*.") {
        Some(h) => (h, true),
        None => (host, false),
    };
    let label_ok = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b));
    let port_ok = port.is_empty() || (port.len() <= 6 && port[1..].bytes().all(|b| b.is_ascii_digit()) && port.len() > 1);
    if !scheme_ok || !port_ok || !host.split('.').all(label_ok) {
        return Err(bad());
    }
    Ok(Origin { scheme: scheme.to_string(), host: host.to_string(), wildcard, port: port.to_string() })
}

impl Origin {
    /// Case-insensitive, as ingress-nginx's `~*` regex; `*` stands for exactly one label.
    fn matches(&self, origin: &str) -> bool {
        // (the scheme holds no ":", so the first one ends it: a byte search, not a substring search)
        let Some(colon) = origin.find(':') else { return false };
        let (scheme, Some(rest)) = (&origin[..colon], origin[colon + 1..].strip_prefix("//")) else { return false };
        if !scheme.eq_ignore_ascii_case(&self.scheme) {
            return false;
        }
        let Some(rest) = strip_suffix_ignore_case(rest, &self.port) else { return false };
        // (the port must be the one written, or none when none is: `:8080` left over fails the host below)
        let Some(rest) = strip_suffix_ignore_case(rest, &self.host) else { return false };
        if !self.wildcard {
            return rest.is_empty();
        }
        match rest.strip_suffix('.') {
            Some(label) => !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            None => false,
        }
    }
}

fn strip_suffix_ignore_case<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = text.len().checked_sub(suffix.len())?;
    (text.is_char_boundary(cut) && text[cut..].eq_ignore_ascii_case(suffix)).then(|| &text[..cut])
}

/// What a request of a CORS route gets: the Access-Control-Allow-Origin value, or None when its Origin is not
/// allowed (then no CORS header is added and OPTIONS goes to the upstream, as in ingress-nginx).
pub struct CorsOutcome(Option<HeaderValue>);

impl CorsOutcome {
    pub fn allowed(&self) -> bool {
        self.0.is_some()
    }
}

impl Cors {
    pub fn outcome(&self, headers: &HeaderMap) -> CorsOutcome {
        if self.any {
            return CorsOutcome(Some(HeaderValue::from_static("*")));
        }
        let allowed = headers.get(ORIGIN).filter(|origin| origin.to_str().is_ok_and(|text| self.origins.iter().any(|o| o.matches(text))));
        CorsOutcome(allowed.cloned())
    }

    /// Sets the headers on an answer (replacing any the upstream sent); an answer that depends on the Origin (a
    /// list of origins, not `*`) says so to caches with `Vary: Origin`, whether the Origin was allowed or not.
    pub fn apply(&self, outcome: &CorsOutcome, headers: &mut HeaderMap) {
        if !self.any {
            add_vary_origin(headers);
        }
        let Some(allow_origin) = &outcome.0 else { return };
        // (room for all of them at once: growing the map line by line costs more than the lines)
        headers.reserve(self.headers.len() + 1);
        headers.insert(ALLOW_ORIGIN, allow_origin.clone());
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// `Vary: Origin` added to an answer that depends on the request's Origin (unless it already varies on it).
fn add_vary_origin(headers: &mut HeaderMap) {
    let has = headers.get_all(VARY).iter().any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("origin") || t.trim() == "*")));
    if !has {
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        compile(CorsSpec {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_methods: "GET, POST".into(),
            allow_headers: "X-A".into(),
            expose_headers: String::new(),
            allow_credentials: credentials,
            max_age: 60,
        })
        .unwrap()
    }

    fn allowed(c: &Cors, origin: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        c.outcome(&h).0.map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn origins_match_as_ingress_nginx_e2e_tests_expect() {
        let c = cors(&["https://origin.cors.com:8080", "http://*.origin.com:8080", "http://*.cors.org"], true);
        assert_eq!(allowed(&c, "https://origin.cors.com:8080").as_deref(), Some("https://origin.cors.com:8080"));
        assert_eq!(allowed(&c, "HTTPS://Origin.Cors.com:8080").as_deref(), Some("HTTPS://Origin.Cors.com:8080"));
        assert_eq!(allowed(&c, "http://abc.origin.com:8080").as_deref(), Some("http://abc.origin.com:8080"));
        assert_eq!(allowed(&c, "http://bar-foo.cors.org").as_deref(), Some("http://bar-foo.cors.org"));
        for no in [
            "https://origin.cors.com",
            "http://origin.cors.com:8080",
            "https://origin.cors.com:80801",
            "http://abc.origin.com",
            "http://origin.com:8080",
            "http://a.b.origin.com:8080",
            "http://.origin.com:8080",
            "http://x.cors.org:80",
            "https://evil.example/https://origin.cors.com:8080",
            "null",
        ] {
            assert_eq!(allowed(&c, no), None, "{no}");
        }
        assert!(!c.outcome(&HeaderMap::new()).allowed(), "no Origin, no CORS");
        // a list answers depend on the Origin, allowed or not
        let mut h = HeaderMap::new();
        c.apply(&c.outcome(&HeaderMap::new()), &mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h[VARY], "Origin");
    }

    #[test]
    fn star_answers_star_even_without_origin_and_never_echoes() {
        let c = cors(&["*"], true);
        assert_eq!(allowed(&c, "https://evil.example").as_deref(), Some("*"));
        let mut h = HeaderMap::new();
        h.insert(ALLOW_ORIGIN, HeaderValue::from_static("https://upstream.example"));
        c.apply(&c.outcome(&HeaderMap::new()), &mut h);
        assert_eq!(h[ALLOW_ORIGIN], "*");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-max-age"], "60");
        assert!(!h.contains_key("access-control-expose-headers"));
        assert!(!h.contains_key(VARY));
    }

    #[test]
    fn vary_is_added_once() {
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        add_vary_origin(&mut h);
        add_vary_origin(&mut h);
        assert_eq!(h.get_all(VARY).iter().collect::<Vec<_>>(), ["Accept-Encoding", "Origin"]);
    }

    #[test]
    fn refuses_what_is_not_an_origin() {
        for bad in ["origin.com", "http://", "http://a..b", "http://a.com:", "http://a.com:123456", "http://*.*.a.com", "1http://a.com"] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
