//! External authentication: a sub-request to auth-url before forwarding.

use serde::Deserialize;
#[allow(unused_imports)]
use super::template::Template;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalAuthSpec {
    pub url: Template,
    pub method: String,
    pub signin: Option<Template>,
    pub signin_redirect_param: String,
    pub response_headers: Vec<String>,
    pub request_redirect: Option<Template>,
    pub always_set_cookie: bool,
    pub cache_seconds: u64,
    pub cache_key: Option<Template>,
    pub proxy_set_headers: Vec<(String, String)>,
}

/// As requests use it (compiled once per snapshot).
pub type ExternalAuth = ExternalAuthSpec;

pub fn compile(spec: ExternalAuthSpec) -> Result<ExternalAuth, String> {
    Ok(spec)
}
