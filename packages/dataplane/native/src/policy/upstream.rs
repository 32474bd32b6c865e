//! How the upstream is reached: backend-protocol, proxy-ssl-*, timeouts, proxy-next-upstream, body limits.
//!
//! HTTP/1 upstreams (plain or TLS) go through the keep-alive pool (upstream.rs); gRPC upstreams are spoken to with
//! hyper's HTTP/2 client (`send_h2`), which carries trailers (`grpc-status`) through.

use std::io::BufReader;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;
use tokio::net::TcpStream;

use super::template::{expand, Template, Vars};
use crate::proxy::Body;
use crate::table::Endpoint;
use crate::upstream::UpstreamError;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamSpec {
    /// HTTP, HTTPS, AUTO_HTTP, GRPC, GRPCS
    pub protocol: String,
    pub tls: Option<UpstreamTlsSpec>,
    pub connect_timeout_ms: Option<u64>,
    pub read_timeout_ms: Option<u64>,
    pub next_upstream: Vec<String>,
    pub next_upstream_tries: u32,
    pub next_upstream_timeout_ms: u64,
    /// "1.0" or "1.1"
    pub http_version: String,
    pub max_body_size: Option<u64>,
    pub body_buffer_size: Option<u64>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamTlsSpec {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub verify: bool,
    pub name: Template,
    pub server_name: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Https,
    /// HTTPS when the request came over TLS, else HTTP
    AutoHttp,
    Grpc,
    Grpcs,
}

/// As requests use it (compiled once per snapshot).
pub struct Upstream {
    pub protocol: Protocol,
    pub tls: Option<UpstreamTls>,
    pub connect_timeout: Option<Duration>,
    pub read_timeout: Option<Duration>,
    pub retry: Retry,
    /// `proxy-http-version: 1.0`
    pub http10: bool,
    /// bytes; `proxy-body-size: 0` is `usize::MAX`
    pub max_body_size: Option<usize>,
    pub body_buffer_size: Option<usize>,
}

impl Upstream {
    /// TLS to the endpoint for this request, if its protocol asks for it.
    pub fn tls_for(&self, secure: bool) -> Option<&UpstreamTls> {
        match self.protocol {
            Protocol::Https | Protocol::Grpcs => self.tls.as_ref(),
            Protocol::AutoHttp if secure => self.tls.as_ref(),
            _ => None,
        }
    }

    pub fn is_grpc(&self) -> bool {
        matches!(self.protocol, Protocol::Grpc | Protocol::Grpcs)
    }
}

pub fn compile(spec: UpstreamSpec) -> Result<Upstream, String> {
    let protocol = match spec.protocol.as_str() {
        "HTTP" => Protocol::Http,
        "HTTPS" => Protocol::Https,
        "AUTO_HTTP" => Protocol::AutoHttp,
        "GRPC" => Protocol::Grpc,
        "GRPCS" => Protocol::Grpcs,
        other => return Err(format!("protocol {other:?} is not one of HTTP, HTTPS, AUTO_HTTP, GRPC, GRPCS")),
    };
    let tls = match (protocol, spec.tls) {
        (Protocol::Http | Protocol::Grpc, _) => None,
        (_, None) => return Err(format!("protocol {} needs tls settings", spec.protocol)),
        (_, Some(tls)) => Some(compile_tls(tls, protocol == Protocol::Grpcs).map_err(|e| format!("tls: {e}"))?),
    };
    let http10 = match spec.http_version.as_str() {
        "1.0" => true,
        "1.1" => false,
        other => return Err(format!("httpVersion {other:?} is neither 1.0 nor 1.1")),
    };
    let size = |n: u64| if n == 0 { usize::MAX } else { usize::try_from(n).unwrap_or(usize::MAX) };
    let positive = |name: &str, ms: Option<u64>| match ms {
        Some(0) => Err(format!("{name} is 0")),
        _ => Ok(ms.map(Duration::from_millis)),
    };
    Ok(Upstream {
        protocol,
        tls,
        connect_timeout: positive("connectTimeoutMs", spec.connect_timeout_ms)?,
        read_timeout: positive("readTimeoutMs", spec.read_timeout_ms)?,
        retry: Retry::compile(&spec.next_upstream, spec.next_upstream_tries, spec.next_upstream_timeout_ms)?,
        http10,
        max_body_size: spec.max_body_size.map(size),
        body_buffer_size: spec.body_buffer_size.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    })
}

/// When a request goes on to another endpoint (`proxy-next-upstream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    conditions: u16,
    /// attempts in all; 0: one per endpoint
    tries: u32,
    /// no attempt starts after this much time since the first
    timeout: Option<Duration>,
}

