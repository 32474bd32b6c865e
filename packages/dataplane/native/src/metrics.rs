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
    /// requests whose client went away (or reset the stream) before the answer ended: 499
    pub client_gone: AtomicU64,
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

/// The Node plane's request duration buckets (seconds), here in microseconds so that an observation compares
/// integers; a last bucket past them is `+Inf`.
pub const DURATION_BUCKETS_US: [u64; 14] = [1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000];

/// A fixed-bucket histogram of durations: one counter per bucket (not cumulative; the reader adds up) and the
/// sum in microseconds. Two relaxed atomic adds per observation.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; 15],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: std::time::Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = DURATION_BUCKETS_US.iter().position(|&b| us <= b).unwrap_or(DURATION_BUCKETS_US.len());
        Metrics::inc(&self.counts[bucket]);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Counts per bucket (the last is past every bound) and the sum in seconds.
    pub fn read(&self) -> ([u64; 15], f64) {
        (std::array::from_fn(|i| Metrics::get(&self.counts[i])), Metrics::get(&self.sum_us) as f64 / 1e6)
    }
}

/// What one Ingress and backend Service's requests came to: responses by status class (1xx … 5xx), requests
/// whose client went away before the answer was out (499, as nginx logs them), the time from request to the end
/// of the response, and the time from sending upstream to the upstream's response head.
#[derive(Default)]
pub struct RouteStats {
    pub classes: [AtomicU64; 5],
    pub client_gone: AtomicU64,
    pub duration: Histogram,
    pub upstream: Histogram,
}

impl RouteStats {
    /// A finished request: `status` 499 for a client gone before the answer ended.
    pub fn count(&self, status: u16) {
        if status == 499 {
            Metrics::inc(&self.client_gone);
        } else if let Some(c) = self.classes.get(usize::from(status / 100).saturating_sub(1)) {
            Metrics::inc(c);
        }
    }
}

/// The stats a table's requests count into: one per route (in route order), and one for requests no route took.
#[derive(Default)]
pub struct TableCounters {
    pub per_route: Vec<Arc<RouteStats>>,
    pub unrouted: Arc<RouteStats>,
}

impl TableCounters {
    pub fn stats(&self, route: Option<usize>) -> &RouteStats {
        route.and_then(|r| self.per_route.get(r)).unwrap_or(&self.unrouted)
    }

    pub fn count(&self, route: Option<usize>, status: u16) {
        self.stats(route).count(status);
    }
}

/// One (Ingress, Service) pair's stats as read at a scrape.
#[derive(Debug, PartialEq)]
pub struct RouteReading {
    pub ingress: String,
    pub service: String,
    pub responses: [u64; 5],
    pub client_gone: u64,
    pub duration: ([u64; 15], f64),
    pub upstream: ([u64; 15], f64),
}

/// Response counters by (Ingress `namespace/name`, Service), as the Node plane labels
/// `bollard_ingress_requests_total`; requests no route took are under ("", ""). They outlive table swaps (a
/// route that stays keeps counting on), and are only looked up when a table is built, never per request.
#[derive(Default)]
pub struct RouteMetrics {
    by_key: Mutex<HashMap<(String, String), Arc<RouteStats>>>,
}

impl RouteMetrics {
    fn get(map: &mut HashMap<(String, String), Arc<RouteStats>>, key: (String, String)) -> Arc<RouteStats> {
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

    /// Every pair seen, for the scrape.
    pub fn read(&self) -> Vec<RouteReading> {
        let Ok(map) = self.by_key.lock() else { return Vec::new() };
        map.iter()
            .map(|((ingress, service), c)| RouteReading {
                ingress: ingress.clone(),
                service: service.clone(),
                responses: std::array::from_fn(|i| Metrics::get(&c.classes[i])),
                client_gone: Metrics::get(&c.client_gone),
                duration: c.duration.read(),
                upstream: c.upstream.read(),
            })
            .collect()
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
        let mut all: Vec<_> = m.read().into_iter().map(|r| (r.ingress, r.service, r.responses)).collect();
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

    #[test]
    fn durations_fall_in_the_node_planes_buckets_and_499_is_its_own_count() {
        let stats = RouteStats::default();
        for ms in [0, 1, 2, 7, 60_000, 61_000] {
            stats.duration.observe(std::time::Duration::from_millis(ms));
        }
        let (counts, sum) = stats.duration.read();
        // ≤1 ms: 0 and 1 ms; ≤5 ms: 2; ≤10 ms: 7; ≤60 s: 60 s; +Inf: 61 s
        assert_eq!(counts, [2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert!((sum - 121.010).abs() < 1e-9, "{sum}");
        stats.count(499);
        stats.count(200);
        assert_eq!((Metrics::get(&stats.client_gone), Metrics::get(&stats.classes[1])), (1, 1));
    }
}
