//! HTTP basic authentication against htpasswd hashes (auth-type: basic).

use serde::Deserialize;
#[allow(unused_imports)]
use super::template::Template;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuthSpec {
    pub realm: String,
    pub users: Vec<BasicUser>,
}

/// As requests use it (compiled once per snapshot).
pub type BasicAuth = BasicAuthSpec;

pub fn compile(spec: BasicAuthSpec) -> Result<BasicAuth, String> {
    Ok(spec)
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicUser {
    pub user: String,
    /// as htpasswd holds it
    pub hash: String,
}