/// What went wrong with one attempt, as `proxy-next-upstream` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// no connection (refused, unreachable)
    ConnectError,
    /// the connect timeout passed
    ConnectTimeout,
    /// the connection failed after the request was (partly) sent
    Error,
    /// no response head within the read timeout
    Timeout,
    /// the response head could not be read
    InvalidHeader,
    /// an answer with this status
    Status(u16),
}

const CONDITIONS: [&str; 11] = ["error", "timeout", "invalid_header", "http_500", "http_502", "http_503", "http_504", "http_403", "http_404", "http_429", "non_idempotent"];
const ERROR: u16 = 1 << 0;
const TIMEOUT: u16 = 1 << 1;
const INVALID_HEADER: u16 = 1 << 2;
const NON_IDEMPOTENT: u16 = 1 << 10;
/// the `http_*` conditions
const STATUSES: u16 = 0b11_1111_1000;

impl Retry {
    /// ingress-nginx's default: `error timeout`, 3 tries, no time limit.
    pub const DEFAULT: Retry = Retry { conditions: ERROR | TIMEOUT, tries: 3, timeout: None };

    fn compile(conditions: &[String], tries: u32, timeout_ms: u64) -> Result<Retry, String> {
        let mut bits = 0;
        for c in conditions {
            let i = CONDITIONS.iter().position(|k| k == c).ok_or_else(|| format!("nextUpstream: {c:?} is not a condition"))?;
            bits |= 1 << i;
        }
        Ok(Retry { conditions: bits, tries, timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)) })
    }

    fn status_bit(status: u16) -> u16 {
        match status {
            500 => 1 << 3,
            502 => 1 << 4,
            503 => 1 << 5,
            504 => 1 << 6,
            403 => 1 << 7,
            404 => 1 << 8,
            429 => 1 << 9,
            _ => 0,
        }
    }

    /// Whether an answer with this status may be dropped for another attempt (cheap: the common answer is not).
    #[inline]
    pub fn on_status(&self, status: u16) -> bool {
        self.conditions & STATUSES != 0 && self.conditions & Retry::status_bit(status) != 0
    }

    /// Whether another attempt follows this one's `failure`. `attempt` is 1 for the first; `endpoints` bounds the
    /// attempts (each goes to an endpoint not tried yet); `sent` says the request reached the upstream (then a
    /// body that cannot be sent again, or a non-idempotent method without `non_idempotent`, stops here), and
    /// `elapsed` is the time since the first attempt began.
    #[allow(clippy::too_many_arguments)]
    pub fn again(&self, failure: Failure, attempt: u32, endpoints: usize, sent: bool, resendable: bool, idempotent: bool, elapsed: Duration) -> bool {
        let bit = match failure {
            Failure::ConnectError | Failure::Error => ERROR,
            Failure::ConnectTimeout | Failure::Timeout => TIMEOUT,
            Failure::InvalidHeader => INVALID_HEADER,
            Failure::Status(s) => Retry::status_bit(s),
        };
        let limit = if self.tries == 0 { endpoints } else { endpoints.min(self.tries as usize) };
        self.conditions & bit != 0
            && (attempt as usize) < limit
            && self.timeout.is_none_or(|t| elapsed < t)
            && (!sent || (resendable && (idempotent || self.conditions & NON_IDEMPOTENT != 0)))
    }
}

/// TLS to the endpoint: the client configuration, and the name checked (and sent as SNI when asked).
pub struct UpstreamTls {
    pub config: Arc<ClientConfig>,
    name: Template,
    /// the settings' hash: pooled connections are kept apart by it (and by the name)
    pub id: u64,
}

impl UpstreamTls {
    /// The server name for this request. A name that is not one (after expansion) is checked as the endpoint's
    /// address instead.
    pub fn server_name(&self, vars: &Vars<'_>, endpoint_host: &str) -> ServerName<'static> {
        let name = expand(&self.name, vars, &[]);
        ServerName::try_from(name).or_else(|_| ServerName::try_from(endpoint_host.trim_start_matches('[').trim_end_matches(']').to_owned())).unwrap_or_else(|_| ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into()))
    }
}

