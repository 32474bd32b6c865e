//! How the upstream is reached: backend-protocol, proxy-ssl-*, timeouts, proxy-next-upstream, body limits.

use serde::Deserialize;
#[allow(unused_imports)]
use super::template::Template;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamSpec {
    /// HTTP, HTTPS, GRPC, GRPCS
    pub protocol: String,
    pub tls: Option<UpstreamTlsSpec>,
    pub connect_timeout_ms: Option<u64>,
    pub read_timeout_ms: Option<u64>,
    pub send_timeout_ms: Option<u64>,
    pub next_upstream: Vec<String>,
    pub next_upstream_tries: u32,
    pub next_upstream_timeout_ms: u64,
    /// "1.0" or "1.1"
    pub http_version: String,
    pub max_body_size: Option<u64>,
    pub body_buffer_size: Option<u64>,
}

/// As requests use it (compiled once per snapshot).
pub type Upstream = UpstreamSpec;

pub fn compile(spec: UpstreamSpec) -> Result<Upstream, String> {
    Ok(spec)
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamTlsSpec {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub verify: bool,
    pub name: Option<Template>,
    pub server_name: bool,
}
