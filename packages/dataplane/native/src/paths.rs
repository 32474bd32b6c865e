//! Request-target and Host normalisation: the one definition of "the same path" and "the same host" that the
//! proxy and `explain route` match on (packages/ingress/README.md, "Which path").

use std::borrow::Cow;

/// The path a request is matched on, as nginx matches its locations: %-escapes decoded once (`%2F` too, which
/// then separates elements), `.` and `..` elements resolved, runs of `/` merged, a trailing `/` kept.
/// None: not a path (no leading `/`, a malformed escape, an encoded NUL, a `..` above the root).
pub fn normalize_path(path: &[u8]) -> Option<Cow<'_, [u8]>> {
    if path.first() != Some(&b'/') {
        return None;
    }
    if is_plain(path) {
        return Some(Cow::Borrowed(path));
    }
    let mut decoded = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let c = path[i];
        if c != b'%' {
            decoded.push(c);
            i += 1;
            continue;
        }
        let hi = path.get(i + 1).copied().and_then(hex_value)?;
        let lo = path.get(i + 2).copied().and_then(hex_value)?;
        let byte = hi * 16 + lo;
        if byte == 0 {
            return None;
        }
        decoded.push(byte);
        i += 3;
    }
    let mut out: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    let parts: Vec<&[u8]> = decoded.split(|&b| b == b'/').collect();
    let last_index = parts.len() - 1;
    for (i, part) in parts.iter().enumerate().skip(1) {
        let last = i == last_index;
        match *part {
            b"" | b"." => trailing_slash = last,
            b".." => {
                out.pop()?;
                trailing_slash = last;
            }
            _ => {
                out.push(part);
                trailing_slash = false;
            }
        }
    }
    if out.is_empty() {
        return Some(Cow::Owned(b"/".to_vec()));
    }
    let mut result = Vec::with_capacity(decoded.len());
    for part in out {
        result.push(b'/');
        result.extend_from_slice(part);
    }
    if trailing_slash {
        result.push(b'/');
    }
    Some(Cow::Owned(result))
}

/// No escape, no `//`, no element starting with `.`: already normal (the common case, one scan).
fn is_plain(path: &[u8]) -> bool {
    let mut i = 0;
    while i < path.len() {
        let c = path[i];
        if c == b'%' {
            return false;
        }
        if c == b'/' {
            if let Some(&next) = path.get(i + 1) {
                if next == b'/' || next == b'.' {
                    return false;
                }
            }
        }
        i += 1;
    }
    true
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The non-empty `/`-separated elements of a normalised path.
pub fn segments(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|s| !s.is_empty())
}

/// The host part of a `Host` header: ASCII lower case, without port or one trailing dot; IPv6 literals keep
/// their brackets. Non-ASCII bytes are kept as they are (no rule host holds any, so they match nothing).
pub fn request_host(header: &[u8]) -> Vec<u8> {
    let mut host: &[u8] = header;
    if host.first() == Some(&b'[') {
        if let Some(end) = host.iter().position(|&b| b == b']') {
            host = &host[..=end];
        }
    } else if let Some(colon) = host.iter().position(|&b| b == b':') {
        host = &host[..colon];
    }
    if host.last() == Some(&b'.') {
        host = &host[..host.len() - 1];
    }
    host.to_ascii_lowercase()
}

/// A rule host as the Ingress API allows it: a DNS name, optionally with `*` as its whole first label.
pub fn is_valid_rule_host(host: &str) -> bool {
    if host.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = host.split('.').collect();
    labels.iter().enumerate().all(|(i, label)| (i == 0 && *label == "*" && labels.len() > 1) || is_host_label(label))
}

fn is_host_label(label: &str) -> bool {
    let b = label.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && b.len() <= 63 && alnum(b[0]) && alnum(b[b.len() - 1]) && b.iter().all(|&c| alnum(c) || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> Option<Vec<u8>> {
        normalize_path(p.as_bytes()).map(|c| c.into_owned())
    }

    #[test]
    fn normalises_like_the_readme_says() {
        let cases: &[(&str, Option<&[u8]>)] = &[
            ("/", Some(b"/")),
            ("/a/b/", Some(b"/a/b/")),
            ("//a///b//", Some(b"/a/b/")),
            ("/a/./b", Some(b"/a/b")),
            ("/a/.", Some(b"/a/")),
            ("/a/b/..", Some(b"/a/")),
            ("/a/../..", None),
            ("/../a", None),
            ("/.hidden/x", Some(b"/.hidden/x")),
            ("/a/..b", Some(b"/a/..b")),
            ("/%61dmin", Some(b"/admin")),
            ("/%2e%2e/a", None),
            ("/a%2f..%2fb", Some(b"/b")),
            ("/%2561", Some(b"/%61")),
            ("/caf%C3%A9", Some("/café".as_bytes())),
            ("/a%", None),
            ("/a%4", None),
            ("/a%zz", None),
            ("/a%00b", None),
            ("a/b", None),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(norm(raw).as_deref(), *want, "{raw}");
        }
    }

    #[test]
    fn host_loses_port_dot_and_case() {
        assert_eq!(request_host(b"FOO.com:8080"), b"foo.com");
        assert_eq!(request_host(b"foo.com."), b"foo.com");
        assert_eq!(request_host(b"[fd00::1]:80"), b"[fd00::1]");
        assert_eq!(request_host(b""), b"");
    }

    #[test]
    fn rule_hosts() {
        assert!(is_valid_rule_host("*.foo.com"));
        assert!(is_valid_rule_host("a-b.c"));
        assert!(!is_valid_rule_host("*"));
        assert!(!is_valid_rule_host("a.*.com"));
        assert!(!is_valid_rule_host("-a.com"));
        assert!(!is_valid_rule_host("A.com"));
    }
}
