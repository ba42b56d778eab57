//! HTTP/1.1 by hand over a `TcpStream`, for requests an HTTP client would not send as written:
//! a request line with `..` or `%2E%2E` left alone, a body cut short, headers sent one byte at a
//! time. Every read and write is bounded by a timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one raw exchange may block on a read or a write.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(30);

/// A response read off the wire.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// Status code.
    pub status: u16,
    /// Status line and headers, as sent.
    pub head: String,
    /// Body (chunked encoding removed).
    pub body: String,
}

impl RawReply {
    /// Parses a whole response; `None` when no complete head arrived.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let chunked = head.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked")
        });
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Some(Self {
            status,
            head: head.to_owned(),
            body,
        })
    }

    /// The S3 error code of an XML error body.
    pub fn s3_code(&self) -> String {
        crate::s3xml::error_code(&self.body)
    }

    /// A header's value (first of that name, case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Connects (bounded by [`RAW_TIMEOUT`]).
pub async fn connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(RAW_TIMEOUT, TcpStream::connect(addr))
        .await
        .expect("connect within the timeout")
        .expect("connect")
}

/// Reads until the peer closes, resets, or is silent for [`RAW_TIMEOUT`].
pub async fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(RAW_TIMEOUT, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Sends `head` (request line and headers, without the blank line; `Connection: close` is
/// added) and `body`, and reads the whole reply.
pub async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> RawReply {
    let mut stream = connect(addr).await;
    let mut request = format!("{}\r\nConnection: close\r\n\r\n", head.trim_end()).into_bytes();
    request.extend_from_slice(body);
    tokio::time::timeout(RAW_TIMEOUT, stream.write_all(&request))
        .await
        .expect("send within the timeout")
        .expect("send the request");
    let bytes = read_all(&mut stream).await;
    RawReply::parse(&bytes)
        .unwrap_or_else(|| panic!("no HTTP reply: {:?}", String::from_utf8_lossy(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_with_and_without_chunking() {
        let plain =
            RawReply::parse(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno").unwrap();
        assert_eq!((plain.status, plain.body.as_str()), (403, "no"));
        assert_eq!(plain.header("content-length").as_deref(), Some("2"));
        let chunked = RawReply::parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, "abcde");
        assert!(RawReply::parse(b"HTTP/1.1 200").is_none());
    }
}
