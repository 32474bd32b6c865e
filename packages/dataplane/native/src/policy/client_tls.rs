//! Client certificate authentication (auth-tls-*). The TLS handshake of a host whose routes ask for client
//! certificates requests one and keeps whatever the client proves it holds (the signature over the handshake is
//! checked there); the chain is checked against the route's CA per request, as nginx checks at the HTTP level:
//! a failed check is a 400 (or the error page), never a broken handshake, and `optional` forwards it marked.

use std::collections::HashMap;
use std::io::BufReader;
use std::sync::Arc;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use serde::Deserialize;

use super::template::escape_component;
use crate::table::Route;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTlsSpec {
    /// PEM CA bundle
    pub ca: String,
    /// on, off, optional, optional_no_ca
    pub verify: String,
    pub depth: u32,
    pub pass_certificate: bool,
    pub error_page: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    On,
    Off,
    Optional,
    OptionalNoCa,
}

/// As requests use it (compiled once per snapshot).
pub struct ClientTls {
    pub verify: Verify,
    /// intermediates the client may send beyond its own certificate (auth-tls-verify-depth − 1)
    max_intermediates: usize,
    pass_certificate: bool,
    error_page: Option<HeaderValue>,
    /// the chain check against the CA
    chain: Arc<dyn ClientCertVerifier>,
    /// what the handshake uses: asks for a certificate naming these CAs, checks only possession of its key
    pub handshake: Arc<dyn ClientCertVerifier>,
}

pub fn compile(spec: ClientTlsSpec) -> Result<ClientTls, String> {
    let verify = match spec.verify.as_str() {
        "on" => Verify::On,
        "off" => Verify::Off,
        "optional" => Verify::Optional,
        "optional_no_ca" => Verify::OptionalNoCa,
        other => return Err(format!("verify {other:?} is not on, off, optional or optional_no_ca")),
    };
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut BufReader::new(spec.ca.as_bytes())) {
        let cert = cert.map_err(|e| format!("ca is not PEM: {e}"))?;
        roots.add(cert).map_err(|e| format!("ca holds a certificate that cannot be a trust anchor: {e}"))?;
    }
    if roots.is_empty() {
        return Err("ca holds no CERTIFICATE block".into());
    }
    let hints = roots.subjects();
    let chain = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crate::tls::provider()).build().map_err(|e| format!("ca: {e}"))?;
    let error_page = spec.error_page.map(|p| HeaderValue::try_from(p).map_err(|_| "errorPage is not a header value".to_owned())).transpose()?;
    let handshake: Arc<dyn ClientCertVerifier> = Arc::new(RequestCertificate { hints, provider: crate::tls::provider() });
    Ok(ClientTls { verify, max_intermediates: spec.depth.saturating_sub(1) as usize, pass_certificate: spec.pass_certificate, error_page, chain, handshake })
}

