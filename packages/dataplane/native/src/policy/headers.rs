//! Response headers: custom-headers (literal values) and HSTS on HTTPS answers.

use hyper::header::{HeaderMap, HeaderName, HeaderValue, STRICT_TRANSPORT_SECURITY};
use serde::Deserialize;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeadersSpec {
    pub response: Vec<(String, String)>,
    pub hsts: Option<String>,
}

/// As requests use it (compiled once per snapshot).
pub struct Headers {
    response: Vec<(HeaderName, HeaderValue)>,
    hsts: Option<HeaderValue>,
}

pub fn compile(spec: HeadersSpec) -> Result<Headers, String> {
    let response = spec
        .response
        .into_iter()
        .map(|(n, v)| {
            let name = HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("{n:?} is not a header name"))?;
            let value = HeaderValue::from_str(&v).map_err(|_| format!("the value of {n} is not a header value"))?;
            Ok((name, value))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let hsts = spec.hsts.map(|h| HeaderValue::from_str(&h).map_err(|_| format!("HSTS {h:?} is not a header value"))).transpose()?;
    Ok(Headers { response, hsts })
}

/// Sets the ConfigMap's headers on an answer (replacing the upstream's, as `more_set_headers`), and HSTS on an HTTPS
/// answer for a host with a certificate of its own (`own_certificate`).
pub fn apply(headers: &Headers, own_certificate: bool, out: &mut HeaderMap) {
    for (name, value) in &headers.response {
        out.insert(name.clone(), value.clone());
    }
    if let (Some(hsts), true) = (&headers.hsts, own_certificate) {
        out.insert(STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_headers_replace_and_hsts_needs_a_certificate() {
        let h = compile(HeadersSpec { response: vec![("X-Frame-Options".into(), "DENY".into())], hsts: Some("max-age=60".into()) }).unwrap();
        let mut out = HeaderMap::new();
        out.insert("x-frame-options", HeaderValue::from_static("ALLOW"));
        apply(&h, false, &mut out);
        assert_eq!(out.get_all("x-frame-options").iter().collect::<Vec<_>>(), [HeaderValue::from_static("DENY")]);
        assert!(out.get(STRICT_TRANSPORT_SECURITY).is_none());
        apply(&h, true, &mut out);
        assert_eq!(out.get(STRICT_TRANSPORT_SECURITY).unwrap(), "max-age=60");
        assert!(compile(HeadersSpec { response: vec![("bad name".into(), "x".into())], hsts: None }).is_err());
    }
}
