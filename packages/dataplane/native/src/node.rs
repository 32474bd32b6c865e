//! The N-API surface: a `DataPlane` object per process. JavaScript hands it snapshots (JSON text of the
//! contract in snapshot.rs), asks it what a request would get, starts and drains its listeners, and reads its
//! counters. No JavaScript runs per request.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tokio::sync::watch;
use std::thread::JoinHandle;

use crate::metrics::{set_worker_shard, Metrics};
use crate::outcome::{decide, Outcome, RequestHead};
use crate::paths;
use crate::proxy::{bind, serve, ProxyConfig, Shared};
use crate::snapshot::Snapshot;
use crate::table::{SnapshotError, Table};
use crate::tls::{certified_key, server_config, SniResolver, TlsAcceptor};
use crate::trust::TrustedProxies;

#[napi(object)]
pub struct DataPlaneOptions {
    pub trusted_proxies: Vec<String>,
    pub max_body_size: u32,
    pub max_header_size: u32,
    pub request_buffer_size: u32,
    pub client_body_timeout_ms: u32,
    pub underscores_in_headers: bool,
    pub http2_max_concurrent_streams: u32,
    pub connect_timeout_ms: u32,
    pub read_timeout_ms: u32,
    pub headers_timeout_ms: u32,
    pub request_timeout_ms: u32,
    pub keep_alive_timeout_ms: u32,
    pub http2_max_resets_per_second: u32,
    pub access_log: bool,
    pub upstream_keep_alive_timeout_ms: u32,
    pub https_redirect_port: u32,
    /// PEM: served to TLS clients whose SNI matches no certificate of the table (and to clients without SNI)
    pub default_cert: String,
    pub default_key: String,
    /// TLS session resumption (on unless false)
    pub tls_session_resumption: Option<bool>,
}

#[napi(object)]
pub struct ListenOptions {
    pub host: String,
    pub http_port: u32,
    /// null: no HTTPS listener
    pub https_port: Option<u32>,
    /// runtime threads serving requests
    pub workers: u32,
}

#[napi(object)]
pub struct ListenResult {
    pub http_port: u32,
    pub https_port: Option<u32>,
}

/// A refused snapshot: the field at fault (a path into the snapshot) and why; null fields when accepted.
#[napi(object)]
pub struct SnapshotResult {
    pub accepted: bool,
    pub field: Option<String>,
    pub message: Option<String>,
}

/// What the proxy would do with a request: `status` set when it answers itself (400, 404, 503, 308),
/// `route` (an index into the snapshot's routes) when a route matched, `location` for the 308.
#[napi(object)]
pub struct RequestOutcome {
    pub status: Option<u32>,
    pub route: Option<u32>,
    pub location: Option<String>,
}

#[napi(object)]
pub struct DataPlaneCounters {
    pub requests: f64,
    pub responses1xx: f64,
    pub responses2xx: f64,
    pub responses3xx: f64,
    pub responses4xx: f64,
    pub responses5xx: f64,
    pub local_responses: f64,
    pub upstream_retries: f64,
    pub upstream_errors: f64,
    pub upstream_timeouts: f64,
    pub client_gone: f64,
    pub connections_opened: f64,
    pub connections_closed: f64,
    pub table_swaps: f64,
    pub snapshots_refused: f64,
}

/// Responses of one Ingress (`namespace/name`) and Service by status class; both empty for requests no route
/// took.
#[napi(object)]
pub struct RouteCount {
    pub ingress: String,
    pub service: String,
    /// 1xx … 5xx
    pub responses: Vec<f64>,
    /// requests whose client went away before the answer ended (499)
    pub client_gone: f64,
    /// request durations: counts per bucket of `DURATION_BUCKETS_US` and a last one past them (not cumulative)
    pub duration_counts: Vec<f64>,
    /// seconds
    pub duration_sum: f64,
    /// from sending upstream to the response head, the same way
    pub upstream_counts: Vec<f64>,
    pub upstream_sum: f64,
}

/// Log lines queued since the last drain (JSON objects with `level` and `msg`) and how many were dropped.
#[napi(object)]
pub struct LogBatch {
    pub lines: Vec<String>,
    pub dropped: f64,
}

struct Running {
    /// the runtime threads: each runs its own single-threaded runtime until `kill`
    threads: Vec<JoinHandle<()>>,
    /// stop accepting; connections finish their request in flight and close
    stop: watch::Sender<bool>,
    /// end the runtimes (what is still open is cut)
    kill: watch::Sender<bool>,
}

