//! An upstream request without a body (an MCP client's `GET`, the stream on
//! which a server sends its own messages) over a connection of its own, with
//! the HTTP/1.1 exchange done here instead of by hyper's client.
//!
//! Such a stream is held for as long as the client listens, minutes or
//! hours, and thousands can be open at once, so what one costs while it
//! waits matters more than how fast it starts. hyper's client would give
//! each a connection task, a request channel, a fixed 8 KiB write buffer and
//! a read buffer. Here a held stream is its socket and a few words of
//! framing state, polled by the client connection's own task: the request
//! head is written once and dropped, the response head is parsed with
//! `httparse`, and the body is framed (RFC 9112 section 6: `Content-Length`,
//! chunked, or until the upstream closes) from bytes read on the stack and
//! copied into frames of their own size, so nothing is buffered between
//! events. The connection is never reused: a stream lives long enough that
//! its handshake does not count.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header, request};
use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Largest response head (status line and headers) read, and largest
/// trailer section skipped.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Headers a response head may have (as many as hyper's client allows).
const MAX_HEADERS: usize = 100;
/// Longest chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4096;
/// Bytes read from the upstream at once (on the stack; a frame gets a copy
/// of what arrived).
const READ_BYTES: usize = 4096;

/// What a TLS stream (or any other transport) offers.
pub(super) trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// The connection to the upstream. Plain TCP is kept inline; TLS is boxed,
/// because a TLS session is large and plain upstreams should not pay for
/// its size.
pub(super) enum Io {
    Plain(tokio::net::TcpStream),
    Other(Box<dyn Transport>),
}

#[derive(Debug, thiserror::Error)]
pub(super) enum StreamError {
    #[error("upstream connection failed")]
    Io(#[from] std::io::Error),
    #[error("the upstream closed the connection before answering")]
    NoAnswer,
    #[error("the upstream closed the connection before the end of the body")]
    Truncated,
    #[error("the upstream's response is malformed: {0}")]
    Malformed(&'static str),
}

/// Sends the request head in `parts` (its URI in origin form, `Host` set)
/// and reads the response head; the body is read as the caller polls it.
pub(super) async fn exchange(mut io: Io, parts: &request::Parts) -> Result<Response<Body>, StreamError> {
    let head = request_head(parts);
    io.write_all(&head).await?;
    io.flush().await?;
    drop(head);
    let (response, framing, rest) = read_head(&mut io).await?;
    Ok(response.map(|()| Body::new(StreamBody::new(io, framing, rest))))
}

fn request_head(parts: &request::Parts) -> Vec<u8> {
    let target = parts.uri.path_and_query().map_or("/", |target| target.as_str());
    let headers = parts.headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>();
    let mut head = Vec::with_capacity(parts.method.as_str().len() + target.len() + headers + 14);
    for piece in [parts.method.as_str().as_bytes(), b" ", target.as_bytes(), b" HTTP/1.1\r\n"] {
        head.extend_from_slice(piece);
    }
    // Header values cannot hold CR or LF (`HeaderValue` refuses them), so
    // they are written as they are.
    for (name, value) in &parts.headers {
        for piece in [name.as_str().as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
            head.extend_from_slice(piece);
        }
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Reads until a final (non-1xx) response head is complete; returns it, how
/// its body is framed, and the body bytes read with it.
async fn read_head(io: &mut Io) -> Result<(Response<()>, Framing, Bytes), StreamError> {
    let mut buffer = BytesMut::with_capacity(1024);
    loop {
        if io.read_buf(&mut buffer).await? == 0 {
            return Err(if buffer.is_empty() { StreamError::NoAnswer } else { StreamError::Truncated });
        }
        while let Some(head) = parse_head(&buffer)? {
            match head {
                // 1xx responses are interim (RFC 9110 section 15.2): the answer follows.
                Head::Interim { len } => buffer.advance(len),
                Head::Final { len, response } => {
                    buffer.advance(len);
                    let framing = framing(response.status(), response.headers())?;
                    return Ok((response, framing, Bytes::copy_from_slice(&buffer)));
                }
            }
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(StreamError::Malformed("the response head is larger than 64 KiB"));
        }
    }
}

/// A complete response head read from the upstream, and its length in bytes.
enum Head {
    Interim { len: usize },
    Final { len: usize, response: Response<()> },
}

/// The head at the start of `buffer`, or `None` while it is incomplete.
fn parse_head(buffer: &[u8]) -> Result<Option<Head>, StreamError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let used = match parsed.parse(buffer) {
        Ok(httparse::Status::Complete(used)) if used > MAX_HEAD_BYTES => {
            return Err(StreamError::Malformed("the response head is larger than 64 KiB"));
        }
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(StreamError::Malformed("more than 100 headers")),
        Err(_) => return Err(StreamError::Malformed("an unreadable status line or header")),
    };
    let status = parsed
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(StreamError::Malformed("an invalid status code"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(StreamError::Malformed("a protocol switch nobody asked for"));
    }
    if status.is_informational() {
        return Ok(Some(Head::Interim { len: used }));
    }
    let mut response = Response::new(());
    *response.status_mut() = status;
    let map = response.headers_mut();
    map.reserve(parsed.headers.len());
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| StreamError::Malformed("an invalid header name"))?;
        let value =
            HeaderValue::from_bytes(field.value).map_err(|_| StreamError::Malformed("an invalid header value"))?;
        map.append(name, value);
    }
    Ok(Some(Head::Final { len: used, response }))
}

/// How the body's end is known (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes remain.
    Length(u64),
    Chunked(Chunk),
    /// Until the upstream closes the connection.
    Close,
    Done,
}

/// Where a chunked body's decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last chunk, skipping trailer fields (this many bytes so far).
    Trailers(usize),
}

