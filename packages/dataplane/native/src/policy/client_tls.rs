//! Client certificate authentication (auth-tls-*).

use serde::Deserialize;
#[allow(unused_imports)]
use super::template::Template;

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

/// As requests use it (compiled once per snapshot).
pub type ClientTls = ClientTlsSpec;

pub fn compile(spec: ClientTlsSpec) -> Result<ClientTls, String> {
    Ok(spec)
}