/// Offers client authentication without requiring it, and accepts any chain: whether it is trusted is the
/// route's question (`check`). The client's signature over the handshake is still verified, so a chain kept
/// here is one the client holds the key of.
#[derive(Debug)]
struct RequestCertificate {
    hints: Vec<DistinguishedName>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCertVerifier for RequestCertificate {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(&self, _end_entity: &CertificateDer<'_>, _intermediates: &[CertificateDer<'_>], _now: UnixTime) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// TLS host (lower case; `*.foo.com` for a wildcard) → the policy whose client TLS its handshake asks for: the
/// first route of the host that has one (ingress-nginx too has one CA per server).
pub fn hosts(routes: &[Route], policies: &[super::Policy]) -> HashMap<Vec<u8>, usize> {
    let mut out = HashMap::new();
    for r in routes {
        let (Some(host), Some(ct)) = (r.host.as_deref(), policies[r.policy].client_tls.as_ref()) else { continue };
        if ct.verify != Verify::Off {
            out.entry(host.to_ascii_lowercase().into_bytes()).or_insert(r.policy);
        }
    }
    out
}

/// The policy index for a handshake's server name: exact, else its one-label wildcard.
pub fn for_server_name(hosts: &HashMap<Vec<u8>, usize>, name: &[u8]) -> Option<usize> {
    if let Some(p) = hosts.get(name) {
        return Some(*p);
    }
    let dot = name.iter().position(|&b| b == b'.')?;
    let mut wildcard = b"*".to_vec();
    wildcard.extend_from_slice(&name[dot..]);
    hosts.get(&wildcard).copied()
}

/// What a request's connection showed: the chain the client sent (None: none, or not TLS).
pub type PeerChain = Option<Arc<Vec<CertificateDer<'static>>>>;

/// The outcome of a route's check: forward with these header lines, or answer 400 (a redirect to the error page
/// when there is one).
pub enum Checked {
    Forward(Vec<(HeaderName, HeaderValue)>),
    Reject(Option<HeaderValue>),
}

const SSL_CLIENT_CERT: HeaderName = HeaderName::from_static("ssl-client-cert");
const SSL_CLIENT_VERIFY: HeaderName = HeaderName::from_static("ssl-client-verify");
const SSL_CLIENT_SUBJECT_DN: HeaderName = HeaderName::from_static("ssl-client-subject-dn");
const SSL_CLIENT_ISSUER_DN: HeaderName = HeaderName::from_static("ssl-client-issuer-dn");

/// Removes what a client may have sent under the names these checks set (they are believed upstream).
pub fn strip_client_headers(headers: &mut HeaderMap) {
    for name in [SSL_CLIENT_CERT, SSL_CLIENT_VERIFY, SSL_CLIENT_SUBJECT_DN, SSL_CLIENT_ISSUER_DN] {
        headers.remove(name);
    }
}

/// Why a chain did not pass (nginx's `$ssl_client_verify` NONE or FAILED:reason).
enum Failed {
    None,
    /// no CA of the bundle vouches for it: the one failure optional_no_ca lets through (as nginx)
    UnknownIssuer(String),
    Other(String),
}

fn verify_chain(ct: &ClientTls, chain: &PeerChain) -> Result<(), Failed> {
    let Some(chain) = chain.as_deref() else { return Err(Failed::None) };
    let Some((end_entity, intermediates)) = chain.split_first() else { return Err(Failed::None) };
    if intermediates.len() > ct.max_intermediates {
        return Err(Failed::Other("certificate chain too long".into()));
    }
    ct.chain.verify_client_cert(end_entity, intermediates, UnixTime::now()).map(|_| ()).map_err(|e| match e {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => Failed::UnknownIssuer(e.to_string()),
        e => Failed::Other(e.to_string()),
    })
}

/// A request on a route with client TLS (`chain` None over plain HTTP, which has no certificate).
pub fn check(ct: &ClientTls, chain: &PeerChain) -> Checked {
    if ct.verify == Verify::Off {
        return Checked::Forward(Vec::new());
    }
    let verdict = verify_chain(ct, chain);
    let mut lines = Vec::new();
    let verify_text = match &verdict {
        Ok(()) => "SUCCESS".to_owned(),
        Err(Failed::None) => "NONE".to_owned(),
        Err(Failed::UnknownIssuer(reason) | Failed::Other(reason)) => format!("FAILED:{reason}"),
    };
    // nginx: on needs a good certificate; optional takes none, not a bad one; optional_no_ca also one of no known CA
    let passes = match (&verdict, ct.verify) {
        (Ok(()), _) | (_, Verify::Off) => true,
        (Err(Failed::None), Verify::Optional | Verify::OptionalNoCa) => true,
        (Err(Failed::UnknownIssuer(_)), Verify::OptionalNoCa) => true,
        _ => false,
    };
    if !passes {
        return Checked::Reject(ct.error_page.clone());
    }
    if let Ok(v) = HeaderValue::try_from(verify_text) {
        lines.push((SSL_CLIENT_VERIFY, v));
    }
    if let Some(cert) = chain.as_deref().and_then(|c| c.first()) {
        if let Some((issuer, subject)) = names(cert) {
            for (name, dn) in [(SSL_CLIENT_SUBJECT_DN, subject), (SSL_CLIENT_ISSUER_DN, issuer)] {
                if let Ok(v) = HeaderValue::try_from(dn) {
                    lines.push((name, v));
                }
            }
        }
        if ct.pass_certificate {
            let mut escaped = String::new();
            escape_component(&mut escaped, &pem(cert));
            if let Ok(v) = HeaderValue::try_from(escaped) {
                lines.push((SSL_CLIENT_CERT, v));
            }
        }
    }
    Checked::Forward(lines)
}

/// A certificate as PEM text (64 base64 characters a line), as nginx's `$ssl_client_cert` holds it.
fn pem(cert: &CertificateDer<'_>) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in cert.as_ref().chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or(""));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// One DER element: (tag, contents, the rest after it).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |l, &b| (l << 8) | b as usize), &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The issuer and subject of a certificate, as RFC 2253 strings (what nginx's `$ssl_client_i_dn` /
/// `$ssl_client_s_dn` hold). None when the DER is not a certificate.
pub fn names(cert: &CertificateDer<'_>) -> Option<(String, String)> {
    let (_, certificate, _) = der(cert.as_ref()).filter(|(t, _, _)| *t == 0x30)?;
    let (_, mut tbs, _) = der(certificate).filter(|(t, _, _)| *t == 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = der(tbs)?.2; // version
    }
    let rest = der(tbs)?.2; // serial
    let rest = der(rest)?.2; // signature algorithm
    let (_, issuer, rest) = der(rest)?;
    let rest = der(rest)?.2; // validity
    let (_, subject, _) = der(rest)?;
    Some((rfc2253(issuer)?, rfc2253(subject)?))
}

fn rfc2253(mut name: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (tag, mut set, rest) = der(name)?;
        if tag != 0x31 {
            return None;
        }
        name = rest;
        let mut parts = Vec::new();
        while !set.is_empty() {
            let (_, attribute, rest) = der(set)?;
            set = rest;
            let (oid_tag, oid, value) = der(attribute)?;
            if oid_tag != 0x06 {
                return None;
            }
            let (value_tag, text, _) = der(value)?;
            let key = attribute_name(oid);
            let value = match (value_tag, std::str::from_utf8(text)) {
                // UTF8String, PrintableString, IA5String, TeletexString (as Latin-1 would be wrong, only ASCII)
                (0x0c | 0x13 | 0x16 | 0x14, Ok(s)) => escape_dn(s),
                _ => format!("#{}", value.iter().map(|b| format!("{b:02X}")).collect::<String>()),
            };
            parts.push(format!("{key}={value}"));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x09] => "STREET".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID".into(),
        _ => {
            let mut arcs: Vec<u64> = Vec::new();
            let mut n = 0u64;
            for (i, &b) in oid.iter().enumerate() {
                n = (n << 7) | u64::from(b & 0x7f);
                if b & 0x80 == 0 {
                    if arcs.is_empty() && i < oid.len() {
                        let first = (n / 40).min(2);
                        arcs.push(first);
                        arcs.push(n - first * 40);
                    } else {
                        arcs.push(n);
                    }
                    n = 0;
                }
            }
            arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
        }
    }
}

/// RFC 2253 §2.4: `,+"\<>;` escaped, and a leading `#` or space and a trailing space.
fn escape_dn(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') || (i == 0 && (c == '#' || c == ' ')) || (i == last && c == ' ') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(rdns: &[&[(&[u8], &str)]]) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut v = vec![tag];
            if body.len() < 128 {
                v.push(body.len() as u8);
            } else {
                v.push(0x81);
                v.push(body.len() as u8);
            }
            v.extend_from_slice(body);
            v
        }
        let mut seq = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (oid, value) in *rdn {
                let mut attr = tlv(0x06, oid);
                attr.extend(tlv(0x0c, value.as_bytes()));
                set.extend(tlv(0x30, &attr));
            }
            seq.extend(tlv(0x31, &set));
        }
        seq
    }

    #[test]
    fn distinguished_names_are_written_as_rfc_2253_most_specific_first() {
        let n = name(&[&[(&[0x55, 4, 6], "DE")], &[(&[0x55, 4, 10], "Acme, Inc.")], &[(&[0x55, 4, 3], "#client "), (&[0x55, 4, 11], "Ops")], &[(&[0x2a, 0x03], "x")]]);
        assert_eq!(rfc2253(&n).unwrap(), "1.2.3=x,CN=\\#client\\ +OU=Ops,O=Acme\\, Inc.,C=DE");
        assert_eq!(rfc2253(&[0x31, 0x05, 0x30]), None, "a truncated name is no name");
    }

    #[test]
    fn pem_lines_are_64_characters_and_padded() {
        let cert = CertificateDer::from(vec![0xffu8; 50]);
        let text = pem(&cert);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2], "//8=");
        assert_eq!(lines[3], "-----END CERTIFICATE-----");
    }

    #[test]
    fn wildcard_hosts_cover_one_label() {
        let mut hosts = HashMap::new();
        hosts.insert(b"*.foo.test".to_vec(), 3);
        hosts.insert(b"a.foo.test".to_vec(), 1);
        assert_eq!(for_server_name(&hosts, b"a.foo.test"), Some(1));
        assert_eq!(for_server_name(&hosts, b"b.foo.test"), Some(3));
        assert_eq!(for_server_name(&hosts, b"foo.test"), None);
    }
}
