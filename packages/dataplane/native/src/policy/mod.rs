//! Per-route policy: what an Ingress's `nginx.ingress.kubernetes.io/*` annotations ask, as typed data the
//! TypeScript side validated (packages/ingress/src/annotations/policy.ts is the other half of this contract).
//! Each area has its own module: the snapshot's form of it (`…Spec`, serde), the form requests use (compiled
//! once per snapshot swap), and the code that executes it.

pub mod access;
pub mod balance;
pub mod basic_auth;
pub mod canary;
pub mod client_tls;
pub mod cors;
pub mod errors;
pub mod external_auth;
pub mod headers;
pub mod limits;
pub mod redirect;
pub mod rewrite;
pub mod template;
pub mod upstream;

use serde::Deserialize;

/// Fail closed: the route answers `status` itself and never forwards (an invalid security annotation).
#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefuseSpec {
    pub status: u16,
    /// which annotation and why, for the log line
    pub reason: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    pub refuse: Option<RefuseSpec>,
    pub redirect: redirect::RedirectSpec,
    pub rewrite: Option<rewrite::RewriteSpec>,
    pub headers: Option<headers::HeadersSpec>,
    pub access: Option<access::AccessSpec>,
    pub limits: Option<limits::LimitSpec>,
    pub cors: Option<cors::CorsSpec>,
    pub basic_auth: Option<basic_auth::BasicAuthSpec>,
    pub external_auth: Option<external_auth::ExternalAuthSpec>,
    pub client_tls: Option<client_tls::ClientTlsSpec>,
    pub upstream: Option<upstream::UpstreamSpec>,
    pub balance: Option<balance::BalanceSpec>,
    pub errors: Option<errors::ErrorsSpec>,
    pub access_log: bool,
}

/// A policy as requests use it: each area compiled once per snapshot.
pub struct Policy {
    pub refuse: Option<RefuseSpec>,
    pub redirect: redirect::Redirect,
    pub rewrite: Option<rewrite::Rewrite>,
    pub headers: Option<headers::Headers>,
    pub access: Option<access::Access>,
    pub limits: Option<limits::Limits>,
    pub cors: Option<cors::Cors>,
    pub basic_auth: Option<basic_auth::BasicAuth>,
    pub external_auth: Option<external_auth::ExternalAuth>,
    pub client_tls: Option<client_tls::ClientTls>,
    pub upstream: Option<upstream::Upstream>,
    pub balance: Option<balance::Balance>,
    pub errors: Option<errors::Errors>,
    pub access_log: bool,
}

impl Policy {
    /// The policy of a route without annotations.
    pub fn none() -> Policy {
        Policy {
            refuse: None,
            redirect: redirect::Redirect::default(),
            rewrite: None,
            headers: None,
            access: None,
            limits: None,
            cors: None,
            basic_auth: None,
            external_auth: None,
            client_tls: None,
            upstream: None,
            balance: None,
            errors: None,
            access_log: true,
        }
    }
}

/// Compiles a policy; the error names the area at fault (`access`, `cors`…) and what is wrong.
pub fn compile(spec: PolicySpec) -> Result<Policy, (&'static str, String)> {
    fn area<S, T>(name: &'static str, spec: Option<S>, compile: fn(S) -> Result<T, String>) -> Result<Option<T>, (&'static str, String)> {
        spec.map(compile).transpose().map_err(|e| (name, e))
    }
    if let Some(refuse) = &spec.refuse {
        if !(400..=599).contains(&refuse.status) {
            return Err(("refuse", format!("status {} is not an error status", refuse.status)));
        }
    }
    Ok(Policy {
        refuse: spec.refuse,
        redirect: redirect::compile(spec.redirect).map_err(|e| ("redirect", e))?,
        rewrite: area("rewrite", spec.rewrite, rewrite::compile)?,
        headers: area("headers", spec.headers, headers::compile)?,
        access: area("access", spec.access, access::compile)?,
        limits: area("limits", spec.limits, limits::compile)?,
        cors: area("cors", spec.cors, cors::compile)?,
        basic_auth: area("basicAuth", spec.basic_auth, basic_auth::compile)?,
        external_auth: area("externalAuth", spec.external_auth, external_auth::compile)?,
        client_tls: area("clientTls", spec.client_tls, client_tls::compile)?,
        upstream: area("upstream", spec.upstream, upstream::compile)?,
        balance: area("balance", spec.balance, balance::compile)?,
        errors: area("errors", spec.errors, errors::compile)?,
        access_log: spec.access_log,
    })
}
