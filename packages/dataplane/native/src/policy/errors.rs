//! Custom error pages (custom-http-errors, default-backend): an upstream answer with one of the codes is replaced
//! by the answer of the route's error backend to `GET /` carrying what happened (X-Code, X-Original-URI…, as
//! ingress-nginx's custom error locations send); and a route whose Service has no endpoints is served by the
//! error backend instead of answering 503.

use hyper::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, HOST};
use hyper::{Method, Response};
use serde::Deserialize;

use crate::proxy::Body;
use crate::snapshot::PortRef;
use crate::table::Table;
use crate::upstream::{BodyFraming, UpstreamPool};

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorsSpec {
    pub codes: Vec<u16>,
    /// the Service named by default-backend (resolved by the TypeScript side into the route's `errorBackend`)
    pub default_backend: Option<String>,
}

/// As requests use it (compiled once per snapshot).
pub struct Errors {
    codes: Vec<u16>,
}

pub fn compile(spec: ErrorsSpec) -> Result<Errors, String> {
    if let Some(c) = spec.codes.iter().find(|c| !(400..=599).contains(*c)) {
        return Err(format!("code {c} is not a 4xx or 5xx status"));
    }
    Ok(Errors { codes: spec.codes })
}

/// The backend serving a route whose own Service has no endpoints: its error backend, when that has some.
pub fn fallback_backend(table: &Table, route: usize) -> Option<usize> {
    let b = table.routes[route].error_backend?;
    (!table.backends[b].endpoints.is_empty()).then_some(b)
}

/// What the error page request says about the request that failed.
pub struct Failed<'a> {
    pub route: usize,
    pub status: u16,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub request_uri: &'a [u8],
    pub request_id: &'a [u8],
    pub peer: &'a HeaderValue,
}

/// The error backend's answer standing in for an upstream answer of `failed.status`, or None when the route has
/// no such page (or the error backend gives no answer: then the upstream's own answer goes to the client).
pub async fn error_page(table: &Table, errors: &Errors, pool: &UpstreamPool, failed: &Failed<'_>, read_timeout: std::time::Duration) -> Option<Response<Body>> {
    if !errors.codes.contains(&failed.status) {
        return None;
    }
    let route = &table.routes[failed.route];
    let backend = &table.backends[route.error_backend?];
    let endpoint = backend.next_endpoint()?;
    let service = &table.backends[route.backend];
    let port = match &service.port {
        Some(PortRef::Number(n)) => n.to_string(),
        Some(PortRef::Name(n)) => n.clone(),
        None => String::new(),
    };
    let code = failed.status.to_string();
    let lines: [(HeaderName, &[u8]); 9] = [
        (HeaderName::from_static("x-code"), code.as_bytes()),
        (HeaderName::from_static("x-format"), failed.headers.get(ACCEPT).map_or(&b""[..], |v| v.as_bytes())),
        (HeaderName::from_static("x-original-uri"), failed.request_uri),
        (HeaderName::from_static("x-namespace"), route.ingress.namespace.as_bytes()),
        (HeaderName::from_static("x-ingress-name"), route.ingress.name.as_bytes()),
        (HeaderName::from_static("x-service-name"), service.service.as_deref().unwrap_or("").as_bytes()),
        (HeaderName::from_static("x-service-port"), port.as_bytes()),
        (HeaderName::from_static("x-request-id"), failed.request_id),
        (crate::proxy::X_FORWARDED_FOR, failed.peer.as_bytes()),
    ];
    // nginx's error_page turns every method but HEAD into GET
    let head = *failed.method == Method::HEAD;
    let write_head = |out: &mut Vec<u8>| {
        out.extend_from_slice(if head { b"HEAD / HTTP/1.1\r\n" } else { b"GET / HTTP/1.1\r\n" });
        let host = failed.headers.get(HOST).map_or(endpoint.authority.as_bytes(), |h| h.as_bytes());
        for (name, value) in std::iter::once((HOST, host)).chain(lines.iter().map(|(n, v)| (n.clone(), *v))) {
            // (a value with a control character is left out rather than written)
            if value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
    };
    let sent = tokio::time::timeout(read_timeout, pool.send(&crate::upstream::Target::plain(&endpoint.authority), write_head, &mut None, BodyFraming::None, head, true)).await;
    match sent {
        Ok(Ok(res)) => Some(res.map(|b| http_body_util::BodyExt::boxed_unsync(b))),
        _ => None,
    }
}