fn compile_tls(spec: UpstreamTlsSpec, h2: bool) -> Result<UpstreamTls, String> {
    use std::hash::{Hash, Hasher};
    let provider = crate::tls::provider();
    let verifier: Arc<dyn ServerCertVerifier> = if spec.verify {
        let mut roots = RootCertStore::empty();
        if let Some(ca) = &spec.ca {
            for cert in rustls_pemfile::certs(&mut BufReader::new(ca.as_bytes())) {
                let cert = cert.map_err(|e| format!("ca is not PEM: {e}"))?;
                roots.add(cert).map_err(|e| format!("ca: {e}"))?;
            }
        }
        if roots.is_empty() {
            Arc::new(Refuse(provider.clone()))
        } else {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().map_err(|e| format!("ca: {e}"))?
        }
    } else {
        Arc::new(Unchecked(provider.clone()))
    };
    let builder = ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().map_err(|e| e.to_string())?.dangerous().with_custom_certificate_verifier(verifier);
    let mut config = match (&spec.cert, &spec.key) {
        (Some(cert), Some(key)) => {
            let certified = crate::tls::certified_key(cert, key)?;
            let key = rustls_pemfile::private_key(&mut BufReader::new(key.as_bytes())).map_err(|e| format!("key: {e}"))?.ok_or("key holds no private key block")?;
            builder.with_client_auth_cert(certified.cert.clone(), key).map_err(|e| format!("client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.enable_sni = spec.server_name;
    config.alpn_protocols = vec![if h2 { b"h2".to_vec() } else { b"http/1.1".to_vec() }];
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&spec.ca, &spec.cert, &spec.key, spec.verify, spec.server_name, h2).hash(&mut hasher);
    Ok(UpstreamTls { config: Arc::new(config), name: spec.name, id: hasher.finish() })
}

/// `proxy-ssl-verify: off`: any certificate is taken (as nginx does), the handshake's signatures still checked.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

/// `proxy-ssl-verify: on` without a CA: nothing can be trusted (the system roots are not used).
#[derive(Debug)]
struct Refuse(Arc<rustls::crypto::CryptoProvider>);

macro_rules! signatures {
    () => {
        fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }

        fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    };
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(&self, _: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8], _: UnixTime) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    signatures!();
}

impl ServerCertVerifier for Refuse {
    fn verify_server_cert(&self, _: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8], _: UnixTime) -> Result<ServerCertVerified, rustls::Error> {
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
    }
    signatures!();
}

/// One gRPC request over a new HTTP/2 connection to `endpoint` (TLS with `tls`), the response head within
/// whatever timeout the caller puts around it. `head` has an absolute URI (its authority is `:authority`); the
/// body is taken once connected (after a failed connect it is still the caller's, to send elsewhere).
pub async fn send_h2(endpoint: &str, connect_timeout: Duration, tls: Option<(Arc<ClientConfig>, ServerName<'static>)>, head: Request<()>, body: &mut Option<Body>) -> Result<Response<Incoming>, UpstreamError> {
    let failed = |error| UpstreamError::Connect { endpoint: endpoint.to_owned(), error };
    let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(endpoint)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(failed(e)),
        Err(_) => return Err(failed(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout"))),
    };
    let _ = stream.set_nodelay(true);
    let h2 = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    let io_error = |e: hyper::Error| UpstreamError::Io(std::io::Error::other(e));
    let mut sender = match tls {
        None => {
            let (sender, conn) = h2.handshake(TokioIo::new(stream)).await.map_err(io_error)?;
            tokio::spawn(conn);
            sender
        }
        Some((config, name)) => {
            let tls = tokio_rustls::TlsConnector::from(config).connect(name, stream).await.map_err(|error| UpstreamError::Handshake { endpoint: endpoint.to_owned(), error })?;
            let (sender, conn) = h2.handshake(TokioIo::new(tls)).await.map_err(io_error)?;
            tokio::spawn(conn);
            sender
        }
    };
    let req = head.map(|()| body.take().unwrap_or_else(crate::proxy::empty_body));
    sender.send_request(req).await.map_err(|e| if e.is_parse() { UpstreamError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)) } else { io_error(e) })
}

