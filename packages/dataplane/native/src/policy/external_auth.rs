//! External authentication (auth-url…, as nginx's auth_request does it for ingress-nginx): before a request is
//! forwarded, a body-less sub-request with the client's headers goes to the auth URL. 2xx forwards (the named
//! headers of that answer copied onto the upstream request), 401 and 403 are the client's answer (401 may become a
//! redirect to auth-signin), anything else, or no answer, is 500.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE, COOKIE, HOST, LOCATION, PROXY_AUTHORIZATION, SET_COOKIE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use super::template::{expand, Template, Vars};
use crate::metrics::Metrics;
use crate::proxy::{Body, Shared, HOP_BY_HOP};
use crate::upstream::{BodyFraming, UpstreamPool};

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalAuthSpec {
    pub url: Template,
    pub method: String,
    pub signin: Option<Template>,
    pub signin_redirect_param: String,
    pub response_headers: Vec<String>,
    pub request_redirect: Option<Template>,
    pub always_set_cookie: bool,
    pub cache_seconds: u64,
    pub cache_key: Option<Template>,
    pub proxy_set_headers: Vec<(String, String)>,
}

/// As requests use it (compiled once per snapshot; the cache lives as long as the snapshot).
pub struct ExternalAuth {
    url: Template,
    method: Method,
    signin: Option<Template>,
    response_headers: Vec<HeaderName>,
    request_redirect: Option<Template>,
    always_set_cookie: bool,
    cache_key: Option<Template>,
    proxy_set_headers: Vec<(HeaderName, HeaderValue)>,
    cache: Option<Cache>,
}

pub fn compile(spec: ExternalAuthSpec) -> Result<ExternalAuth, String> {
    let method = Method::from_bytes(spec.method.as_bytes()).map_err(|_| format!("method {:?} is not an HTTP method", spec.method))?;
    let header = |n: &str| HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("{n:?} is not a header name"));
    let response_headers = spec.response_headers.iter().map(|n| header(n)).collect::<Result<Vec<_>, _>>()?;
    let proxy_set_headers = spec
        .proxy_set_headers
        .iter()
        .map(|(n, v)| Ok((header(n)?, HeaderValue::from_str(v).map_err(|_| format!("the value of {n} is not a header value"))?)))
        .collect::<Result<Vec<_>, String>>()?;
    let cache = (spec.cache_seconds > 0).then(|| Cache { ttl: Duration::from_secs(spec.cache_seconds), entries: Mutex::new(HashMap::new()) });
    Ok(ExternalAuth { url: spec.url, method, signin: spec.signin, response_headers, request_redirect: spec.request_redirect, always_set_cookie: spec.always_set_cookie, cache_key: spec.cache_key, proxy_set_headers, cache })
}

/// Entries a cache holds at most; when full, expired ones go, and if none had expired, all of them.
const CACHE_ENTRIES: usize = 10_000;
/// The most of an auth answer's body read (to keep its connection); a longer one closes the connection.
const AUTH_BODY_LIMIT: usize = 64 * 1024;

/// Successful answers by key. The key always holds the request's credentials (Authorization, Proxy-Authorization
/// and Cookie lines), whatever auth-cache-key says: one client's success is never another's.
struct Cache {
    ttl: Duration,
    entries: Mutex<HashMap<Vec<u8>, (Instant, Arc<Allowed>)>>,
}

impl Cache {
    fn get(&self, key: &[u8]) -> Option<Arc<Allowed>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(key).filter(|(until, _)| Instant::now() < *until).map(|(_, a)| a.clone())
    }

    fn put(&self, key: Vec<u8>, allowed: Arc<Allowed>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if entries.len() >= CACHE_ENTRIES {
            entries.retain(|_, (until, _)| now < *until);
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (now + self.ttl, allowed));
    }
}

