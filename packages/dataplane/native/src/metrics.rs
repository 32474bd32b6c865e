//! Counters the proxy bumps per request; JavaScript reads them at scrape time (no per-request callback).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::table::Table;

#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    /// responses by class: 1xx … 5xx (index 0 … 4)
    pub responses: [AtomicU64; 5],
    /// answers of the proxy's own, not from an upstream (400, 404, 308, 413, 502, 503, 504…)
    pub local_responses: AtomicU64,
    pub upstream_retries: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub upstream_timeouts: AtomicU64,
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    pub table_swaps: AtomicU64,
    pub snapshots_refused: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn response(&self, status: u16) {
        if let Some(c) = self.responses.get(usize::from(status / 100).saturating_sub(1)) {
            Self::inc(c);
        }
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Responses by status class (1xx … 5xx) of one Ingress and backend Service.
#[derive(Default)]
pub struct ClassCounters(pub [AtomicU64; 5]);

impl ClassCounters {
    pub fn count(&self, status: u16) {
        if let Some(c) = self.0.get(usize::from(status / 100).saturating_sub(1)) {
            Metrics::inc(c);
        }
    }
}

/// The counters a table's requests bump: one per route (in route order), and one for requests no route took.
#[derive(Default)]
pub struct TableCounters {
    pub per_route: Vec<Arc<ClassCounters>>,
    pub unrouted: Arc<ClassCounters>,
}

impl TableCounters {
    pub fn count(&self, route: Option<usize>, status: u16) {
        route.and_then(|r| self.per_route.get(r)).unwrap_or(&self.unrouted).count(status);
    }
}

/// Response counters by (Ingress `namespace/name`, Service), as the Node plane labels
/// `bollard_ingress_requests_total`; requests no route took are under ("", ""). They outlive table swaps (a
/// route that stays keeps counting on), and are only looked up when a table is built, never per request.
#[derive(Default)]
pub struct RouteMetrics {
    by_key: Mutex<HashMap<(String, String), Arc<ClassCounters>>>,
}

impl RouteMetrics {
    fn get(map: &mut HashMap<(String, String), Arc<ClassCounters>>, key: (String, String)) -> Arc<ClassCounters> {
        map.entry(key).or_default().clone()
    }

    /// The counters for `table`'s routes.
    pub fn attach(&self, table: &mut Table) {
        let Ok(mut map) = self.by_key.lock() else { return };
        let per_route = table
            .routes
            .iter()
            .map(|r| {
                let service = table.backends.get(r.backend).and_then(|b| b.service.clone()).unwrap_or_default();
                Self::get(&mut map, (format!("{}/{}", r.ingress.namespace, r.ingress.name), service))
            })
            .collect();
        let unrouted = Self::get(&mut map, (String::new(), String::new()));
        table.counters = TableCounters { per_route, unrouted };
    }

    /// (ingress, service, responses by class) for every pair seen, for the scrape.
    pub fn read(&self) -> Vec<(String, String, [u64; 5])> {
        let Ok(map) = self.by_key.lock() else { return Vec::new() };
        map.iter().map(|((ingress, service), c)| (ingress.clone(), service.clone(), std::array::from_fn(|i| Metrics::get(&c.0[i])))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;

    fn table(service: &str) -> Table {
        let json = format!(
            r#"{{"version": 1, "hosts": ["foo.com"], "defaultRoute": null, "certificates": [], "tls": {{"hosts": [], "fallback": null}},
            "routes": [{{"ingress": {{"namespace": "d", "name": "a"}}, "host": "foo.com", "path": "/", "pathType": "Prefix", "backend": 0, "policy": {{"sslRedirect": false}}}}],
            "backends": [{{"namespace": "d", "service": "{service}", "port": 80, "endpoints": [{{"host": "10.0.0.1", "port": 80}}], "unavailable": null}}]}}"#
        );
        Table::build(serde_json::from_str::<Snapshot>(&json).unwrap()).unwrap()
    }

    fn read(m: &RouteMetrics) -> Vec<(String, String, [u64; 5])> {
        let mut all = m.read();
        all.sort();
        all
    }

    #[test]
    fn counts_by_ingress_and_service_across_swaps() {
        let metrics = RouteMetrics::default();
        let mut first = table("s");
        metrics.attach(&mut first);
        first.counters.count(Some(0), 200);
        first.counters.count(Some(0), 503);
        first.counters.count(None, 404);
        // the same route in the next table keeps counting on; another service is another series
        let mut second = table("s");
        metrics.attach(&mut second);
        second.counters.count(Some(0), 204);
        let mut third = table("t");
        metrics.attach(&mut third);
        third.counters.count(Some(0), 302);
        let s = |a: &str, b: &str, c: [u64; 5]| (a.to_string(), b.to_string(), c);
        assert_eq!(read(&metrics), vec![s("", "", [0, 0, 0, 1, 0]), s("d/a", "s", [0, 2, 0, 0, 1]), s("d/a", "t", [0, 0, 1, 0, 0])]);
    }
}
