//! HTTP/1.1 framing as the proxy needs it: read a head (parsed with `httparse`), tell how the
//! body after it is framed, and copy that body frame by frame through an [`Outlet`], which can
//! cut, stall or trickle the bytes on their way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use super::IO_TIMEOUT;

/// Largest head accepted, and largest chunk-size or trailer line.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a head.
const MAX_HEADERS: usize = 128;

/// Why copying stopped early.
#[derive(Debug)]
pub(super) enum Fail {
    /// The source failed, closed early or stayed silent for [`IO_TIMEOUT`].
    Read,
    /// The destination failed or did not take bytes for [`IO_TIMEOUT`].
    Write,
    /// The outlet reached the point where its rule cuts the stream.
    Cut,
    /// A head or chunk line is not HTTP/1.1.
    Malformed,
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the connection closes (answers without a length).
    UntilClose,
}

/// A request head.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) raw: Vec<u8>,
    pub(super) method: String,
    pub(super) target: String,
    pub(super) body: Body,
    pub(super) close: bool,
}

/// A response head.
/// A response head with header `name` set to `value`: its lines of that name dropped, one
/// added before the blank line that ends the head.
pub(super) fn with_header(raw: &[u8], name: &str, value: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let mut lines: Vec<&str> = text
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|line| {
            line.split_once(':')
                .is_none_or(|(n, _)| !n.trim().eq_ignore_ascii_case(name))
        })
        .collect();
    let added = format!("{name}: {value}");
    lines.push(&added);
    format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes()
}

#[derive(Debug)]
pub(super) struct Response {
    pub(super) raw: Vec<u8>,
    pub(super) status: u16,
    pub(super) body: Body,
    pub(super) close: bool,
}

struct Framing {
    length: Option<u64>,
    chunked: bool,
    close: bool,
}

fn framing(headers: &[httparse::Header<'_>]) -> Result<Framing, Fail> {
    let mut framing = Framing {
        length: None,
        chunked: false,
        close: false,
    };
    for header in headers {
        let value = String::from_utf8_lossy(header.value).to_ascii_lowercase();
        if header.name.eq_ignore_ascii_case("content-length") {
            let length = value.trim().parse().map_err(|_| Fail::Malformed)?;
            framing.length = Some(length);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            framing.chunked = value.contains("chunked");
        } else if header.name.eq_ignore_ascii_case("connection") {
            framing.close = value.contains("close");
        }
    }
    Ok(framing)
}

/// Parses a request head read by [`read_head`].
pub(super) fn parse_request(raw: Vec<u8>) -> Result<Request, Fail> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(&raw) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Fail::Malformed),
        Err(_) => return Err(Fail::Malformed),
    }
    let framing = framing(request.headers)?;
    let body = match (framing.chunked, framing.length) {
        (true, _) => Body::Chunked,
        (false, Some(length)) => Body::Length(length),
        (false, None) => Body::Empty,
    };
    let method = request.method.unwrap_or_default().to_owned();
    let target = request.path.unwrap_or_default().to_owned();
    Ok(Request {
        raw,
        method,
        target,
        body,
        close: framing.close,
    })
}

/// Parses a response head read by [`read_head`], answering a request with `method`.
pub(super) fn parse_response(raw: Vec<u8>, method: &str) -> Result<Response, Fail> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&raw) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Fail::Malformed),
        Err(_) => return Err(Fail::Malformed),
    }
    let status = response.code.unwrap_or_default();
    let framing = framing(response.headers)?;
    let bodiless = method == "HEAD" || (100..200).contains(&status) || [204, 304].contains(&status);
    let body = match (bodiless, framing.chunked, framing.length) {
        (true, _, _) => Body::Empty,
        (false, true, _) => Body::Chunked,
        (false, false, Some(length)) => Body::Length(length),
        (false, false, None) => Body::UntilClose,
    };
    Ok(Response {
        raw,
        status,
        body,
        close: framing.close || body == Body::UntilClose,
    })
}

/// Waits for the source's next bytes; an empty slice means it closed.
async fn fill<R: AsyncBufRead + Unpin>(from: &mut R) -> Result<&[u8], Fail> {
    match tokio::time::timeout(IO_TIMEOUT, from.fill_buf()).await {
        Ok(Ok(buf)) => Ok(buf),
        Ok(Err(_)) | Err(_) => Err(Fail::Read),
    }
}

/// One line, `\n` included, at most [`MAX_HEAD`] bytes; empty at a clean end of stream.
async fn read_line<R: AsyncBufRead + Unpin>(from: &mut R) -> Result<Vec<u8>, Fail> {
    let mut line = Vec::new();
    loop {
        let buf = fill(from).await?;
        if buf.is_empty() {
            if line.is_empty() {
                return Ok(line);
            }
            return Err(Fail::Read);
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..take]);
        from.consume(take);
        if line.len() > MAX_HEAD {
            return Err(Fail::Malformed);
        }
        if done {
            return Ok(line);
        }
    }
}