#[napi]
pub struct DataPlane {
    shared: Arc<Shared>,
    tls: Arc<rustls::ServerConfig>,
    running: Arc<Mutex<Option<Running>>>,
}

fn ms(v: u32) -> Duration {
    Duration::from_millis(u64::from(v))
}

#[napi]
impl DataPlane {
    #[napi(constructor)]
    pub fn new(options: DataPlaneOptions) -> Result<Self> {
        let trusted = TrustedProxies::parse(&options.trusted_proxies).map_err(|m| Error::new(Status::InvalidArg, m))?;
        let https_redirect_port = u16::try_from(options.https_redirect_port).map_err(|_| Error::new(Status::InvalidArg, "httpsRedirectPort is not a port"))?;
        let config = ProxyConfig {
            max_body_size: options.max_body_size as usize,
            max_header_size: options.max_header_size as usize,
            request_buffer_size: options.request_buffer_size as usize,
            client_body_timeout: ms(options.client_body_timeout_ms),
            underscores_in_headers: options.underscores_in_headers,
            http2_max_concurrent_streams: options.http2_max_concurrent_streams.max(1),
            connect_timeout: ms(options.connect_timeout_ms),
            read_timeout: ms(options.read_timeout_ms),
            headers_timeout: ms(options.headers_timeout_ms),
            // (as Node: the request timeout is never shorter than the headers timeout)
            request_timeout: ms(options.request_timeout_ms.max(options.headers_timeout_ms)),
            keep_alive_timeout: ms(options.keep_alive_timeout_ms),
            http2_max_resets_per_second: options.http2_max_resets_per_second.max(1),
            access_log: options.access_log,
            upstream_keep_alive_timeout: ms(options.upstream_keep_alive_timeout_ms),
            https_redirect_port,
            trusted,
        };
        let default = certified_key(&options.default_cert, &options.default_key).map_err(|m| Error::new(Status::InvalidArg, format!("the default certificate: {m}")))?;
        let shared = Arc::new(Shared::new(config));
        let tls = server_config(SniResolver { table: shared.table.clone(), default }, options.tls_session_resumption.unwrap_or(true));
        Ok(DataPlane { shared, tls, running: Arc::new(Mutex::new(None)) })
    }

    /// Validates a snapshot (JSON text) and swaps it in whole; a refused one changes nothing.
    #[napi]
    pub fn set_snapshot(&self, json: String) -> SnapshotResult {
        let built = serde_json::from_str::<Snapshot>(&json).map_err(|e| SnapshotError { field: format!("(line {} column {})", e.line(), e.column()), message: e.to_string() }).and_then(Table::build);
        match built {
            Ok(mut table) => {
                self.shared.route_metrics.attach(&mut table);
                let previous = self.shared.table.swap(Arc::new(table));
                // Freeing a table of 50,000 routes takes tens of milliseconds of the caller's thread, which is
                // Node's: the next table's build waits behind it. A thread of its own frees it (or, when the
                // runtime threads still hold it, whichever of them lets go last). Should no thread be had, the
                // refused closure is dropped here, and the table with it.
                let _ = std::thread::Builder::new().name("bollard-table-free".into()).spawn(move || drop(previous));
                Metrics::inc(&self.shared.metrics.local().table_swaps);
                SnapshotResult { accepted: true, field: None, message: None }
            }
            Err(e) => {
                Metrics::inc(&self.shared.metrics.local().snapshots_refused);
                SnapshotResult { accepted: false, field: Some(e.field), message: Some(e.message) }
            }
        }
    }

    /// What the proxy would answer to a request head: the same code the listener runs.
    #[napi]
    pub fn decide(&self, host: Option<Buffer>, host_count: u32, target: Buffer, secure: bool) -> RequestOutcome {
        let table = self.shared.table.load();
        let head = RequestHead { host: host.as_deref(), host_count: host_count as usize, target: &target, secure, headers: None };
        match decide(&table, &head, self.shared.config.https_redirect_port) {
            Outcome::Status(s) => RequestOutcome { status: Some(u32::from(s)), route: None, location: None },
            Outcome::Unavailable { route } => RequestOutcome { status: Some(503), route: Some(route as u32), location: None },
            Outcome::Refused { route, status } => RequestOutcome { status: Some(u32::from(status)), route: Some(route as u32), location: None },
            Outcome::Redirect { route, status, location } => RequestOutcome { status: Some(u32::from(status)), route: route.map(|r| r as u32), location: Some(location) },
            Outcome::Forward { route } => RequestOutcome { status: None, route: Some(route as u32), location: None },
        }
    }

