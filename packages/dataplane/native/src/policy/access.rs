//! Source address allow and deny lists (allowlist-/whitelist-/denylist-source-range), and `admit`: who may reach
//! a route, how often, and its CORS answer, checked in this order once the route is known:
//!
//! 1. the deny list, then the allow list → 403 (before anything else: a denied address learns nothing more);
//! 2. a CORS preflight (OPTIONS from an allowed Origin) → 204, never forwarded (ingress-nginx answers it in
//!    nginx's rewrite phase, before its limits and auth: a browser sends no credentials on a preflight);
//! 3. limit-rps / limit-rpm / limit-connections → `limit-req-status-code` (nginx's preaccess phase, so failed
//!    password guesses are limited too);
//! 4. basic auth → 401 (nginx's access phase).
//!
//! Answers of a CORS route, the proxy's own included, carry the Access-Control-* headers (ingress-nginx sets them
//! with `more_set_headers`, which covers every status).

use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;

use super::cors::CorsOutcome;
use super::limits::{Permit, Zones};
use super::Policy;
use crate::metrics::Metrics;
use crate::proxy::{Body, Shared};
use crate::snapshot::ObjectRef;
use crate::table::Table;
use crate::trust::TrustedProxies;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessSpec {
    /// CIDRs; empty: everyone (after the deny list)
    pub allow: Vec<String>,
    /// CIDRs, checked first
    pub deny: Vec<String>,
}

/// As requests use it (compiled once per snapshot).
#[derive(Debug)]
pub struct Access {
    /// None: every address not denied (the same CIDR set as `--trusted-proxies`)
    allow: Option<TrustedProxies>,
    deny: TrustedProxies,
}

pub fn compile(spec: AccessSpec) -> Result<Access, String> {
    let allow = if spec.allow.is_empty() { None } else { Some(TrustedProxies::parse(&spec.allow).map_err(|e| format!("allow: {e}"))?) };
    Ok(Access { allow, deny: TrustedProxies::parse(&spec.deny).map_err(|e| format!("deny: {e}"))? })
}

impl Access {
    /// nginx's `deny` lines, then `allow` lines and `deny all`.
    pub fn allows(&self, client: IpAddr) -> bool {
        !self.deny.has(client) && self.allow.as_ref().is_none_or(|a| a.has(client))
    }
}

/// The client's address as X-Real-IP names it upstream: the peer, or when the peer is a trusted proxy the
/// right-most untrusted X-Forwarded-For hop (the peer again if that is not an address, as nginx's realip module).
pub fn client_address(trusted: &TrustedProxies, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !trusted.has(peer) {
        return peer;
    }
    let lines: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    if lines.is_empty() {
        return peer;
    }
    trusted.real_client_address(peer, Some(&lines.join(", "))).parse::<IpAddr>().map_or(peer, |ip| ip.to_canonical())
}

/// What `admit` decided: an answer of the proxy's own, or none (forward); and what the answer (whichever it is)
/// needs afterwards.
pub struct Admission {
    pub answer: Option<Response<Body>>,
    /// the CORS headers to set on the answer
    pub cors: Option<CorsOutcome>,
    /// held while the request is served (limit-connections)
    pub permit: Option<Permit>,
}

/// Checks a request against its route's policy (see the module's comment for the order). `close`: the request's
/// body was not read, so an answer of the proxy's own closes an HTTP/1.1 connection.
pub async fn admit(policy: &Policy, shared: &Shared, zones: &Zones, ingress: &ObjectRef, peer: IpAddr, method: &Method, headers: &HeaderMap, close: bool) -> Admission {
    let mut admission = Admission { answer: None, cors: None, permit: None };
    if policy.access.is_none() && policy.limits.is_none() && policy.cors.is_none() && policy.basic_auth.is_none() {
        return admission;
    }
    let client = || client_address(&shared.config.trusted, peer, headers);
    if let Some(access) = &policy.access {
        if !access.allows(client()) {
            admission.answer = Some(own_answer(shared, 403, close));
            return admission;
        }
    }
    if let Some(cors) = &policy.cors {
        let outcome = cors.outcome(headers);
        let preflight = *method == Method::OPTIONS && outcome.allowed();
        admission.cors = Some(outcome);
        if preflight {
            let mut res = own_answer(shared, 204, close);
            res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain charset=UTF-8"));
            res.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            admission.answer = Some(res);
            return admission;
        }
    }
    if let Some(limits) = &policy.limits {
        let zone = format!("{}/{}", ingress.namespace, ingress.name);
        match limits.admit(zones, &zone, client(), Instant::now()) {
            Ok(permit) => admission.permit = permit,
            Err(_) => {
                admission.answer = Some(own_answer(shared, limits.status, close));
                return admission;
            }
        }
    }
    if let Some(auth) = &policy.basic_auth {
        if !auth.admits(headers).await {
            let mut res = own_answer(shared, 401, close);
            res.headers_mut().insert(WWW_AUTHENTICATE, auth.challenge.clone());
            admission.answer = Some(res);
        }
    }
    admission
}

