//! The snapshot: what TypeScript hands the data plane, as JSON. The contract is typed data only; nothing in
//! it is ever parsed as configuration text. Mirrors packages/dataplane/src/snapshot.ts.

use serde::Deserialize;

use crate::policy::canary::CanarySpec;
use crate::policy::PolicySpec;

/// The contract version this build understands; the TypeScript side sends it with every snapshot.
pub const SNAPSHOT_VERSION: u32 = 2;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    pub version: u32,
    /// every host that has rules, also those without paths (such a host is claimed: its requests never fall
    /// to wildcard or host-less rules); lower case, wildcards as `*.foo.com`
    pub hosts: Vec<String>,
    /// `server-alias`: hosts served by another host's rules
    #[serde(default)]
    pub aliases: Vec<AliasSpec>,
    /// `from-to-www-redirect`: hosts whose every request is redirected (308) to their www./non-www. twin
    #[serde(default)]
    pub www_redirects: Vec<WwwRedirectSpec>,
    pub routes: Vec<RouteSpec>,
    /// what the routes' Ingress annotations ask, each distinct policy once
    pub policies: Vec<PolicySpec>,
    /// index into `routes` of the route serving what no rule matches
    pub default_route: Option<usize>,
    pub backends: Vec<BackendSpec>,
    pub certificates: Vec<CertificateSpec>,
    pub tls: TlsSpec,
    /// `ssl-passthrough`: TLS server names whose connections go to a backend unterminated
    #[serde(default)]
    pub passthrough: Vec<PassthroughSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassthroughSpec {
    /// lower case, a wildcard as `*.foo.com`
    pub host: String,
    pub ingress: ObjectRef,
    /// index into `backends`
    pub backend: usize,
    /// index into `policies`: the passthrough Ingress's (source ranges checked on the peer; auth refuses)
    #[serde(default)]
    pub policy: Option<usize>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum PathType {
    Exact,
    Prefix,
    ImplementationSpecific,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteSpec {
    pub ingress: ObjectRef,
    /// the rule's host as written (`*.foo.com` for a wildcard); None for host-less rules and the default route
    pub host: Option<String>,
    /// the rule's path as written; None for the default route and a host's default route (an Ingress
    /// `defaultBackend` serving what that host's rules do not match)
    pub path: Option<String>,
    pub path_type: Option<PathType>,
    /// index into `backends`
    pub backend: usize,
    /// index into `policies`
    pub policy: usize,
    /// plain-HTTP requests get a 308 to HTTPS
    pub ssl_redirect: bool,
    /// a canary Ingress's backend that may serve instead (at most one)
    #[serde(default)]
    pub canaries: Vec<CanarySpec>,
    /// index into `backends`: `default-backend`, answering `custom-http-errors` and while `backend` has no endpoints
    #[serde(default)]
    pub error_backend: Option<usize>,
    /// the path is a case-insensitive regex anchored at the start (use-regex, rewrite-target)
    #[serde(default)]
    pub regex: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AliasSpec {
    pub alias: String,
    /// one of `hosts`
    pub host: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WwwRedirectSpec {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendSpec {
    pub namespace: String,
    pub service: Option<String>,
    /// the Service port as the Ingress wrote it: a number or a name
    pub port: Option<PortRef>,
    pub endpoints: Vec<EndpointSpec>,
    /// why there are no endpoints by configuration; None when fine
    pub unavailable: Option<String>,
}

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum PortRef {
    Number(u32),
    Name(String),
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => f.write_str(n),
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointSpec {
    /// an IP address or a DNS name (ExternalName Services)
    pub host: String,
    pub port: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateSpec {
    pub secret: ObjectRef,
    /// sha256 over cert and key, from the TypeScript side: equal ids are the same pair
    pub id: String,
    /// PEM, possibly a chain
    pub cert: String,
    /// PEM
    pub key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsSpec {
    /// (host, index into `certificates`); wildcard hosts as `*.foo.com`
    pub hosts: Vec<TlsHost>,
    /// `--default-ssl-certificate`; None means the generated self-signed one
    pub fallback: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsHost {
    pub host: String,
    pub certificate: usize,
}
