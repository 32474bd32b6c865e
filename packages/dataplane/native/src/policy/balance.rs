//! Which endpoint serves: cookie affinity and upstream-hash-by. Routes without either never come here: the
//! proxy goes straight to the backend's round-robin.
//!
//! The session cookie holds an endpoint's id (a hash of its `host:port`, never the address itself); a request
//! whose cookie names an endpoint of the backend goes there, any other gets an endpoint (by hash when
//! upstream-hash-by is set, else round-robin) and a cookie naming it. upstream-hash-by hashes with rendezvous
//! hashing: each endpoint scores `mix(key, endpoint id)` and the highest wins, so adding or removing an endpoint
//! moves only the keys that go to or came from it.

use std::time::{Duration, SystemTime};

use hyper::header::{HeaderMap, HeaderValue, COOKIE, USER_AGENT};
use serde::Deserialize;

use super::template::{Template, TemplatePart};
use crate::table::{Backend, Endpoint};

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BalanceSpec {
    pub affinity: Option<AffinitySpec>,
    pub hash_by: Option<Template>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AffinitySpec {
    pub name: String,
    /// balanced or persistent: served alike (the TypeScript side reports the difference)
    pub mode: String,
    /// sticky or legacy
    pub canary_behavior: String,
    pub secure: bool,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub same_site: Option<String>,
    pub conditional_same_site_none: bool,
    pub max_age: Option<u64>,
    pub expires: Option<u64>,
    pub change_on_failure: bool,
}

/// As requests use it (compiled once per snapshot).
pub struct Balance {
    pub affinity: Option<Affinity>,
    pub hash_by: Option<Template>,
}

pub struct Affinity {
    name: String,
    /// `affinity-canary-behavior: sticky`: a cookie naming an endpoint of a backend keeps the request there
    pub sticky_canary: bool,
    secure: bool,
    path: Option<String>,
    /// `; Domain=…; Max-Age=…`, written once
    fixed_attributes: String,
    expires: Option<u64>,
    same_site: Option<&'static str>,
    conditional_same_site_none: bool,
    change_on_failure: bool,
}

pub fn compile(spec: BalanceSpec) -> Result<Balance, String> {
    let affinity = spec.affinity.map(compile_affinity).transpose()?;
    Ok(Balance { affinity, hash_by: spec.hash_by })
}

fn compile_affinity(a: AffinitySpec) -> Result<Affinity, String> {
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let attribute = |s: &str| s.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b';');
    if !token(&a.name) {
        return Err(format!("affinity.name {:?} is not a cookie name", a.name));
    }
    if a.path.as_deref().is_some_and(|p| !p.starts_with('/') || !attribute(p)) || a.domain.as_deref().is_some_and(|d| !attribute(d)) {
        return Err("affinity.path or affinity.domain holds what a cookie attribute cannot".into());
    }
    let same_site = match a.same_site.as_deref() {
        None => None,
        Some("None") => Some("None"),
        Some("Lax") => Some("Lax"),
        Some("Strict") => Some("Strict"),
        Some(other) => return Err(format!("affinity.sameSite {other:?} is not None, Lax or Strict")),
    };
    let sticky_canary = match a.canary_behavior.as_str() {
        "sticky" => true,
        "legacy" => false,
        other => return Err(format!("affinity.canaryBehavior {other:?} is not sticky or legacy")),
    };
    if a.mode != "balanced" && a.mode != "persistent" {
        return Err(format!("affinity.mode {:?} is not balanced or persistent", a.mode));
    }
    let mut fixed_attributes = String::new();
    if let Some(d) = &a.domain {
        fixed_attributes.push_str("; Domain=");
        fixed_attributes.push_str(d);
    }
    if let Some(m) = a.max_age {
        fixed_attributes.push_str(&format!("; Max-Age={m}"));
    }
    Ok(Affinity { name: a.name, sticky_canary, secure: a.secure, path: a.path, fixed_attributes, expires: a.expires, same_site, conditional_same_site_none: a.conditional_same_site_none, change_on_failure: a.change_on_failure })
}