/// Sets the CORS headers `admit` decided on a route's answer (the upstream's or the proxy's own).
pub fn finish_answer(table: &Table, route: usize, cors: &CorsOutcome, headers: &mut HeaderMap) {
    if let Some(c) = table.routes.get(route).and_then(|r| table.policies[r.policy].cors.as_ref()) {
        c.apply(cors, headers);
    }
}

/// A short plain-text answer of the proxy's own (the body empty for 204), counted as the proxy's `reply` counts.
fn own_answer(shared: &Shared, status: u16, close: bool) -> Response<Body> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let text = if code == StatusCode::NO_CONTENT { String::new() } else { format!("{} {}\n", code.as_u16(), code.canonical_reason().unwrap_or("").to_ascii_lowercase()) };
    let mut res = Response::new(Full::new(Bytes::from(text)).map_err(|never| match never {}).boxed_unsync());
    *res.status_mut() = code;
    if code != StatusCode::NO_CONTENT {
        res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    if close {
        res.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    Metrics::inc(&shared.metrics.local().local_responses);
    shared.metrics.local().response(code.as_u16());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(allow: &[&str], deny: &[&str]) -> Access {
        compile(AccessSpec { allow: allow.iter().map(|s| s.to_string()).collect(), deny: deny.iter().map(|s| s.to_string()).collect() }).unwrap()
    }

    #[test]
    fn deny_first_then_allow_then_deny_all() {
        let a = access(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"], &["10.0.0.1", "2001:db8:1::/48"]);
        for (ip, allowed) in [
            ("10.2.3.4", true),
            ("::ffff:10.2.3.4", true),
            ("10.0.0.1", false),
            ("192.0.2.7", true),
            ("192.0.2.8", false),
            ("2001:db8::5", true),
            ("2001:db8:1::5", false),
            ("fd00::1", false),
        ] {
            assert_eq!(a.allows(ip.parse().unwrap()), allowed, "{ip}");
        }
        let deny_only = access(&[], &["203.0.113.0/24"]);
        assert!(!deny_only.allows("203.0.113.9".parse().unwrap()));
        assert!(deny_only.allows("198.51.100.1".parse().unwrap()));
        assert!(compile(AccessSpec { allow: vec!["10.0.0.0/33".into()], deny: vec![] }).is_err());
        assert!(compile(AccessSpec { allow: vec![], deny: vec!["nope".into()] }).is_err());
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_forwarded_it() {
        let trusted = TrustedProxies::parse(&["127.0.0.0/8".into()]).unwrap();
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.5, 198.51.100.2"));
        h.append("x-forwarded-for", HeaderValue::from_static("127.0.0.2"));
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(client_address(&trusted, local, &h), "198.51.100.2".parse::<IpAddr>().unwrap());
        let outsider: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_address(&trusted, outsider, &h), outsider);
        let mut junk = HeaderMap::new();
        junk.insert("x-forwarded-for", HeaderValue::from_static("not-an-address"));
        assert_eq!(client_address(&trusted, local, &junk), local);
        let mut mapped = HeaderMap::new();
        mapped.insert("x-forwarded-for", HeaderValue::from_static("::ffff:192.0.2.9"));
        assert_eq!(client_address(&trusted, local, &mapped), "192.0.2.9".parse::<IpAddr>().unwrap());
    }
}
