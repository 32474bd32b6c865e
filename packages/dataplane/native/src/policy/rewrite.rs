//! rewrite-target (with the route's regex captures), x-forwarded-prefix, upstream-vhost.

use serde::Deserialize;
#[allow(unused_imports)]
use super::template::Template;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RewriteSpec {
    pub target: Option<Template>,
    pub forwarded_prefix: Option<String>,
    pub upstream_vhost: Option<Template>,
}

/// As requests use it (compiled once per snapshot).
pub type Rewrite = RewriteSpec;

pub fn compile(spec: RewriteSpec) -> Result<Rewrite, String> {
    Ok(spec)
}
