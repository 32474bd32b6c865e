//! The keep-alive pool to the upstreams, and the HTTP/1.1 exchange on its connections: the request head is
//! written from bytes the proxy prepared (proxy.rs), the response parsed with the codec in h1.rs. One pool per
//! runtime thread.
//!
//! A connection has no task of its own. The request that takes it drives it: the future waiting for the response
//! head writes the request (head and body) and reads, and the response body (`UpstreamBody`) goes on writing what
//! is left of the request body while it reads; it puts the connection back once the response has ended, well
//! framed, after a request written whole, and the upstream did not ask to close. Anything else closes it. So a
//! request is one task, woken by its sockets, with no channel between it and a connection task (hyper's client
//! had an unbounded channel, a oneshot and a want signal per request, and a header map built and encoded both
//! ways). An idle connection is polled by nobody: one its upstream closed meanwhile is found closed when it is
//! next taken (its socket is readable: the end of the stream) and dropped, like one idle past the keep-alive
//! timeout; a reaper task per pool and thread closes the idle ones nobody takes.
//!
//! The idle lists live in a thread-local (each runtime thread is a current-thread runtime, so a request and the
//! connections it takes stay on one thread): no lock, and a pool used from another thread only has lists of its own
//! there.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use hyper::body::{Body as _, Frame, SizeHint};
use hyper::Response;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio::time::Instant;

use crate::h1::{self, Chunked, CodecError, Decoded, Framing, Parsed};
use crate::proxy::{Body, BoxError};

/// Idle connections kept per endpoint, at most (as the legacy client's `pool_max_idle_per_host` was set).
const MAX_IDLE_PER_ENDPOINT: usize = 1024;
/// The read buffer grows by this when less than `READ_ROOM` is free.
const READ_CHUNK: usize = 8 * 1024;
const READ_ROOM: usize = 1024;
/// Request body data waiting in the write buffer, at most, before it is written (a body is pulled no faster than
/// the upstream takes it).
const WRITE_HIGH: usize = 64 * 1024;
/// Buffer capacity an idle connection keeps, at most.
const BUFFER_KEPT: usize = 16 * 1024;

