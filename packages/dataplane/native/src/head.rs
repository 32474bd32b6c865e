//! Reading a request head the way the Node plane does (packages/ingress/src/proxy/headers.ts): which header
//! lines are hop-by-hop, which are forwarded, whether a body's framing is one we forward, whether the request
//! asks to switch protocols. Pure functions over `http` types, so they are tested without sockets.

use hyper::header::{HeaderMap, CONNECTION, TRANSFER_ENCODING, UPGRADE};

/// What the first line of a connection says about its HTTP version, before hyper parses it (hyper answers a
/// version it cannot speak with 400; nginx and the Node plane answer 505).
#[derive(Debug, PartialEq, Eq)]
pub enum FirstLine {
    /// not a whole line yet: read more
    Incomplete,
    /// `HTTP/x.y` other than 1.0 and 1.1
    UnsupportedVersion,
    /// anything else: hyper parses it (and answers what it cannot parse with 400)
    Other,
}

/// Judges the request line at the start of `buf` (leading empty lines are skipped, as parsers do).
pub fn first_line(buf: &[u8]) -> FirstLine {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(buf.len());
    let rest = &buf[start..];
    let Some(end) = rest.iter().position(|&b| b == b'\n') else {
        return FirstLine::Incomplete;
    };
    let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
    let version = match line.iter().rposition(|&b| b == b' ') {
        Some(sp) => &line[sp + 1..],
        None => return FirstLine::Other,
    };
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            if *major == b'1' && (*minor == b'0' || *minor == b'1') {
                FirstLine::Other
            } else {
                FirstLine::UnsupportedVersion
            }
        }
        _ => FirstLine::Other,
    }
}

/// Lower-cased names listed in `Connection`, which are hop-by-hop too — minus the ones that never are: `close`,
/// `keep-alive` and `upgrade` are Connection's own words, and `host` was routed on, so the upstream has to see
/// the same one (`Connection: close, Host` must not strip it).
pub fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    for value in headers.get_all(CONNECTION) {
        for token in value.as_bytes().split(|&b| b == b',') {
            let t = String::from_utf8_lossy(token).trim().to_ascii_lowercase();
            if !t.is_empty() && !matches!(t.as_str(), "close" | "keep-alive" | "upgrade" | "host") {
                out.push(t);
            }
        }
    }
    out
}

/// A `Connection: upgrade` with an `Upgrade` protocol: the client asks to switch (WebSocket and the like).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    let listed = headers.get_all(CONNECTION).iter().any(|v| v.as_bytes().split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade")));
    listed && headers.get(UPGRADE).is_some_and(|v| !v.is_empty())
}

/// A Transfer-Encoding other than `chunked` alone: not ours to undo (nginx and the Node plane answer 501).
pub fn unsupported_transfer_coding(headers: &HeaderMap) -> bool {
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter().flat_map(|v| v.as_bytes().split(|&b| b == b',')).map(<[u8]>::trim_ascii);
    match (codings.next(), codings.next()) {
        (None, _) => false,
        (Some(first), None) => !first.eq_ignore_ascii_case(b"chunked"),
        (Some(_), Some(_)) => true,
    }
}

/// A header name with `_`: CGI/WSGI back ends read `X_Real_IP` as `X-Real-IP`, so such lines are dropped unless
/// allowed (nginx's `underscores_in_headers off`).
pub fn has_underscore(name: &str) -> bool {
    name.contains('_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(lines: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in lines {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn first_line_versions() {
        let cases: &[(&[u8], FirstLine)] = &[
            (b"GET / HTTP/2.0\r\n\r\n", FirstLine::UnsupportedVersion),
            (b"GET / HTTP/3.0\r\nHost: x\r\n", FirstLine::UnsupportedVersion),
            (b"GET / HTTP/1.2\r\n", FirstLine::UnsupportedVersion),
            (b"GET / HTTP/9.9\n", FirstLine::UnsupportedVersion),
            (b"GET / HTTP/0.9\r\n", FirstLine::UnsupportedVersion),
            (b"\r\n\r\nGET / HTTP/2.0\r\n", FirstLine::UnsupportedVersion),
            (b"GET / HTTP/1.1\r\n", FirstLine::Other),
            (b"GET / HTTP/1.0\r\n", FirstLine::Other),
            (b"GET / http/1.1\r\n", FirstLine::Other),
            (b"GET / HTTP/1.1 \r\n", FirstLine::Other),
            (b"GET / HTTP/11.0\r\n", FirstLine::Other),
            (b"garbage\r\n", FirstLine::Other),
            (b"PRI * HTTP/2.0\r\n", FirstLine::UnsupportedVersion),
            (b"GET / HTTP/2.0", FirstLine::Incomplete),
            (b"", FirstLine::Incomplete),
            (b"\r\n", FirstLine::Incomplete),
        ];
        for (input, expected) in cases {
            assert_eq!(&first_line(input), expected, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn connection_never_lists_host_or_its_own_words() {
        let h = headers(&[("connection", "close, Host"), ("connection", " X-Secret ,upgrade,keep-alive")]);
        assert_eq!(connection_tokens(&h), vec!["x-secret".to_string()]);
    }

    #[test]
    fn upgrade_needs_both_lines() {
        assert!(wants_upgrade(&headers(&[("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")])));
        assert!(!wants_upgrade(&headers(&[("upgrade", "websocket")])));
        assert!(!wants_upgrade(&headers(&[("connection", "upgrade")])));
        assert!(!wants_upgrade(&headers(&[("connection", "upgraded"), ("upgrade", "websocket")])));
    }

    #[test]
    fn only_chunked_alone_is_a_supported_coding() {
        assert!(!unsupported_transfer_coding(&headers(&[])));
        assert!(!unsupported_transfer_coding(&headers(&[("transfer-encoding", "chunked")])));
        assert!(!unsupported_transfer_coding(&headers(&[("transfer-encoding", " Chunked ")])));
        assert!(unsupported_transfer_coding(&headers(&[("transfer-encoding", "gzip, chunked")])));
        assert!(unsupported_transfer_coding(&headers(&[("transfer-encoding", "chunked, chunked")])));
        assert!(unsupported_transfer_coding(&headers(&[("transfer-encoding", "gzip"), ("transfer-encoding", "chunked")])));
        assert!(unsupported_transfer_coding(&headers(&[("transfer-encoding", "xchunked")])));
    }

    #[test]
    fn underscores() {
        assert!(has_underscore("x_real_ip"));
        assert!(!has_underscore("x-real-ip"));
    }
}