    /// Only the route lookup (no status logic): the route index for a Host header and a path, null for none.
    #[napi]
    pub fn route_for(&self, host: Option<Buffer>, path: Buffer) -> Option<u32> {
        let table = self.shared.table.load();
        let normalized = paths::normalize_path(&path)?;
        let host = host.as_deref().map(paths::request_host).unwrap_or_default();
        table.match_route(&host, &normalized).map(|r| r as u32)
    }

    /// The certificate (index into the snapshot's certificates) for a TLS server name; null: the generated one.
    #[napi]
    pub fn certificate_for(&self, server_name: Option<String>) -> Option<u32> {
        let table = self.shared.table.load();
        let name = server_name.map(|n| paths::request_host(n.as_bytes())).unwrap_or_default();
        table.match_certificate(&name).map(|c| c as u32)
    }

    /// Opens the listeners (plain HTTP, and HTTPS with h2 by ALPN) on `workers` threads. Each thread runs a
    /// single-threaded runtime with listeners of its own on the same ports (SO_REUSEPORT when there are several:
    /// the kernel spreads connections over them) and its own upstream pool: a connection and its upstream
    /// requests stay on one thread, with no work stealing or cross-thread wake-ups.
    #[napi]
    pub fn listen(&self, options: ListenOptions) -> Result<ListenResult> {
        let mut running = self.running.lock().map_err(|_| Error::from_reason("data plane state poisoned"))?;
        if running.is_some() {
            return Err(Error::new(Status::GenericFailure, "the data plane is already listening"));
        }
        let ip: IpAddr = options.host.parse().map_err(|_| Error::new(Status::InvalidArg, format!("{:?} is not an IP address", options.host)))?;
        let port = u16::try_from(options.http_port).map_err(|_| Error::new(Status::InvalidArg, "httpPort is not a port"))?;
        let https_port = options.https_port.map(|p| u16::try_from(p).map_err(|_| Error::new(Status::InvalidArg, "httpsPort is not a port"))).transpose()?;
        let workers = options.workers.max(1) as usize;
        let reuse_port = workers > 1;
        // Bound here, so that a port in use fails `listen`; the first listener's port (when 0 was asked for) is
        // the one the other threads' listeners take.
        let mut http_port = port;
        let mut bound_https = https_port;
        let mut runtimes = Vec::with_capacity(workers);
        for _ in 0..workers {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Error::from_reason(format!("starting a runtime: {e}")))?;
            let open = |port: u16| runtime.block_on(async { bind(SocketAddr::new(ip, port), reuse_port) }).map_err(|e| Error::from_reason(format!("listening on {}: {e}", SocketAddr::new(ip, port))));
            let listener = open(http_port)?;
            http_port = listener.local_addr().map(|a| a.port()).unwrap_or(http_port);
            let tls_listener = bound_https.map(open).transpose()?;
            bound_https = tls_listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port()).or(bound_https);
            runtimes.push((runtime, listener, tls_listener));
        }
        let (stop, stop_rx) = watch::channel(false);
        let (kill, kill_rx) = watch::channel(false);
        let mut threads = Vec::with_capacity(workers);
        let acceptor = Arc::new(TlsAcceptor::new(self.tls.clone(), self.shared.table.clone()));
        for (worker, (runtime, listener, tls_listener)) in runtimes.into_iter().enumerate() {
            let shared = self.shared.clone();
            let tls = acceptor.clone();
            let stop_rx = stop_rx.clone();
            let mut kill_rx = kill_rx.clone();
            let thread = std::thread::Builder::new().name("bollard-dataplane".into()).spawn(move || {
                set_worker_shard(worker);
                runtime.block_on(async move {
                    let client = shared.upstream_pool();
                    if worker == 0 {
                        tokio::spawn(crate::trim::trim_after_bursts(shared.clone(), stop_rx.clone()));
                    }
                    tokio::spawn(serve(shared.clone(), listener, None, client.clone(), stop_rx.clone()));
                    if let Some(l) = tls_listener {
                        tokio::spawn(serve(shared, l, Some(tls), client, stop_rx));
                    }
                    let _ = kill_rx.wait_for(|&k| k).await;
                });
                // (blocking tasks, such as a DNS lookup of an upstream name, are not waited for long)
                runtime.shutdown_timeout(Duration::from_millis(100));
            });
            match thread {
                Ok(t) => threads.push(t),
                Err(e) => {
                    let _ = kill.send(true);
                    return Err(Error::from_reason(format!("starting a runtime thread: {e}")));
                }
            }
        }
        *running = Some(Running { threads, stop, kill });
        Ok(ListenResult { http_port: u32::from(http_port), https_port: bound_https.map(u32::from) })
    }

    /// Stops accepting, lets open requests finish until the deadline, then cuts what is left.
    #[napi]
    pub fn shutdown(&self, deadline_ms: u32) -> AsyncTask<Drain> {
        // Stop accepting now, so that `listening()` is false from here on (the drain itself runs off this thread).
        if let Ok(running) = self.running.lock() {
            if let Some(r) = running.as_ref() {
                let _ = r.stop.send(true);
            }
        }
        AsyncTask::new(Drain { shared: self.shared.clone(), running: self.running.clone(), deadline: ms(deadline_ms) })
    }

    /// The listeners are bound and accepting (false before `listen` and from `shutdown` on).
    #[napi]
    pub fn listening(&self) -> bool {
        self.running.lock().map(|r| r.as_ref().is_some_and(|r| !*r.stop.borrow())).unwrap_or(false)
    }

    /// Response counters by Ingress and Service (read at scrape time).
    #[napi]
    pub fn route_counters(&self) -> Vec<RouteCount> {
        let floats = |c: &[u64]| c.iter().map(|&n| n as f64).collect();
        self.shared
            .route_metrics
            .read()
            .into_iter()
            .map(|r| RouteCount {
                ingress: r.ingress,
                service: r.service,
                responses: floats(&r.responses),
                client_gone: r.client_gone as f64,
                duration_counts: floats(&r.duration.0),
                duration_sum: r.duration.1,
                upstream_counts: floats(&r.upstream.0),
                upstream_sum: r.upstream.1,
            })
            .collect()
    }

    /// Every log line queued since the last call, at once (JavaScript calls this on a timer, never per request).
    #[napi]
    pub fn drain_logs(&self) -> LogBatch {
        let (lines, dropped) = self.shared.logs.drain();
        LogBatch { lines, dropped: dropped as f64 }
    }

    /// Client connections open now.
    #[napi]
    pub fn open_connections(&self) -> u32 {
        u32::try_from(self.shared.open_connections.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
    }

    #[napi]
    pub fn counters(&self) -> DataPlaneCounters {
        let m = &self.shared.metrics;
        let g = |c: fn(&Metrics) -> &AtomicU64| m.sum(c) as f64;
        DataPlaneCounters {
            requests: g(|m| &m.requests),
            responses1xx: g(|m| &m.responses[0]),
            responses2xx: g(|m| &m.responses[1]),
            responses3xx: g(|m| &m.responses[2]),
            responses4xx: g(|m| &m.responses[3]),
            responses5xx: g(|m| &m.responses[4]),
            local_responses: g(|m| &m.local_responses),
            upstream_retries: g(|m| &m.upstream_retries),
            upstream_errors: g(|m| &m.upstream_errors),
            upstream_timeouts: g(|m| &m.upstream_timeouts),
            client_gone: g(|m| &m.client_gone),
            connections_opened: g(|m| &m.connections_opened),
            connections_closed: g(|m| &m.connections_closed),
            table_swaps: g(|m| &m.table_swaps),
            snapshots_refused: g(|m| &m.snapshots_refused),
        }
    }
}

pub struct Drain {
    shared: Arc<Shared>,
    running: Arc<Mutex<Option<Running>>>,
    deadline: Duration,
}

impl Task for Drain {
    type Output = ();
    type JsValue = ();

    // Runs on a libuv worker thread, never on the JavaScript thread.
    fn compute(&mut self) -> Result<()> {
        let Some(running) = self.running.lock().map_err(|_| Error::from_reason("data plane state poisoned"))?.take() else {
            return Ok(());
        };
        let _ = running.stop.send(true);
        let until = Instant::now() + self.deadline;
        while self.shared.open_connections.load(Ordering::Relaxed) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = running.kill.send(true);
        for thread in running.threads {
            let _ = thread.join();
        }
        Ok(())
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}

/// The normal form a path is matched in (bytes), or null when it is not a path (400).
#[napi]
pub fn normalize_path(path: Buffer) -> Option<Buffer> {
    paths::normalize_path(&path).map(|p| Buffer::from(p.into_owned()))
}

/// The snapshot contract version this build reads.
#[napi]
pub fn snapshot_version() -> u32 {
    crate::snapshot::SNAPSHOT_VERSION
}
