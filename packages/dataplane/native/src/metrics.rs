//! Counters the proxy bumps per request; JavaScript reads them at scrape time (no per-request callback).

use std::sync::atomic::{AtomicU64, Ordering};

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