/// A runtime thread's pool; cloning it shares it.
#[derive(Clone)]
pub struct UpstreamPool {
    id: Arc<PoolId>,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

/// (the reaper holds it weakly: once every handle is gone, it empties its thread's lists and ends)
struct PoolId(u64);

/// An open connection to an upstream, with its buffers (kept from one request to the next, so their memory is
/// reused). Between requests both are empty.
struct Connection {
    io: Io,
    read: BytesMut,
    write: Vec<u8>,
}

/// A connection's stream: TCP, or TLS over it (`backend-protocol: HTTPS`).
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection {
    /// Whether an idle connection is still open: its socket has nothing to read. Anything readable now is either
    /// the end of the stream (closed by the upstream while idle) or bytes no request asked for; either way it is
    /// not reused. (tokio answers from the readiness epoll reported, without a system call when nothing came.)
    fn is_open(&mut self) -> bool {
        let mut probe = [0u8; 1];
        match &mut self.io {
            Io::Plain(io) => matches!(io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            Io::Tls(io) => {
                // (TLS records that are not data, such as session tickets, are taken in without a byte to show)
                let mut buf = ReadBuf::new(&mut probe);
                let mut cx = Context::from_waker(std::task::Waker::noop());
                matches!(Pin::new(&mut **io).poll_read(&mut cx, &mut buf), Poll::Pending)
            }
        }
    }
}

impl AsyncRead for Io {
    #[inline]
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Io::Tls(io) => Pin::new(&mut **io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    #[inline]
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(io) => Pin::new(io).poll_write(cx, data),
            Io::Tls(io) => Pin::new(&mut **io).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(io) => Pin::new(io).poll_flush(cx),
            Io::Tls(io) => Pin::new(&mut **io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Io::Tls(io) => Pin::new(&mut **io).poll_shutdown(cx),
        }
    }
}

/// Where a request goes: the endpoint, and how it is reached when its route asks (`backend-protocol: HTTPS`,
/// `proxy-connect-timeout`).
pub struct Target<'a> {
    /// `host:port`
    pub endpoint: &'a str,
    /// the idle list the connection belongs to: `endpoint`, or for TLS one that also names the TLS settings
    pub key: &'a str,
    /// the pool's own when None
    pub connect_timeout: Option<Duration>,
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl<'a> Target<'a> {
    pub fn plain(endpoint: &'a str) -> Target<'a> {
        Target { endpoint, key: endpoint, connect_timeout: None, tls: None }
    }
}

struct Idle {
    conn: Box<Connection>,
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

/// A connection taken from the pool (or opened) for one request: given back with `release` once its response
/// has ended well, closed when dropped.
struct Pooled {
    conn: Box<Connection>,
    pool: u64,
    endpoint: Arc<str>,
}

/// How the request's body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// no body
    None,
    /// as the request's Content-Length line says
    Length(u64),
    Chunked,
}

/// Why no response head came from an upstream.
#[derive(Debug)]
pub enum UpstreamError {
    /// no connection: refused, unreachable, the name did not resolve, or the connect timeout passed
    Connect { endpoint: String, error: io::Error },
    /// the TLS handshake failed (a certificate refused, no common protocol)
    Handshake { endpoint: String, error: io::Error },
    /// reading or writing the connection failed
    Io(io::Error),
    /// the upstream closed the connection before a whole response head
    Closed,
    /// the response head is not one to forward
    Protocol(CodecError),
    /// the client's request body failed while it was being sent
    Body(BoxError),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Connect { endpoint, .. } => write!(f, "connecting to {endpoint}"),
            UpstreamError::Handshake { endpoint, .. } => write!(f, "TLS handshake with {endpoint}"),
            UpstreamError::Io(_) => write!(f, "upstream connection"),
            UpstreamError::Closed => write!(f, "upstream closed the connection before a response head"),
            UpstreamError::Protocol(_) => write!(f, "upstream response"),
            UpstreamError::Body(_) => write!(f, "request body"),
        }
    }
}

impl StdError for UpstreamError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            UpstreamError::Connect { error, .. } | UpstreamError::Handshake { error, .. } => Some(error),
            UpstreamError::Io(error) => Some(error),
            UpstreamError::Closed => None,
            UpstreamError::Protocol(error) => Some(error),
            UpstreamError::Body(error) => Some(&**error),
        }
    }
}

impl UpstreamError {
    /// What `proxy-next-upstream` calls this failure; None when it is the client's body that failed.
    pub fn failure(&self) -> Option<crate::policy::upstream::Failure> {
        use crate::policy::upstream::Failure;
        Some(match self {
            UpstreamError::Connect { error, .. } if error.kind() == io::ErrorKind::TimedOut => Failure::ConnectTimeout,
            UpstreamError::Connect { .. } | UpstreamError::Handshake { .. } => Failure::ConnectError,
            UpstreamError::Io(_) | UpstreamError::Closed => Failure::Error,
            UpstreamError::Protocol(_) => Failure::InvalidHeader,
            UpstreamError::Body(_) => return None,
        })
    }
}

/// The upstream closed the connection, or sent what cannot be read, in the middle of a response body.
#[derive(Debug)]
pub enum UpstreamBodyError {
    Closed,
    Io(io::Error),
    Protocol(CodecError),
}

impl fmt::Display for UpstreamBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamBodyError::Closed => write!(f, "upstream closed the connection before the end of the response body"),
            UpstreamBodyError::Io(e) => write!(f, "upstream connection: {e}"),
            UpstreamBodyError::Protocol(e) => write!(f, "upstream response body: {e}"),
        }
    }
}

impl StdError for UpstreamBodyError {}

