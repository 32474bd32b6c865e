//! The upstream side's HTTP/1.1 codec, without I/O: a response head parsed (httparse) into the `http` parts the
//! client is answered with, hop-by-hop lines already left out, and how its body is framed (RFC 9112 §6.3); the
//! chunked decoder; the request body's chunk framing. The I/O around it is upstream.rs.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{StatusCode, Version};

use crate::proxy::HOP_BY_HOP;

/// A response head longer than this is refused (502), as one with more header lines than `MAX_HEADERS`.
pub const MAX_HEAD: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 100;
/// One chunk-size line (size and extensions), and the trailer section, at most.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// How a response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// no body (HEAD, 204, 304)
    Empty,
    Length(u64),
    Chunked,
    /// read until the upstream closes; the connection is not reused
    Close,
}

/// What an upstream sent that is not HTTP/1.1 as a proxy can forward it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    Parse(httparse::Error),
    HeadTooLarge,
    TooManyHeaders,
    /// invalid, or several that differ
    ContentLength,
    /// both Content-Length and Transfer-Encoding (RFC 9112 §6.1: ought to be handled as an error)
    LengthAndTransferEncoding,
    /// chunked applied twice, or not last
    TransferEncoding,
    /// 101 to a request that did not ask to switch
    UnexpectedSwitch,
    Chunk(&'static str),
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::Parse(e) => write!(f, "malformed response head: {e}"),
            CodecError::HeadTooLarge => write!(f, "response head larger than {MAX_HEAD} bytes"),
            CodecError::TooManyHeaders => write!(f, "response head with more than {MAX_HEADERS} header lines"),
            CodecError::ContentLength => write!(f, "invalid or conflicting Content-Length in the response"),
            CodecError::LengthAndTransferEncoding => write!(f, "response with both Content-Length and Transfer-Encoding"),
            CodecError::TransferEncoding => write!(f, "invalid Transfer-Encoding in the response"),
            CodecError::UnexpectedSwitch => write!(f, "101 to a request that did not ask to switch protocols"),
            CodecError::Chunk(what) => write!(f, "malformed chunked response body: {what}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// A final response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    /// the reason phrase, when it is not the status's usual one (hyper's server sends it on)
    pub reason: Option<Bytes>,
    /// minus hop-by-hop lines (RFC 9110 §7.6.1 and those `Connection` names)
    pub headers: HeaderMap,
    pub framing: Framing,
    /// the upstream lets the connection be reused after this response (HTTP/1.1 without `Connection: close`,
    /// HTTP/1.0 with `Connection: keep-alive`; never a close-delimited body)
    pub keep_alive: bool,
}

pub enum Parsed {
    /// a 1xx other than 101, this many bytes long: skipped
    Interim(usize),
    Final(Head),
}

/// Parses the response head at the start of `buf`; `None` until it is whole. The head's bytes are taken from
/// `buf` (the header values share them).
pub fn parse_head(buf: &mut BytesMut, head_request: bool) -> Result<Option<Parsed>, CodecError> {
    // (uninitialised: filling the array first costs more than parsing a short head)
    let mut lines = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, &mut lines) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(CodecError::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(CodecError::TooManyHeaders),
        Err(e) => return Err(CodecError::Parse(e)),
    };
    if len > MAX_HEAD {
        return Err(CodecError::HeadTooLarge);
    }
    let code = res.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| CodecError::Parse(httparse::Error::Status))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(CodecError::UnexpectedSwitch);
    }
    if status.is_informational() {
        buf.advance(len);
        return Ok(Some(Parsed::Interim(len)));
    }
    let version = if res.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let base = buf.as_ptr() as usize;
    // (offsets into `buf`: the slices httparse gives borrow it, and the head is then split off as shared bytes)
    let offset = |s: &[u8]| (s.as_ptr() as usize - base, s.len());
    let reason = res.reason.filter(|r| status.canonical_reason() != Some(*r) && !r.is_empty()).map(|r| offset(r.as_bytes()));

    let mut content_length: Option<u64> = None;
    let mut bad_length = false;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut bad_coding = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut listed: Vec<&[u8]> = Vec::new();
    for h in res.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            for part in h.value.split(|&b| b == b',') {
                match parse_length(part.trim_ascii()) {
                    Some(n) if content_length.is_none_or(|m| m == n) => content_length = Some(n),
                    _ => bad_length = true,
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
            for coding in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|c| !c.is_empty()) {
                // chunked must be the last coding, and applied once (RFC 9112 §7)
                if chunked {
                    bad_coding = true;
                }
                chunked = coding.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty()) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_token = true;
                } else if !token.eq_ignore_ascii_case(b"host") {
                    listed.push(token);
                }
            }
        }
    }
    let no_body = head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        Framing::Empty
    } else if transfer_encoding {
        if content_length.is_some() || bad_length {
            return Err(CodecError::LengthAndTransferEncoding);
        }
        if bad_coding {
            return Err(CodecError::TransferEncoding);
        }
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else if bad_length {
        return Err(CodecError::ContentLength);
    } else {
        match content_length {
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    };
    let keep_alive = !close && (version == Version::HTTP_11 || keep_alive_token) && framing != Framing::Close;

    let kept: Vec<(HeaderName, (usize, usize))> = {
        let mut kept = Vec::with_capacity(res.headers.len());
        for h in res.headers.iter() {
            let Ok(name) = HeaderName::from_bytes(h.name.as_bytes()) else {
                return Err(CodecError::Parse(httparse::Error::HeaderName));
            };
            if HOP_BY_HOP.contains(&name.as_str()) || listed.iter().any(|t| t.eq_ignore_ascii_case(name.as_str().as_bytes())) {
                continue;
            }
            kept.push((name, offset(h.value)));
        }
        kept
    };
    let head = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(kept.len());
    for (name, (at, n)) in kept {
        let value = HeaderValue::from_maybe_shared(head.slice(at..at + n)).map_err(|_| CodecError::Parse(httparse::Error::HeaderValue))?;
        headers.append(name, value);
    }
    let reason = reason.map(|(at, n)| head.slice(at..at + n));
    Ok(Some(Parsed::Final(Head { status, version, reason, headers, framing, keep_alive })))
}

/// 1 to 19 digits (no sign, no spaces): below 10^19, so it fits.
fn parse_length(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// What the chunked decoder got from the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(Bytes),
    /// the buffer ends inside framing: read more
    More,
    /// the last chunk and the trailers (dropped) are through
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// chunk-size digits; `digits` seen so far
    Size,
    /// whitespace after the size (hyper and nginx allow it)
    SizeSpace,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// at the start of a trailer line (or of the empty line that ends the body)
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
    End,
}

/// A strict chunked-body decoder (RFC 9112 §7.1): CRLF line ends only, hex sizes of at most 16 digits,
/// extensions of visible characters, bounded size lines and trailers.
#[derive(Debug)]
pub struct Chunked {
    state: State,
    size: u64,
    digits: u8,
    line: usize,
    trailers: usize,
}

impl Default for Chunked {
    fn default() -> Chunked {
        Chunked { state: State::Size, size: 0, digits: 0, line: 0, trailers: 0 }
    }
}

impl Chunked {
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, CodecError> {
        loop {
            if self.state == State::End {
                return Ok(Decoded::End);
            }
            if self.state == State::Data {
                if self.size == 0 {
                    self.state = State::DataCr;
                    continue;
                }
                if buf.is_empty() {
                    return Ok(Decoded::More);
                }
                let n = usize::try_from(self.size).unwrap_or(usize::MAX).min(buf.len());
                self.size -= n as u64;
                return Ok(Decoded::Data(buf.split_to(n).freeze()));
            }
            let Some(&b) = buf.first() else { return Ok(Decoded::More) };
            buf.advance(1);
            self.state = match (self.state, b) {
                (State::Size, b) if b.is_ascii_hexdigit() => {
                    if self.digits == 16 {
                        return Err(CodecError::Chunk("chunk size too large"));
                    }
                    self.digits += 1;
                    self.size = (self.size << 4) | u64::from((b as char).to_digit(16).unwrap_or(0));
                    State::Size
                }
                (State::Size, _) if self.digits == 0 => return Err(CodecError::Chunk("chunk size expected")),
                (State::Size | State::SizeSpace, b' ' | b'\t') => State::SizeSpace,
                (State::Size | State::SizeSpace, b';') => State::Extension,
                (State::Size | State::SizeSpace | State::Extension, b'\r') => State::SizeLf,
                (State::Extension, b) if b == b'\t' || b >= 0x20 && b != 0x7f => State::Extension,
                (State::SizeLf, b'\n') => {
                    let size = self.size;
                    self.digits = 0;
                    self.line = 0;
                    if size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    }
                }
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataLf, b'\n') => {
                    self.size = 0;
                    State::Size
                }
                (State::TrailerStart, b'\r') => State::EndLf,
                (State::TrailerStart | State::Trailer, b) if b == b'\t' || b >= 0x20 && b != 0x7f => State::Trailer,
                (State::Trailer, b'\r') => State::TrailerLf,
                (State::TrailerLf, b'\n') => State::TrailerStart,
                (State::EndLf, b'\n') => State::End,
                (State::Size | State::SizeSpace | State::Extension, _) => return Err(CodecError::Chunk("invalid chunk size line")),
                (State::DataCr | State::DataLf, _) => return Err(CodecError::Chunk("chunk data not followed by CRLF")),
                _ => return Err(CodecError::Chunk("invalid trailer section")),
            };
            if matches!(self.state, State::Size | State::SizeSpace | State::Extension | State::SizeLf) {
                self.line += 1;
                if self.line > MAX_CHUNK_LINE {
                    return Err(CodecError::Chunk("chunk size line too long"));
                }
            }
            if matches!(self.state, State::TrailerStart | State::Trailer | State::TrailerLf | State::EndLf) {
                self.trailers += 1;
                if self.trailers > MAX_TRAILERS {
                    return Err(CodecError::Chunk("trailer section too large"));
                }
            }
        }
    }

    pub fn ended(&self) -> bool {
        self.state == State::End
    }
}

