//! One client connection's clock and its guard on the wire.
//!
//! The clock says what the connection is doing (a request in flight, a request head arriving, idle) so that a
//! watchdog per connection can apply the Node plane's timeouts: an idle keep-alive connection is closed after
//! `keepAliveTimeout`, and a request head must arrive whole within `headersTimeout` of its first byte (hyper's own
//! header timeout counts from the moment the connection went idle, so it cannot tell the two apart). It also keeps
//! the HTTP/2 reset budget: streams a client abandons before their answer, refilled at a rate per second.
//!
//! `Watched` wraps the connection's stream beneath hyper. It notes the first byte of each request head, and when
//! the watchdog condemns the connection it writes a last word of its own (`408` on HTTP/1, GOAWAY with
//! ENHANCE_YOUR_CALM on HTTP/2) at a frame boundary and ends the stream: hyper's server connection has no way to
//! send a GOAWAY with an error code of our choosing (its `graceful_shutdown` sends NO_ERROR), so the frame is
//! written beneath it, between two of its own frames.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

const NONE: u64 = u64::MAX;

/// Why the watchdog ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// no request in flight for `keepAliveTimeout`: closed quietly (HTTP/2: GOAWAY NO_ERROR)
    Idle,
    /// a request head begun and not finished within `headersTimeout`: 408, closed
    HeadersTimeout,
    /// an HTTP/2 client abandoned streams past its budget: GOAWAY ENHANCE_YOUR_CALM, closed
    OverResetBudget,
}

const KILL_NONE: u8 = 0;
const KILL_408: u8 = 1;
const KILL_CALM: u8 = 2;

/// A token bucket: `rate` tokens a second, at most `burst` (ten seconds' worth, as the Node plane's).
struct ResetBucket {
    tokens: f64,
    last: Instant,
}

pub struct ConnClock {
    origin: Instant,
    h2: AtomicU8,
    in_flight: AtomicU32,
    /// ms since `origin` when the connection last had no request in flight
    idle_since: AtomicU64,
    /// ms since `origin` of the first byte of a request head on an idle connection; NONE: no head arriving
    head_started: AtomicU64,
    resets_per_second: u32,
    resets: Mutex<ResetBucket>,
    kill: AtomicU8,
    condemned: Notify,
}

impl ConnClock {
    pub fn new(resets_per_second: u32) -> ConnClock {
        let now = Instant::now();
        let burst = f64::from(resets_per_second) * 10.0;
        ConnClock {
            origin: now,
            h2: AtomicU8::new(0),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            resets_per_second,
            resets: Mutex::new(ResetBucket { tokens: burst, last: now }),
            kill: AtomicU8::new(KILL_NONE),
            condemned: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    pub fn set_h2(&self) {
        self.h2.store(1, Ordering::Relaxed);
    }

    fn is_h2(&self) -> bool {
        self.h2.load(Ordering::Relaxed) == 1
    }

    /// Bytes came in: on an idle connection, the first byte of a request head.
    #[inline]
    pub fn bytes_read(&self) {
        if self.head_started.load(Ordering::Relaxed) == NONE && self.in_flight.load(Ordering::Relaxed) == 0 {
            self.head_started.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// A request head was read whole (hyper calls the service).
    #[inline]
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(NONE, Ordering::Relaxed);
    }

    /// A request's answer ended (or was abandoned: `abandoned`, the client left or reset the stream).
    pub fn request_done(&self, abandoned: bool) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle_since.store(self.now_ms(), Ordering::Relaxed);
        }
        if abandoned && self.is_h2() && !self.take_reset() {
            self.kill.store(KILL_CALM, Ordering::Relaxed);
            self.condemned.notify_one();
        }
    }

    /// Spends one token of the reset budget; false when there was none left.
    fn take_reset(&self) -> bool {
        let Ok(mut bucket) = self.resets.lock() else { return true };
        let now = Instant::now();
        let rate = f64::from(self.resets_per_second);
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.last).as_secs_f64() * rate).min(rate * 10.0);
        bucket.last = now;
        bucket.tokens -= 1.0;
        bucket.tokens >= 0.0
    }

    /// Resolves when the connection should end, and says why.
    pub async fn watch(&self, keep_alive: Duration, headers: Duration) -> Expired {
        let keep_alive_ms = u64::try_from(keep_alive.as_millis()).unwrap_or(NONE / 4);
        let headers_ms = u64::try_from(headers.as_millis()).unwrap_or(NONE / 4);
        loop {
            if self.kill.load(Ordering::Relaxed) == KILL_CALM {
                return Expired::OverResetBudget;
            }
            let now = self.now_ms();
            let deadline = if self.in_flight.load(Ordering::Relaxed) > 0 {
                // busy: look again later (request bodies and upstreams have timeouts of their own)
                now + keep_alive_ms.min(headers_ms)
            } else {
                let head = self.head_started.load(Ordering::Relaxed);
                if head != NONE && !self.is_h2() {
                    if now >= head + headers_ms {
                        self.kill.store(KILL_408, Ordering::Relaxed);
                        return Expired::HeadersTimeout;
                    }
                    head + headers_ms
                } else {
                    let idle = self.idle_since.load(Ordering::Relaxed) + keep_alive_ms;
                    if now >= idle {
                        return Expired::Idle;
                    }
                    // a head may begin meanwhile: its own deadline is nearer than the idle one
                    idle.min(now + headers_ms)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(self.origin + Duration::from_millis(deadline)) => {}
                _ = self.condemned.notified() => {}
            }
        }
    }
}

