//! `ssl-passthrough`: a TLS connection to the HTTPS port whose ClientHello names a passthrough host is not
//! terminated: its bytes, ClientHello included, go to an endpoint of that host's backend, which speaks TLS
//! itself. Only when the table has such hosts is the ClientHello read ahead of rustls (bounded in size and by
//! the handshake's deadline); any other connection gets those bytes replayed into the usual TLS handshake.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::log_fields;
use crate::metrics::Metrics;
use crate::paths::request_host;
use crate::proxy::Shared;
use crate::rewind::Rewind;

/// The largest ClientHello read ahead (a handshake message; real ones are well under 2 KiB, post-quantum key
/// shares included). A longer one goes to rustls as it would without passthrough hosts.
const MAX_HELLO: usize = 16 * 1024;
/// TLSPlaintext.length's limit (RFC 8446 §5.1).
const MAX_RECORD: usize = 1 << 14;
/// What is read ahead at most: a maximal ClientHello split into records as small as a sender may make them is
/// bounded by this instead (what does not fit goes to rustls).
const MAX_READ_AHEAD: usize = MAX_HELLO + 4 * 1024;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXTENSION_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST_NAME: u8 = 0;

/// What the bytes read so far hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// a ClientHello has begun and is not whole yet
    Incomplete,
    /// a whole ClientHello, and the host name of its server_name extension (normalised as a Host header is)
    Complete(Option<Vec<u8>>),
    /// not a ClientHello this reads (garbage, another protocol, a malformed or oversized hello): rustls decides
    Other,
}

/// Reads the ClientHello at the start of `buf`: its records (handshake content type, TLS 1.x record version)
/// reassembled into the handshake message, which is parsed as far as the server_name extension. Never panics;
/// what is neither a ClientHello nor the start of one is `Other`.
pub fn client_hello(buf: &[u8]) -> Hello {
    // (a hello in one record, nearly all of them, is read in place; one in several is joined here)
    let mut joined: Vec<u8> = Vec::new();
    let mut first: &[u8] = &[];
    let mut records = 0;
    let mut rest = buf;
    loop {
        // (each byte of the record header is checked once it is there, so a plain-HTTP request is `Other` at once)
        if rest.first().is_some_and(|&t| t != CONTENT_HANDSHAKE) || rest.get(1).is_some_and(|&major| major != 3) {
            return Hello::Other;
        }
        let Some(header) = rest.get(..5) else {
            return Hello::Incomplete;
        };
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD {
            return Hello::Other;
        }
        let Some(fragment) = rest.get(5..5 + len) else {
            return Hello::Incomplete;
        };
        rest = &rest[5 + len..];
        records += 1;
        let handshake: &[u8] = if records == 1 {
            first = fragment;
            first
        } else {
            if records == 2 {
                joined.extend_from_slice(first);
            }
            joined.extend_from_slice(fragment);
            &joined
        };
        if handshake[0] != HANDSHAKE_CLIENT_HELLO {
            return Hello::Other;
        }
        let Some(length) = handshake.get(1..4) else {
            continue;
        };
        let length = usize::from(length[0]) << 16 | usize::from(length[1]) << 8 | usize::from(length[2]);
        if length > MAX_HELLO {
            return Hello::Other;
        }
        let Some(body) = handshake.get(4..4 + length) else {
            continue;
        };
        return match server_name(body) {
            Some(name) => Hello::Complete(name),
            None => Hello::Other,
        };
    }
}

