//! The keep-alive pool to the upstreams: hyper's HTTP/1 client connections, one pool per runtime thread.
//!
//! A pooled connection has no task of its own. The request that takes it drives it (`Exchange` polls the
//! connection beside the response), and so does the answer's body on its way to the client (`Answer` in
//! proxy.rs), which puts it back once the body has ended; so a request is one task, woken by its sockets, instead of
//! a task per connection with channels between the two (hyper-util's legacy `Client`: a pool behind a mutex, a
//! wake-up of the connection's task to send and of the request's task to answer). An idle connection is polled by
//! nobody: one its upstream closed meanwhile is found closed when it is next taken (the poll before sending reads
//! the end of the stream) and dropped, like one idle past the keep-alive timeout; a reaper task per pool and thread
//! closes the idle ones nobody takes.
//!
//! The idle lists live in a thread-local (each runtime thread is a current-thread runtime, so a request and the
//! connections it takes stay on one thread): no lock, and a pool used from another thread only has lists of its own
//! there.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1::{Builder, Connection, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::proxy::Body;

/// (boxed: hyper's connection state is large, and a request's futures and answer move it around several times)
type Conn = Pin<Box<Connection<TokioIo<TcpStream>, Body>>>;

/// Idle connections kept per endpoint, at most (as the legacy client's `pool_max_idle_per_host` was set).
const MAX_IDLE_PER_ENDPOINT: usize = 1024;

/// A runtime thread's pool; cloning it shares it.
#[derive(Clone)]
pub struct UpstreamPool {
    id: Arc<PoolId>,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

/// (the reaper holds it weakly: once every handle is gone, it empties its thread's lists and ends)
struct PoolId(u64);

struct Idle {
    sender: SendRequest<Body>,
    conn: Conn,
    since: Instant,
    endpoint: Arc<str>,
}

/// One pool's idle connections on one thread, by endpoint authority.
struct Lists {
    pool: u64,
    by_endpoint: HashMap<Arc<str>, Vec<Idle>, BuildHasherDefault<Fnv>>,
}

/// FNV-1a: the keys are the table's endpoint authorities, not text a client chooses, so a hash that costs a
/// multiplication per byte will do (std's SipHash costs more than the rest of a lookup).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

thread_local! {
    static LISTS: RefCell<Vec<Lists>> = const { RefCell::new(Vec::new()) };
}

/// A connection taken from the pool (or opened) for one request: given back with `release` when its answer
/// has ended, closed when dropped before.
pub struct Pooled {
    sender: SendRequest<Body>,
    /// `None` once the connection has ended (closed by either side, or failed)
    conn: Option<Conn>,
    pool: u64,
    endpoint: Arc<str>,
}

/// Why no response head came from an upstream.
#[derive(Debug)]
pub enum UpstreamError {
    /// no connection: refused, unreachable, the name did not resolve, or the connect timeout passed
    Connect { endpoint: String, error: std::io::Error },
    /// the connection failed, or the request's body did, before a response head
    Request(hyper::Error),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Connect { endpoint, .. } => write!(f, "connecting to {endpoint}"),
            UpstreamError::Request(_) => write!(f, "upstream request"),
        }
    }
}

impl StdError for UpstreamError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            UpstreamError::Connect { error, .. } => Some(error),
            UpstreamError::Request(error) => Some(error),
        }
    }
}

impl UpstreamError {
    pub fn is_connect(&self) -> bool {
        matches!(self, UpstreamError::Connect { .. })
    }
}

