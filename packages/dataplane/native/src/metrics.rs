//! Counters the proxy bumps per request; JavaScript reads them at scrape time (no per-request callback).
//!
//! Every counter is kept in shards, one per runtime thread (`set_worker_shard`), summed when read: a request
//! only ever writes its own thread's cache lines, so `--workers N` threads never pull a counter's line from one
//! another's caches per request (with shared counters that was about ten contended atomic adds per request).

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::table::Table;

/// Shards per counter: shard 0 for threads that are not runtime threads (JavaScript's: swaps, refusals), one
/// each for the first `SHARDS - 1` runtime threads; more share theirs (still correct, only contended).
pub const SHARDS: usize = 8;

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// Makes the calling thread (runtime thread number `worker`) count into a shard of its own.
pub fn set_worker_shard(worker: usize) {
    SHARD.with(|s| s.set(1 + worker % (SHARDS - 1)));
}

fn shard() -> usize {
    SHARD.with(Cell::get)
}

/// A value alone on its cache lines (two: the adjacent-line prefetcher pulls lines in pairs).
#[derive(Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// The process-wide counters (`Metrics`), a shard per thread.
#[derive(Default)]
pub struct ShardedMetrics {
    shards: [Padded<Metrics>; SHARDS],
}

impl ShardedMetrics {
    /// The calling thread's shard, to count into.
    pub fn local(&self) -> &Metrics {
        &self.shards[shard()].0
    }

    /// One counter summed over the shards.
    pub fn sum(&self, counter: impl Fn(&Metrics) -> &AtomicU64) -> u64 {
        self.shards.iter().map(|s| Metrics::get(counter(&s.0))).fold(0, u64::wrapping_add)
    }
}

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

    /// Counts per bucket (the last is past every bound) and the sum in microseconds.
    fn read_us(&self) -> ([u64; 15], u64) {
        (std::array::from_fn(|i| Metrics::get(&self.counts[i])), Metrics::get(&self.sum_us))
    }
}

/// One shard of a route's stats (see `RouteStats`).
#[derive(Default)]
#[repr(align(128))]
struct RouteCounts {
    classes: [AtomicU64; 5],
    client_gone: AtomicU64,
    duration: Histogram,
    upstream: Histogram,
}

/// What one Ingress and backend Service's requests came to: responses by status class (1xx … 5xx), requests
/// whose client went away before the answer was out (499, as nginx logs them), the time from request to the end
/// of the response, and the time from sending upstream to the upstream's response head. Sharded by thread like
/// `ShardedMetrics`; a shard is allocated by the first request its thread counts (a route nobody requests, or
/// a plane with one worker, costs one shard at most).
#[derive(Default)]
pub struct RouteStats {
    shards: [OnceLock<Box<RouteCounts>>; SHARDS],
}

/// A route's stats as read at a scrape: responses by class, 499s, the two histograms (counts per bucket, not
/// cumulative; sum in seconds).
#[derive(Debug, PartialEq)]
pub struct RouteTotals {
    pub responses: [u64; 5],
    pub client_gone: u64,
    pub duration: ([u64; 15], f64),
    pub upstream: ([u64; 15], f64),
}

impl RouteStats {
    fn local(&self) -> &RouteCounts {
        self.shards[shard()].get_or_init(Box::default)
    }

    /// A finished request: `status` 499 for a client gone before the answer ended.
    pub fn count(&self, status: u16) {
        let c = self.local();
        if status == 499 {
            Metrics::inc(&c.client_gone);
        } else if let Some(class) = c.classes.get(usize::from(status / 100).saturating_sub(1)) {
            Metrics::inc(class);
        }
    }

    /// From the request to the end of its answer.
    pub fn observe_duration(&self, elapsed: std::time::Duration) {
        self.local().duration.observe(elapsed);
    }

    /// From sending upstream to the upstream's response head.
    pub fn observe_upstream(&self, elapsed: std::time::Duration) {
        self.local().upstream.observe(elapsed);
    }