fn framing(status: StatusCode, headers: &HeaderMap) -> Result<Framing, StreamError> {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Done);
    }
    // Transfer-Encoding overrides Content-Length; a response whose final
    // coding is not chunked ends when the connection does.
    if let Some(last) = headers.get_all(header::TRANSFER_ENCODING).iter().next_back() {
        let final_coding = last.to_str().ok().and_then(|codings| codings.rsplit(',').next()).map(str::trim);
        let chunked = final_coding.is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"));
        return Ok(if chunked { Framing::Chunked(Chunk::Size) } else { Framing::Close });
    }
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let values = value.to_str().map_err(|_| StreamError::Malformed("an invalid Content-Length"))?;
        for text in values.split(',').map(str::trim) {
            // Digits only: `u64::from_str` would also take a sign.
            let parsed = Some(text)
                .filter(|text| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
                .and_then(|text| text.parse::<u64>().ok())
                .ok_or(StreamError::Malformed("an invalid Content-Length"))?;
            if length.is_some_and(|seen| seen != parsed) {
                return Err(StreamError::Malformed("conflicting Content-Length values"));
            }
            length = Some(parsed);
        }
    }
    Ok(match length {
        Some(0) => Framing::Done,
        Some(length) => Framing::Length(length),
        None => Framing::Close,
    })
}

/// What the decoder made of the bytes it has.
enum Decoded {
    Data(Bytes),
    End,
    NeedMore,
}

/// The response body: the connection, the framing state, and bytes read but
/// not yet handed on (usually none between events).
struct StreamBody {
    io: Option<Io>,
    framing: Framing,
    pending: Bytes,
}

impl StreamBody {
    fn new(io: Io, framing: Framing, pending: Bytes) -> Self {
        let io = (framing != Framing::Done).then_some(io);
        Self { io, framing, pending }
    }

    /// Closes the upstream connection: the body is over, one way or another.
    fn finish(&mut self) {
        self.framing = Framing::Done;
        self.io = None;
        self.pending = Bytes::new();
    }

    fn take(&mut self, len: usize) -> Bytes {
        if len >= self.pending.len() { std::mem::take(&mut self.pending) } else { self.pending.split_to(len) }
    }

