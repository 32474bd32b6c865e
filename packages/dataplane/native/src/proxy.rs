//! The HTTP/1.1 reverse proxy: a hyper server per accepted connection on a tokio runtime of `workers`
//! threads, forwarding to the matched backend's endpoints through a keep-alive client pool.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::cell::RefCell;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE, TE, TRANSFER_ENCODING, UPGRADE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use crate::body::{read_ahead, ClientBody, ClientBodyError, ReadAhead};
use crate::head::{connection_tokens, first_line, has_underscore, unsupported_transfer_coding, wants_upgrade, FirstLine};
use crate::conn::{ConnClock, Expired, Watched};
use crate::log_fields;
use crate::logs::LogQueue;
use crate::metrics::{Metrics, RouteMetrics, ShardedMetrics};
use crate::rewind::Rewind;
use crate::outcome::{decide, Outcome, RequestHead};
use crate::policy::balance::{BalanceRequest, Chooser};
use crate::policy::template::{expand, TemplatePart, Vars};
use crate::policy::{client_tls, errors, external_auth};
use crate::paths::request_host;
use crate::policy::rewrite::{route_edits, RequestFacts, UpstreamEdits};
use crate::table::Table;
use crate::passthrough::{intercept, Intercepted};
use crate::tls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use crate::trust::TrustedProxies;
use crate::policy::upstream::{next_untried, Failure, Retry};
use crate::table::Endpoint;
use crate::upstream::{BodyFraming, Target, UpstreamError, UpstreamPool};

pub type BoxError = Box<dyn StdError + Send + Sync>;
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub struct ProxyConfig {
    /// request body limit → 413
    pub max_body_size: usize,
    /// bodies up to this many bytes are read whole before an upstream connection is taken; 0 streams every body
    pub request_buffer_size: usize,
    /// longest silence between two reads of a request body → 408
    pub client_body_timeout: Duration,
    /// forward header names containing `_` (else dropped, as nginx's `underscores_in_headers off`)
    pub underscores_in_headers: bool,
    /// HTTP/2 streams open at once on one connection
    pub http2_max_concurrent_streams: u32,
    /// request line + headers limit → 431
    pub max_header_size: usize,
    /// upstream connect timeout → another endpoint, then 504
    pub connect_timeout: Duration,
    /// from sending upstream to the response head (connecting included) → 504
    pub read_timeout: Duration,
    /// a request head must arrive whole within this of its first byte → 408
    pub headers_timeout: Duration,
    /// a request (head and body) must arrive whole within this → 408
    pub request_timeout: Duration,
    /// idle keep-alive client connections (HTTP/2: without open streams) are closed after this
    pub keep_alive_timeout: Duration,
    /// HTTP/2 streams a client may abandon per second on one connection (burst: ten seconds' worth) before
    /// GOAWAY ENHANCE_YOUR_CALM
    pub http2_max_resets_per_second: u32,
    /// a line per request to the log queue
    pub access_log: bool,
    /// idle upstream keep-alive connections are closed after this
    pub upstream_keep_alive_timeout: Duration,
    /// the port named in HTTP → HTTPS redirects
    pub https_redirect_port: u16,
    pub trusted: TrustedProxies,
}

/// What every connection of the data plane shares: the current table (swapped whole), the counters.
pub struct Shared {
    pub table: Arc<ArcSwap<Table>>,
    pub metrics: ShardedMetrics,
    pub route_metrics: RouteMetrics,
    pub config: ProxyConfig,
    /// open client connections, for draining
    pub open_connections: AtomicUsize,
    /// errors (and access lines) on their way to pino
    pub logs: LogQueue,
    /// limit-rps/-rpm/-connections state per Ingress, kept across table swaps
    pub limit_zones: crate::policy::limits::Zones,
}

/// A request's table: see `Shared::current_table`.
pub type LocalTable = Arc<Arc<Table>>;


impl Shared {
    pub fn new(config: ProxyConfig) -> Shared {
        let route_metrics = RouteMetrics::default();
        let mut empty = Table::empty();
        route_metrics.attach(&mut empty);
        Shared { table: Arc::new(ArcSwap::from_pointee(empty)), metrics: ShardedMetrics::default(), route_metrics, config, open_connections: AtomicUsize::new(0), logs: LogQueue::default(), limit_zones: Default::default() }
    }

    /// The table in service, for a request to keep until its answer has ended. The handle is this thread's own
    /// (a thread-local `Arc` around the swapped-in one, replaced when a swap is seen): cloning the swapped-in
    /// `Arc` itself per request would have every runtime thread add to and subtract from one shared count.
    pub fn current_table(&self) -> LocalTable {
        thread_local! {
            static LOCAL: RefCell<Option<LocalTable>> = const { RefCell::new(None) };
        }
        let current = self.table.load();
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            match local.as_ref() {
                Some(t) if Arc::ptr_eq(&**t, &*current) => t.clone(),
                _ => {
                    // (also after a swap, and on a thread that serves another plane: the pointer decides)
                    let fresh = Arc::new(arc_swap::Guard::into_inner(current));
                    *local = Some(fresh.clone());
                    fresh
                }
            }
        })
    }

    pub fn upstream_pool(&self) -> UpstreamPool {
        UpstreamPool::new(self.config.connect_timeout, self.config.upstream_keep_alive_timeout)
    }
}

/// Binds a listener with SO_REUSEADDR (a restarted proxy gets its port back at once), and with `reuse_port`
/// SO_REUSEPORT too (one listener per runtime thread on the same port, the kernel spreading connections over
/// them). Needs a runtime context: the listener belongs to that runtime.
pub fn bind(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts until `stop` changes, then asks each connection to finish its request in flight and close.
/// With `tls`, connections are TLS; those that negotiate `h2` by ALPN are served HTTP/2.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, tls: Option<Arc<TlsAcceptor>>, client: UpstreamPool, mut stop: watch::Receiver<bool>) {
    let local_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let port_text = HeaderValue::from(local_port);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(_) => {
                // out of file descriptors and the like: do not spin
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        let client = client.clone();
        let port_text = port_text.clone();
        Metrics::inc(&shared.metrics.local().connections_opened);
        shared.open_connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let clock = Arc::new(ConnClock::new(shared.config.http2_max_resets_per_second));
            let peer = peer.ip().to_canonical();
            let peer_text = HeaderValue::try_from(peer.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""));
            let secure = tls.is_some();
            let conn_info = |client_chain| Arc::new(ConnInfo { shared: shared.clone(), peer, peer_text, port_text, secure, clock: clock.clone(), client, client_chain });
            match tls {
                None => {
                    if let Some(io) = check_first_line(&shared, stream).await {
                        serve_connection(&shared, TokioIo::new(Watched::new(io, clock.clone())), conn_info(None), false, stop).await;
                    }
                }
                Some(acceptor) => {
                    // A client that does not finish its handshake in time is dropped, like one that sends no headers.
                    // (the ClientHello is read ahead only while some host's connections are passed through)
                    if shared.table.load().has_passthrough() {
                        let deadline = tokio::time::Instant::now() + shared.config.headers_timeout;
                        if let Intercepted::Terminate(stream) = intercept(&shared, stream, deadline).await {
                            if let Ok(Ok(tls_stream)) = tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                                serve_tls(&shared, tls_stream, conn_info, clock.clone(), stop).await;
                            }
                        }
                    } else if let Ok(Ok(tls_stream)) = tokio::time::timeout(shared.config.headers_timeout, acceptor.accept(stream)).await {
                        serve_tls(&shared, tls_stream, conn_info, clock.clone(), stop).await;
                    }
                }
            }
            Metrics::inc(&shared.metrics.local().connections_closed);
            shared.open_connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// A terminated TLS connection: HTTP/2 when ALPN chose it, else HTTP/1.
