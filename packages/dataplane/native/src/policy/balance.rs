//! Which endpoint serves: cookie affinity and upstream-hash-by.

use serde::Deserialize;
#[allow(unused_imports)]
use super::template::Template;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BalanceSpec {
    pub affinity: Option<AffinitySpec>,
    pub hash_by: Option<Template>,
}

/// As requests use it (compiled once per snapshot).
pub type Balance = BalanceSpec;

pub fn compile(spec: BalanceSpec) -> Result<Balance, String> {
    Ok(spec)
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AffinitySpec {
    pub name: String,
    /// balanced or persistent
    pub mode: String,
    pub secure: bool,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub same_site: Option<String>,
    pub conditional_same_site_none: bool,
    pub max_age: Option<u64>,
    pub expires: Option<u64>,
    pub change_on_failure: bool,
}