/// An endpoint's id: what the session cookie holds and what rendezvous hashing scores. The same on every replica
/// and across restarts (FNV-1a, then a finaliser to spread it).
pub fn endpoint_id(authority: &str) -> u64 {
    mix(fnv1a(authority.as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// splitmix64's finaliser: every input bit reaches every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The endpoint a key goes to: the highest `mix(key ^ id)` (rendezvous hashing); None without endpoints.
pub fn rendezvous(backend: &Backend, key: &[u8]) -> Option<usize> {
    let k = fnv1a(key);
    backend.endpoints.iter().enumerate().max_by_key(|(_, e)| (mix(k ^ e.id), e.id)).map(|(i, _)| i)
}

/// The value of cookie `name` among the request's Cookie lines.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers.get_all(COOKIE).iter().flat_map(|line| line.as_bytes().split(|&b| b == b';')).find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        (pair[..eq].trim_ascii() == name.as_bytes()).then(|| pair[eq + 1..].trim_ascii())
    })
}

impl Affinity {
    /// The endpoint of `backend` the request's session cookie names, if any.
    pub fn cookie_endpoint(&self, headers: &HeaderMap, backend: &Backend) -> Option<usize> {
        let value = cookie(headers, &self.name)?;
        let text = std::str::from_utf8(value).ok().filter(|t| t.len() == 16)?;
        let id = u64::from_str_radix(text, 16).ok()?;
        backend.endpoints.iter().position(|e| e.id == id)
    }

    /// The Set-Cookie naming `endpoint`. Secure when asked or when the request came over HTTPS (ingress-nginx sets
    /// it there even with session-cookie-secure "false"); Path the annotation's, else the route's path.
    pub fn set_cookie(&self, endpoint: &Endpoint, request: &BalanceRequest<'_>) -> Option<HeaderValue> {
        let path = self.path.as_deref().or(request.route_path).unwrap_or("/");
        let mut v = format!("{}={:016x}; Path={path}{}", self.name, endpoint.id, self.fixed_attributes);
        if let Some(seconds) = self.expires {
            let at = SystemTime::now() + Duration::from_secs(seconds);
            v.push_str("; Expires=");
            v.push_str(&httpdate::fmt_http_date(at));
        }
        if self.secure || request.secure {
            v.push_str("; Secure");
        }
        v.push_str("; HttpOnly");
        if let Some(same_site) = self.same_site {
            let omit = same_site == "None" && self.conditional_same_site_none && request.headers.get(USER_AGENT).is_some_and(|ua| same_site_none_incompatible(ua.as_bytes()));
            if !omit {
                v.push_str("; SameSite=");
                v.push_str(same_site);
            }
        }
        HeaderValue::try_from(v).ok()
    }
}

/// Browsers that reject or misread `SameSite=None` (the list the Chromium project published): Chrome and
/// Chromium 51 to 66, UC Browser before 12.13.2, every browser on iOS 12, Safari and embedded browsers on macOS
/// 10.14.
pub fn same_site_none_incompatible(ua: &[u8]) -> bool {
    let ua = String::from_utf8_lossy(ua);
    let version_after = |marker: &str| -> Option<Vec<u32>> {
        let at = ua.find(marker)? + marker.len();
        Some(ua[at..].split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_')).next()?.split(['.', '_']).map_while(|p| p.parse().ok()).collect())
    };
    if let Some(v) = version_after("Chrome/").or_else(|| version_after("Chromium/")) {
        if v.first().is_some_and(|m| (51..=66).contains(m)) {
            return true;
        }
    }
    if let Some(v) = version_after("UCBrowser/") {
        if v < vec![12, 13, 2] {
            return true;
        }
    }
    if ua.contains("AppleWebKit/") {
        if ua.contains("(iP") && version_after("OS ").is_some_and(|v| v.first() == Some(&12)) {
            return true;
        }
        let mac_10_14 = version_after("Mac OS X ").is_some_and(|v| v.starts_with(&[10, 14]));
        let safari = ua.contains("Version/") && ua.contains("Safari") && !ua.contains("Chrom");
        let embedded = !ua.contains("Safari") && !ua.contains("Chrom");
        if mac_10_14 && (safari || embedded) {
            return true;
        }
    }
    false
}

/// What choosing an endpoint may look at.
pub struct BalanceRequest<'a> {
    pub headers: &'a HeaderMap,
    pub secure: bool,
    /// the route's path as written: the cookie's Path unless the annotation names one
    pub route_path: Option<&'a str>,
}