async fn serve_tls<S>(shared: &Arc<Shared>, tls_stream: TlsStream<S>, conn_info: impl FnOnce(client_tls::PeerChain) -> Arc<ConnInfo>, clock: Arc<ConnClock>, stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // (a client certificate, when the host asked for one: checked per request by its route)
    let conn_info = conn_info(tls_stream.get_ref().1.peer_certificates().map(|c| Arc::new(c.to_vec())));
    if tls_stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        serve_connection(shared, TokioIo::new(Watched::new(tls_stream, clock).http2()), conn_info, true, stop).await;
    } else if let Some(io) = check_first_line(shared, tls_stream).await {
        serve_connection(shared, TokioIo::new(Watched::new(io, clock)), conn_info, false, stop).await;
    }
}

/// Reads an HTTP/1 connection's first request line before hyper does: hyper answers a version it cannot speak
/// (`GET / HTTP/2.0`) with 400, nginx and the Node plane with 505. The bytes read are handed on to hyper.
/// (Later requests on a keep-alive connection are hyper's alone: an unknown version there gets its 400.)
/// A client that sends no whole line within the headers timeout gets 408, one that sends nothing is closed.
async fn check_first_line<S>(shared: &Shared, mut io: S) -> Option<Rewind<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(1024);
    let deadline = tokio::time::Instant::now() + shared.config.headers_timeout;
    loop {
        match first_line(&buf) {
            FirstLine::UnsupportedVersion => {
                write_raw_reply(shared, &mut io, 505).await;
                return None;
            }
            FirstLine::Other => break,
            FirstLine::Incomplete if buf.len() >= shared.config.max_header_size => break,
            FirstLine::Incomplete => {}
        }
        match tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(_)) => {}
            Err(_elapsed) => {
                if !buf.is_empty() {
                    write_raw_reply(shared, &mut io, 408).await;
                }
                return None;
            }
        }
    }
    Some(Rewind::new(buf.freeze(), io))
}

/// An answer of the proxy's own written on the raw connection, which is then closed.
async fn write_raw_reply<S: AsyncWrite + Unpin>(shared: &Shared, io: &mut S, status: u16) {
    let text = reason(status);
    let body = format!("{text}\n");
    let head = format!("HTTP/1.1 {status} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", &text[4..], body.len());
    Metrics::inc(&shared.metrics.local().local_responses);
    shared.metrics.local().response(status);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = io.write_all(format!("{head}{body}").as_bytes()).await;
        let _ = io.shutdown().await;
    })
    .await;
}

async fn serve_connection<I>(shared: &Arc<Shared>, io: I, conn_info: Arc<ConnInfo>, h2: bool, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let clock = conn_info.clock.clone();
    let peer = conn_info.peer;
    let service = service_fn(move |req| handle(conn_info.clone(), req));
    let config = &shared.config;
    let watchdog = clock.watch(config.keep_alive_timeout, config.headers_timeout);
    tokio::pin!(watchdog);
    if h2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(shared.config.http2_max_concurrent_streams)
            .max_header_list_size(u32::try_from(shared.config.max_header_size).unwrap_or(u32::MAX))
            // rapid reset (CVE-2023-44487): streams a client opens and resets at once count against this
            .max_pending_accept_reset_streams(Some(20))
            .max_local_error_reset_streams(Some(256))
            .keep_alive_interval(None);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
            expired = &mut watchdog => {
                if expired == Expired::OverResetBudget {
                    shared.logs.push("warn", "HTTP/2 client reset streams past its budget; closing the connection", log_fields! { "peer" => peer.to_string(), "resetsPerSecond" => config.http2_max_resets_per_second });
                } else {
                    conn.as_mut().graceful_shutdown();
                }
                // (condemned: the stream beneath writes GOAWAY and fails hyper's next call)
                let _ = tokio::time::timeout(LAST_WORD_TIME, conn.as_mut()).await;
            }
        }
    } else {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            // (the watchdog times heads from their first byte, and idle connections by the keep-alive timeout)
            .header_read_timeout(None)
            .max_buf_size(shared.config.max_header_size.max(8192))
            // A client that shuts its sending side (FIN) or resets while its answer is awaited has gone: hyper then
            // drops the request, its upstream request with it, and it counts as 499 (as Node and nginx do).
            .half_close(false)
            .keep_alive(true);
        // (an upgraded connection leaves this future; its tunnel is counted and drained on its own)
        let conn = builder.serve_connection(io, service).with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
            expired = &mut watchdog => {
                if expired == Expired::HeadersTimeout {
                    Metrics::inc(&shared.metrics.local().local_responses);
                    shared.metrics.local().response(408);
                } else {
                    conn.as_mut().graceful_shutdown();
                }
                // (a head timed out: the stream beneath writes the 408 and fails hyper's next call)
                let _ = tokio::time::timeout(LAST_WORD_TIME, conn.as_mut()).await;
            }
        }
    }
}

/// HTTP/2 streams one client may have open at once, unless configured otherwise (nginx's default).
pub const MAX_CONCURRENT_STREAMS: u32 = 128;

pub(crate) struct ConnInfo {
    /// (here, so that a request clones only its connection's `Arc`, which no other thread touches)
    pub(crate) shared: Arc<Shared>,
    pub(crate) peer: IpAddr,
    /// `peer` as text, for X-Forwarded-For and X-Real-IP
    pub(crate) peer_text: HeaderValue,
    /// `local_port` as text, for X-Forwarded-Port
    pub(crate) port_text: HeaderValue,
    pub(crate) secure: bool,
    pub(crate) clock: Arc<ConnClock>,
    pub(crate) client: UpstreamPool,
    /// the certificate chain the client showed in its TLS handshake
    pub(crate) client_chain: client_tls::PeerChain,
}

/// How long a condemned connection gets for its last word (a 408, a GOAWAY) before it is dropped.
const LAST_WORD_TIME: Duration = Duration::from_secs(1);

// RFC 9110 §7.6.1 connection-specific fields, plus ones a proxy must not pass on.
pub(crate) const HOP_BY_HOP: [&str; 11] = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "http2-settings", "expect"];
// (made once, at compile time: `HeaderName::from_static` at run time looks the name up among the standard ones)
pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub(crate) const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
// Set by us from what we saw; copied from the request only when the peer is a trusted proxy.
const FORWARDED: [&str; 7] = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip", "forwarded", "x-request-id"];

fn reason(status: u16) -> &'static str {
    match status {
        400 => "400 bad request",
        404 => "404 page not found",
        408 => "408 request timeout",
        413 => "413 request entity too large",
        431 => "431 request header fields too large",
        501 => "501 not implemented",
        503 => "503 service unavailable",
        504 => "504 gateway timeout",
        505 => "505 http version not supported",
        _ => "502 bad gateway",
    }
}

