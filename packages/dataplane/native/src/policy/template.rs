//! Templates: annotation values that name nginx variables (`$host`, `$escaped_request_uri`…), split by the
//! TypeScript side into literal text, variables from a fixed list, the parameterised families (`$http_NAME`,
//! `$cookie_NAME`, `$arg_NAME`) and regex captures. Expanding one only joins parts; no user text is ever
//! interpreted here.

use hyper::header::{HeaderMap, HeaderName, COOKIE};
use serde::{Deserialize, Deserializer};

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    Host,
    HttpHost,
    Scheme,
    RequestUri,
    EscapedRequestUri,
    Uri,
    Args,
    QueryString,
    RemoteAddr,
    RequestMethod,
    ServerPort,
    BestHttpHost,
    ServiceName,
    ServicePort,
    Namespace,
    IngressName,
}

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(untagged, deny_unknown_fields)]
pub enum TemplatePart {
    Text {
        text: String,
    },
    Variable {
        variable: Variable,
    },
    Capture {
        capture: u8,
    },
    /// `$http_NAME`: the request's lines of that header (the name with `-` for nginx's `_`)
    Header {
        #[serde(deserialize_with = "header_name")]
        header: HeaderName,
    },
    /// `$cookie_NAME`: that cookie's value in the Cookie lines
    Cookie {
        #[serde(deserialize_with = "word")]
        cookie: String,
    },
    /// `$arg_NAME`: that argument's value in the query, as sent
    Arg {
        #[serde(deserialize_with = "word")]
        arg: String,
    },
}

/// A header name as the TypeScript side writes it: nginx's `[a-z0-9_]+` with `-` for `_`.
fn header_name<'de, D: Deserializer<'de>>(d: D) -> Result<HeaderName, D::Error> {
    let name = String::deserialize(d)?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(serde::de::Error::custom(format!("header {name:?} is not a lower-case header name")));
    }
    HeaderName::from_bytes(name.as_bytes()).map_err(serde::de::Error::custom)
}

/// A cookie or argument name: what an nginx variable name may hold, lower case (nginx lowercases them and
/// compares case-insensitively).
fn word<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(serde::de::Error::custom(format!("{name:?} is not a lower-case nginx variable name")));
    }
    Ok(name)
}

pub type Template = Vec<TemplatePart>;

/// What a request gives the variables. Borrowed: building one costs nothing until a template is expanded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// lower case, without port
    pub host: &'a str,
    /// the Host header as sent
    pub http_host: &'a str,
    pub secure: bool,
    /// path and query as sent
    pub request_uri: &'a str,
    /// the normalised path
    pub uri: &'a str,
    pub remote_addr: &'a str,
    pub method: &'a str,
    pub server_port: u16,
    pub service_name: &'a str,
    pub service_port: &'a str,
    pub namespace: &'a str,
    pub ingress_name: &'a str,
    /// the request's header lines, for `$http_NAME` and `$cookie_NAME` (None: there is no request, as for
    /// `explain route`; they are empty then)
    pub headers: Option<&'a HeaderMap>,
}

/// Joins a template's parts for one request; `captures[n]` is `$n` (`$0` the whole match), missing ones empty.
pub fn expand(template: &[TemplatePart], vars: &Vars<'_>, captures: &[&str]) -> String {
    let mut out = String::new();
    for part in template {
        match part {
            TemplatePart::Text { text } => out.push_str(text),
            TemplatePart::Capture { capture } => out.push_str(captures.get(*capture as usize).copied().unwrap_or("")),
            TemplatePart::Variable { variable } => push_variable(&mut out, *variable, vars),
            TemplatePart::Header { header } => push_header(&mut out, vars, header),
            TemplatePart::Cookie { cookie } => {
                if let Some(value) = vars.headers.and_then(|h| cookie_value(h, cookie)) {
                    out.push_str(&String::from_utf8_lossy(value));
                }
            }
            TemplatePart::Arg { arg } => out.push_str(arg_value(query_of(vars.request_uri), arg).unwrap_or("")),
        }
    }
    out
}

fn query_of(request_uri: &str) -> &str {
    request_uri.split_once('?').map_or("", |(_, q)| q)
}

/// nginx joins several lines of a header with ", " (the Cookie lines with "; "). Header values are bytes: one
/// that is not UTF-8 is taken lossily (U+FFFD for each bad sequence), so it still hashes and reads alike.
fn push_header(out: &mut String, vars: &Vars<'_>, name: &HeaderName) {
    let Some(headers) = vars.headers else { return };
    let separator = if name == COOKIE { "; " } else { ", " };
    for (i, value) in headers.get_all(name).iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        out.push_str(&String::from_utf8_lossy(value.as_bytes()));
    }
}