/// Endpoints for one request and its retries: the first by the policy, later ones as affinity allows.
pub struct Chooser<'a> {
    backend: &'a Backend,
    balance: Option<&'a Balance>,
    chosen: Option<usize>,
    /// the request's session cookie named the endpoint chosen first (a session of its own, not a new one)
    from_cookie: bool,
    /// the cookie to set on the answer (a new session, or one moved to another endpoint)
    pub set_cookie: Option<HeaderValue>,
}

impl<'a> Chooser<'a> {
    pub fn new(backend: &'a Backend, balance: Option<&'a Balance>) -> Chooser<'a> {
        Chooser { backend, balance, chosen: None, from_cookie: false, set_cookie: None }
    }

    /// The endpoint for the next try. `hash_key` expands the upstream-hash-by template (only called with one).
    pub fn next(&mut self, request: &BalanceRequest<'_>, hash_key: impl FnOnce(&[TemplatePart]) -> String) -> Option<&'a Endpoint> {
        let backend = self.backend;
        let Some(balance) = self.balance else { return backend.next_endpoint() };
        let affinity = balance.affinity.as_ref();
        let index = match self.chosen {
            None => {
                if let Some(i) = affinity.and_then(|a| a.cookie_endpoint(request.headers, backend)) {
                    self.chosen = Some(i);
                    self.from_cookie = true;
                    return backend.endpoints.get(i);
                }
                match &balance.hash_by {
                    Some(t) => rendezvous(backend, hash_key(t).as_bytes()),
                    None => backend.next_index(),
                }
            }
            // a retry after a failed connect: the client's session stays unless it may change on failure; a
            // session begun by this request has no client holding it yet and moves (as ingress-nginx)
            Some(i) if self.from_cookie && affinity.is_some_and(|a| !a.change_on_failure) => Some(i),
            Some(_) => backend.next_index(),
        }?;
        if let Some(a) = affinity {
            if self.chosen != Some(index) {
                self.set_cookie = a.set_cookie(&backend.endpoints[index], request);
            }
        }
        self.chosen = Some(index);
        backend.endpoints.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests_support::backend_with;

    fn affinity(json: &str) -> Affinity {
        let base = r#"{"name":"INGRESSCOOKIE","mode":"balanced","canaryBehavior":"sticky","secure":false,"path":null,"domain":null,"sameSite":null,"conditionalSameSiteNone":false,"maxAge":null,"expires":null,"changeOnFailure":false}"#;
        let mut v: serde_json::Value = serde_json::from_str(base).unwrap();
        for (k, x) in serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json).unwrap() {
            v[k] = x;
        }
        compile_affinity(serde_json::from_value(v).unwrap()).unwrap()
    }

    #[test]
    fn rendezvous_moves_only_the_keys_of_the_endpoint_added_or_removed() {
        let five = backend_with(&["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]);
        let six = backend_with(&["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
        let four = backend_with(&["10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5"]);
        let at = |b: &Backend, k: &str| b.endpoints[rendezvous(b, k.as_bytes()).unwrap()].host.clone();
        let (mut moved_up, mut moved_down, mut to_new) = (0, 0, 0);
        let mut seen = std::collections::HashSet::new();
        for n in 0..3000 {
            let key = format!("/item/{n}");
            let before = at(&five, &key);
            seen.insert(before.clone());
            let after = at(&six, &key);
            if after != before {
                moved_up += 1;
                assert_eq!(after, "10.0.0.6", "a key only moves to the new endpoint");
                to_new += 1;
            }
            let fewer = at(&four, &key);
            if fewer != before {
                moved_down += 1;
                assert_eq!(before, "10.0.0.3", "only the removed endpoint's keys move");
            }
        }
        assert_eq!(seen.len(), 5, "every endpoint gets keys");
        // about 1/6 and 1/5 of the keys; far from all
        assert!(moved_up > 0 && moved_up < 1000, "{moved_up}");
        assert!(moved_down > 0 && moved_down < 1000, "{moved_down}");
        assert_eq!(to_new, moved_up);
    }

    #[test]
    fn the_cookie_names_an_endpoint_by_id_and_a_stale_one_is_ignored() {
        let b = backend_with(&["10.0.0.1", "10.0.0.2"]);
        let a = affinity(r#"{"name":"s"}"#);
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_str(&format!("x=1; s={:016x}", b.endpoints[1].id)).unwrap());
        assert_eq!(a.cookie_endpoint(&h, &b), Some(1));
        let gone = backend_with(&["10.0.0.1", "10.0.0.3"]);
        assert_eq!(a.cookie_endpoint(&h, &gone), None);
        assert!(!format!("{:016x}", b.endpoints[1].id).contains("10.0.0.2"));
    }

    #[test]
    fn set_cookie_attributes() {
        let b = backend_with(&["10.0.0.1"]);
        let h = HeaderMap::new();
        let plain = BalanceRequest { headers: &h, secure: false, route_path: Some("/app") };
        let tls = BalanceRequest { headers: &h, secure: true, route_path: Some("/app") };
        let a = affinity(r#"{"name":"s","maxAge":60,"domain":"foo.test","sameSite":"Lax"}"#);
        let v = a.set_cookie(&b.endpoints[0], &plain).unwrap();
        assert_eq!(v.to_str().unwrap(), format!("s={:016x}; Path=/app; Domain=foo.test; Max-Age=60; HttpOnly; SameSite=Lax", b.endpoints[0].id));
        let secure = a.set_cookie(&b.endpoints[0], &tls).unwrap();
        assert!(secure.to_str().unwrap().contains("; Secure"), "Secure over HTTPS even with secure false");
        let e = affinity(r#"{"path":"/x","expires":3600}"#).set_cookie(&b.endpoints[0], &plain).unwrap();
        assert!(e.to_str().unwrap().contains("Path=/x; Expires=") && e.to_str().unwrap().ends_with(" GMT; HttpOnly"), "{e:?}");
    }

    #[test]
    fn samesite_none_is_left_out_for_browsers_that_misread_it() {
        let b = backend_with(&["10.0.0.1"]);
        let a = affinity(r#"{"sameSite":"None","conditionalSameSiteNone":true}"#);
        let with_ua = |ua: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(USER_AGENT, HeaderValue::from_static(ua));
            a.set_cookie(&b.endpoints[0], &BalanceRequest { headers: &h, secure: true, route_path: None }).unwrap().to_str().unwrap().to_owned()
        };
        let old_chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/63.0.3239.84 Safari/537.36";
        let ios12 = "Mozilla/5.0 (iPhone; CPU iPhone OS 12_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1";
        let mojave_safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Safari/605.1.15";
        let old_uc = "Mozilla/5.0 (Linux; U; Android 7.0; en-US; SM-G935F Build/NRD90M) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 UCBrowser/11.3.8.976 U3/0.8.0 Mobile Safari/534.30";
        let new_chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        let mojave_chrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        for ua in [old_chrome, ios12, mojave_safari, old_uc] {
            assert!(!with_ua(ua).contains("SameSite"), "{ua}");
        }
        for ua in [new_chrome, mojave_chrome] {
            assert!(with_ua(ua).ends_with("; SameSite=None"), "{ua}");
        }
    }

    #[test]
    fn a_retry_keeps_the_session_unless_it_may_change_on_failure() {
        let b = backend_with(&["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        let h = HeaderMap::new();
        let req = BalanceRequest { headers: &h, secure: false, route_path: None };
        for (change, json) in [(false, r#"{}"#), (true, r#"{"changeOnFailure":true}"#)] {
            let balance = Balance { affinity: Some(affinity(json)), hash_by: None };
            // a session the client holds
            let mut cookie = HeaderMap::new();
            cookie.insert(COOKIE, HeaderValue::from_str(&format!("INGRESSCOOKIE={:016x}", b.endpoints[1].id)).unwrap());
            let held = BalanceRequest { headers: &cookie, ..req };
            let mut c = Chooser::new(&b, Some(&balance));
            let first = c.next(&held, |_| String::new()).unwrap().id;
            assert_eq!(first, b.endpoints[1].id);
            assert!(c.set_cookie.is_none(), "a valid session is not set again");
            let second = c.next(&held, |_| String::new()).unwrap().id;
            assert_eq!(first != second, change);
            assert_eq!(c.set_cookie.is_some(), change, "a moved session gets a new cookie");
            // a session begun by this request moves on a retry whatever change-on-failure says
            let mut c = Chooser::new(&b, Some(&balance));
            let first = c.next(&req, |_| String::new()).unwrap().id;
            assert!(c.set_cookie.take().is_some(), "a new session gets its cookie");
            let second = c.next(&req, |_| String::new()).unwrap().id;
            assert_ne!(first, second);
            assert!(c.set_cookie.is_some(), "the cookie names where the session went");
        }
    }
}