/// A short plain-text answer of the proxy's own; `close` when the request body was not read.
pub(crate) fn reply(shared: &Shared, status: u16, close: bool) -> Response<Body> {
    let body = format!("{}\n", reason(status));
    let mut res = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync());
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if close {
        res.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    Metrics::inc(&shared.metrics.local().local_responses);
    shared.metrics.local().response(status);
    res
}

fn is_idempotent(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE)
}

async fn handle(conn: Arc<ConnInfo>, req: Request<Incoming>) -> Result<Response<Answer>, Infallible> {
    let shared = &conn.shared;
    let table = shared.current_table(); // this request's table, whatever is swapped in meanwhile
    Metrics::inc(&shared.metrics.local().requests);
    conn.clock.request_started();
    // (dropped with this future when the client goes first: counted as 499)
    let access = if shared.config.access_log { Some(Box::new((req.method().clone(), req.uri().to_string()))) } else { None };
    // (HSTS needs the host, which only an HTTPS answer looks at)
    let tls_host = if conn.secure { req.headers().get(HOST).map(|h| h.as_bytes()).or(req.uri().host().map(str::as_bytes)).map(request_host) } else { None };
    let mut finish = Finish { table, conn, route: None, status: 0, started: tokio::time::Instant::now(), request_id: None, upstream: None, access, cors: None, permit: None, auth: None };
    let mut res = respond(&mut finish, req).await;
    if let (Some(cors), Some(route)) = (&finish.cors, finish.route) {
        crate::policy::access::finish_answer(&finish.table, route, cors, res.headers_mut());
    }
    if let Some(headers) = finish.route.and_then(|r| finish.table.policies[finish.table.routes[r].policy].headers.as_ref()) {
        let own_certificate = tls_host.as_deref().is_some_and(|h| finish.table.has_certificate_for(h));
        crate::policy::headers::apply(headers, own_certificate, res.headers_mut());
    }
    finish.status = res.status().as_u16();
    let (mut parts, body) = res.into_parts();
    if let Some(allowed) = finish.auth.take().filter(|_| external_auth::takes_cookies(finish.status)) {
        for cookie in &allowed.cookies {
            parts.headers.append(hyper::header::SET_COOKIE, cookie.clone());
        }
    }
    let silence = finish.upstream;
    Ok(Response::from_parts(parts, Answer::new(body, finish, silence)))
}

/// One request from its head to the end of its answer: counted (by route and status class, 499 when the answer
/// did not end: the client went away or reset the stream) and timed when it is dropped, whichever way that is.
pub(crate) struct Finish {
    table: LocalTable,
    conn: Arc<ConnInfo>,
    route: Option<usize>,
    status: u16,
    started: tokio::time::Instant,
    request_id: Option<RequestId>,
    /// the answer's body comes from an upstream: its silences are timed, by this read timeout
    upstream: Option<Duration>,
    /// method and target, for the access log (only when it is on)
    access: Option<Box<(Method, String)>>,
    /// the CORS headers the route's answer gets
    cors: Option<crate::policy::cors::CorsOutcome>,
    /// counts the request against limit-connections until its answer ends
    permit: Option<crate::policy::limits::Permit>,
    /// what the route's external auth allowed the request with (its Set-Cookie lines go to the client)
    auth: Option<Arc<external_auth::Allowed>>,
}

impl Finish {
    /// The answer's body ended (`completed`) or was dropped before; the counting is in Drop.
    fn end(mut self, completed: bool) {
        if !completed {
            self.status = 499;
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        let gone = self.status == 0 || self.status == 499;
        let status = if gone { 499 } else { self.status };
        let stats = self.table.counters.stats(self.route);
        stats.count(status);
        let elapsed = self.started.elapsed();
        stats.observe_duration(elapsed);
        if gone {
            Metrics::inc(&self.conn.shared.metrics.local().client_gone);
        }
        self.conn.clock.request_done(gone);
        // (enable-access-log: "false" on the route's Ingress)
        let logged = self.route.is_none_or(|r| self.table.policies[self.table.routes[r].policy].access_log);
        if let Some(access) = self.access.take().filter(|_| logged) {
            let (ingress, service) = self.route.map(|r| route_names(&self.table, r)).unwrap_or_default();
            self.conn.shared.logs.push(
                "info",
                "request",
                log_fields! { "method" => access.0.as_str(), "target" => access.1, "status" => status, "seconds" => elapsed.as_secs_f64(), "ingress" => ingress, "service" => service, "peer" => self.conn.peer.to_string(), "requestId" => self.request_id.as_ref().map_or("", RequestId::as_str) },
            );
        }
    }
}

/// The Ingress (`namespace/name`) and Service of a route, for log lines.
fn route_names(table: &Table, route: usize) -> (String, String) {
    let r = &table.routes[route];
    let service = table.backends.get(r.backend).and_then(|b| b.service.clone()).unwrap_or_default();
    (format!("{}/{}", r.ingress.namespace, r.ingress.name), service)
}

pin_project_lite::pin_project! {
    /// An answer's body on its way to the client, carrying its request's `Finish`: the request counts as
    /// answered once the body has ended, as abandoned (499) if it is dropped before. A body from an upstream
    /// that stays silent past the read timeout between two chunks is cut (the client connection ends, as the
    /// Node plane's undici `bodyTimeout`) and counted as an upstream timeout.
    pub struct Answer {
        #[pin]
        inner: Body,
        finish: Option<Finish>,
        silence: Option<Duration>,
        last_data: tokio::time::Instant,
        #[pin]
        timer: Option<tokio::time::Sleep>,
    }

    impl PinnedDrop for Answer {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // (a body that was empty from the start, or whose length was reached, is not polled to its end)
            let ended = this.inner.is_end_stream();
            if let Some(finish) = this.finish.take() {
                finish.end(ended);
            }
        }
    }
}

impl Answer {
    fn new(inner: Body, finish: Finish, silence: Option<Duration>) -> Answer {
        let last_data = finish.started;
        Answer { inner, finish: Some(finish), silence, last_data, timer: None }
    }
}

/// The upstream sent nothing of its response body for longer than the read timeout.
#[derive(Debug)]
pub struct UpstreamBodyTimeout;

impl std::fmt::Display for UpstreamBodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the upstream's response body was silent past the read timeout")
    }
}