/// `$cookie_NAME` as nginx's multi-header parser finds it: the first `NAME=` (name case-insensitive, spaces
/// around `=` allowed) at the start of a pair of a Cookie line, its value up to the next `;`, quotes and trailing
/// spaces kept. Pairs are separated by `;` or `,`; like nginx, a `NAME` not followed by `=` also skips the byte
/// after it.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    let name = name.as_bytes();
    for line in headers.get_all(COOKIE) {
        let s = line.as_bytes();
        let mut i = 0;
        while i < s.len() {
            if s.len() - i >= name.len() && s[i..i + name.len()].eq_ignore_ascii_case(name) {
                i += name.len();
                while i < s.len() && s[i] == b' ' {
                    i += 1;
                }
                if i < s.len() {
                    i += 1;
                    if s[i - 1] == b'=' {
                        while i < s.len() && s[i] == b' ' {
                            i += 1;
                        }
                        let end = s[i..].iter().position(|&b| b == b';').map_or(s.len(), |n| i + n);
                        return Some(&s[i..end]);
                    }
                }
            }
            while i < s.len() {
                i += 1;
                if matches!(s[i - 1], b';' | b',') {
                    break;
                }
            }
            while i < s.len() && s[i] == b' ' {
                i += 1;
            }
        }
    }
    None
}

/// `$arg_NAME` as nginx's `ngx_http_arg` finds it: the first `NAME=` (case-insensitive) at the start of the query
/// or after a `&`, its value up to the next `&`, as sent (not decoded). An argument without `=` is absent.
fn arg_value<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    let (q, n) = (query.as_bytes(), name.as_bytes());
    let mut p = 0;
    while p + n.len() < q.len() {
        if (p == 0 || q[p - 1] == b'&') && q[p..p + n.len()].eq_ignore_ascii_case(n) && q[p + n.len()] == b'=' {
            let start = p + n.len() + 1;
            let end = q[start..].iter().position(|&b| b == b'&').map_or(q.len(), |e| start + e);
            return Some(&query[start..end]);
        }
        p += 1;
    }
    None
}