/// What a successful check adds: header lines for the upstream request, Set-Cookie lines for the client.
#[derive(Debug, Default)]
pub struct Allowed {
    /// each of auth-response-headers, with the auth answer's value (None: the answer had none, the line goes)
    pub upstream: Vec<(HeaderName, Option<HeaderValue>)>,
    pub cookies: Vec<HeaderValue>,
}

/// The request as the check sees it.
pub struct Subject<'a> {
    pub headers: &'a HeaderMap,
    pub vars: Vars<'a>,
    pub request_id: &'a [u8],
    /// ssl-client-* lines of a client certificate check, passed to the auth service as ingress-nginx does
    pub client_cert: &'a [(HeaderName, HeaderValue)],
}

/// Forward (with what the answer adds), or the client's answer.
pub enum Decision {
    Allow(Arc<Allowed>),
    Deny(Response<Body>),
}

const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_SCHEME: HeaderName = HeaderName::from_static("x-scheme");
const X_SENT_FROM: HeaderName = HeaderName::from_static("x-sent-from");
use crate::proxy::{X_FORWARDED_FOR, X_REAL_IP};
const X_AUTH_REQUEST_REDIRECT: HeaderName = HeaderName::from_static("x-auth-request-redirect");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
// (the client's own lines that the auth request sets itself, or that describe a body it does not have)
const REPLACED: [&str; 13] = ["host", "content-length", "content-type", "x-original-url", "x-original-uri", "x-original-method", "x-scheme", "x-sent-from", "x-real-ip", "x-forwarded-for", "x-forwarded-proto", "x-auth-request-redirect", "x-request-id"];

pub async fn check(auth: &ExternalAuth, shared: &Shared, pool: &UpstreamPool, subject: &Subject<'_>, close: bool) -> Decision {
    let url_text = expand(&auth.url, &subject.vars, &[]);
    let Ok(url) = url_text.parse::<Uri>() else {
        // (the TypeScript side checked the URL with variables stood in for; a value that breaks it fails closed)
        shared.logs.push("warn", "auth-url does not make a URL for this request", crate::log_fields! { "url" => url_text });
        return Decision::Deny(answer(shared, 500, close, Vec::new()));
    };
    let key = auth.cache.as_ref().map(|_| cache_key(auth, &url_text, subject));
    if let (Some(cache), Some(key)) = (&auth.cache, &key) {
        if let Some(allowed) = cache.get(key) {
            return Decision::Allow(allowed);
        }
    }
    let headers = request_headers(auth, &url, subject);
    let sent = tokio::time::timeout(shared.config.read_timeout, exchange(pool, &auth.method, &url, headers)).await;
    let (status, answer_headers) = match sent {
        Ok(Ok(a)) => a,
        Ok(Err(error)) => {
            shared.logs.push("warn", "auth request failed", crate::log_fields! { "url" => url_text, "error" => error });
            return Decision::Deny(answer(shared, 500, close, Vec::new()));
        }
        Err(_elapsed) => {
            shared.logs.push("warn", "auth request failed", crate::log_fields! { "url" => url_text, "error" => "no answer within the read timeout" });
            return Decision::Deny(answer(shared, 500, close, Vec::new()));
        }
    };
    let cookies: Vec<HeaderValue> = answer_headers.get_all(SET_COOKIE).iter().cloned().collect();
    let failure_cookies = || if auth.always_set_cookie { cookies.iter().map(|c| (SET_COOKIE, c.clone())).collect() } else { Vec::new() };
    match status {
        200..=299 => {
            let upstream = auth.response_headers.iter().map(|n| (n.clone(), answer_headers.get(n).cloned())).collect();
            let allowed = Arc::new(Allowed { upstream, cookies: cookies.clone() });
            if let (Some(cache), Some(key)) = (&auth.cache, key) {
                cache.put(key, allowed.clone());
            }
            Decision::Allow(allowed)
        }
        401 => {
            let mut lines = failure_cookies();
            if let Some(signin) = &auth.signin {
                let location = expand(signin, &subject.vars, &[]);
                if let Ok(v) = HeaderValue::try_from(location) {
                    lines.push((LOCATION, v));
                    return Decision::Deny(answer(shared, 302, close, lines));
                }
            }
            lines.extend(answer_headers.get_all(WWW_AUTHENTICATE).iter().map(|v| (WWW_AUTHENTICATE, v.clone())));
            Decision::Deny(answer(shared, 401, close, lines))
        }
        403 => Decision::Deny(answer(shared, 403, close, failure_cookies())),
        _ => {
            shared.logs.push("warn", "auth service answered neither 2xx, 401 nor 403", crate::log_fields! { "url" => url_text, "status" => status });
            Decision::Deny(answer(shared, 500, close, Vec::new()))
        }
    }
}