/// A ClientHello body's server name: Some(None) without the extension, None when the body is malformed.
fn server_name(body: &[u8]) -> Option<Option<Vec<u8>>> {
    let mut r = Reader(body);
    r.take(2)?; // legacy_version
    r.take(32)?; // random
    let session_id = r.vec8()?;
    if session_id.len() > 32 {
        return None;
    }
    r.vec16()?; // cipher_suites
    r.vec8()?; // legacy_compression_methods
    if r.0.is_empty() {
        return Some(None); // (a TLS 1.2 hello may have no extensions at all)
    }
    let mut extensions = Reader(r.vec16()?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vec16()?;
        if kind != EXTENSION_SERVER_NAME {
            continue;
        }
        let mut data = Reader(data);
        let mut names = Reader(data.vec16()?);
        while !names.0.is_empty() {
            let name_type = names.u8()?;
            let name = names.vec16()?;
            if name_type == NAME_TYPE_HOST_NAME {
                // (a DNS name's bytes only: nothing a Host header would read as a port or an address)
                let valid = !name.is_empty() && name.len() <= 255 && name.iter().all(|&b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
                return valid.then(|| Some(request_host(name)));
            }
        }
        return Some(None);
    }
    Some(None)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// What became of a connection to the HTTPS port once its ClientHello was read.
pub enum Intercepted {
    /// passed through (or closed: the client went away, the deadline passed, no endpoint answered)
    Done,
    /// for the proxy's own TLS handshake, with the bytes read ahead replayed
    Terminate(Rewind<TcpStream>),
}

/// Why a passthrough Ingress's policy refuses a connection from `peer`, if it does. An unread TLS stream cannot be
/// authenticated, so auth refuses every connection rather than relay it unprotected; source ranges are checked on the
/// peer address (no X-Forwarded-For can be read).
fn refusal(policy: &crate::policy::Policy, peer: Option<std::net::IpAddr>) -> Option<&'static str> {
    if policy.refuse.is_some() {
        return Some("the Ingress refuses every request (an invalid security annotation)");
    }
    if policy.basic_auth.is_some() || policy.external_auth.is_some() || policy.client_tls.is_some() {
        return Some("the Ingress asks for authentication, which a stream passed through unread cannot give");
    }
    match (&policy.access, peer) {
        (Some(access), Some(ip)) if !access.allows(ip) => Some("the peer address is outside the Ingress's source ranges"),
        (Some(_), None) => Some("the peer address is unknown and the Ingress has source ranges"),
        _ => None,
    }
}

/// Reads the ClientHello (until `deadline`) and passes the connection through when it names a passthrough host.
pub async fn intercept(shared: &Shared, mut stream: TcpStream, deadline: Instant) -> Intercepted {
    let peer = stream.peer_addr().ok().map(|a| a.ip().to_canonical());
    let mut buf = BytesMut::with_capacity(2048);
    let sni = loop {
        match client_hello(&buf) {
            Hello::Complete(sni) => break sni,
            Hello::Other => break None,
            Hello::Incomplete if buf.len() >= MAX_READ_AHEAD => break None,
            Hello::Incomplete => {}
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            // gone, or no hello in time: what the handshake's own timeout does
            _ => return Intercepted::Done,
        }
    };
    let target = sni.and_then(|name| {
        let table = shared.table.load();
        let pass = table.match_passthrough(&name)?;
        let backend = table.backends.get(pass.backend)?;
        let refusal = pass.policy.and_then(|k| table.policies.get(k)).and_then(|p| refusal(p, peer));
        // every endpoint once, starting at the next in turn: a connect failure moves on to the next
        let start = backend.next_index().unwrap_or(0);
        let len = backend.endpoints.len();
        let endpoints: Vec<String> = (0..len).filter_map(|k| backend.endpoints.get((start + k) % len)).map(|e| e.authority.clone()).collect();
        Some((endpoints, format!("{}/{}", pass.ingress.namespace, pass.ingress.name), backend.service.clone().unwrap_or_default(), name, refusal))
    });
    let Some((endpoints, ingress, service, host, refusal)) = target else {
        return Intercepted::Terminate(Rewind::new(buf.freeze(), stream));
    };
    let host = String::from_utf8_lossy(&host).into_owned();
    let warn = |msg: &str, error: &str, endpoint: &str| {
        shared.logs.push("warn", msg, log_fields! { "error" => error, "endpoint" => endpoint, "ingress" => ingress.as_str(), "service" => service.as_str(), "host" => host.as_str() });
    };
    if let Some(why) = refusal {
        Metrics::inc(&shared.metrics.local().local_responses);
        warn("passthrough connection refused", why, "");
        return Intercepted::Done;
    }
    if endpoints.is_empty() {
        Metrics::inc(&shared.metrics.local().upstream_errors);
        warn("passthrough connection closed", "the backend has no ready endpoint", "");
        return Intercepted::Done;
    }
    let mut upstream = None;
    for (k, endpoint) in endpoints.iter().enumerate() {
        if k > 0 {
            Metrics::inc(&shared.metrics.local().upstream_retries);
        }
        match tokio::time::timeout(shared.config.connect_timeout, TcpStream::connect(endpoint.as_str())).await {
            Ok(Ok(s)) => {
                upstream = Some(s);
                break;
            }
            Ok(Err(e)) => {
                Metrics::inc(&shared.metrics.local().upstream_errors);
                warn("passthrough connect failed", &e.to_string(), endpoint);
            }
            Err(_elapsed) => {
                Metrics::inc(&shared.metrics.local().upstream_timeouts);
                warn("passthrough connect failed", "connect timeout", endpoint);
            }
        }
    }
    let Some(mut upstream) = upstream else {
        return Intercepted::Done;
    };
    let _ = upstream.set_nodelay(true);
    if upstream.write_all(&buf).await.is_err() {
        return Intercepted::Done;
    }
    drop(buf);
    // The tunnel is an open connection until either side closes: a drain waits for it like for a WebSocket
    // (there is no request boundary to stop at), and its deadline ends it.
    let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
    Intercepted::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record (TLS 1.2 layout) with these extensions, as (type, data).
    fn hello(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
        handshake_records(&hello_body(extensions), usize::MAX)
    }

    /// A ClientHello body with these extensions.
    fn hello_body(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.push(0); // session id
        body.extend([0, 2, 0x13, 0x01]); // one cipher suite
        body.extend([1, 0]); // null compression
        let mut ext = Vec::new();
        for (kind, data) in extensions {
            ext.extend(kind.to_be_bytes());
            ext.extend((data.len() as u16).to_be_bytes());
            ext.extend(data);
        }
        body.extend((ext.len() as u16).to_be_bytes());
        body.extend(ext);
        body
    }

    /// A ClientHello body as records of at most `split` bytes each.
    fn handshake_records(body: &[u8], split: usize) -> Vec<u8> {
        let mut msg = vec![HANDSHAKE_CLIENT_HELLO];
        msg.extend(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend(body);
        let mut out = Vec::new();
        for chunk in msg.chunks(split.min(MAX_RECORD)) {
            out.extend([CONTENT_HANDSHAKE, 3, 1]);
            out.extend((chunk.len() as u16).to_be_bytes());
            out.extend(chunk);
        }
        out
    }

    fn sni(names: &[(u8, &[u8])]) -> (u16, Vec<u8>) {
        let mut list = Vec::new();
        for (kind, name) in names {
            list.push(*kind);
            list.extend((name.len() as u16).to_be_bytes());
            list.extend(*name);
        }
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend(list);
        (EXTENSION_SERVER_NAME, data)
    }

    #[test]
    fn reads_the_server_name() {
        let record = hello(&[(10, vec![0, 2, 0, 29]), sni(&[(0, b"Pass.Test.")])]);
        assert_eq!(client_hello(&record), Hello::Complete(Some(b"pass.test".to_vec())));
        // what follows the hello (early data, a pipelined record) does not matter
        let mut more = record.clone();
        more.extend([23, 3, 3, 0, 1, 0]);
        assert_eq!(client_hello(&more), Hello::Complete(Some(b"pass.test".to_vec())));
    }

    /// What a real client sends first: rustls's ClientHello (TLS 1.3 and 1.2, its post-quantum key share included).
    fn rustls_hello(name: &str) -> Vec<u8> {
        let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider()).with_safe_default_protocol_versions().expect("versions").with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).expect("a DNS name");
        let mut client = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
        let mut out = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut out).expect("into a Vec");
        }
        out
    }

    #[test]
    fn reads_a_real_client_hello() {
        let bytes = rustls_hello("Pass.Test");
        assert_eq!(client_hello(&bytes), Hello::Complete(Some(b"pass.test".to_vec())));
        for n in [0, 1, 5, 6, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(client_hello(&bytes[..n]), Hello::Incomplete, "{n} of {} bytes", bytes.len());
        }
        // an IP address is never sent as a server name
        assert_eq!(client_hello(&rustls_hello("127.0.0.1")), Hello::Complete(None));
    }

    #[test]
    fn a_hello_without_server_name() {
        assert_eq!(client_hello(&hello(&[(10, vec![0, 2, 0, 29])])), Hello::Complete(None));
        assert_eq!(client_hello(&hello(&[])), Hello::Complete(None));
        // no extensions block at all (TLS 1.2 allows it)
        let mut body = vec![3, 3];
        body.extend([0u8; 32]);
        body.extend([0, 0, 2, 0, 0x2f, 1, 0]);
        assert_eq!(client_hello(&handshake_records(&body, usize::MAX)), Hello::Complete(None));
        // a server_name of another name type only
        assert_eq!(client_hello(&hello(&[sni(&[(1, b"x")])])), Hello::Complete(None));
    }

    #[test]
    fn every_truncation_is_incomplete() {
        let record = hello(&[(10, vec![0, 2, 0, 29]), sni(&[(0, b"pass.test")])]);
        for n in 0..record.len() {
            assert_eq!(client_hello(&record[..n]), Hello::Incomplete, "{n} bytes");
        }
    }

    #[test]
    fn a_hello_over_several_records() {
        let body = hello_body(&[(21, vec![0; 3000]), sni(&[(0, b"pass.test")])]);
        for split in [1, 2, 7, 100, 1000] {
            let records = handshake_records(&body, split);
            assert_eq!(client_hello(&records), Hello::Complete(Some(b"pass.test".to_vec())), "records of {split}");
            assert_eq!(client_hello(&records[..records.len() - 1]), Hello::Incomplete, "records of {split}");
        }
    }

    #[test]
    fn oversized_and_other_content_is_other() {
        // a hello longer than is read ahead
        let body = hello_body(&[(21, vec![0; MAX_HELLO]), sni(&[(0, b"pass.test")])]);
        assert_eq!(client_hello(&handshake_records(&body, usize::MAX)), Hello::Other);
        // a record longer than TLS allows
        assert_eq!(client_hello(&[22, 3, 1, 0x40, 0x01]), Hello::Other);
        assert_eq!(client_hello(&[22, 3, 1, 0, 0]), Hello::Other);
        // plain HTTP, an alert, SSLv2, another handshake message, a record that is not handshake in the middle
        assert_eq!(client_hello(b"GET / HTTP/1.1\r\n"), Hello::Other);
        assert_eq!(client_hello(b"G"), Hello::Other);
        assert_eq!(client_hello(&[21, 3, 3, 0, 2, 2, 40]), Hello::Other);
        assert_eq!(client_hello(&[0x80, 0x2e, 1, 3, 1]), Hello::Other);
        assert_eq!(client_hello(&[22, 2, 0]), Hello::Other);
        assert_eq!(client_hello(&[22, 3, 3, 0, 4, 2, 0, 0, 0]), Hello::Other);
        let body = hello_body(&[sni(&[(0, b"pass.test")])]);
        let mut split = handshake_records(&body, 10);
        split.splice(15..15, [23, 3, 3, 0, 1, 0]);
        assert_eq!(client_hello(&split), Hello::Other);
    }

    #[test]
    fn malformed_hellos_are_other() {
        // inner lengths that run past the message, a session id over 32 bytes, an empty or non-ASCII name
        let good = hello_body(&[sni(&[(0, b"pass.test")])]);
        let mut long_session = good.clone();
        long_session[34] = 33;
        long_session.splice(35..35, [0; 33]);
        assert_eq!(client_hello(&handshake_records(&long_session, usize::MAX)), Hello::Other);
        assert_eq!(client_hello(&hello(&[sni(&[(0, b"")])])), Hello::Other);
        assert_eq!(client_hello(&hello(&[sni(&[(0, "pässe.test".as_bytes())])])), Hello::Other);
        assert_eq!(client_hello(&hello(&[sni(&[(0, b"a b")])])), Hello::Other);
        assert_eq!(client_hello(&hello(&[sni(&[(0, b"pass.test:443")])])), Hello::Other);
        assert_eq!(client_hello(&hello(&[sni(&[(0, b"[::1]")])])), Hello::Other);
        // the message cut short inside each field: a shorter handshake length over the same bytes
        for cut in 0..good.len() {
            let parsed = client_hello(&handshake_records(&good[..cut], usize::MAX));
            assert!(matches!(parsed, Hello::Other | Hello::Complete(None)), "cut at {cut}: {parsed:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        // a fixed-seed xorshift over many lengths, with a handshake header in front half of the time
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let good = hello(&[sni(&[(0, b"pass.test")])]);
        for round in 0..20_000 {
            let len = (next() % 300) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 {
                let keep = (next() as usize) % good.len();
                bytes.splice(0..0, good[..keep].iter().copied());
            } else if round % 3 == 0 && !bytes.is_empty() {
                // one flipped byte of a valid hello
                bytes = good.clone();
                let at = (next() as usize) % bytes.len();
                bytes[at] ^= next() as u8 | 1;
            }
            let _ = client_hello(&bytes);
        }
    }

    fn table(passthrough: &str) -> Result<crate::table::Table, crate::table::SnapshotError> {
        let json = format!(
            r#"{{"version":{},"hosts":[],"routes":[],"policies":[],"defaultRoute":null,"certificates":[],"tls":{{"hosts":[],"fallback":null}},
            "backends":[{{"namespace":"d","service":"s","port":443,"endpoints":[{{"host":"127.0.0.1","port":8443}}],"unavailable":null}}],
            "passthrough":{passthrough}}}"#,
            crate::snapshot::SNAPSHOT_VERSION
        );
        crate::table::Table::build(serde_json::from_str(&json).expect("snapshot JSON"))
    }

    #[test]
    fn passthrough_hosts_match_exactly_or_by_one_wildcard_label() {
        let entry = |host: &str| format!(r#"{{"host":"{host}","ingress":{{"namespace":"d","name":"i"}},"backend":0}}"#);
        let t = table(&format!("[{},{}]", entry("Pass.Test"), entry("*.wild.test"))).expect("valid");
        assert!(t.has_passthrough());
        assert!(t.match_passthrough(b"pass.test").is_some());
        assert!(t.match_passthrough(b"a.wild.test").is_some());
        for other in [&b"wild.test"[..], b"a.b.wild.test", b".wild.test", b"other.test", b""] {
            assert!(t.match_passthrough(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
        assert!(!table("[]").expect("valid").has_passthrough());
        // a snapshot without the field (an older control plane) has no passthrough host
        let json = format!(r#"{{"version":{},"hosts":[],"routes":[],"policies":[],"defaultRoute":null,"backends":[],"certificates":[],"tls":{{"hosts":[],"fallback":null}}}}"#, crate::snapshot::SNAPSHOT_VERSION);
        assert!(!crate::table::Table::build(serde_json::from_str(&json).expect("snapshot JSON")).expect("valid").has_passthrough());
    }

    #[test]
    fn a_broken_passthrough_entry_refuses_the_snapshot() {
        let err = |p: &str| table(p).err().map(|e| e.field);
        assert_eq!(err(r#"[{"host":"pass.test","ingress":{"namespace":"d","name":"i"},"backend":1}]"#).as_deref(), Some("passthrough[0].backend"));
        assert_eq!(err(r#"[{"host":"a b","ingress":{"namespace":"d","name":"i"},"backend":0}]"#).as_deref(), Some("passthrough[0].host"));
        let twice = r#"[{"host":"pass.test","ingress":{"namespace":"d","name":"i"},"backend":0},{"host":"PASS.test","ingress":{"namespace":"d","name":"j"},"backend":0}]"#;
        assert_eq!(err(twice).as_deref(), Some("passthrough[1].host"));
    }
}