impl UpstreamPool {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration) -> UpstreamPool {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        UpstreamPool { id: Arc::new(PoolId(NEXT.fetch_add(1, Ordering::Relaxed))), connect_timeout, idle_timeout }
    }

    /// Sends a request to `target` on an idle connection, or a new one, and waits for the response head. The body
    /// is taken once a connection is had: after a failed connect it is still the caller's, to send elsewhere. `write_head` writes the request line and header lines, blank line included, into the connection's
    /// empty write buffer (called again for each connection tried). An idle connection found closed is dropped
    /// and another taken; a body-less request that failed on a reused connection before any of its response came
    /// is sent once more on a new connection, if nothing of it had been written or it is idempotent (the
    /// upstream may have closed the idle connection as the request went out).
    pub async fn send(&self, target: &Target<'_>, mut write_head: impl FnMut(&mut Vec<u8>), body: &mut Option<Body>, framing: BodyFraming, head_request: bool, idempotent: bool) -> Result<Response<UpstreamBody>, UpstreamError> {
        let mut fresh = false;
        loop {
            let (mut pooled, reused) = match if fresh { None } else { self.take(target.key) } {
                Some(p) => (p, true),
                None => (self.connect(target).await?, false),
            };
            if reused && !pooled.conn.is_open() {
                continue;
            }
            let mut exchange = Exchange::new(pooled, &mut write_head, body.take().unwrap_or_else(crate::proxy::empty_body), framing);
            let got = std::future::poll_fn(|cx| exchange.poll_head(cx, head_request)).await;
            match got {
                Ok(head) => {
                    let mut res = Response::new(UpstreamBody::new(exchange, head.framing, head.keep_alive));
                    *res.status_mut() = head.status;
                    *res.version_mut() = head.version;
                    *res.headers_mut() = head.headers;
                    if let Some(reason) = head.reason.and_then(|r| hyper::ext::ReasonPhrase::try_from(r).ok()) {
                        res.extensions_mut().insert(reason);
                    }
                    return Ok(res);
                }
                Err(UpstreamError::Closed | UpstreamError::Io(_)) if reused && !fresh && framing == BodyFraming::None && !exchange.responded && (idempotent || !exchange.wrote_any) => {
                    fresh = true;
                }
                Err(e) => return Err(e),
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
                    return Some(Pooled { conn: idle.conn, pool, endpoint: idle.endpoint });
                }
            }
            None
        })
    }

    async fn connect(&self, target: &Target<'_>) -> Result<Pooled, UpstreamError> {
        let endpoint = target.endpoint;
        let failed = |error| UpstreamError::Connect { endpoint: endpoint.to_owned(), error };
        let stream = match tokio::time::timeout(target.connect_timeout.unwrap_or(self.connect_timeout), TcpStream::connect(endpoint)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(failed(e)),
            Err(_elapsed) => return Err(failed(io::Error::new(io::ErrorKind::TimedOut, "connect timeout"))),
        };
        let _ = stream.set_nodelay(true);
        let io = match &target.tls {
            None => Io::Plain(stream),
            // (a failed handshake is a failed connection: nothing of the request was sent)
            Some((config, name)) => Io::Tls(Box::new(tokio_rustls::TlsConnector::from(config.clone()).connect(name.clone(), stream).await.map_err(|e| UpstreamError::Handshake { endpoint: endpoint.to_owned(), error: e })?)),
        };
        let endpoint = target.key;
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
        let conn = Box::new(Connection { io, read: BytesMut::with_capacity(READ_CHUNK), write: Vec::with_capacity(1024) });
        Ok(Pooled { conn, pool, endpoint })
    }
}

