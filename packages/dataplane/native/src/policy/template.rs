//! Templates: annotation values that name nginx variables (`$host`, `$escaped_request_uri`…), split by the
//! TypeScript side into literal text, variables from a fixed list and regex captures. Expanding one only joins
//! parts; no user text is ever interpreted here.

use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    Host,
    HttpHost,
    Scheme,
    RequestUri,
    EscapedRequestUri,
    Uri,
    Args,
    QueryString,
    RemoteAddr,
    RequestMethod,
    ServerPort,
    BestHttpHost,
    ServiceName,
    ServicePort,
    Namespace,
    IngressName,
}

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum TemplatePart {
    Text { text: String },
    Variable { variable: Variable },
    Capture { capture: u8 },
}

pub type Template = Vec<TemplatePart>;

/// What a request gives the variables. Borrowed: building one costs nothing until a template is expanded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// lower case, without port
    pub host: &'a str,
    /// the Host header as sent
    pub http_host: &'a str,
    pub secure: bool,
    /// path and query as sent
    pub request_uri: &'a str,
    /// the normalised path
    pub uri: &'a str,
    pub remote_addr: &'a str,
    pub method: &'a str,
    pub server_port: u16,
    pub service_name: &'a str,
    pub service_port: &'a str,
    pub namespace: &'a str,
    pub ingress_name: &'a str,
}

/// Joins a template's parts for one request; `captures[n]` is `$n` (`$0` the whole match), missing ones empty.
pub fn expand(template: &[TemplatePart], vars: &Vars<'_>, captures: &[&str]) -> String {
    let mut out = String::new();
    for part in template {
        match part {
            TemplatePart::Text { text } => out.push_str(text),
            TemplatePart::Capture { capture } => out.push_str(captures.get(*capture as usize).copied().unwrap_or("")),
            TemplatePart::Variable { variable } => push_variable(&mut out, *variable, vars),
        }
    }
    out
}

fn push_variable(out: &mut String, variable: Variable, vars: &Vars<'_>) {
    let query = || vars.request_uri.split_once('?').map_or("", |(_, q)| q);
    match variable {
        Variable::Host | Variable::BestHttpHost => out.push_str(vars.host),
        Variable::HttpHost => out.push_str(vars.http_host),
        Variable::Scheme => out.push_str(if vars.secure { "https" } else { "http" }),
        Variable::RequestUri => out.push_str(vars.request_uri),
        Variable::EscapedRequestUri => escape_component(out, vars.request_uri),
        Variable::Uri => out.push_str(vars.uri),
        Variable::Args | Variable::QueryString => out.push_str(query()),
        Variable::RemoteAddr => out.push_str(vars.remote_addr),
        Variable::RequestMethod => out.push_str(vars.method),
        Variable::ServerPort => out.push_str(&vars.server_port.to_string()),
        Variable::ServiceName => out.push_str(vars.service_name),
        Variable::ServicePort => out.push_str(vars.service_port),
        Variable::Namespace => out.push_str(vars.namespace),
        Variable::IngressName => out.push_str(vars.ingress_name),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (what a query parameter value needs).
pub fn escape_component(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_joined_and_only_known_variables_exist() {
        let t: Template = serde_json::from_str(r#"[{"text":"https://auth/start?rd="},{"variable":"scheme"},{"text":"://"},{"variable":"host"},{"variable":"escaped_request_uri"},{"text":"&p="},{"capture":1}]"#).unwrap();
        let vars = Vars { host: "foo.com", secure: true, request_uri: "/a b?x=1&y", ..Vars::default() };
        assert_eq!(expand(&t, &vars, &["/x/y", "y"]), "https://auth/start?rd=https://foo.com%2Fa%20b%3Fx%3D1%26y&p=y");
        assert!(serde_json::from_str::<Template>(r#"[{"variable":"request_body"}]"#).is_err());
    }
}
