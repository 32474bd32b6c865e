//! Response headers: custom-headers (literal values) and HSTS on HTTPS answers.

use serde::Deserialize;
#[allow(unused_imports)]
use super::template::Template;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeadersSpec {
    pub response: Vec<(String, String)>,
    pub hsts: Option<String>,
}

/// As requests use it (compiled once per snapshot).
pub type Headers = HeadersSpec;

pub fn compile(spec: HeadersSpec) -> Result<Headers, String> {
    Ok(spec)
}