impl Pooled {
    /// Back to its thread's idle list; when the pool is gone, or the list is full, dropped, which closes it.
    fn release(self) {
        let Pooled { mut conn, pool, endpoint } = self;
        // An idle connection keeps buffers of the usual size only: one that carried a large body or head gives
        // the memory back (a thousand idle connections with 64 KiB write buffers would be 64 MiB).
        if conn.write.capacity() > BUFFER_KEPT {
            conn.write = Vec::new();
        }
        if conn.read.capacity() > BUFFER_KEPT {
            conn.read = BytesMut::new();
        }
        let idle = Idle { conn, since: Instant::now(), endpoint: endpoint.clone() };
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

/// One request on one connection: writing it (head, then body) goes on while its response is read.
struct Exchange {
    pooled: Pooled,
    /// how much of the write buffer is on the wire
    written: usize,
    /// the request body, until it has ended (or writing failed)
    body: Option<Body>,
    framing: BodyFraming,
    /// bytes a Content-Length body still owes
    owed: u64,
    /// the whole request is on the wire
    sent: bool,
    /// writing failed: the request is not all on the wire (its response may still come)
    write_failed: bool,
    wrote_any: bool,
    /// a byte of the response has come
    responded: bool,
}

impl Exchange {
    fn new(mut pooled: Pooled, write_head: &mut impl FnMut(&mut Vec<u8>), body: Body, framing: BodyFraming) -> Exchange {
        pooled.conn.write.clear();
        write_head(&mut pooled.conn.write);
        let owed = match framing {
            BodyFraming::Length(n) => n,
            _ => 0,
        };
        let body = if framing == BodyFraming::None { None } else { Some(body) };
        Exchange { pooled, written: 0, body, framing, owed, sent: false, write_failed: false, wrote_any: false, responded: false }
    }

    /// Writes what is buffered, then what the body has (framed), until the request is on the wire, the socket or
    /// the body has to wait, or writing fails (`write_failed`: the response may still come). An error is the
    /// body's (the client's, or its framing broken).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        loop {
            let conn = &mut *self.pooled.conn;
            while self.written < conn.write.len() {
                match Pin::new(&mut conn.io).poll_write(cx, &conn.write[self.written..]) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        self.written += n;
                        self.wrote_any = true;
                    }
                    Poll::Ready(_) => {
                        // (closed or reset: what it answered meanwhile, if anything, is still read)
                        self.write_failed = true;
                        self.body = None;
                        return Poll::Ready(Ok(()));
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            conn.write.clear();
            self.written = 0;
            let Some(body) = self.body.as_mut() else {
                self.sent = true;
                return Poll::Ready(Ok(()));
            };
            let mut ended = false;
            while conn.write.len() < WRITE_HIGH {
                match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        // (trailers are not sent on)
                        if let Ok(data) = frame.into_data() {
                            if !data.is_empty() {
                                match self.framing {
                                    BodyFraming::Length(_) => {
                                        if data.len() as u64 > self.owed {
                                            return Poll::Ready(Err("request body longer than its Content-Length".into()));
                                        }
                                        self.owed -= data.len() as u64;
                                        conn.write.extend_from_slice(&data);
                                    }
                                    BodyFraming::Chunked => {
                                        h1::chunk_size_line(&mut conn.write, data.len());
                                        conn.write.extend_from_slice(&data);
                                        conn.write.extend_from_slice(b"\r\n");
                                    }
                                    BodyFraming::None => {}
                                }
                            }
                        }
                        if body.is_end_stream() {
                            ended = true;
                            break;
                        }
                    }
                    Poll::Ready(None) => {
                        ended = true;
                        break;
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                    Poll::Pending => break,
                }
            }
            if ended {
                self.body = None;
                match self.framing {
                    BodyFraming::Length(_) if self.owed > 0 => return Poll::Ready(Err("request body shorter than its Content-Length".into())),
                    BodyFraming::Chunked => conn.write.extend_from_slice(b"0\r\n\r\n"),
                    _ => {}
                }
            } else if conn.write.is_empty() {
                return Poll::Pending;
            }
        }
    }

    /// Reads what the socket has into the read buffer: how many bytes, 0 at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let conn = &mut *self.pooled.conn;
        if conn.read.capacity() - conn.read.len() < READ_ROOM {
            conn.read.reserve(READ_CHUNK);
        }
        let n = ready!(tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.read))?;
        if n > 0 {
            self.responded = true;
        }
        Poll::Ready(Ok(n))
    }

    /// Sends the request while waiting for the final response head (interim 1xx ones are skipped).
    fn poll_head(&mut self, cx: &mut Context<'_>, head_request: bool) -> Poll<Result<h1::Head, UpstreamError>> {
        loop {
            if !self.sent && !self.write_failed {
                if let Poll::Ready(Err(e)) = self.poll_send(cx) {
                    return Poll::Ready(Err(UpstreamError::Body(e)));
                }
            }
            if !self.pooled.conn.read.is_empty() {
                match h1::parse_head(&mut self.pooled.conn.read, head_request) {
                    Ok(Some(Parsed::Final(head))) => return Poll::Ready(Ok(head)),
                    Ok(Some(Parsed::Interim(_))) => continue,
                    Ok(None) => {}
                    Err(e) => return Poll::Ready(Err(UpstreamError::Protocol(e))),
                }
            }
            match ready!(self.poll_fill(cx)) {
                Ok(0) => return Poll::Ready(Err(UpstreamError::Closed)),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(UpstreamError::Io(e))),
            }
        }
    }
}

