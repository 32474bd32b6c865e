//! Canaries: a canary Ingress's backend on a main Ingress's route, chosen per request by header, then cookie,
//! then weight (ingress-nginx's order). A route without a canary never comes here.

use hyper::header::{HeaderMap, HeaderName};
use regex::Regex;
use serde::Deserialize;

use super::balance::{self, Balance, BalanceSpec};
use crate::snapshot::ObjectRef;
use crate::table::{Backend, Route, Table};

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryRuleSpec {
    pub header: Option<String>,
    pub header_value: Option<String>,
    pub header_pattern: Option<String>,
    pub cookie: Option<String>,
    pub weight: u64,
    pub weight_total: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanarySpec {
    pub ingress: ObjectRef,
    /// index into `backends`
    pub backend: usize,
    pub rule: CanaryRuleSpec,
    /// the canary Ingress's own choice of endpoint
    pub balance: Option<BalanceSpec>,
}

/// What the header asks of a request.
enum HeaderTest {
    /// "always" sends to the canary, "never" keeps it away, other values go on to the cookie
    AlwaysNever,
    Value(String),
    Pattern(Regex),
}

pub struct CanaryRule {
    header: Option<(HeaderName, HeaderTest)>,
    cookie: Option<String>,
    weight: u64,
    weight_total: u64,
}

pub struct Canary {
    pub ingress: ObjectRef,
    pub backend: usize,
    pub rule: CanaryRule,
    pub balance: Option<Balance>,
}

pub fn compile(spec: CanarySpec, backends: usize) -> Result<Canary, String> {
    if spec.backend >= backends {
        return Err(format!("backend {} does not exist ({backends} backends)", spec.backend));
    }
    let r = spec.rule;
    if r.weight_total == 0 || r.weight > r.weight_total {
        return Err(format!("weight {} of {} is not a share", r.weight, r.weight_total));
    }
    let header = match r.header {
        None => None,
        Some(name) => {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header {name:?} is not a header name"))?;
            let test = match (r.header_value, r.header_pattern) {
                (Some(v), _) => HeaderTest::Value(v),
                (None, Some(p)) => HeaderTest::Pattern(Regex::new(&p).map_err(|e| format!("header pattern {p:?}: {e}"))?),
                (None, None) => HeaderTest::AlwaysNever,
            };
            Some((name, test))
        }
    };
    let balance = spec.balance.map(balance::compile).transpose()?;
    Ok(Canary { ingress: spec.ingress, backend: spec.backend, rule: CanaryRule { header, cookie: r.cookie, weight: r.weight, weight_total: r.weight_total }, balance })
}

impl CanaryRule {
    /// Whether this request goes to the canary; `roll` draws from 1..=n (the weight's die).
    pub fn wants(&self, headers: &HeaderMap, roll: impl FnOnce(u64) -> u64) -> bool {
        if let Some((name, test)) = &self.header {
            if let Some(value) = headers.get(name) {
                let v = value.as_bytes();
                match test {
                    HeaderTest::Value(want) if v == want.as_bytes() => return true,
                    HeaderTest::Pattern(re) if std::str::from_utf8(v).is_ok_and(|t| re.is_match(t)) => return true,
                    HeaderTest::AlwaysNever if v == b"always" => return true,
                    HeaderTest::AlwaysNever if v == b"never" => return false,
                    _ => {}
                }
            }
        }
        if let Some(name) = &self.cookie {
            match balance::cookie(headers, name) {
                Some(b"always") => return true,
                Some(b"never") => return false,
                _ => {}
            }
        }
        // (no draw when the answer is fixed: weight 0 never, the whole total always)
        match self.weight {
            0 => false,
            w if w >= self.weight_total => true,
            w => roll(self.weight_total) <= w,
        }
    }
}

/// The backend that serves a request of `route`, and its choice of endpoint: the route's own, or its canary's.
/// A canary without endpoints serves nothing (as ingress-nginx, which drops an empty alternative backend).
pub fn choose<'t>(table: &'t Table, route: &'t Route, headers: &HeaderMap) -> (&'t Backend, Option<&'t Balance>) {
    let main = &table.backends[route.backend];
    let main_balance = table.policies[route.policy].balance.as_ref();
    let Some(canary) = route.canaries.first() else { return (main, main_balance) };
    let alternative = &table.backends[canary.backend];
    if alternative.endpoints.is_empty() {
        return (main, main_balance);
    }
    let sticky = |balance: Option<&Balance>, backend: &Backend| balance.and_then(|b| b.affinity.as_ref()).is_some_and(|a| a.sticky_canary && a.cookie_endpoint(headers, backend).is_some());
    if sticky(main_balance, main) {
        return (main, main_balance);
    }
    if sticky(canary.balance.as_ref(), alternative) {
        return (alternative, canary.balance.as_ref());
    }
    if canary.rule.wants(headers, roll) {
        (alternative, canary.balance.as_ref())
    } else {
        (main, main_balance)
    }
}

