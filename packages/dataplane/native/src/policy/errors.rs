//! Custom error pages (custom-http-errors): upstream error statuses answered by the error backend.

use serde::Deserialize;
#[allow(unused_imports)]
use super::template::Template;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorsSpec {
    pub codes: Vec<u16>,
}

/// As requests use it (compiled once per snapshot).
pub type Errors = ErrorsSpec;

pub fn compile(spec: ErrorsSpec) -> Result<Errors, String> {
    Ok(spec)
}