/// Where a stream of HTTP/2 frames is: inside a frame header, inside a payload, or between two frames.
#[derive(Default)]
struct Frames {
    /// bytes still to pass before the frames begin (the client's 24-byte connection preface)
    skip: usize,
    head_seen: u8,
    head: [u8; 9],
    payload_left: usize,
    /// the highest stream a HEADERS frame opened
    last_stream: u32,
}

impl Frames {
    fn advance(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.skip > 0 {
                let k = self.skip.min(data.len());
                self.skip -= k;
                data = &data[k..];
            } else if self.payload_left > 0 {
                let k = self.payload_left.min(data.len());
                self.payload_left -= k;
                data = &data[k..];
            } else {
                self.head[usize::from(self.head_seen)] = data[0];
                self.head_seen += 1;
                data = &data[1..];
                if self.head_seen == 9 {
                    let h = self.head;
                    self.payload_left = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                    if h[3] == 0x1 && stream > self.last_stream {
                        self.last_stream = stream;
                    }
                    self.head_seen = 0;
                }
            }
        }
    }

    fn at_boundary(&self) -> bool {
        self.skip == 0 && self.head_seen == 0 && self.payload_left == 0
    }

    /// Bytes that may be written before the next boundary (None: the length is not known yet).
    fn to_boundary(&self) -> Option<usize> {
        if self.payload_left > 0 {
            Some(self.payload_left)
        } else if self.head_seen > 0 {
            Some(9 - usize::from(self.head_seen))
        } else {
            None
        }
    }
}

fn goaway(last_stream: u32) -> Vec<u8> {
    let mut f = vec![0, 0, 8, 0x7, 0, 0, 0, 0, 0];
    f.extend_from_slice(&last_stream.to_be_bytes());
    f.extend_from_slice(&0xbu32.to_be_bytes()); // ENHANCE_YOUR_CALM
    f
}

const REPLY_408: &[u8] = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 20\r\nconnection: close\r\n\r\n408 request timeout\n";