impl UpstreamPool {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration) -> UpstreamPool {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        UpstreamPool { id: Arc::new(PoolId(NEXT.fetch_add(1, Ordering::Relaxed))), connect_timeout, idle_timeout }
    }

    /// Sends `req` (whose URI is origin-form) to `endpoint` (`host:port`) on an idle connection, or a new one,
    /// and waits for the response head, driving the connection meanwhile. A request that an idle connection
    /// could not take (found closed before any of it was written) goes on another, as the legacy client's
    /// `retry_canceled_requests` did. The connection comes back with the response, for the answer's body to drive.
    pub async fn send(&self, endpoint: &str, mut req: Request<Body>) -> Result<(Response<Incoming>, Pooled), UpstreamError> {
        loop {
            let (mut pooled, reused) = match self.take(endpoint) {
                Some(p) => (p, true),
                None => (self.connect(endpoint).await?, false),
            };
            if reused && !pooled.ready().await {
                continue;
            }
            let sent = std::pin::pin!(pooled.sender.try_send_request(req));
            match (Exchange { pooled: &mut pooled, sent }).await {
                Ok(res) => return Ok((res, pooled)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(UpstreamError::Request(e.into_error())),
                },
            }
        }
    }

    /// The most recently idle connection to `endpoint` that has not been idle past the timeout (LIFO, as the
    /// legacy pool: the least used ones age out); expired ones met on the way are dropped (closed).
    fn take(&self, endpoint: &str) -> Option<Pooled> {
        let pool = self.id.0;
        LISTS.with(|lists| {
            let mut lists = lists.borrow_mut();
            let lists = lists.iter_mut().find(|l| l.pool == pool)?;
            let list = lists.by_endpoint.get_mut(endpoint)?;
            let now = Instant::now();
            while let Some(idle) = list.pop() {
                if now.duration_since(idle.since) < self.idle_timeout {
                    return Some(Pooled { sender: idle.sender, conn: Some(idle.conn), pool, endpoint: idle.endpoint });
                }
            }
            None
        })
    }

    async fn connect(&self, endpoint: &str) -> Result<Pooled, UpstreamError> {
        let failed = |error| UpstreamError::Connect { endpoint: endpoint.to_owned(), error };
        let stream = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(endpoint)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(failed(e)),
            Err(_elapsed) => return Err(failed(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout"))),
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = Builder::new().handshake(TokioIo::new(stream)).await.map_err(UpstreamError::Request)?;
        let pool = self.id.0;
        let endpoint = LISTS.with(|lists| {
            let mut lists = lists.borrow_mut();
            let index = match lists.iter().position(|l| l.pool == pool) {
                Some(i) => i,
                None => {
                    // this thread's first connection of this pool: its reaper starts with it
                    tokio::spawn(reap(Arc::downgrade(&self.id), pool, self.idle_timeout));
                    lists.push(Lists { pool, by_endpoint: HashMap::default() });
                    lists.len() - 1
                }
            };
            let by_endpoint = &mut lists[index].by_endpoint;
            match by_endpoint.get_key_value(endpoint) {
                Some((key, _)) => key.clone(),
                None => {
                    let key: Arc<str> = Arc::from(endpoint);
                    by_endpoint.insert(key.clone(), Vec::new());
                    key
                }
            }
        });
        Ok(Pooled { sender, conn: Some(Box::pin(conn)), pool, endpoint })
    }
}

impl Pooled {
    /// Polls the connection: it reads what came while it was not polled (the upstream's end of stream, for an
    /// idle one), writes what the request still has to send, and hands the response body what it reads.
    /// False once it has ended.
    pub fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(conn) = self.conn.as_mut() else { return false };
        if conn.as_mut().poll(cx).is_ready() {
            // (closed or failed: a request waiting on it gets the error through its response future)
            self.conn = None;
            return false;
        }
        true
    }

    /// Whether an idle connection can take a request: polled until it asks for one, false if it has ended.
    async fn ready(&mut self) -> bool {
        std::future::poll_fn(|cx| {
            if !self.drive(cx) {
                return Poll::Ready(false);
            }
            match self.sender.poll_ready(cx) {
                Poll::Ready(r) => Poll::Ready(r.is_ok()),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Back to its thread's idle list, if the connection is still open; else (or when the pool is gone, or the
    /// list is full) dropped, which closes it.
    pub fn release(self) {
        let Pooled { sender, conn, pool, endpoint } = self;
        let Some(conn) = conn else { return };
        if sender.is_closed() {
            return;
        }
        let idle = Idle { sender, conn, since: Instant::now(), endpoint: endpoint.clone() };
        // (`try_with`: an answer dropped while its thread ends, after the lists have gone, just closes it)
        let _refused = LISTS.try_with(|lists| {
            let mut lists = lists.borrow_mut();
            let Some(list) = lists.iter_mut().find(|l| l.pool == pool).and_then(|l| l.by_endpoint.get_mut(&endpoint)) else { return Some(idle) };
            if list.len() >= MAX_IDLE_PER_ENDPOINT {
                return Some(idle);
            }
            list.push(idle);
            None
        });
    }
}

/// A request's response head, with its connection driven meanwhile in the same task.
struct Exchange<'a, 'f, F> {
    pooled: &'a mut Pooled,
    sent: Pin<&'f mut F>,
}

impl<F: Future> Future for Exchange<'_, '_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // the connection first: what it reads this time is the head the response future then has
        self.pooled.drive(cx);
        self.sent.as_mut().poll(cx)
    }
}

/// Closes the pool's connections on this thread that have been idle past the timeout, every half timeout; ends
/// (dropping the lists) once the pool itself is gone.
async fn reap(handle: Weak<PoolId>, pool: u64, idle_timeout: Duration) {
    let every = (idle_timeout / 2).max(Duration::from_millis(50));
    let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        ticks.tick().await;
        let gone = handle.strong_count() == 0;
        let _expired: Vec<Idle> = LISTS.with(|lists| {
            let mut lists = lists.borrow_mut();
            let Some(index) = lists.iter().position(|l| l.pool == pool) else { return Vec::new() };
            if gone {
                return lists.swap_remove(index).by_endpoint.into_values().flatten().collect();
            }
            let now = Instant::now();
            let mut expired = Vec::new();
            for list in lists[index].by_endpoint.values_mut() {
                // (oldest first: pushed in the order they went idle)
                let keep = list.iter().position(|i| now.duration_since(i.since) < idle_timeout).unwrap_or(list.len());
                expired.extend(list.drain(..keep));
            }
            expired
        });
        if gone {
            return;
        }
    }
}
