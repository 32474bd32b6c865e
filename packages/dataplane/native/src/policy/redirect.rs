//! Redirects: ssl-redirect / force-ssl-redirect (decided per route by the TypeScript side into the route's
//! `sslRedirect`), preserve-trailing-slash, permanent-/temporal-redirect, app-root, from-to-www-redirect.

use serde::Deserialize;

use super::template::Template;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectSpec {
    pub ssl_redirect: bool,
    pub force_ssl_redirect: bool,
    pub preserve_trailing_slash: bool,
    pub to: Option<RedirectTo>,
    pub app_root: Option<String>,
    pub from_to_www: bool,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectTo {
    pub url: Template,
    pub code: u16,
}

impl Default for RedirectSpec {
    fn default() -> Self {
        RedirectSpec { ssl_redirect: true, force_ssl_redirect: false, preserve_trailing_slash: false, to: None, app_root: None, from_to_www: false }
    }
}

/// As requests use it (compiled once per snapshot).
pub type Redirect = RedirectSpec;

pub fn compile(spec: RedirectSpec) -> Result<Redirect, String> {
    if let Some(to) = &spec.to {
        if !(300..=399).contains(&to.code) {
            return Err(format!("redirect code {} is not a 3xx status", to.code));
        }
    }
    Ok(spec)
}
