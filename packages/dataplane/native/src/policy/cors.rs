//! CORS: preflight answers and response headers (enable-cors, cors-*).

use serde::Deserialize;
#[allow(unused_imports)]
use super::template::Template;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsSpec {
    pub allow_origins: Vec<String>,
    pub allow_methods: String,
    pub allow_headers: String,
    pub expose_headers: String,
    pub allow_credentials: bool,
    pub max_age: u64,
}

/// As requests use it (compiled once per snapshot).
pub type Cors = CorsSpec;

pub fn compile(spec: CorsSpec) -> Result<Cors, String> {
    Ok(spec)
}