fn push_variable(out: &mut String, variable: Variable, vars: &Vars<'_>) {
    let query = || query_of(vars.request_uri);
    match variable {
        Variable::Host | Variable::BestHttpHost => out.push_str(vars.host),
        Variable::HttpHost => out.push_str(vars.http_host),
        Variable::Scheme => out.push_str(if vars.secure { "https" } else { "http" }),
        Variable::RequestUri => out.push_str(vars.request_uri),
        Variable::EscapedRequestUri => escape_component(out, vars.request_uri),
        Variable::Uri => out.push_str(vars.uri),
        Variable::Args | Variable::QueryString => out.push_str(query()),
        Variable::RemoteAddr => out.push_str(vars.remote_addr),
        Variable::RequestMethod => out.push_str(vars.method),
        Variable::ServerPort => out.push_str(&vars.server_port.to_string()),
        Variable::ServiceName => out.push_str(vars.service_name),
        Variable::ServicePort => out.push_str(vars.service_port),
        Variable::Namespace => out.push_str(vars.namespace),
        Variable::IngressName => out.push_str(vars.ingress_name),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (what a query parameter value needs).
pub fn escape_component(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_joined_and_only_known_variables_exist() {
        let t: Template = serde_json::from_str(r#"[{"text":"https://auth/start?rd="},{"variable":"scheme"},{"text":"://"},{"variable":"host"},{"variable":"escaped_request_uri"},{"text":"&p="},{"capture":1}]"#).unwrap();
        let vars = Vars { host: "foo.com", secure: true, request_uri: "/a b?x=1&y", ..Vars::default() };
        assert_eq!(expand(&t, &vars, &["/x/y", "y"]), "https://auth/start?rd=https://foo.com%2Fa%20b%3Fx%3D1%26y&p=y");
        assert!(serde_json::from_str::<Template>(r#"[{"variable":"request_body"}]"#).is_err());
    }

    fn template(json: &str) -> Template {
        serde_json::from_str(json).unwrap()
    }

    fn headers(lines: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in lines {
            h.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), hyper::header::HeaderValue::from_bytes(value).unwrap());
        }
        h
    }

    #[test]
    fn the_families_take_only_lower_case_names_and_no_other_fields() {
        assert_eq!(template(r#"[{"header":"x-user-id"},{"cookie":"session_id"},{"arg":"wopisrc"}]"#).len(), 3);
        for bad in [
            r#"[{"header":"X-User"}]"#,
            r#"[{"header":"x_user"}]"#,
            r#"[{"header":""}]"#,
            r#"[{"header":"x user"}]"#,
            r#"[{"cookie":"Session"}]"#,
            r#"[{"cookie":"a-b"}]"#,
            r#"[{"arg":""}]"#,
            r#"[{"arg":"a=b"}]"#,
            r#"[{"arg":"id","header":"x"}]"#,
            r#"[{"text":"a","variable":"host"}]"#,
            r#"[{"header":"x","extra":1}]"#,
        ] {
            assert!(serde_json::from_str::<Template>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_name_joins_the_lines_of_a_header_as_nginx() {
        let h = headers(&[("x-user-id", b"42"), ("accept", b"a"), ("x-user-id", b"43, 44"), ("cookie", b"a=1"), ("cookie", b"b=2")]);
        let vars = Vars { headers: Some(&h), ..Vars::default() };
        assert_eq!(expand(&template(r#"[{"text":"u="},{"header":"x-user-id"}]"#), &vars, &[]), "u=42, 43, 44");
        assert_eq!(expand(&template(r#"[{"header":"accept"}]"#), &vars, &[]), "a");
        assert_eq!(expand(&template(r#"[{"header":"cookie"}]"#), &vars, &[]), "a=1; b=2");
        assert_eq!(expand(&template(r#"[{"text":"["},{"header":"x-absent"},{"text":"]"}]"#), &vars, &[]), "[]");
        // no request (explain route): empty
        assert_eq!(expand(&template(r#"[{"header":"x-user-id"},{"cookie":"a"}]"#), &Vars::default(), &[]), "");
    }

    #[test]
    fn a_header_value_that_is_not_utf8_is_taken_lossily() {
        let h = headers(&[("x-name", b"caf\xe9"), ("x-name", b"ok")]);
        let vars = Vars { headers: Some(&h), ..Vars::default() };
        assert_eq!(expand(&template(r#"[{"header":"x-name"}]"#), &vars, &[]), "caf\u{fffd}, ok");
        let c = headers(&[("cookie", b"s=\xff\xfe; t=1")]);
        let vars = Vars { headers: Some(&c), ..Vars::default() };
        assert_eq!(expand(&template(r#"[{"cookie":"s"},{"text":"|"},{"cookie":"t"}]"#), &vars, &[]), "\u{fffd}\u{fffd}|1");
    }

    #[test]
    fn cookie_name_is_found_as_nginx_finds_it() {
        let cookie = |lines: &[&[u8]], name: &str| {
            let h = headers(&lines.iter().map(|l| ("cookie", *l)).collect::<Vec<_>>());
            cookie_value(&h, name).map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(cookie(&[b"a=1; session=abc; b=2"], "session").as_deref(), Some("abc"));
        assert_eq!(cookie(&[b"a=1", b"session=abc"], "session").as_deref(), Some("abc"));
        // the first of several, name case-insensitive, spaces around "=" skipped, trailing ones and quotes kept
        assert_eq!(cookie(&[b"Session=one; session=two"], "session").as_deref(), Some("one"));
        assert_eq!(cookie(&[b"x=1;session =  \"q v\" ;y=2"], "session").as_deref(), Some("\"q v\" "));
        assert_eq!(cookie(&[b"s=a,b; t=1"], "s").as_deref(), Some("a,b"));
        assert_eq!(cookie(&[b"x=1,s=2"], "s").as_deref(), Some("2"));
        assert_eq!(cookie(&[b"s="], "s").as_deref(), Some(""));
        // a longer name, a value holding the name, no "=", absent
        assert_eq!(cookie(&[b"session_id=1; x=session=2"], "session"), None);
        assert_eq!(cookie(&[b"sessions=1"], "session"), None);
        assert_eq!(cookie(&[b"session"], "session"), None);
        assert_eq!(cookie(&[b"a=1"], "session"), None);
        assert_eq!(cookie(&[], "session"), None);
    }

    #[test]
    fn arg_name_is_the_first_argument_of_that_name_as_sent() {
        let arg = |uri: &str, name: &str| expand(&[TemplatePart::Arg { arg: name.into() }], &Vars { request_uri: uri, ..Vars::default() }, &[]);
        assert_eq!(arg("/p?id=7&x=1", "id"), "7");
        assert_eq!(arg("/p?x=1&id=a%20b%26c&id=2", "id"), "a%20b%26c");
        assert_eq!(arg("/p?WOPISrc=https%3A%2F%2Fh%2Fw", "wopisrc"), "https%3A%2F%2Fh%2Fw");
        assert_eq!(arg("/p?id=x=y;z", "id"), "x=y;z");
        assert_eq!(arg("/p?id=&x=1", "id"), "");
        assert_eq!(arg("/p?xid=1&idx=2&id", "id"), "");
        assert_eq!(arg("/p?a=%0d%0a", "a"), "%0d%0a");
        assert_eq!(arg("/p/id=1", "id"), "");
        assert_eq!(arg("/p", "id"), "");
    }
}