/// The request's credentials, the expanded auth-url and auth-cache-key, each length-prefixed (no two different
/// requests make the same key by moving bytes from one part to another).
fn cache_key(auth: &ExternalAuth, url: &str, subject: &Subject<'_>) -> Vec<u8> {
    let mut key = Vec::new();
    let mut part = |bytes: &[u8]| {
        key.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        key.extend_from_slice(bytes);
    };
    part(auth.method.as_str().as_bytes());
    part(url.as_bytes());
    part(auth.cache_key.as_ref().map(|k| expand(k, &subject.vars, &[])).unwrap_or_default().as_bytes());
    for name in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE] {
        for v in subject.headers.get_all(&name) {
            part(name.as_str().as_bytes());
            part(v.as_bytes());
        }
    }
    // the client certificate the check saw counts as a credential too
    for (n, v) in subject.client_cert {
        part(n.as_str().as_bytes());
        part(v.as_bytes());
    }
    key
}

/// The auth request's header lines: the client's (minus hop-by-hop and body ones), then what ingress-nginx sets.
fn request_headers(auth: &ExternalAuth, url: &Uri, subject: &Subject<'_>) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(subject.headers.len() + 12);
    let dropped = crate::head::connection_tokens(subject.headers);
    for (name, value) in subject.headers {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || REPLACED.contains(&n) || dropped.iter().any(|d| d == n) || n.starts_with("ssl-client-") {
            continue;
        }
        h.append(name.clone(), value.clone());
    }
    let vars = &subject.vars;
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(HOST, url.host().unwrap_or(""));
    let scheme = if vars.secure { "https" } else { "http" };
    set(X_ORIGINAL_URL, &format!("{scheme}://{}{}", vars.http_host, vars.request_uri));
    set(X_ORIGINAL_METHOD, vars.method);
    set(X_ORIGINAL_URI, vars.request_uri);
    set(X_SCHEME, scheme);
    set(X_SENT_FROM, "nginx-ingress-controller");
    set(X_REAL_IP, vars.remote_addr);
    set(X_FORWARDED_FOR, vars.remote_addr);
    let redirect = auth.request_redirect.as_ref().map(|t| expand(t, vars, &[]));
    set(X_AUTH_REQUEST_REDIRECT, redirect.as_deref().unwrap_or(vars.request_uri));
    set(X_REQUEST_ID, std::str::from_utf8(subject.request_id).unwrap_or(""));
    for (n, v) in subject.client_cert {
        h.insert(n.clone(), v.clone());
    }
    for (n, v) in &auth.proxy_set_headers {
        h.insert(n.clone(), v.clone());
    }
    h
}