    /// The shards summed.
    pub fn read(&self) -> RouteTotals {
        let mut responses = [0u64; 5];
        let mut client_gone = 0u64;
        let (mut duration, mut duration_us) = ([0u64; 15], 0u64);
        let (mut upstream, mut upstream_us) = ([0u64; 15], 0u64);
        let add = |into: &mut [u64], from: &[u64]| into.iter_mut().zip(from).for_each(|(a, b)| *a = a.wrapping_add(*b));
        for c in self.shards.iter().filter_map(OnceLock::get) {
            add(&mut responses, &c.classes.each_ref().map(Metrics::get));
            client_gone = client_gone.wrapping_add(Metrics::get(&c.client_gone));
            let (counts, sum) = c.duration.read_us();
            add(&mut duration, &counts);
            duration_us = duration_us.wrapping_add(sum);
            let (counts, sum) = c.upstream.read_us();
            add(&mut upstream, &counts);
            upstream_us = upstream_us.wrapping_add(sum);
        }
        RouteTotals { responses, client_gone, duration: (duration, duration_us as f64 / 1e6), upstream: (upstream, upstream_us as f64 / 1e6) }
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
    /// namespace → Ingress name → Service: looked up by `&str` at every level, so attaching a table of 50,000
    /// routes allocates no key for a pair already known
    by_key: Mutex<HashMap<String, HashMap<String, HashMap<String, Arc<RouteStats>>>>>,
}

impl RouteMetrics {
    fn get(map: &mut HashMap<String, HashMap<String, HashMap<String, Arc<RouteStats>>>>, namespace: &str, name: &str, service: &str) -> Arc<RouteStats> {
        fn level<'a, V: Default>(map: &'a mut HashMap<String, V>, key: &str) -> &'a mut V {
            if !map.contains_key(key) {
                map.insert(key.to_owned(), V::default());
            }
            map.get_mut(key).expect("inserted above")
        }
        level(level(level(map, namespace), name), service).clone()
    }

    /// The counters for `table`'s routes.
    pub fn attach(&self, table: &mut Table) {
        let Ok(mut map) = self.by_key.lock() else { return };
        let per_route = table
            .routes
            .iter()
            .map(|r| {
                let service = table.backends.get(r.backend).and_then(|b| b.service.as_deref()).unwrap_or_default();
                Self::get(&mut map, &r.ingress.namespace, &r.ingress.name, service)
            })
            .collect();
        let unrouted = Self::get(&mut map, "", "", "");
        table.counters = TableCounters { per_route, unrouted };
    }

    /// Every pair seen, for the scrape.
    pub fn read(&self) -> Vec<RouteReading> {
        let Ok(map) = self.by_key.lock() else { return Vec::new() };
        let mut out = Vec::new();
        for (namespace, names) in map.iter() {
            for (name, services) in names {
                // requests no route took are under ("", "")
                let ingress = if namespace.is_empty() && name.is_empty() { String::new() } else { format!("{namespace}/{name}") };
                for (service, c) in services {
                    let RouteTotals { responses, client_gone, duration, upstream } = c.read();
                    out.push(RouteReading { ingress: ingress.clone(), service: service.clone(), responses, client_gone, duration, upstream });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;

    fn table(service: &str) -> Table {
        let json = format!(
            r#"{{"version": 2, "policies": [{{"refuse": null, "redirect": {{"sslRedirect": true, "forceSslRedirect": false, "preserveTrailingSlash": false, "to": null, "appRoot": null, "fromToWww": false}}, "rewrite": null, "headers": null, "access": null, "limits": null, "cors": null, "basicAuth": null, "externalAuth": null, "clientTls": null, "upstream": null, "balance": null, "errors": null, "accessLog": true}}], "hosts": ["foo.com"], "defaultRoute": null, "certificates": [], "tls": {{"hosts": [], "fallback": null}},
            "routes": [{{"ingress": {{"namespace": "d", "name": "a"}}, "host": "foo.com", "path": "/", "pathType": "Prefix", "backend": 0, "policy": 0, "sslRedirect": false}}],
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
            stats.observe_duration(std::time::Duration::from_millis(ms));
        }
        let (counts, sum) = stats.read().duration;
        // ≤1 ms: 0 and 1 ms; ≤5 ms: 2; ≤10 ms: 7; ≤60 s: 60 s; +Inf: 61 s
        assert_eq!(counts, [2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert!((sum - 121.010).abs() < 1e-9, "{sum}");
        stats.count(499);
        stats.count(200);
        let totals = stats.read();
        assert_eq!((totals.client_gone, totals.responses[1]), (1, 1));
    }

    #[test]
    fn threads_count_into_shards_of_their_own_and_reads_sum_them() {
        let stats = Arc::new(RouteStats::default());
        let metrics = Arc::new(ShardedMetrics::default());
        let threads: Vec<_> = (0..10)
            .map(|worker| {
                let (stats, metrics) = (stats.clone(), metrics.clone());
                std::thread::spawn(move || {
                    set_worker_shard(worker);
                    for _ in 0..1000 {
                        stats.count(200);
                        stats.observe_upstream(std::time::Duration::from_micros(1500));
                        Metrics::inc(&metrics.local().requests);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        // (this thread is not a runtime thread: shard 0)
        stats.count(404);
        Metrics::inc(&metrics.local().requests);
        let totals = stats.read();
        assert_eq!((totals.responses, totals.client_gone), ([0, 10_000, 0, 1, 0], 0));
        assert_eq!(totals.upstream.0[1], 10_000);
        assert!((totals.upstream.1 - 15.0).abs() < 1e-9, "{}", totals.upstream.1);
        assert_eq!(metrics.sum(|m| &m.requests), 10_001);
        // ten workers over seven shards, and shard 0
        assert_eq!(stats.shards.iter().filter(|s| s.get().is_some()).count(), SHARDS);
    }
}