impl StdError for UpstreamBodyTimeout {}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        use std::future::Future;
        use std::task::Poll;
        let mut this = self.project();
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(None) => {
                if let Some(finish) = this.finish.take() {
                    finish.end(true);
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.silence.is_some() && this.timer.is_some() {
                    *this.last_data = tokio::time::Instant::now();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(finish) = this.finish.as_ref() {
                    if this.silence.is_some() {
                        Metrics::inc(&finish.conn.shared.metrics.local().upstream_errors);
                        finish.log_upstream_failure("upstream response body failed", &*e);
                    }
                }
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => {
                let Some(silence) = *this.silence else { return Poll::Pending };
                if this.timer.is_none() {
                    // (armed on the first wait only: most bodies never wait; until then, silence counts from the head)
                    *this.last_data = tokio::time::Instant::now();
                    this.timer.set(Some(tokio::time::sleep(silence)));
                }
                let Some(mut timer) = this.timer.as_mut().as_pin_mut() else { return Poll::Pending };
                loop {
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let due = *this.last_data + silence;
                    if tokio::time::Instant::now() < due {
                        timer.as_mut().reset(due);
                        continue;
                    }
                    if let Some(finish) = this.finish.as_ref() {
                        Metrics::inc(&finish.conn.shared.metrics.local().upstream_timeouts);
                        finish.log_upstream_failure("upstream response body silent past the read timeout", &UpstreamBodyTimeout);
                    }
                    *this.silence = None;
                    return Poll::Ready(Some(Err(Box::new(UpstreamBodyTimeout))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Finish {
    fn log_upstream_failure(&self, msg: &str, err: &(dyn StdError + 'static)) {
        let (ingress, service) = self.route.map(|r| route_names(&self.table, r)).unwrap_or_default();
        self.conn.shared.logs.push("warn", msg, log_fields! { "error" => error_chain(err), "ingress" => ingress, "service" => service, "requestId" => self.request_id.as_ref().map_or("", RequestId::as_str) });
    }
}

/// A failed upstream request, to the log queue with what identifies it.
pub(crate) fn log_upstream(shared: &Shared, table: &Table, route: Option<usize>, endpoint: &str, request_id: Option<&RequestId>, msg: &str, error: &str) {
    let (ingress, service) = route.map(|r| route_names(table, r)).unwrap_or_default();
    shared.logs.push("warn", msg, log_fields! { "error" => error, "endpoint" => endpoint, "ingress" => ingress, "service" => service, "requestId" => request_id.map_or("", RequestId::as_str) });
}

/// An error and its sources, as one line.
pub(crate) fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The answer to one request; sets `finish.route` to the route it took, if any (for the counters).
async fn respond(finish: &mut Finish, mut req: Request<Incoming>) -> Response<Body> {
    let conn = finish.conn.clone();
    let shared = &conn.shared;
    let table: &Table = &finish.table;
    let matched = &mut finish.route;
    let headers = req.headers();
    let uri = req.uri();
    let h2 = req.version() == Version::HTTP_2;
    // HTTP/1.1 closes the connection after an answer given before the body was read; HTTP/2 just ends the stream.
    let close = !h2;
    let host_count = headers.get_all(HOST).iter().count();
    // HTTP/2 names the host in `:authority`; a Host line beside it must name the same (RFC 9113 §8.3.1)
    let authority = if h2 { uri.authority().map(|a| a.as_str().as_bytes()) } else { None };
    if let (Some(a), Some(h)) = (authority, headers.get(HOST)) {
        if !h.as_bytes().eq_ignore_ascii_case(a) {
            return reply(shared, 400, close);
        }
    }
    let host = headers.get(HOST).map(|h| h.as_bytes()).or(authority);
    // CONNECT asks for a tunnel, which an ingress does not open (the Node plane closes such connections)
    if req.method() == Method::CONNECT {
        return reply(shared, 400, close);
    }
    // (hyper itself refuses a Transfer-Encoding on HTTP/1.0, and one that does not end in chunked, with 400)
    if !h2 && host_count <= 1 && unsupported_transfer_coding(headers) {
        return reply(shared, 501, close);
    }
    // HTTP/1.1: origin-form only; absolute-form (scheme or authority) and `*` are refused by `decide`.
    // HTTP/2 always carries scheme and authority beside the path.
    let target: &[u8] = if !h2 && (uri.scheme().is_some() || uri.authority().is_some()) { b"" } else { uri.path_and_query().map(|pq| pq.as_str().as_bytes()).unwrap_or(b"") };
    let head = RequestHead { host, host_count, target, secure: conn.secure, headers: Some(headers) };
    let (route, fallback) = match decide(table, &head, shared.config.https_redirect_port) {
        Outcome::Status(status) => return reply(shared, status, close),
        Outcome::Unavailable { route } => {
            *matched = Some(route);
            // (default-backend: its Service serves the route while the route's own has no endpoints)
            match errors::fallback_backend(table, route) {
                Some(b) => (route, Some(b)),
                None => return reply(shared, 503, close),
            }
        }
        Outcome::Refused { route, status } => {
            *matched = Some(route);
            return reply(shared, status, close);
        }
        Outcome::Redirect { location, route, status } => {
            *matched = route;
            let mut res = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
            *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::PERMANENT_REDIRECT);
            // (bytes: a request's value in the URL may be non-ASCII, which nginx too sends as it is)
            let value = HeaderValue::from_bytes(location.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static("/"));
            res.headers_mut().insert(LOCATION, value);
            res.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            if close {
                res.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Metrics::inc(&shared.metrics.local().local_responses);
            shared.metrics.local().response(status);
            return res;
        }
        Outcome::Forward { route } => (route, None),
    };
    *matched = Some(route);
    let matched_route = &table.routes[route];
    let admission = crate::policy::access::admit(&table.policies[matched_route.policy], shared, &shared.limit_zones, &matched_route.ingress, conn.peer, req.method(), headers, close && !req.body().is_end_stream()).await;
    finish.cors = admission.cors;
    finish.permit = admission.permit;
    if let Some(answer) = admission.answer {
        return answer;
    }
    let config = &shared.config;
    let policy = &table.policies[matched_route.policy];
    if policy.client_tls.is_some() || policy.external_auth.is_some() {
        let request_id = finish.request_id.get_or_insert_with(|| request_id_of(req.headers()));
        if let Err(res) = authenticate(&conn, table, route, request_id, &mut req, close).await {
            return res;
        }
        finish.auth = req.extensions_mut().remove::<Arc<external_auth::Allowed>>();
    }
    let headers = req.headers();
    // (borrowed again: the checks above may have changed the request's lines)
    let uri = req.uri();
    let authority = if h2 { uri.authority().map(|a| a.as_str().as_bytes()) } else { None };
    // an HTTP/2 request without a Host line: the HTTP/1.1 upstream needs one, made from `:authority`
    let host_from_authority = if host_count == 0 { authority } else { None };
    let target: &[u8] = if !h2 && (uri.scheme().is_some() || uri.authority().is_some()) { b"" } else { uri.path_and_query().map(|pq| pq.as_str().as_bytes()).unwrap_or(b"") };
    // the route's backend, or its canary's; and how to pick among its endpoints (None: round-robin); the
    // default-backend while the route's own Service has no endpoints
    let (backend, balance) = match fallback {
        Some(b) => (&table.backends[b], None),
        None => crate::policy::canary::choose(table, matched_route, headers),
    };
    let host = headers.get(HOST).map(|h| h.as_bytes()).or(authority);
    let facts = RequestFacts { host, target, secure: conn.secure, remote_addr: conn.peer_text.to_str().unwrap_or(""), method: req.method().as_str(), server_port: conn.port_text.to_str().ok().and_then(|p| p.parse().ok()).unwrap_or(0), headers };
    let edits = route_edits(table, route, &facts);

    if req.version() == Version::HTTP_11 && wants_upgrade(headers) {
        // The bytes after an Upgrade request's head belong to the new protocol, so a declared body cannot be told
        // apart from them: forwarding it would let a client smuggle a request onto the upstream connection.
        let declares_body = headers.get(CONTENT_LENGTH).is_some_and(|v| v.as_bytes().trim_ascii() != b"0") || headers.contains_key(TRANSFER_ENCODING);
        if declares_body {
            return reply(shared, 400, true);
        }
        let protocol = headers.get(UPGRADE).cloned();
        let request_id = finish.request_id.take().unwrap_or_else(|| request_id_of(headers));
        let mut upstream_headers = HeaderMap::with_capacity(headers.len() + 9);
        forward_headers(&mut upstream_headers, headers, host_from_authority, &conn, config, request_id.as_bytes(), true, &edits);
        if let Some(protocol) = protocol {
            upstream_headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
            upstream_headers.insert(UPGRADE, protocol);
        }
        finish.request_id = Some(request_id);
        let method = req.method().clone();
        let path_and_query = String::from_utf8_lossy(edits.target.as_deref().unwrap_or(target)).into_owned();
        let client = hyper::upgrade::on(&mut req);
        return crate::upgrade::forward(shared, backend, method, path_and_query, upstream_headers, client).await;
    }

    // (a route without an upstream policy takes the flags and ingress-nginx's default retries)
    let up = table.policies[table.routes[route].policy].upstream.as_ref();
    let max_body_size = up.and_then(|u| u.max_body_size).unwrap_or(config.max_body_size);
    let content_length = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if content_length.is_some_and(|n| n > max_body_size as u64) {
        return reply(shared, 413, close);
    }
    // A chunked request (hyper reads Transfer-Encoding over a Content-Length beside it) goes on without its
    // Content-Length line, as RFC 9112 §6.3 asks of an intermediary.
    let chunked_in = headers.contains_key(TRANSFER_ENCODING);
    let has_body = !req.body().is_end_stream();
    if finish.request_id.is_none() {
        finish.request_id = Some(request_id_of(headers));
    }
    let (parts, incoming) = req.into_parts();
    let headers = &parts.headers;
    let authority = if h2 { parts.uri.authority().map(|a| a.as_str().as_bytes()) } else { None };
    let host_from_authority = if host_count == 0 { authority } else { None };
    // the request target as hyper parsed it, forwarded exactly as sent (origin-form: `decide` refused the rest)
    let target: &[u8] = match parts.uri.path_and_query() {
        Some(pq) if !(!h2 && (parts.uri.scheme().is_some() || parts.uri.authority().is_some())) => pq.as_str().as_bytes(),
        _ => b"/",
    };
    let has_host = edits.host.is_some() || host_from_authority.is_some() || headers.contains_key(HOST);
    let method = &parts.method;
    let idempotent = is_idempotent(method);
    // a body read whole, kept to be sent again on another endpoint (`proxy-next-upstream`)
    let mut replay: Option<Bytes> = None;
    let body = if !has_body {
        empty_body()
    } else {
        let client_body = ClientBody::new(incoming, max_body_size, config.client_body_timeout, finish.started + config.request_timeout);
        let buffer_size = match up {
            None => config.request_buffer_size,
            // a gRPC stream is never read ahead (its client may wait for an answer before it sends more)
            Some(u) if u.is_grpc() => 0,
            // HTTP/1.0 has no chunked framing: a body without a length is read whole for one
            Some(u) if u.http10 && content_length.is_none() => max_body_size,
            Some(u) => u.body_buffer_size.unwrap_or(config.request_buffer_size),
        }
        .min(max_body_size);
        if buffer_size > 0 && content_length.is_none_or(|n| n <= buffer_size as u64) {
            // read whole first, so that a slow client holds no upstream connection
            match read_ahead(client_body, buffer_size).await {
                Ok(ReadAhead::Whole(bytes)) => {
                    if backend.endpoints.len() > 1 {
                        replay = Some(bytes.clone());
                    }
                    Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
                }
                Ok(ReadAhead::Streaming(rest)) => rest.map_err(|e| Box::new(e) as BoxError).boxed_unsync(),
                Err(e) => return reply(shared, e.status(), close),
            }
        } else {
            client_body.map_err(|e| Box::new(e) as BoxError).boxed_unsync()
        }
    };
    // how the body goes upstream: as the client's Content-Length says, else the length read ahead, else chunked
    let (framing, length_line) = match (has_body, content_length.filter(|_| !chunked_in), body.size_hint().exact()) {
        (false, _, _) => (BodyFraming::None, None),
        (true, Some(n), _) => (BodyFraming::Length(n), None),
        (true, None, Some(n)) => (BodyFraming::Length(n), Some(n)),
        (true, None, None) => (BodyFraming::Chunked, None),
    };
    let mut body = Some(body);
    let request_id = finish.request_id.as_ref().map_or(&b""[..], RequestId::as_bytes);
    let mut chooser = Chooser::new(backend, balance);
    let balance_request = BalanceRequest { headers, secure: conn.secure, route_path: matched_route.path.as_deref() };
    // (expanded only for a route with upstream-hash-by)
    let key_of = |t: &[TemplatePart]| hash_key(t, &conn, headers, authority, target, method);
    let version_line: &[u8] = if up.is_some_and(|u| u.http10) { b" HTTP/1.0\r\n" } else { b" HTTP/1.1\r\n" };
    let retry = up.map_or(&Retry::DEFAULT, |u| &u.retry);
    let read_timeout = up.and_then(|u| u.read_timeout).unwrap_or(config.read_timeout);
    let resendable = !has_body || replay.is_some();

    let mut tried: Vec<&Endpoint> = Vec::new();
    let mut first_sent = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        // (a retry goes to an endpoint not tried yet, where the balancing lets it choose)
        let Some(endpoint) = next_untried(backend.endpoints.len(), &tried, || chooser.next(&balance_request, key_of)) else {
            return reply(shared, 503, close);
        };
        if body.is_none() {
            body = replay.clone().map(|bytes| Full::new(bytes).map_err(|never| match never {}).boxed_unsync());
        }
        let write_head = |out: &mut Vec<u8>| {
            out.extend_from_slice(method.as_str().as_bytes());
            out.push(b' ');
            out.extend_from_slice(edits.target.as_deref().unwrap_or(target));
            out.extend_from_slice(version_line);
            forward_headers(&mut HeadBytes(out), headers, host_from_authority, &conn, config, request_id, !chunked_in, &edits);
            if !has_host {
                // (an HTTP/1.0 request without Host: the upstream's authority, as a client would send it)
                let host = if endpoint.port == 80 { endpoint.uri_authority.host() } else { endpoint.uri_authority.as_str() };
                HeadBytes(out).made(&HOST, host.as_bytes());
            }
            match (framing, length_line) {
                (BodyFraming::Length(_), Some(n)) => {
                    out.extend_from_slice(b"content-length: ");
                    out.extend_from_slice(n.to_string().as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                (BodyFraming::Chunked, _) => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
                _ => {}
            }
            out.extend_from_slice(b"\r\n");
        };
        // The read timeout bounds connecting and waiting alike (the shorter connect timeout still fails first,
        // as a connect failure).
        let sent_at = tokio::time::Instant::now();
        let first = *first_sent.get_or_insert(sent_at);
        let sent = match up {
            None => {
                let target = Target::plain(&endpoint.authority);
                let send = conn.client.send(&target, write_head, &mut body, framing, *method == Method::HEAD, idempotent);
                tokio::time::timeout(read_timeout, send).await.map(|r| r.map(|res| res.map(|b| b.boxed_unsync())))
            }
            Some(u) => {
                let tls = u.tls_for(conn.secure).map(|t| (t, t.server_name(&tls_vars(table, route, backend, headers, target, &conn), &endpoint.host)));
                if u.is_grpc() {
                    let req = grpc_request(method, edits.target.as_deref().unwrap_or(target), headers, host_from_authority, &conn, config, request_id, chunked_in, endpoint, tls.is_some(), &edits);
                    let send = crate::policy::upstream::send_h2(&endpoint.authority, u.connect_timeout.unwrap_or(config.connect_timeout), tls.map(|(t, name)| (t.config.clone(), name)), req, &mut body);
                    tokio::time::timeout(read_timeout, send).await.map(|r| r.map(|res| res.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync())))
                } else {
                    let key;
                    let target = match tls {
                        None => Target { connect_timeout: u.connect_timeout, ..Target::plain(&endpoint.authority) },
                        Some((t, name)) => {
                            key = format!("{} {:x} {name:?}", endpoint.authority, t.id);
                            Target { endpoint: &endpoint.authority, key: &key, connect_timeout: u.connect_timeout, tls: Some((t.config.clone(), name)) }
                        }
                    };
                    let send = conn.client.send(&target, write_head, &mut body, framing, *method == Method::HEAD, idempotent);
                    tokio::time::timeout(read_timeout, send).await.map(|r| r.map(|res| res.map(|b| b.boxed_unsync())))
                }
            }
        };
        let stats = table.counters.stats(*matched);
        let (failure, err) = match sent {
            Ok(Ok(res)) => {
                let status = res.status().as_u16();
                if retry.on_status(status) && retry.again(Failure::Status(status), attempt, backend.endpoints.len(), true, resendable, idempotent, first.elapsed()) {
                    stats.observe_upstream(sent_at.elapsed());
                    Metrics::inc(&shared.metrics.local().upstream_retries);
                    tried.push(endpoint);
                    continue;
                }
                stats.observe_upstream(sent_at.elapsed());
                if let Some(errors) = &policy.errors {
                    let failed = errors::Failed { route, status, method, headers, request_uri: target, request_id, peer: &conn.peer_text };
                    if let Some(page) = errors::error_page(table, errors, &conn.client, &failed, read_timeout).await {
                        shared.metrics.local().response(page.status().as_u16());
                        finish.upstream = Some(read_timeout);
                        return page;
                    }
                }
                shared.metrics.local().response(status);
                finish.upstream = Some(read_timeout);
                let mut res = res;
                if let Some(cookie) = chooser.set_cookie.take() {
                    res.headers_mut().append(SET_COOKIE, cookie);
                }
                return res;
            }
            Ok(Err(err)) => {
                // the client's body failed while streaming: too large, too slow, or broken
                if let Some(status) = client_body_status(&err) {
                    return reply(shared, status, close);
                }
                (err.failure(), Some(err))
            }
            Err(_elapsed) => (Some(Failure::Timeout), None),
        };
        let not_sent = matches!(failure, Some(Failure::ConnectError | Failure::ConnectTimeout));
        let can_resend = if not_sent { body.is_some() || resendable } else { resendable };
        if let Some(f) = failure {
            if retry.again(f, attempt, backend.endpoints.len(), !not_sent, can_resend, idempotent, first.elapsed()) {
                Metrics::inc(&shared.metrics.local().upstream_retries);
                tried.push(endpoint);
                continue;
            }
        }
        stats.observe_upstream(sent_at.elapsed());
        match err {
            Some(err) => {
                Metrics::inc(&shared.metrics.local().upstream_errors);
                log_upstream(shared, table, *matched, &endpoint.authority, finish.request_id.as_ref(), "upstream request failed", &error_chain(&err));
                // a connect that timed out is a gateway timeout, as nginx answers it; a refused one a bad gateway
                let status = if failure == Some(Failure::ConnectTimeout) { 504 } else { 502 };
                return reply(shared, status, close && has_body);
            }
            None => {
                Metrics::inc(&shared.metrics.local().upstream_timeouts);
                log_upstream(shared, table, *matched, &endpoint.authority, finish.request_id.as_ref(), "upstream request failed", "no response head within the read timeout");
                return reply(shared, 504, close && has_body);
            }
        }
    }
}

/// upstream-hash-by's key for a request: its template expanded with the request's variables.
fn hash_key(template: &[TemplatePart], conn: &ConnInfo, headers: &HeaderMap, authority: Option<&[u8]>, target: &[u8], method: &Method) -> String {
    let http_host = headers.get(HOST).map(|h| h.as_bytes()).or(authority).unwrap_or_default();
    let host = String::from_utf8_lossy(&crate::paths::request_host(http_host)).into_owned();
    let http_host = String::from_utf8_lossy(http_host);
    let request_uri = String::from_utf8_lossy(target);
    let uri = request_uri.split('?').next().unwrap_or("");
    let forwarded: Vec<&str> = headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
    let forwarded = if forwarded.is_empty() { None } else { Some(forwarded.join(", ")) };
    let remote_addr = conn.shared.config.trusted.real_client_address(conn.peer, forwarded.as_deref());
    let vars = Vars { host: &host, http_host: &http_host, secure: conn.secure, request_uri: &request_uri, uri, remote_addr: &remote_addr, method: method.as_str(), headers: Some(headers), ..Vars::default() };
    expand(template, &vars, &[])
}

/// The template variables `proxy-ssl-name` may use, for one request.
fn tls_vars<'a>(table: &'a Table, route: usize, backend: &'a crate::table::Backend, headers: &'a HeaderMap, target: &'a [u8], conn: &ConnInfo) -> crate::policy::template::Vars<'a> {
    let http_host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let host = http_host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(http_host, |(h, _)| h);
    let ingress = &table.routes[route].ingress;
    // (the target is hyper's parsed one, so it is text; only `$arg_NAME` reads it here)
    let request_uri = std::str::from_utf8(target).unwrap_or("");
    crate::policy::template::Vars { host, http_host, secure: conn.secure, request_uri, service_name: backend.service.as_deref().unwrap_or(""), namespace: &backend.namespace, ingress_name: &ingress.name, headers: Some(headers), ..Default::default() }
}

/// A gRPC request for hyper's HTTP/2 client: the forwarded header lines, `:authority` from the Host (or the
/// endpoint), and `te: trailers` when the client sent it (gRPC servers may insist on it).
#[allow(clippy::too_many_arguments)]
fn grpc_request(method: &Method, target: &[u8], headers: &HeaderMap, host_from_authority: Option<&[u8]>, conn: &ConnInfo, config: &ProxyConfig, request_id: &[u8], chunked_in: bool, endpoint: &Endpoint, tls: bool, edits: &UpstreamEdits) -> Request<()> {
    let mut lines = HeaderMap::with_capacity(headers.len() + 8);
    forward_headers(&mut lines, headers, host_from_authority, conn, config, request_id, !chunked_in, edits);
    let host = lines.remove(HOST);
    let scheme = if tls { "https" } else { "http" };
    let path = std::str::from_utf8(target).unwrap_or("/");
    let uri = host
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .and_then(|h| hyper::Uri::builder().scheme(scheme).authority(h).path_and_query(path).build().ok())
        .or_else(|| hyper::Uri::builder().scheme(scheme).authority(endpoint.uri_authority.clone()).path_and_query(path).build().ok())
        .unwrap_or_default();
    if headers.get_all(TE).iter().any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("trailers")))) {
        lines.insert(TE, HeaderValue::from_static("trailers"));
    }
    let mut req = Request::new(());
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_2;
    *req.headers_mut() = lines;
    req
}

/// The route's client certificate check, then its external auth (nginx's order): Err is the answer. On success
/// the request's headers are what the upstream gets (ssl-client-*, auth-response-headers) and the auth's
/// allowance rides in its extensions.
async fn authenticate(conn: &ConnInfo, table: &Table, route: usize, request_id: &RequestId, req: &mut Request<Incoming>, close: bool) -> Result<(), Response<Body>> {
    let shared = &conn.shared;
    let policy = &table.policies[table.routes[route].policy];
    let mut cert_lines = Vec::new();
    if let Some(ct) = &policy.client_tls {
        client_tls::strip_client_headers(req.headers_mut());
        match client_tls::check(ct, &conn.client_chain) {
            client_tls::Checked::Forward(lines) => cert_lines = lines,
            client_tls::Checked::Reject(None) => return Err(reply(shared, 400, close)),
            // auth-tls-error-page: nginx's error_page for its 495/496 answers
            client_tls::Checked::Reject(Some(location)) => {
                let mut res = Response::new(empty_body());
                *res.status_mut() = StatusCode::FOUND;
                res.headers_mut().insert(LOCATION, location);
                if close {
                    res.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
                }
                Metrics::inc(&shared.metrics.local().local_responses);
                shared.metrics.local().response(302);
                return Err(res);
            }
        }
    }
    if let Some(auth) = &policy.external_auth {
        let r = &table.routes[route];
        let backend = &table.backends[r.backend];
        let port = match &backend.port {
            Some(crate::snapshot::PortRef::Number(n)) => n.to_string(),
            Some(crate::snapshot::PortRef::Name(n)) => n.clone(),
            None => String::new(),
        };
        let http_host = req.headers().get(HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().authority().map(|a| a.as_str())).unwrap_or("").to_owned();
        let host = String::from_utf8_lossy(&crate::paths::request_host(http_host.as_bytes())).into_owned();
        let request_uri = req.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
        let peer = conn.peer.to_string();
        let vars = crate::policy::template::Vars {
            host: &host,
            http_host: &http_host,
            secure: conn.secure,
            request_uri: &request_uri,
            uri: req.uri().path(),
            remote_addr: &peer,
            method: req.method().as_str(),
            server_port: conn.port_text.to_str().ok().and_then(|p| p.parse().ok()).unwrap_or(0),
            service_name: backend.service.as_deref().unwrap_or(""),
            service_port: &port,
            namespace: &r.ingress.namespace,
            ingress_name: &r.ingress.name,
            headers: Some(req.headers()),
        };
        let subject = external_auth::Subject { headers: req.headers(), vars, request_id: request_id.as_bytes(), client_cert: &cert_lines };
        let has_body = !req.body().is_end_stream();
        match external_auth::check(auth, shared, &conn.client, &subject, close && has_body).await {
            external_auth::Decision::Deny(res) => return Err(res),
            external_auth::Decision::Allow(allowed) => {
                external_auth::apply(&allowed, req.headers_mut());
                req.extensions_mut().insert(allowed);
            }
        }
    }
    for (name, value) in cert_lines {
        req.headers_mut().insert(name, value);
    }
    Ok(())
}

pub(crate) fn empty_body() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

fn client_body_status(err: &UpstreamError) -> Option<u16> {
    let err: &(dyn StdError + 'static) = err;
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(body_error) = e.downcast_ref::<ClientBodyError>() {
            return Some(body_error.status());
        }
        source = e.source();
    }
    None
}

pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names, then a removal for each one present (most responses have only `Connection:
    // keep-alive`): a removal by name hashes it, and one by text parses it first.
    let mut present: Vec<HeaderName> = headers.keys().filter(|n| HOP_BY_HOP.contains(&n.as_str())).cloned().collect();
    if present.is_empty() {
        return;
    }
    if present.contains(&CONNECTION) {
        present.extend(connection_tokens(headers).iter().filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok()));
    }
    for name in present {
        headers.remove(name);
    }
}

/// Where the forwarded header lines go: a header map (a protocol switch, sent by hyper's client) or the bytes
/// of the request head (the pooled exchange, upstream.rs), written without a map in between.
pub(crate) trait HeaderSink {
    /// a line of the request's own (a valid value)
    fn line(&mut self, name: &HeaderName, value: &HeaderValue);
    /// a line made here: left out unless its value is valid (no control characters but HTAB)
    fn made(&mut self, name: &HeaderName, value: &[u8]);
}

impl HeaderSink for HeaderMap {
    fn line(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.append(name.clone(), value.clone());
    }

    fn made(&mut self, name: &HeaderName, value: &[u8]) {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            self.append(name.clone(), v);
        }
    }
}

/// Header lines appended to a request head.
pub(crate) struct HeadBytes<'a>(pub(crate) &'a mut Vec<u8>);

impl HeadBytes<'_> {
    fn put(&mut self, name: &HeaderName, value: &[u8]) {
        let out = &mut *self.0;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
}

impl HeaderSink for HeadBytes<'_> {
    fn line(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.put(name, value.as_bytes());
    }

    fn made(&mut self, name: &HeaderName, value: &[u8]) {
        // (what `HeaderValue::from_bytes` accepts)
        if value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
            self.put(name, value);
        }
    }
}