/// The connection's stream as hyper sees it (see the module comment).
pub struct Watched<S> {
    inner: S,
    clock: std::sync::Arc<ConnClock>,
    /// HTTP/2: where the frames are, both ways
    frames_in: Option<Frames>,
    frames_out: Option<Frames>,
    /// the last word being written, and how much of it is out
    last_word: Option<(Vec<u8>, usize)>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, clock: std::sync::Arc<ConnClock>) -> Watched<S> {
        Watched { inner, clock, frames_in: None, frames_out: None, last_word: None }
    }

    /// Tracks HTTP/2 frames (from the connection preface on), so that a GOAWAY can go between two of them.
    pub fn http2(mut self) -> Watched<S> {
        self.clock.set_h2();
        self.frames_in = Some(Frames { skip: 24, ..Frames::default() });
        self.frames_out = Some(Frames::default());
        self
    }

    fn condemned(&self) -> bool {
        self.clock.kill.load(Ordering::Relaxed) != KILL_NONE
    }

    fn out_at_boundary(&self) -> bool {
        self.frames_out.as_ref().is_none_or(Frames::at_boundary)
    }
}

impl<S: AsyncWrite + Unpin> Watched<S> {
    /// Writes the last word, shuts the stream, and fails hyper's call so that it lets go of the connection.
    fn poll_last_word(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.last_word.is_none() {
            let word = match self.clock.kill.load(Ordering::Relaxed) {
                KILL_408 => REPLY_408.to_vec(),
                _ => goaway(self.frames_in.as_ref().map_or(0, |f| f.last_stream)),
            };
            self.last_word = Some((word, 0));
        }
        if let Some((word, written)) = self.last_word.as_mut() {
            while *written < word.len() {
                match Pin::new(&mut self.inner).poll_write(cx, &word[*written..]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => break,
                    Poll::Ready(Ok(n)) => *written += n,
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        if Pin::new(&mut self.inner).poll_shutdown(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(io::Error::new(io::ErrorKind::ConnectionAborted, "connection ended by its watchdog"))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Watched<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // (while hyper is in the middle of writing an HTTP/2 frame, the last word waits for its end, in poll_write)
        if this.condemned() && this.out_at_boundary() {
            return this.poll_last_word(cx).map(Err);
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let read = &buf.filled()[before..];
            if !read.is_empty() {
                this.clock.bytes_read();
                if let Some(f) = this.frames_in.as_mut() {
                    f.advance(read);
                }
            }
        }
        polled
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut buf = buf;
        if this.condemned() {
            if this.out_at_boundary() {
                return this.poll_last_word(cx).map(Err);
            }
            // finish the frame under way, and no more
            if let Some(n) = this.frames_out.as_ref().and_then(Frames::to_boundary) {
                buf = &buf[..buf.len().min(n)];
            }
        }
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let (Poll::Ready(Ok(n)), Some(f)) = (&polled, this.frames_out.as_mut()) {
            f.advance(&buf[..*n]);
        }
        polled
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.frames_out.is_some() || this.condemned() {
            // (HTTP/2 and a condemned connection: one slice at a time, so that the frames can be followed)
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
            return Pin::new(this).poll_write(cx, first);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.frames_out.is_none() && self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_followed_across_any_split() {
        let mut wire = Vec::new();
        for (len, ty, stream) in [(6usize, 0x4u8, 0u32), (3, 0x1, 5), (0, 0x4, 0), (4, 0x1, 3)] {
            wire.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, 0]);
            wire.extend_from_slice(&stream.to_be_bytes());
            wire.extend(std::iter::repeat_n(0xaa, len));
        }
        for split in 1..wire.len() {
            let mut f = Frames::default();
            let mut boundaries = 0;
            for chunk in wire.chunks(split) {
                f.advance(chunk);
                boundaries += usize::from(f.at_boundary());
            }
            assert!(f.at_boundary(), "split {split}");
            assert_eq!(f.last_stream, 5, "split {split}");
            assert!(boundaries >= 1);
        }
    }

    #[test]
    fn the_reset_budget_refills_at_its_rate() {
        let clock = ConnClock::new(1);
        // ten seconds' worth at once, then none
        for _ in 0..10 {
            assert!(clock.take_reset());
        }
        assert!(!clock.take_reset());
    }
}
