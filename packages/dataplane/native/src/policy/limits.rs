//! Rate and connection limits per client address (limit-rps, limit-rpm, limit-connections…), as nginx's
//! `limit_req` (burst = rate × multiplier, nodelay) and `limit_conn` count them for ingress-nginx: one zone per
//! Ingress, in this replica's memory. The zones outlive table swaps (an endpoint change must not forget who sent
//! what), so they live in the proxy's `Shared` and are found by the Ingress's name.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Deserialize;

use crate::trust::TrustedProxies;

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

/// A `limit_req`: `rate` in thousandths of a request per second, `burst` in thousandths of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rate {
    rate: u64,
    burst: u64,
}

/// As requests use it (compiled once per snapshot).
#[derive(Debug)]
pub struct Limits {
    /// [per second, per minute]
    rates: [Option<Rate>; 2],
    connections: Option<u32>,
    /// (the same CIDR set as `--trusted-proxies`)
    allowlist: TrustedProxies,
    pub status: u16,
}

pub fn compile(spec: LimitSpec) -> Result<Limits, String> {
    if !(400..=599).contains(&spec.status) {
        return Err(format!("status {} is not an error status", spec.status));
    }
    let rate = |limit: Option<u32>, per_seconds: u64| {
        limit.filter(|&n| n > 0).map(|n| Rate { rate: u64::from(n) * 1000 / per_seconds, burst: u64::from(n) * u64::from(spec.burst_multiplier) * 1000 })
    };
    Ok(Limits {
        rates: [rate(spec.rps, 1), rate(spec.rpm, 60)],
        connections: spec.connections.filter(|&n| n > 0),
        allowlist: TrustedProxies::parse(&spec.allowlist).map_err(|e| format!("allowlist: {e}"))?,
        status: spec.status,
    })
}

/// The limits' state of each Ingress that has some, by `namespace/name`.
#[derive(Default)]
pub struct Zones {
    zones: Mutex<HashMap<String, Arc<Zone>>>,
}

/// Client addresses one zone keeps at most (nginx's default 5 MB zone holds some 40 000 to 80 000 states).
const ZONE_CAPACITY: usize = 65_536;

#[derive(Default)]
pub struct Zone {
    clients: Mutex<HashMap<IpAddr, Client>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    /// requests beyond the rate, in thousandths
    excess: u64,
    last: Instant,
}

struct Client {
    buckets: [Option<Bucket>; 2],
    /// requests of this client in flight (`limit_conn`)
    in_flight: u32,
    /// when every bucket has drained: the entry then says nothing an absent one would not
    idle_from: Instant,
    seen: Instant,
}

/// A request counted against `limit-connections` until it is dropped (with the request's answer).
pub struct Permit {
    zone: Arc<Zone>,
    client: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut clients = self.zone.lock();
        if let Some(c) = clients.get_mut(&self.client) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
    }
}

impl Zones {
    fn zone(&self, ingress: &str) -> Arc<Zone> {
        let mut zones = self.zones.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(z) = zones.get(ingress) {
            return z.clone();
        }
        // A new Ingress with limits (rare): the zones of deleted ones go once they hold nothing.
        let now = Instant::now();
        zones.retain(|_, z| Arc::strong_count(z) > 1 || {
            let mut clients = z.lock();
            clients.retain(|_, c| c.busy(now));
            !clients.is_empty()
        });
        let z = Arc::new(Zone::default());
        zones.insert(ingress.to_string(), z.clone());
        z
    }
}