    /// The next frame out of `pending`, if it holds one.
    fn decode(&mut self) -> Result<Decoded, StreamError> {
        loop {
            match self.framing {
                Framing::Done => return Ok(Decoded::End),
                Framing::Close if self.pending.is_empty() => return Ok(Decoded::NeedMore),
                Framing::Close => return Ok(Decoded::Data(std::mem::take(&mut self.pending))),
                Framing::Length(_) | Framing::Chunked(Chunk::Data(_)) if self.pending.is_empty() => {
                    return Ok(Decoded::NeedMore);
                }
                Framing::Length(remaining) => {
                    let data = self.take(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let left = remaining - data.len() as u64;
                    self.framing = if left == 0 { Framing::Done } else { Framing::Length(left) };
                    return Ok(Decoded::Data(data));
                }
                Framing::Chunked(Chunk::Data(remaining)) => {
                    let data = self.take(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let left = remaining - data.len() as u64;
                    self.framing = Framing::Chunked(if left == 0 { Chunk::DataEnd } else { Chunk::Data(left) });
                    return Ok(Decoded::Data(data));
                }
                Framing::Chunked(Chunk::Size) => match self.chunk_size()? {
                    Some(0) => self.framing = Framing::Chunked(Chunk::Trailers(0)),
                    Some(size) => self.framing = Framing::Chunked(Chunk::Data(size)),
                    None => return Ok(Decoded::NeedMore),
                },
                Framing::Chunked(Chunk::DataEnd) => {
                    if self.pending.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &self.pending[..2] != b"\r\n" {
                        return Err(StreamError::Malformed("chunk data longer than its size"));
                    }
                    self.pending.advance(2);
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Trailers(seen)) => {
                    // Trailer fields are not passed on: the client's
                    // response is chunked by hyper, and no MCP header
                    // travels as a trailer.
                    let Some(line) = self.pending.windows(2).position(|pair| pair == b"\r\n") else {
                        if seen + self.pending.len() > MAX_HEAD_BYTES {
                            return Err(StreamError::Malformed("trailers larger than 64 KiB"));
                        }
                        return Ok(Decoded::NeedMore);
                    };
                    self.pending.advance(line + 2);
                    if line == 0 {
                        self.framing = Framing::Done;
                        return Ok(Decoded::End);
                    }
                    self.framing = Framing::Chunked(Chunk::Trailers(seen + line + 2));
                }
            }
        }
    }

    /// The size on a complete chunk-size line at the start of `pending`
    /// (consumed), or `None` while the line is incomplete.
    fn chunk_size(&mut self) -> Result<Option<u64>, StreamError> {
        // httparse takes a line without digits as size 0, the last chunk.
        if self.pending.first().is_some_and(|first| !first.is_ascii_hexdigit()) {
            return Err(StreamError::Malformed("an invalid chunk size"));
        }
        match httparse::parse_chunk_size(&self.pending) {
            Ok(httparse::Status::Complete((used, size))) => {
                self.pending.advance(used);
                Ok(Some(size))
            }
            Ok(httparse::Status::Partial) if self.pending.len() <= MAX_CHUNK_LINE => Ok(None),
            Ok(httparse::Status::Partial) => Err(StreamError::Malformed("a chunk-size line longer than 4 KiB")),
            Err(_) => Err(StreamError::Malformed("an invalid chunk size")),
        }
    }

    /// Adds what one read brings to `pending`: how many bytes, 0 at the end
    /// of the input.
    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, StreamError>> {
        let Some(io) = self.io.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        let mut bytes = [0u8; READ_BYTES];
        let mut read = ReadBuf::new(&mut bytes);
        ready!(Pin::new(io).poll_read(cx, &mut read))?;
        let arrived = read.filled();
        if !arrived.is_empty() {
            self.pending = if self.pending.is_empty() {
                Bytes::copy_from_slice(arrived)
            } else {
                // Only a line split across two reads gets here.
                let mut joined = BytesMut::with_capacity(self.pending.len() + arrived.len());
                joined.extend_from_slice(&self.pending);
                joined.extend_from_slice(arrived);
                joined.freeze()
            };
        }
        Poll::Ready(Ok(arrived.len()))
    }
}

impl hyper::body::Body for StreamBody {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        let this = self.get_mut();
        loop {
            match this.decode() {
                Ok(Decoded::Data(data)) => {
                    if this.framing == Framing::Done {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {}
                Err(err) => {
                    this.finish();
                    return Poll::Ready(Some(Err(err)));
                }
            }
            match ready!(this.poll_read_more(cx)) {
                Ok(0) if this.framing == Framing::Close => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.finish();
                    return Poll::Ready(Some(Err(StreamError::Truncated)));
                }
                Ok(_) => {}
                Err(err) => {
                    this.finish();
                    return Poll::Ready(Some(Err(err)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(remaining) => SizeHint::with_exact(remaining),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Io::Other(other) => Pin::new(other).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Io::Other(other) => Pin::new(other).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Io::Other(other) => Pin::new(other).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Io::Other(other) => Pin::new(other).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

    use super::{Chunk, Framing, framing};

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_final_transfer_coding_decides_and_overrides_content_length() {
        let chunked = Framing::Chunked(Chunk::Size);
        for (pairs, expected) in [
            (vec![(header::TRANSFER_ENCODING, "chunked")], chunked),
            (vec![(header::TRANSFER_ENCODING, "gzip, Chunked")], chunked),
            (vec![(header::TRANSFER_ENCODING, "gzip"), (header::TRANSFER_ENCODING, "chunked")], chunked),
            (vec![(header::TRANSFER_ENCODING, "chunked, gzip")], Framing::Close),
            (vec![(header::TRANSFER_ENCODING, "chunked"), (header::CONTENT_LENGTH, "5")], chunked),
            (vec![(header::CONTENT_LENGTH, "5")], Framing::Length(5)),
            (vec![(header::CONTENT_LENGTH, "5"), (header::CONTENT_LENGTH, "5")], Framing::Length(5)),
            (vec![(header::CONTENT_LENGTH, "0")], Framing::Done),
            (vec![], Framing::Close),
        ] {
            assert_eq!(framing(StatusCode::OK, &headers(&pairs)).unwrap(), expected, "{pairs:?}");
        }
        let stream = headers(&[(header::TRANSFER_ENCODING, "chunked")]);
        assert_eq!(framing(StatusCode::NO_CONTENT, &stream).unwrap(), Framing::Done);
        assert_eq!(framing(StatusCode::NOT_MODIFIED, &stream).unwrap(), Framing::Done);
    }

    #[test]
    fn a_length_that_is_not_one_plain_number_is_refused() {
        for value in ["-1", "+5", "5 6", "", "0x10", "18446744073709551616", "5, 6"] {
            let map = headers(&[(header::CONTENT_LENGTH, value)]);
            assert!(framing(StatusCode::OK, &map).is_err(), "{value:?}");
        }
    }
}