/// One auth request: plain HTTP through the upstream pool (kept-alive connections), HTTPS on a connection of its
/// own. Returns the status and header lines; the body is read (up to a limit) and dropped.
async fn exchange(pool: &UpstreamPool, method: &Method, url: &Uri, headers: HeaderMap) -> Result<(u16, HeaderMap), String> {
    let https = match url.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        other => return Err(format!("scheme {other:?} is not http or https")),
    };
    let host = url.host().ok_or("the URL has no host")?;
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let endpoint = if bare.contains(':') { format!("[{bare}]:{port}") } else { format!("{bare}:{port}") };
    let target = url.path_and_query().map_or("/", |pq| pq.as_str());
    if !https {
        let write_head = |out: &mut Vec<u8>| {
            out.extend_from_slice(method.as_str().as_bytes());
            out.push(b' ');
            out.extend_from_slice(target.as_bytes());
            out.extend_from_slice(b" HTTP/1.1\r\n");
            for (n, v) in &headers {
                out.extend_from_slice(n.as_str().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(v.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
        };
        let res = pool.send(&crate::upstream::Target::plain(&endpoint), write_head, &mut None, BodyFraming::None, *method == Method::HEAD, true).await.map_err(|e| crate::proxy::error_chain(&e))?;
        let status = res.status().as_u16();
        let (parts, body) = res.into_parts();
        drain(body).await;
        return Ok((status, parts.headers));
    }
    let tcp = tokio::net::TcpStream::connect(&endpoint).await.map_err(|e| format!("connecting to {endpoint}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let name = rustls::pki_types::ServerName::try_from(bare.to_owned()).map_err(|e| format!("{bare}: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(client_config()?).connect(name, tcp).await.map_err(|e| format!("TLS with {endpoint}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| format!("{endpoint}: {e}"))?;
    tokio::spawn(connection);
    let mut req = Request::new(Empty::<Bytes>::new());
    *req.method_mut() = method.clone();
    *req.uri_mut() = target.parse().map_err(|_| "the URL's path is not a request target".to_owned())?;
    *req.headers_mut() = headers;
    req.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    let res = sender.send_request(req).await.map_err(|e| format!("{endpoint}: {}", crate::proxy::error_chain(&e)))?;
    let status = res.status().as_u16();
    let (parts, body) = res.into_parts();
    drain(body).await;
    Ok((status, parts.headers))
}

async fn drain<B: hyper::body::Body>(body: B)
where
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = http_body_util::Limited::new(body, AUTH_BODY_LIMIT).collect().await;
}

/// The roots an https auth-url is checked against: the system's (the CA bundle of the host or container).
fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err("no system CA certificates to check an https auth-url against".into());
            }
            let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider()).with_safe_default_protocol_versions().map_err(|e| e.to_string())?.with_root_certificates(roots).with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}


/// The proxy's own answer to a denied request.
fn answer(shared: &Shared, status: u16, close: bool, lines: Vec<(HeaderName, HeaderValue)>) -> Response<Body> {
    let text = match status {
        302 => "",
        401 => "401 unauthorized\n",
        403 => "403 forbidden\n",
        _ => "500 internal server error\n",
    };
    let mut res = Response::new(Full::new(Bytes::from_static(text.as_bytes())).map_err(|never| match never {}).boxed_unsync());
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !text.is_empty() {
        res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    for (n, v) in lines {
        res.headers_mut().append(n, v);
    }
    if close {
        res.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    Metrics::inc(&shared.metrics.local().local_responses);
    shared.metrics.local().response(status);
    res
}

/// The upstream request's lines after a successful check: each auth-response-headers name replaced by the auth
/// answer's value, or removed when the answer had none (a client cannot send its own).
pub fn apply(allowed: &Allowed, headers: &mut HeaderMap) {
    for (name, value) in &allowed.upstream {
        headers.remove(name);
        if let Some(v) = value {
            headers.insert(name.clone(), v.clone());
        }
    }
}

/// Statuses nginx's `add_header` (without `always`) adds to: the auth answer's cookies go on these only.
pub fn takes_cookies(status: u16) -> bool {
    matches!(status, 200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(cache_key: Option<&str>) -> ExternalAuth {
        let spec: ExternalAuthSpec = serde_json::from_value(serde_json::json!({
            "url": [{"text": "http://auth.test/check"}], "method": "GET", "signin": null, "signinRedirectParam": "rd",
            "responseHeaders": ["X-User"], "requestRedirect": null, "alwaysSetCookie": false, "cacheSeconds": 60,
            "cacheKey": cache_key.map(|k| serde_json::json!([{"text": k}])), "proxySetHeaders": [["X-Extra", "1"]]
        }))
        .unwrap();
        compile(spec).unwrap()
    }

    fn subject(headers: &HeaderMap) -> Subject<'_> {
        Subject { headers, vars: Vars { host: "foo.test", http_host: "foo.test:8080", request_uri: "/a?b=1", uri: "/a", remote_addr: "10.0.0.9", method: "POST", ..Vars::default() }, request_id: b"id-7", client_cert: &[] }
    }

    #[test]
    fn the_cache_key_always_holds_the_credentials() {
        let a = auth(Some("constant"));
        let mut h1 = HeaderMap::new();
        h1.insert(AUTHORIZATION, HeaderValue::from_static("Bearer one"));
        let mut h2 = HeaderMap::new();
        h2.insert(AUTHORIZATION, HeaderValue::from_static("Bearer two"));
        let mut h3 = HeaderMap::new();
        h3.insert(COOKIE, HeaderValue::from_static("Bearer one"));
        let k1 = cache_key(&a, "u", &subject(&h1));
        assert_ne!(k1, cache_key(&a, "u", &subject(&h2)));
        assert_ne!(k1, cache_key(&a, "u", &subject(&h3)), "the same bytes under another header are another credential");
        assert_eq!(k1, cache_key(&a, "u", &subject(&h1)));
        assert_ne!(cache_key(&a, "ab", &subject(&HeaderMap::new())), cache_key(&auth(Some("bconstant")), "a", &subject(&HeaderMap::new())));
    }

    #[test]
    fn the_auth_request_carries_the_original_request_and_none_of_its_body() {
        let a = auth(None);
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        h.insert("content-length", HeaderValue::from_static("5"));
        h.insert("x-original-url", HeaderValue::from_static("http://evil/"));
        h.insert("ssl-client-verify", HeaderValue::from_static("SUCCESS"));
        h.insert("connection", HeaderValue::from_static("x-secret"));
        h.insert("x-secret", HeaderValue::from_static("s"));
        let out = request_headers(&a, &"http://auth.test:9000/check".parse().unwrap(), &subject(&h));
        let get = |n: &str| out.get(n).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(get("host").as_deref(), Some("auth.test"));
        assert_eq!(get("authorization").as_deref(), Some("Bearer x"));
        assert_eq!(get("x-original-url").as_deref(), Some("http://foo.test:8080/a?b=1"));
        assert_eq!(get("x-original-method").as_deref(), Some("POST"));
        assert_eq!(get("x-auth-request-redirect").as_deref(), Some("/a?b=1"));
        assert_eq!(get("x-sent-from").as_deref(), Some("nginx-ingress-controller"));
        assert_eq!(get("x-request-id").as_deref(), Some("id-7"));
        assert_eq!(get("x-extra").as_deref(), Some("1"));
        for gone in ["content-length", "ssl-client-verify", "connection", "x-secret"] {
            assert_eq!(get(gone), None, "{gone}");
        }
    }

    #[test]
    fn response_headers_replace_the_clients_own() {
        let allowed = Allowed { upstream: vec![(HeaderName::from_static("x-user"), Some(HeaderValue::from_static("alice"))), (HeaderName::from_static("x-groups"), None)], cookies: Vec::new() };
        let mut h = HeaderMap::new();
        h.insert("x-user", HeaderValue::from_static("mallory"));
        h.insert("x-groups", HeaderValue::from_static("admin"));
        apply(&allowed, &mut h);
        assert_eq!(h.get("x-user").unwrap(), "alice");
        assert!(h.get("x-groups").is_none());
    }
}