/// A request's X-Request-ID: the client's, or one made here, kept inline (a header value made from it would be an
/// allocation per request).
pub(crate) enum RequestId {
    Sent(HeaderValue),
    Made([u8; 36]),
}

impl RequestId {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            RequestId::Sent(v) => v.as_bytes(),
            RequestId::Made(id) => id,
        }
    }

    /// (both kinds are visible ASCII: a sent one is checked, a made one is hex digits and dashes)
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

/// The request's X-Request-ID when it is a sane one (visible ASCII, at most 200 bytes), else a new one.
fn request_id_of(headers: &HeaderMap) -> RequestId {
    let sent_id = headers.get(&X_REQUEST_ID).filter(|v| !v.is_empty() && v.len() <= 200 && v.as_bytes().iter().all(|&c| (0x21..=0x7e).contains(&c)));
    match sent_id {
        Some(id) => RequestId::Sent(id.clone()),
        None => RequestId::Made(crate::request_id::new_request_id()),
    }
}

/// The request's header lines minus hop-by-hop and forwarding ones (Host kept as sent; names with `_` only when
/// allowed; Content-Length only with `content_length`), then X-Forwarded-*, X-Real-IP and X-Request-ID
/// (`request_id`), believing the incoming forwarding headers only from a trusted peer.
/// `edits` (the route's rewrite) replace the Host and X-Forwarded-Prefix lines.
#[allow(clippy::too_many_arguments)]
fn forward_headers<S: HeaderSink>(out: &mut S, headers: &HeaderMap, authority: Option<&[u8]>, conn: &ConnInfo, config: &ProxyConfig, request_id: &[u8], content_length: bool, edits: &UpstreamEdits) {
    let trusted = &config.trusted;
    let dropped = connection_tokens(headers);
    // upstream-vhost; else an HTTP/2 request without a Host line: the HTTP/1.1 upstream needs one, made from `:authority`
    if let Some(h) = edits.host.as_deref().or(authority) {
        out.made(&HOST, h);
    }
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, value) in headers {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || FORWARDED.contains(&n) || dropped.iter().any(|d| d == n) {
            continue;
        }
        if !config.underscores_in_headers && has_underscore(n) {
            continue;
        }
        if name == COOKIE {
            cookies.push(value.as_bytes());
            continue;
        }
        if name == CONTENT_LENGTH && !content_length {
            continue;
        }
        if (edits.host.is_some() && name == HOST) || (edits.forwarded_prefix.is_some() && name == X_FORWARDED_PREFIX) {
            continue;
        }
        out.line(name, value);
    }
    if let Some(prefix) = &edits.forwarded_prefix {
        out.line(&X_FORWARDED_PREFIX, prefix);
    }
    if !cookies.is_empty() {
        out.made(&COOKIE, &cookies.join(&b"; "[..]));
    }
    let peer = conn.peer;
    let is_trusted = trusted.has(peer);
    // (an untrusted peer's forwarding headers are not even looked up)
    let first = |name: &HeaderName| if is_trusted { headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()) } else { None };
    // An untrusted peer's forwarding headers are not read at all: the peer's address is the whole answer.
    let forwarded_for = if is_trusted {
        let lines: Vec<&str> = headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
        if lines.is_empty() {
            None
        } else {
            Some(lines.join(", "))
        }
    } else {
        None
    };
    match &forwarded_for {
        Some(f) => out.made(&X_FORWARDED_FOR, format!("{f}, {}", peer).as_bytes()),
        None => out.line(&X_FORWARDED_FOR, &conn.peer_text),
    }
    let proto = first(&X_FORWARDED_PROTO).unwrap_or(if conn.secure { "https" } else { "http" });
    out.made(&X_FORWARDED_PROTO, proto.as_bytes());
    if let Some(host) = first(&X_FORWARDED_HOST).map(|s| s.as_bytes()).or_else(|| headers.get(HOST).map(|h| h.as_bytes())).or(authority) {
        out.made(&X_FORWARDED_HOST, host);
    }
    match first(&X_FORWARDED_PORT) {
        Some(port) => out.made(&X_FORWARDED_PORT, port.as_bytes()),
        None => out.line(&X_FORWARDED_PORT, &conn.port_text),
    }
    match &forwarded_for {
        Some(_) => out.made(&X_REAL_IP, trusted.real_client_address(peer, forwarded_for.as_deref()).as_bytes()),
        None => out.line(&X_REAL_IP, &conn.peer_text),
    }
    out.made(&X_REQUEST_ID, request_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn_info(trusted: &[&str], underscores: bool) -> ConnInfo {
        let ms = Duration::from_millis;
        let config = ProxyConfig {
            max_body_size: 1 << 20,
            request_buffer_size: 0,
            client_body_timeout: ms(1000),
            underscores_in_headers: underscores,
            http2_max_concurrent_streams: 1,
            max_header_size: 8192,
            connect_timeout: ms(1000),
            read_timeout: ms(1000),
            headers_timeout: ms(1000),
            request_timeout: ms(1000),
            keep_alive_timeout: ms(1000),
            http2_max_resets_per_second: 1,
            access_log: false,
            upstream_keep_alive_timeout: ms(1000),
            https_redirect_port: 443,
            trusted: TrustedProxies::parse(&trusted.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("trusted proxies"),
        };
        let shared = Arc::new(Shared::new(config));
        let client = shared.upstream_pool();
        ConnInfo { shared, peer: "10.0.0.7".parse().expect("address"), peer_text: HeaderValue::from_static("10.0.0.7"), port_text: HeaderValue::from_static("80"), secure: false, clock: Arc::new(ConnClock::new(1)), client, client_chain: None }
    }

    fn headers(lines: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in lines {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    /// The lines written into a request head, and those put in a header map, as `name: value` text.
    fn both_ways(incoming: &HeaderMap, authority: Option<&[u8]>, conn: &ConnInfo, content_length: bool) -> (Vec<String>, Vec<String>) {
        let mut bytes = Vec::new();
        forward_headers(&mut HeadBytes(&mut bytes), incoming, authority, conn, &conn.shared.config, b"id-1", content_length, &UpstreamEdits::default());
        let text = String::from_utf8(bytes).expect("ascii head");
        let from_bytes: Vec<String> = text.split_terminator("\r\n").map(str::to_owned).collect();
        let mut map = HeaderMap::new();
        forward_headers(&mut map, incoming, authority, conn, &conn.shared.config, b"id-1", content_length, &UpstreamEdits::default());
        let from_map = map.iter().map(|(n, v)| format!("{}: {}", n, v.to_str().expect("visible"))).collect();
        (from_bytes, from_map)
    }

    #[test]
    fn forwarded_lines_written_as_bytes_match_the_header_map() {
        let untrusted = conn_info(&[], false);
        let trusted = conn_info(&["10.0.0.0/8"], true);
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: Vec<(&str, HeaderMap, Option<&[u8]>, &ConnInfo, bool, Vec<String>)> = vec![
            (
                "hop-by-hop and Connection-listed lines dropped, Host kept, cookies joined, underscores dropped",
                headers(&[("host", "a.test"), ("connection", "keep-alive, X-Secret, Host"), ("x-secret", "s"), ("te", "trailers"), ("upgrade", "h2c"), ("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2"), ("x_real_ip", "1.2.3.4"), ("x-forwarded-for", "6.6.6.6"), ("content-length", "3")]),
                None,
                &untrusted,
                true,
                lines(&["host: a.test", "accept: */*", "content-length: 3", "cookie: a=1; b=2", "x-forwarded-for: 10.0.0.7", "x-forwarded-proto: http", "x-forwarded-host: a.test", "x-forwarded-port: 80", "x-real-ip: 10.0.0.7", "x-request-id: id-1"]),
            ),
            (
                "Content-Length left out of a chunked request; an HTTP/2 request's Host made from :authority",
                headers(&[("content-length", "3"), ("accept", "*/*")]),
                Some(b"b.test:8443"),
                &untrusted,
                false,
                lines(&["host: b.test:8443", "accept: */*", "x-forwarded-for: 10.0.0.7", "x-forwarded-proto: http", "x-forwarded-host: b.test:8443", "x-forwarded-port: 80", "x-real-ip: 10.0.0.7", "x-request-id: id-1"]),
            ),
            (
                "a trusted peer's forwarding headers extended; underscores allowed",
                headers(&[("host", "c.test"), ("x-forwarded-for", "1.1.1.1"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "outer.test"), ("x-forwarded-port", "443"), ("x_y", "z")]),
                None,
                &trusted,
                true,
                lines(&["host: c.test", "x_y: z", "x-forwarded-for: 1.1.1.1, 10.0.0.7", "x-forwarded-proto: https", "x-forwarded-host: outer.test", "x-forwarded-port: 443", "x-real-ip: 1.1.1.1", "x-request-id: id-1"]),
            ),
        ];
        for (what, incoming, authority, conn, content_length, expected) in cases {
            let (from_bytes, from_map) = both_ways(&incoming, authority, conn, content_length);
            assert_eq!(from_bytes, expected, "{what}: bytes");
            assert_eq!(from_map, expected, "{what}: header map");
        }
    }
}
