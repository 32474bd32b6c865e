//! Redirects: ssl-redirect / force-ssl-redirect (decided per route by the TypeScript side into the route's
//! `sslRedirect`), preserve-trailing-slash, permanent-/temporal-redirect, app-root, from-to-www-redirect.

use serde::Deserialize;

use super::template::{expand, Template, TemplatePart, Vars};

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectSpec {
    pub ssl_redirect: bool,
    pub force_ssl_redirect: bool,
    pub preserve_trailing_slash: bool,
    pub to: Option<RedirectTo>,
    pub app_root: Option<String>,
    pub from_to_www: bool,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectTo {
    pub url: Template,
    pub code: u16,
}

impl Default for RedirectSpec {
    fn default() -> Self {
        RedirectSpec { ssl_redirect: true, force_ssl_redirect: false, preserve_trailing_slash: false, to: None, app_root: None, from_to_www: false }
    }
}

/// As requests use it (compiled once per snapshot).
pub type Redirect = RedirectSpec;

pub fn compile(spec: RedirectSpec) -> Result<Redirect, String> {
    if let Some(to) = &spec.to {
        if !(300..=308).contains(&to.code) {
            return Err(format!("redirect code {} is not 300-308", to.code));
        }
        let visible = |t: &str| t.bytes().all(|b| (0x21..0x7f).contains(&b));
        if to.url.iter().any(|p| matches!(p, TemplatePart::Text { text } if !visible(text)) || matches!(p, TemplatePart::Capture { .. })) {
            return Err("the redirect URL has spaces, control characters or a capture".into());
        }
    }
    if let Some(root) = &spec.app_root {
        if !root.starts_with('/') || root.starts_with("//") || !root.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(format!("app root {root:?} is not a path"));
        }
    }
    Ok(spec)
}

/// A Location value: RFC 9110 allows neither control characters nor spaces; anything else is passed as it is.
fn location(out: String) -> String {
    if out.bytes().all(|b| b > 0x20 && b != 0x7f) {
        out
    } else {
        // (by character: a non-ASCII one, from a request's value, stays whole)
        out.chars().fold(String::with_capacity(out.len() + 8), |mut s, c| {
            if c > ' ' && c != '\x7f' {
                s.push(c);
            } else {
                s.push_str(&format!("%{:02X}", u32::from(c)));
            }
            s
        })
    }
}

/// `request_uri` without its last byte when that is a `/` (ingress-nginx drops it from HTTPS and www. redirects;
/// `/` itself becomes empty, and `/a/?q` keeps it, the last byte being the query's).
fn without_trailing_slash(target: &[u8]) -> &[u8] {
    target.strip_suffix(b"/").unwrap_or(target)
}

fn port_suffix(port: u16) -> String {
    if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    }
}

/// ssl-redirect: `https://HOST[:PORT]REQUEST_URI`, the port left out when 443.
pub fn https_location(host: &[u8], https_port: u16, target: &[u8], preserve_trailing_slash: bool) -> String {
    let target = if preserve_trailing_slash { target } else { without_trailing_slash(target) };
    location(format!("https://{}{}{}", String::from_utf8_lossy(host), port_suffix(https_port), String::from_utf8_lossy(target)))
}

/// from-to-www-redirect: the request's scheme, the twin host, the HTTPS port unless 443 (as ingress-nginx writes it,
/// whatever the scheme), and the request URI without a trailing `/`.
pub fn www_location(secure: bool, to: &str, https_port: u16, target: &[u8]) -> String {
    let scheme = if secure { "https" } else { "http" };
    location(format!("{scheme}://{to}{}{}", port_suffix(https_port), String::from_utf8_lossy(without_trailing_slash(target))))
}

/// app-root: `$scheme://$http_host` and the root (the query of the request for `/` is not kept).
pub fn app_root_location(secure: bool, http_host: &[u8], root: &str) -> String {
    let scheme = if secure { "https" } else { "http" };
    location(format!("{scheme}://{}{root}", String::from_utf8_lossy(http_host)))
}

/// permanent-/temporal-redirect: the URL with its variables.
pub fn to_location(to: &RedirectTo, vars: &Vars<'_>) -> String {
    location(expand(&to.url, vars, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_escapes_spaces_and_controls_and_keeps_the_rest() {
        assert_eq!(location("https://x/é a\r\nb%0d".into()), "https://x/é%20a%0D%0Ab%0d");
        let h = {
            let mut h = hyper::HeaderMap::new();
            h.insert("x-next", hyper::header::HeaderValue::from_bytes(b"/caf\xc3\xa9 x").unwrap());
            h
        };
        let to = RedirectTo { url: serde_json::from_str(r#"[{"text":"https://x.test/go?n="},{"header":"x-next"},{"text":"&a="},{"arg":"a"}]"#).unwrap(), code: 301 };
        let vars = Vars { headers: Some(&h), request_uri: "/p?a=%0d%0a", ..Vars::default() };
        assert_eq!(to_location(&to, &vars), "https://x.test/go?n=/café%20x&a=%0d%0a");
    }

    #[test]
    fn https_redirects_drop_one_trailing_slash_unless_preserved() {
        assert_eq!(https_location(b"foo.com", 443, b"/", false), "https://foo.com");
        assert_eq!(https_location(b"foo.com", 443, b"/", true), "https://foo.com/");
        assert_eq!(https_location(b"foo.com", 8443, b"/a/b/", false), "https://foo.com:8443/a/b");
        assert_eq!(https_location(b"foo.com", 443, b"/a/?x=/", false), "https://foo.com/a/?x=");
        assert_eq!(https_location(b"foo.com", 443, b"/a/?q", false), "https://foo.com/a/?q");
    }

    #[test]
    fn www_redirects_write_the_https_port_and_the_scheme_of_the_request() {
        assert_eq!(www_location(false, "foo.com", 443, b"/foo"), "http://foo.com/foo");
        assert_eq!(www_location(true, "www.foo.com", 8443, b"/a/"), "https://www.foo.com:8443/a");
        assert_eq!(www_location(false, "foo.com", 8443, b"/"), "http://foo.com:8443");
    }

    #[test]
    fn compile_refuses_codes_and_roots_the_reader_would_not_give() {
        let to = |code| RedirectSpec { to: Some(RedirectTo { url: vec![TemplatePart::Text { text: "https://x".into() }], code }), ..RedirectSpec::default() };
        assert!(compile(to(308)).is_ok());
        assert!(compile(to(200)).is_err());
        assert!(compile(RedirectSpec { app_root: Some("http://x".into()), ..RedirectSpec::default() }).is_err());
        assert_eq!(app_root_location(true, b"Foo.com:8443", "/app"), "https://Foo.com:8443/app");
    }
}