/// Reads a head up to and including its empty line; `None` when the stream ended cleanly
/// before its first byte (a keep-alive connection the other side closed).
pub(super) async fn read_head<R: AsyncBufRead + Unpin>(
    from: &mut R,
) -> Result<Option<Vec<u8>>, Fail> {
    let mut head = Vec::new();
    loop {
        let line = read_line(from).await?;
        if line.is_empty() {
            if head.is_empty() {
                return Ok(None);
            }
            return Err(Fail::Read);
        }
        let blank = line == b"\r\n" || line == b"\n";
        head.extend_from_slice(&line);
        if head.len() > MAX_HEAD {
            return Err(Fail::Malformed);
        }
        if blank {
            return Ok(Some(head));
        }
    }
}

/// Where copied bytes go, shaped by a rule: cut after some bytes, paused once at some byte,
/// or trickled. Counts what it wrote.
pub(super) struct Outlet<'a> {
    out: &'a mut (dyn AsyncWrite + Unpin + Send),
    counter: Option<&'a AtomicU64>,
    sent: u64,
    /// Write this many bytes, then fail with [`Fail::Cut`].
    pub(super) cut_after: Option<u64>,
    /// At this byte, pause this long (once).
    pub(super) stall: Option<(u64, Duration)>,
    /// Write at most this many bytes at a time, pausing this long between writes.
    pub(super) trickle: Option<(usize, Duration)>,
}

impl<'a> Outlet<'a> {
    /// An outlet writing to `out` and adding what it writes to `counter`.
    pub(super) fn new(
        out: &'a mut (dyn AsyncWrite + Unpin + Send),
        counter: Option<&'a AtomicU64>,
    ) -> Self {
        Self {
            out,
            counter,
            sent: 0,
            cut_after: None,
            stall: None,
            trickle: None,
        }
    }

    /// Bytes written so far.
    pub(super) fn sent(&self) -> u64 {
        self.sent
    }

    /// Writes `data`, shaped.
    pub(super) async fn write(&mut self, mut data: &[u8]) -> Result<(), Fail> {
        while !data.is_empty() {
            let mut n = data.len() as u64;
            if let Some(cut) = self.cut_after {
                if self.sent >= cut {
                    return Err(Fail::Cut);
                }
                n = n.min(cut - self.sent);
            }
            if let Some((at, pause)) = self.stall {
                if self.sent >= at {
                    self.stall = None;
                    tokio::time::sleep(pause).await;
                } else {
                    n = n.min(at - self.sent);
                }
            }
            if let Some((chunk, every)) = self.trickle {
                if self.sent > 0 {
                    tokio::time::sleep(every).await;
                }
                n = n.min(chunk.max(1) as u64);
            }
            let (now, rest) = data.split_at(n as usize);
            match tokio::time::timeout(IO_TIMEOUT, self.out.write_all(now)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(Fail::Write),
            }
            if let Some(counter) = self.counter {
                counter.fetch_add(n, Ordering::SeqCst);
            }
            self.sent += n;
            data = rest;
        }
        Ok(())
    }
}

/// Copies exactly `n` bytes.
async fn copy_exact<R: AsyncBufRead + Unpin>(
    from: &mut R,
    to: &mut Outlet<'_>,
    mut n: u64,
) -> Result<(), Fail> {
    while n > 0 {
        let buf = fill(from).await?;
        if buf.is_empty() {
            return Err(Fail::Read);
        }
        let take = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        to.write(&buf[..take]).await?;
        from.consume(take);
        n -= take as u64;
    }
    Ok(())
}

/// Copies a chunked body as it is on the wire, chunk lines and trailers included.
async fn copy_chunked<R: AsyncBufRead + Unpin>(
    from: &mut R,
    to: &mut Outlet<'_>,
) -> Result<(), Fail> {
    loop {
        let line = read_line(from).await?;
        if line.is_empty() {
            return Err(Fail::Read);
        }
        to.write(&line).await?;
        let text = String::from_utf8_lossy(&line);
        let digits = text.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(digits, 16).map_err(|_| Fail::Malformed)?;
        if size == 0 {
            loop {
                let trailer = read_line(from).await?;
                if trailer.is_empty() {
                    return Err(Fail::Read);
                }
                to.write(&trailer).await?;
                if trailer == b"\r\n" || trailer == b"\n" {
                    return Ok(());
                }
            }
        }
        // The chunk's data and the CRLF after it.
        copy_exact(from, to, size + 2).await?;
    }
}

/// Copies a body framed as `body`.
pub(super) async fn copy_body<R: AsyncBufRead + Unpin>(
    from: &mut R,
    to: &mut Outlet<'_>,
    body: Body,
) -> Result<(), Fail> {
    match body {
        Body::Empty => Ok(()),
        Body::Length(n) => copy_exact(from, to, n).await,
        Body::Chunked => copy_chunked(from, to).await,
        Body::UntilClose => loop {
            let buf = fill(from).await?;
            if buf.is_empty() {
                return Ok(());
            }
            let take = buf.len();
            to.write(&buf[..take]).await?;
            from.consume(take);
        },
    }
}
