//! A client's request body on its way upstream: the size limit (→ 413) and the idle timeout (→ 408) apply to
//! every byte, a body that breaks its own framing is the client's fault (→ 400), and a small body is read whole
//! before an upstream connection is taken (nginx's `proxy_request_buffering`), so a slow client holds only its
//! own connection. The Node plane's request-body.ts does the same.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::proxy::BoxError;

/// Why a client's body did not arrive; the status the proxy answers with.
#[derive(Debug)]
pub enum ClientBodyError {
    /// past the body size limit → 413
    TooLarge,
    /// silent for longer than the client body timeout, or not whole within the request timeout → 408
    TimedOut,
    /// the client's framing was broken, or it went away mid-body → 400
    Broken(BoxError),
}

impl ClientBodyError {
    pub fn status(&self) -> u16 {
        match self {
            ClientBodyError::TooLarge => 413,
            ClientBodyError::TimedOut => 408,
            ClientBodyError::Broken(_) => 400,
        }
    }
}

impl fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientBodyError::TooLarge => write!(f, "request body larger than the limit"),
            ClientBodyError::TimedOut => write!(f, "request body silent past the client body timeout"),
            ClientBodyError::Broken(e) => write!(f, "request body broken: {e}"),
        }
    }
}

impl std::error::Error for ClientBodyError {}

/// The client's body, with what was read ahead of it (`buffered`) replayed first.
pub struct ClientBody<B> {
    buffered: VecDeque<Bytes>,
    inner: B,
    seen: usize,
    limit: usize,
    idle: Duration,
    /// the whole request must have arrived by then (the request timeout)
    deadline: Instant,
    timer: Pin<Box<Sleep>>,
    done: bool,
}

impl<B> ClientBody<B> {
    pub fn new(inner: B, limit: usize, idle: Duration, deadline: Instant) -> ClientBody<B> {
        let timer = Box::pin(tokio::time::sleep_until((Instant::now() + idle).min(deadline)));
        ClientBody { buffered: VecDeque::new(), inner, seen: 0, limit, idle, deadline, timer, done: false }
    }
}

impl<B> Body for ClientBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let this = &mut *self;
        if let Some(chunk) = this.buffered.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len();
                    if this.seen > this.limit {
                        this.done = true;
                        return Poll::Ready(Some(Err(ClientBodyError::TooLarge)));
                    }
                }
                let next = (Instant::now() + this.idle).min(this.deadline);
                this.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                Poll::Ready(Some(Err(ClientBodyError::Broken(e.into()))))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    Poll::Ready(Some(Err(ClientBodyError::TimedOut)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.buffered.is_empty() && (self.done || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let ahead: u64 = self.buffered.iter().map(|b| b.len() as u64).sum();
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + ahead);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + ahead);
        }
        hint
    }
}

/// What reading ahead gave: the whole body, or its beginning and the rest still to stream.
pub enum ReadAhead<B> {
    Whole(Bytes),
    Streaming(ClientBody<B>),
}

/// Reads the body until it ends or passes `buffer_size` bytes. Trailers end the read-ahead (the rest, trailers
/// included, streams).
pub async fn read_ahead<B>(mut body: ClientBody<B>, buffer_size: usize) -> Result<ReadAhead<B>, ClientBodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut chunks: VecDeque<Bytes> = VecDeque::new();
    let mut size = 0;
    loop {
        match body.frame().await {
            None => {
                let whole = if chunks.len() == 1 {
                    chunks.pop_front().unwrap_or_default()
                } else {
                    let mut all = BytesMut::with_capacity(size);
                    for c in chunks {
                        all.extend_from_slice(&c);
                    }
                    all.freeze()
                };
                return Ok(ReadAhead::Whole(whole));
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    size += data.len();
                    chunks.push_back(data);
                    if size > buffer_size {
                        break;
                    }
                }
                Err(_trailers) => {
                    // (rare: trailers after a small chunked body) stream what was read; the trailers are not kept
                    break;
                }
            },
        }
    }
    body.buffered = chunks;
    Ok(ReadAhead::Streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use std::convert::Infallible;

    /// A body that yields `chunks` and then, with `stall`, never ends.
    struct Iter {
        chunks: VecDeque<Bytes>,
        stall: bool,
    }

    impl Body for Iter {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.chunks.pop_front() {
                Some(c) => Poll::Ready(Some(Ok(Frame::data(c)))),
                None if self.stall => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
    }

    fn chunks(parts: &[&'static str], stall: bool) -> Iter {
        Iter { chunks: parts.iter().map(|p| Bytes::from_static(p.as_bytes())).collect(), stall }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[test]
    fn a_body_trickling_past_the_request_timeout_is_408() {
        runtime().block_on(async {
            // a chunk every 10 ms never trips the 50 ms idle timeout, but the whole request has 30 ms
            struct Trickle(tokio::time::Interval);
            impl Body for Trickle {
                type Data = Bytes;
                type Error = Infallible;
                fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
                    self.0.poll_tick(cx).map(|_| Some(Ok(Frame::data(Bytes::from_static(b"x")))))
                }
            }
            let deadline = Instant::now() + Duration::from_millis(30);
            let body = ClientBody::new(Trickle(tokio::time::interval(Duration::from_millis(10))), 1000, Duration::from_millis(50), deadline);
            assert_eq!(read_ahead(body, 1000).await.err().map(|e| e.status()), Some(408));
        });
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn a_small_body_is_read_whole() {
        runtime().block_on(async {
            let body = ClientBody::new(chunks(&["hel", "lo"], false), 100, Duration::from_secs(1), far());
            match read_ahead(body, 10).await {
                Ok(ReadAhead::Whole(b)) => assert_eq!(&b[..], b"hello"),
                _ => panic!("not read whole"),
            }
        });
    }

    #[test]
    fn a_larger_body_streams_from_its_beginning() {
        runtime().block_on(async {
            let body = ClientBody::new(chunks(&["0123", "4567", "89"], false), 100, Duration::from_secs(1), far());
            let Ok(ReadAhead::Streaming(rest)) = read_ahead(body, 5).await else { panic!("not streamed") };
            let all = rest.collect().await.map_err(|e| e.to_string()).unwrap().to_bytes();
            assert_eq!(&all[..], b"0123456789");
        });
    }

    #[test]
    fn past_the_limit_is_413() {
        runtime().block_on(async {
            let body = ClientBody::new(Full::new(Bytes::from_static(b"0123456789")), 5, Duration::from_secs(1), far());
            let err = read_ahead(body, 100).await.err().map(|e| e.status());
            assert_eq!(err, Some(413));
        });
    }

    #[test]
    fn silence_is_408_while_reading_ahead_and_while_streaming() {
        runtime().block_on(async {
            let body = ClientBody::new(chunks(&["01"], true), 100, Duration::from_millis(20), far());
            assert_eq!(read_ahead(body, 100).await.err().map(|e| e.status()), Some(408));
            let body = ClientBody::new(chunks(&["0123", "4567"], true), 100, Duration::from_millis(20), far());
            let Ok(ReadAhead::Streaming(rest)) = read_ahead(body, 5).await else { panic!("not streamed") };
            assert_eq!(rest.collect().await.err().map(|e| e.status()), Some(408));
        });
    }

}