/// The next endpoint `next` gives that this request has not tried yet (round-robin moves on for other requests
/// too, so it may hand back one already tried); one already tried only when `next` gives nothing else.
pub fn next_untried<'t>(endpoints: usize, tried: &[&Endpoint], mut next: impl FnMut() -> Option<&'t Endpoint>) -> Option<&'t Endpoint> {
    let mut endpoint = next()?;
    for _ in 1..endpoints {
        if !tried.iter().any(|t| std::ptr::eq(*t, endpoint)) {
            break;
        }
        endpoint = next()?;
    }
    Some(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> UpstreamSpec {
        serde_json::from_str(json).expect("spec")
    }

    const BASE: &str = r#""connectTimeoutMs": null, "readTimeoutMs": null, "nextUpstreamTries": 3, "nextUpstreamTimeoutMs": 0, "httpVersion": "1.1", "maxBodySize": null, "bodyBufferSize": null"#;

    #[test]
    fn compiles_and_refuses() {
        let ok = compile(spec(&format!(r#"{{"protocol": "HTTP", "tls": null, "nextUpstream": ["error", "http_503"], {BASE}}}"#))).expect("compiles");
        assert_eq!(ok.protocol, Protocol::Http);
        assert!(ok.tls_for(true).is_none());
        let tls = r#"{"ca": null, "cert": null, "key": null, "verify": false, "name": [{"text": "a.test"}], "serverName": true}"#;
        let auto = compile(spec(&format!(r#"{{"protocol": "AUTO_HTTP", "tls": {tls}, "nextUpstream": [], {BASE}}}"#))).expect("compiles");
        assert!(auto.tls_for(true).is_some() && auto.tls_for(false).is_none());
        let bad = |json: String, wanted: &str| {
            let err = compile(spec(&json)).err().expect("refused");
            assert!(err.contains(wanted), "{err}");
        };
        bad(format!(r#"{{"protocol": "FCGI", "tls": null, "nextUpstream": [], {BASE}}}"#), "FCGI");
        bad(format!(r#"{{"protocol": "HTTPS", "tls": null, "nextUpstream": [], {BASE}}}"#), "needs tls");
        bad(format!(r#"{{"protocol": "HTTP", "tls": null, "nextUpstream": ["sometimes"], {BASE}}}"#), "sometimes");
        bad(format!(r#"{{"protocol": "HTTPS", "tls": {}, "nextUpstream": [], {BASE}}}"#, tls.replace(r#""ca": null"#, r#""ca": "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n""#).replace("false", "true")), "ca");
        bad(format!(r#"{{"protocol": "HTTP", "tls": null, "nextUpstream": [], {}}}"#, BASE.replace(r#""httpVersion": "1.1""#, r#""httpVersion": "2""#)), "httpVersion");
    }

    #[test]
    fn next_upstream() {
        let ms = Duration::from_millis;
        let d = Retry::DEFAULT;
        // (failure, attempt, endpoints, sent, resendable, idempotent, elapsed) → again
        assert!(d.again(Failure::ConnectError, 1, 3, false, false, false, ms(0)), "nothing sent: even a streamed POST goes on");
        assert!(d.again(Failure::ConnectTimeout, 2, 3, false, false, false, ms(0)));
        assert!(!d.again(Failure::ConnectError, 3, 5, false, true, true, ms(0)), "3 tries");
        assert!(!d.again(Failure::ConnectError, 1, 1, false, true, true, ms(0)), "no other endpoint");
        assert!(d.again(Failure::Error, 1, 2, true, true, true, ms(0)));
        assert!(!d.again(Failure::Error, 1, 2, true, false, true, ms(0)), "a streamed body is not sent twice");
        assert!(!d.again(Failure::Timeout, 1, 2, true, true, false, ms(0)), "a sent POST is not sent twice");
        assert!(!d.again(Failure::InvalidHeader, 1, 2, true, true, true, ms(0)));
        assert!(!d.again(Failure::Status(503), 1, 2, true, true, true, ms(0)));
        assert!(!d.on_status(503) && !d.on_status(200));
        let r = Retry::compile(&["http_503".into(), "non_idempotent".into(), "invalid_header".into()], 0, 100).expect("compiles");
        assert!(r.on_status(503) && !r.on_status(502) && !r.on_status(200));
        assert!(r.again(Failure::Status(503), 4, 5, true, true, false, ms(50)), "tries 0: one per endpoint; non_idempotent");
        assert!(!r.again(Failure::Status(503), 5, 5, true, true, false, ms(50)));
        assert!(!r.again(Failure::Status(503), 1, 5, true, true, false, ms(100)), "past the timeout");
        assert!(r.again(Failure::InvalidHeader, 1, 5, true, true, true, ms(0)));
        assert!(!r.again(Failure::ConnectError, 1, 5, false, true, true, ms(0)), "error not listed");
        let off = Retry::compile(&[], 3, 0).expect("compiles");
        assert!(!off.again(Failure::ConnectError, 1, 5, false, true, true, ms(0)));
    }
}
