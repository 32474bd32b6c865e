//! Source address allow and deny lists (allowlist-/whitelist-/denylist-source-range).

use serde::Deserialize;
#[allow(unused_imports)]
use super::template::Template;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessSpec {
    /// CIDRs; empty: everyone (after the deny list)
    pub allow: Vec<String>,
    /// CIDRs, checked first
    pub deny: Vec<String>,
}

/// As requests use it (compiled once per snapshot).
pub type Access = AccessSpec;

pub fn compile(spec: AccessSpec) -> Result<Access, String> {
    Ok(spec)
}
