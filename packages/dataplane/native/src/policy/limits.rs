//! Rate and connection limits per client address (limit-rps, limit-rpm, limit-connections…).

use serde::Deserialize;
#[allow(unused_imports)]
use super::template::Template;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitSpec {
    pub rps: Option<u32>,
    pub rpm: Option<u32>,
    pub burst_multiplier: u32,
    pub connections: Option<u32>,
    pub allowlist: Vec<String>,
    pub status: u16,
}

/// As requests use it (compiled once per snapshot).
pub type Limits = LimitSpec;

pub fn compile(spec: LimitSpec) -> Result<Limits, String> {
    Ok(spec)
}