impl Zone {
    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Client>> {
        // (the map stays consistent whatever panicked while holding it: each update is a plain store)
        self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Client {
    fn busy(&self, now: Instant) -> bool {
        self.in_flight > 0 || self.idle_from > now
    }
}

/// Why a request was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Limited {
    Rate,
    Connections,
}

impl Limits {
    /// Counts a request of `client` on `ingress`'s zone at `now`: Err when a limit is hit (nothing is counted then),
    /// else the permit to hold while the request is served (None when no connection limit applies).
    pub fn admit(&self, zones: &Zones, ingress: &str, client: IpAddr, now: Instant) -> Result<Option<Permit>, Limited> {
        if self.allowlist.has(client) {
            return Ok(None);
        }
        let zone = zones.zone(ingress);
        let mut clients = zone.lock();
        if clients.len() >= ZONE_CAPACITY && !clients.contains_key(&client) {
            make_room(&mut clients, now);
        }
        let entry = clients.entry(client).or_insert(Client { buckets: [None, None], in_flight: 0, idle_from: now, seen: now });
        entry.seen = now;
        // nginx's leaky bucket: each request adds one, the rate drains; over the burst is refused (nodelay)
        let mut next = entry.buckets;
        for (rate, bucket) in self.rates.iter().zip(next.iter_mut()) {
            let Some(rate) = rate else {
                *bucket = None;
                continue;
            };
            let excess = match bucket {
                None => 0,
                Some(b) => {
                    let drained = rate.rate.saturating_mul(now.saturating_duration_since(b.last).as_millis() as u64) / 1000;
                    (b.excess.saturating_sub(drained)) + 1000
                }
            };
            if excess > rate.burst {
                return Err(Limited::Rate);
            }
            *bucket = Some(Bucket { excess, last: now });
        }
        if let Some(max) = self.connections {
            if entry.in_flight >= max {
                return Err(Limited::Connections);
            }
        }
        entry.buckets = next;
        entry.idle_from = self
            .rates
            .iter()
            .zip(next.iter())
            .filter_map(|(r, b)| Some((r.as_ref()?, b.as_ref()?)))
            .map(|(r, b)| b.last + std::time::Duration::from_millis(b.excess.saturating_mul(1000) / r.rate.max(1)))
            .max()
            .unwrap_or(now);
        if self.connections.is_none() {
            return Ok(None);
        }
        entry.in_flight += 1;
        drop(clients);
        Ok(Some(Permit { zone, client }))
    }
}

/// Bounds a zone's memory: first forgets the clients whose buckets have drained (they are as if never seen), then,
/// if many clients are still counted, the quarter seen longest ago (nginx also evicts its least recently used
/// states when a zone is full). Runs once per quarter of the capacity at most, so a request pays O(1) on average.
fn make_room(clients: &mut HashMap<IpAddr, Client>, now: Instant) {
    clients.retain(|_, c| c.busy(now));
    if clients.len() < ZONE_CAPACITY * 3 / 4 {
        return;
    }
    let mut seen: Vec<Instant> = clients.values().filter(|c| c.in_flight == 0).map(|c| c.seen).collect();
    let quarter = ZONE_CAPACITY / 4;
    if seen.len() <= quarter {
        return;
    }
    let (_, &mut cutoff, _) = seen.select_nth_unstable(quarter);
    clients.retain(|_, c| c.in_flight > 0 || c.seen > cutoff);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(rps: Option<u32>, rpm: Option<u32>, multiplier: u32, connections: Option<u32>, allowlist: &[&str]) -> Limits {
        compile(LimitSpec { rps, rpm, burst_multiplier: multiplier, connections, allowlist: allowlist.iter().map(|s| s.to_string()).collect(), status: 503 }).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// How many of `n` requests at `now` are admitted (their permits dropped at once).
    fn admitted(l: &Limits, zones: &Zones, client: &str, n: usize, now: Instant) -> usize {
        admitted_at(l, zones, ip(client), n, now)
    }

    fn admitted_at(l: &Limits, zones: &Zones, client: IpAddr, n: usize, now: Instant) -> usize {
        (0..n).filter(|_| l.admit(zones, "d/web", client, now).is_ok()).count()
    }

    #[test]
    fn a_burst_admits_rate_times_multiplier_plus_one_then_drains_at_the_rate() {
        let zones = Zones::default();
        let l = limits(Some(2), None, 5, None, &[]);
        let t0 = Instant::now();
        assert_eq!(admitted(&l, &zones, "192.0.2.1", 20, t0), 11, "burst 10 after the first, as nginx nodelay");
        // another address has its own bucket
        assert_eq!(admitted(&l, &zones, "192.0.2.2", 20, t0), 11);
        // half a second at 2 r/s drains one request
        assert_eq!(admitted(&l, &zones, "192.0.2.1", 5, t0 + Duration::from_millis(500)), 1);
        assert_eq!(admitted(&l, &zones, "192.0.2.1", 5, t0 + Duration::from_secs(60)), 5);
    }

    #[test]
    fn per_minute_and_multiplier_zero() {
        let zones = Zones::default();
        let t0 = Instant::now();
        assert_eq!(admitted(&limits(None, Some(1), 0, None, &[]), &zones, "192.0.2.1", 5, t0), 1);
        let both = limits(Some(100), Some(2), 1, None, &[]);
        // the tighter of the two decides; a refused request is counted by neither
        assert_eq!(admitted(&both, &Zones::default(), "192.0.2.1", 10, t0), 3);
    }

    #[test]
    fn the_allowlist_is_not_limited_and_connections_are_counted_until_the_permit_drops() {
        let zones = Zones::default();
        let t0 = Instant::now();
        let l = limits(None, Some(1), 1, Some(2), &["10.0.0.0/8"]);
        assert_eq!(admitted(&l, &zones, "10.1.2.3", 50, t0), 50);
        let c = limits(None, None, 5, Some(2), &[]);
        let a = c.admit(&zones, "d/web", ip("192.0.2.9"), t0).unwrap();
        let b = c.admit(&zones, "d/web", ip("192.0.2.9"), t0).unwrap();
        assert!(a.is_some() && b.is_some());
        assert_eq!(c.admit(&zones, "d/web", ip("192.0.2.9"), t0).err(), Some(Limited::Connections));
        // another Ingress is another zone
        assert!(c.admit(&zones, "d/other", ip("192.0.2.9"), t0).is_ok());
        drop(a);
        assert!(c.admit(&zones, "d/web", ip("192.0.2.9"), t0).is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_many_addresses() {
        let zones = Zones::default();
        let l = limits(None, Some(1), 1, None, &[]);
        let t0 = Instant::now();
        for i in 0..(ZONE_CAPACITY as u32 + 10_000) {
            let addr = IpAddr::from(std::net::Ipv6Addr::from(u128::from(i) + 1));
            // (each a little later, so that the oldest can be told apart; two requests, so that each stays counted)
            let at = t0 + Duration::from_micros(u64::from(i));
            assert_eq!(admitted_at(&l, &zones, addr, 3, at), 2);
        }
        let zone = zones.zone("d/web");
        let held = zone.lock().len();
        assert!(held <= ZONE_CAPACITY * 3 / 4 + 10_000, "{held}");
        // the clients seen last are still counted
        let last = IpAddr::from(std::net::Ipv6Addr::from(u128::from(ZONE_CAPACITY as u32 + 10_000)));
        assert!(zone.lock().contains_key(&last));
        drop(zone);
        // drained clients are forgotten first
        let later = t0 + Duration::from_secs(3600);
        make_room(&mut zones.zone("d/web").lock(), later);
        assert_eq!(zones.zone("d/web").lock().len(), 0);
    }
}