/// A response body read from its upstream connection by its framing, while what is left of the request body is
/// written. The connection goes back to the pool when the body has ended, if it can be reused (see the module
/// comment); when the body is dropped before, or fails, the connection is closed.
pub struct UpstreamBody {
    /// `None` once the body has ended or failed
    exchange: Option<Exchange>,
    framing: Framing,
    /// bytes a Content-Length body still owes
    owed: u64,
    chunked: Chunked,
    keep_alive: bool,
    ended: bool,
}

impl UpstreamBody {
    fn new(exchange: Exchange, framing: Framing, keep_alive: bool) -> UpstreamBody {
        let owed = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        UpstreamBody { exchange: Some(exchange), framing, owed, chunked: Chunked::default(), keep_alive, ended: false }
    }

    fn end(&mut self) {
        self.ended = true;
        let Some(exchange) = self.exchange.take() else { return };
        // whole request, whole response, nothing after it, and the upstream keeps the connection open
        if self.keep_alive && exchange.sent && exchange.pooled.conn.read.is_empty() {
            exchange.pooled.release();
        }
    }

    fn fail(&mut self, error: UpstreamBodyError) -> Poll<Option<Result<Frame<bytes::Bytes>, BoxError>>> {
        self.exchange = None;
        self.ended = true;
        Poll::Ready(Some(Err(Box::new(error))))
    }
}

impl hyper::body::Body for UpstreamBody {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<bytes::Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            let Some(exchange) = this.exchange.as_mut() else { return Poll::Ready(None) };
            if !exchange.sent && !exchange.write_failed {
                if let Poll::Ready(Err(e)) = exchange.poll_send(cx) {
                    this.exchange = None;
                    this.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            let read = &mut exchange.pooled.conn.read;
            match this.framing {
                Framing::Empty => {
                    this.end();
                    return Poll::Ready(None);
                }
                Framing::Length(_) if this.owed == 0 => {
                    this.end();
                    return Poll::Ready(None);
                }
                Framing::Length(_) if !read.is_empty() => {
                    let n = usize::try_from(this.owed).unwrap_or(usize::MAX).min(read.len());
                    this.owed -= n as u64;
                    let data = read.split_to(n).freeze();
                    if this.owed == 0 {
                        this.end();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::Chunked => match this.chunked.decode(read) {
                    Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Decoded::End) => {
                        this.end();
                        return Poll::Ready(None);
                    }
                    Ok(Decoded::More) => {}
                    Err(e) => return this.fail(UpstreamBodyError::Protocol(e)),
                },
                Framing::Close if !read.is_empty() => return Poll::Ready(Some(Ok(Frame::data(read.split().freeze())))),
                Framing::Length(_) | Framing::Close => {}
            }
            match ready!(exchange.poll_fill(cx)) {
                Ok(0) if this.framing == Framing::Close => {
                    this.end();
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(UpstreamBodyError::Closed),
                Ok(_) => {}
                Err(e) => return this.fail(UpstreamBodyError::Io(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.framing == Framing::Empty || matches!(self.framing, Framing::Length(_)) && self.owed == 0
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Empty => SizeHint::with_exact(0),
            Framing::Length(_) => SizeHint::with_exact(self.owed),
            Framing::Chunked | Framing::Close => SizeHint::default(),
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // a body whose end was known without reading further (no body, or its length reached) is not polled
        // to its end by the server that writes it
        if !self.ended && self.is_end_stream() {
            self.end();
        }
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