/// A fair draw from 1..=n.
fn roll(n: u64) -> u64 {
    // (the bias of a modulo over 64 bits is below 1e-9 for any weight total the TypeScript side admits)
    crate::request_id::random_u64() % n + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn rule(json: &str) -> CanaryRule {
        let spec: CanarySpec = serde_json::from_str(&format!(r#"{{"ingress":{{"namespace":"d","name":"c"}},"backend":0,"balance":null,"rule":{json}}}"#)).unwrap();
        compile(spec, 1).unwrap().rule
    }

    fn headers(lines: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in lines {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    const NO_ROLL: fn(u64) -> u64 = |_| panic!("no draw expected");

    #[test]
    fn header_then_cookie_then_weight() {
        let r = rule(r#"{"header":"x-canary","headerValue":null,"headerPattern":null,"cookie":"c","weight":0,"weightTotal":100}"#);
        assert!(r.wants(&headers(&[("x-canary", "always"), ("cookie", "c=never")]), NO_ROLL));
        assert!(!r.wants(&headers(&[("x-canary", "never"), ("cookie", "c=always")]), NO_ROLL));
        assert!(r.wants(&headers(&[("x-canary", "other"), ("cookie", "a=1; c=always")]), NO_ROLL));
        assert!(!r.wants(&headers(&[("cookie", "c=never")]), NO_ROLL));
        assert!(!r.wants(&headers(&[]), NO_ROLL));
    }

    #[test]
    fn header_value_and_pattern() {
        let v = rule(r#"{"header":"x-canary","headerValue":"yes","headerPattern":null,"cookie":null,"weight":0,"weightTotal":100}"#);
        assert!(v.wants(&headers(&[("x-canary", "yes")]), NO_ROLL));
        assert!(!v.wants(&headers(&[("x-canary", "always")]), NO_ROLL), "with a value, always is just another value");
        let p = rule(r#"{"header":"x-canary","headerValue":null,"headerPattern":"^v[0-9]+$","cookie":null,"weight":0,"weightTotal":100}"#);
        assert!(p.wants(&headers(&[("x-canary", "v12")]), NO_ROLL));
        assert!(!p.wants(&headers(&[("x-canary", "v1x")]), NO_ROLL));
    }

    #[test]
    fn weight_draws_only_between_never_and_always() {
        let w = |weight: u64, total: u64| rule(&format!(r#"{{"header":null,"headerValue":null,"headerPattern":null,"cookie":null,"weight":{weight},"weightTotal":{total}}}"#));
        assert!(!w(0, 100).wants(&headers(&[]), NO_ROLL));
        assert!(w(100, 100).wants(&headers(&[]), NO_ROLL));
        assert!(w(30, 1000).wants(&headers(&[]), |n| {
            assert_eq!(n, 1000);
            30
        }));
        assert!(!w(30, 1000).wants(&headers(&[]), |_| 31));
        assert!((0..1000).all(|_| (1..=7).contains(&roll(7))));
    }

    #[test]
    fn a_pattern_the_engine_cannot_read_or_a_bad_weight_is_refused() {
        let spec = |rule: &str| serde_json::from_str::<CanarySpec>(&format!(r#"{{"ingress":{{"namespace":"d","name":"c"}},"backend":0,"balance":null,"rule":{rule}}}"#)).unwrap();
        assert!(compile(spec(r#"{"header":"x","headerValue":null,"headerPattern":"(?=a)","cookie":null,"weight":0,"weightTotal":100}"#), 1).is_err());
        assert!(compile(spec(r#"{"header":null,"headerValue":null,"headerPattern":null,"cookie":null,"weight":101,"weightTotal":100}"#), 1).is_err());
        assert!(compile(spec(r#"{"header":null,"headerValue":null,"headerPattern":null,"cookie":null,"weight":1,"weightTotal":100}"#), 0).is_err());
    }
}