/// The line before a request body chunk of `len` bytes.
pub fn chunk_size_line(out: &mut Vec<u8>, len: usize) {
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[(len >> (i * 4)) & 0xf]);
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, head_request: bool) -> Result<Option<Parsed>, CodecError> {
        parse_head(&mut BytesMut::from(text.as_bytes()), head_request)
    }

    fn head(text: &str, head_request: bool) -> Head {
        match parse(text, head_request) {
            Ok(Some(Parsed::Final(h))) => h,
            other => panic!("{text:?}: {:?}", other.map(|p| p.map(|_| ()))),
        }
    }

    #[test]
    fn framing_by_status_and_headers() {
        use Framing::*;
        let cases: &[(&str, bool, Framing, bool)] = &[
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, Length(5), true),
            ("HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\nContent-Length: 5\r\n\r\n", false, Length(5), true),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, Chunked, true),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", false, Chunked, true),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, Close, false),
            ("HTTP/1.1 200 OK\r\n\r\n", false, Close, false),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", false, Length(5), false),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: foo, Close\r\n\r\n", false, Length(5), false),
            ("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", false, Length(5), false),
            ("HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n", false, Length(5), true),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, Empty, true),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, Empty, true),
            ("HTTP/1.1 204 No Content\r\n\r\n", false, Empty, true),
            ("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, Empty, true),
            ("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false, Length(0), true),
        ];
        for (text, head_request, framing, keep_alive) in cases {
            let h = head(text, *head_request);
            assert_eq!((h.framing, h.keep_alive), (*framing, *keep_alive), "{text:?}");
        }
    }

    #[test]
    fn refused_heads() {
        let big = format!("HTTP/1.1 200 OK\r\nx-big: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        let many = format!("HTTP/1.1 200 OK\r\n{}\r\n", "x-a: 1\r\n".repeat(MAX_HEADERS + 1));
        let cases: &[(&str, CodecError)] = &[
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", CodecError::ContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", CodecError::ContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", CodecError::ContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", CodecError::ContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n", CodecError::ContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", CodecError::ContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", CodecError::ContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", CodecError::LengthAndTransferEncoding),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", CodecError::TransferEncoding),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", CodecError::TransferEncoding),
            ("HTTP/1.1 101 Switching Protocols\r\n\r\n", CodecError::UnexpectedSwitch),
            ("HTTP/1.1 2000 OK\r\n\r\n", CodecError::Parse(httparse::Error::Status)),
            ("HTTP/1.1 099 OK\r\n\r\n", CodecError::Parse(httparse::Error::Status)),
            ("HTTP/2.0 200 OK\r\n\r\n", CodecError::Parse(httparse::Error::Version)),
            ("HTTP/1.1 200 OK\r\nbad header\r\n\r\n", CodecError::Parse(httparse::Error::HeaderName)),
            ("HTTP/1.1 200 OK\r\nx: a\rb\r\n\r\n", CodecError::Parse(httparse::Error::HeaderValue)),
            (&big, CodecError::HeadTooLarge),
            (&many, CodecError::TooManyHeaders),
        ];
        for (text, expected) in cases {
            match parse(text, false) {
                Err(e) => assert_eq!(&e, expected, "{:?}", &text[..text.len().min(80)]),
                Ok(_) => panic!("{:?}: parsed", &text[..text.len().min(80)]),
            }
        }
    }

    #[test]
    fn hop_by_hop_lines_left_out_and_the_rest_kept_in_order() {
        let h = head("HTTP/1.1 299 Fine Thanks\r\nConnection: keep-alive, X-Secret, Host\r\nKeep-Alive: timeout=5\r\nX-Secret: s\r\nSet-Cookie: a\r\nTransfer-Encoding: chunked\r\nSet-Cookie: b\r\nHost: h\r\nServer: up\r\n\r\n", false);
        let lines: Vec<(String, String)> = h.headers.iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string())).collect();
        assert_eq!(lines, [("set-cookie", "a"), ("set-cookie", "b"), ("host", "h"), ("server", "up")].map(|(n, v)| (n.to_string(), v.to_string())));
        assert_eq!(h.status.as_u16(), 299);
        assert_eq!(h.reason.as_deref(), Some(&b"Fine Thanks"[..]));
        assert_eq!(head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false).reason, None);
    }

    #[test]
    fn interim_responses_are_skipped_and_the_buffer_keeps_the_rest() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..]);
        assert!(matches!(parse_head(&mut buf, false), Ok(Some(Parsed::Interim(25)))));
        assert!(matches!(parse_head(&mut buf, false), Ok(Some(Parsed::Final(Head { framing: Framing::Length(2), .. })))));
        assert_eq!(&buf[..], b"ok");
    }

    #[test]
    fn a_head_split_anywhere_is_incomplete_until_its_last_byte() {
        let text = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
        let head_len = text.len() - 2;
        for cut in 0..head_len {
            let mut buf = BytesMut::from(&text[..cut]);
            assert!(matches!(parse_head(&mut buf, false), Ok(None)), "cut at {cut}");
            assert_eq!(buf.len(), cut);
        }
        let mut buf = BytesMut::from(&text[..]);
        assert!(matches!(parse_head(&mut buf, false), Ok(Some(Parsed::Final(_)))));
        assert_eq!(&buf[..], b"ok");
    }

    /// The body `input` decodes to, fed `step` bytes at a time; the bytes left after the end.
    fn decode_in_steps(input: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>), CodecError> {
        let mut dec = Chunked::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match dec.decode(&mut buf)? {
                Decoded::Data(d) => body.extend_from_slice(&d),
                Decoded::End => return Ok((body, buf.to_vec())),
                Decoded::More if fed == input.len() => return Err(CodecError::Chunk("(test) input ended")),
                Decoded::More => {
                    let n = step.min(input.len() - fed);
                    buf.extend_from_slice(&input[fed..fed + n]);
                    fed += n;
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_split_at_every_byte() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
            (b"A;name=value\r\n0123456789\r\n0;x\r\n\r\n", b"0123456789"),
            (b"5 \t\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"0000000000000005\r\nhello\r\n0\r\nTrailer: x\r\nOther: y\r\n\r\n", b"hello"),
            (b"0\r\n\r\n", b""),
        ];
        for (input, expected) in cases {
            for step in 1..=input.len() {
                let mut with_next = input.to_vec();
                with_next.extend_from_slice(b"NEXT");
                let (body, rest) = decode_in_steps(&with_next, step).unwrap_or_else(|e| panic!("{:?} in steps of {step}: {e}", String::from_utf8_lossy(input)));
                assert_eq!(body, *expected, "{:?} in steps of {step}", String::from_utf8_lossy(input));
                // the decoder stops at the body's end: what follows is the next response's
                assert!(b"NEXT".starts_with(&rest), "{:?}: {rest:?} left", String::from_utf8_lossy(input));
            }
        }
    }

    #[test]
    fn malformed_chunked_bodies() {
        let long_extension = format!("5;{}\r\nhello\r\n0\r\n\r\n", "x".repeat(MAX_CHUNK_LINE));
        let long_trailers = format!("0\r\n{}\r\n", "x-t: 1\r\n".repeat(MAX_TRAILERS / 8 + 1));
        let cases: &[&[u8]] = &[
            b"\r\nhello\r\n0\r\n\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\rhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5 5\r\nhello\r\n0\r\n\r\n",
            b"5;a\nb\r\nhello\r\n0\r\n\r\n",
            b"5;\x00\r\nhello\r\n0\r\n\r\n",
            b"10000000000000000\r\n",
            b"0\r\nTrailer: x\n\r\n",
            b"0\r\n\r\r",
            long_extension.as_bytes(),
            long_trailers.as_bytes(),
        ];
        for input in cases {
            for step in [1, input.len()] {
                assert!(matches!(decode_in_steps(input, step), Err(CodecError::Chunk(_))), "{:?} in steps of {step}", String::from_utf8_lossy(&input[..input.len().min(60)]));
            }
        }
    }

    #[test]
    fn chunk_size_lines() {
        for (len, line) in [(0, "0\r\n"), (1, "1\r\n"), (15, "f\r\n"), (16, "10\r\n"), (65536, "10000\r\n")] {
            let mut out = Vec::new();
            chunk_size_line(&mut out, len);
            assert_eq!(String::from_utf8(out).unwrap(), line);
        }
    }
}
