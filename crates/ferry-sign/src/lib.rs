//! Request signatures of the object stores Ferry speaks, as pure functions shared by the
//! uploader (which signs) and the app server's embedded store (which verifies): AWS Signature
//! Version 4 ([`sigv4`]). A request is described as it goes on the wire ([`UnsignedRequest`]: the
//! URL already percent-encoded); nothing here does I/O.

#![warn(missing_docs)]

pub mod secret;
pub mod sigv4;

pub use crate::secret::Secret;

/// Temporary storage credentials as a dialect needs them to sign.
#[derive(Debug, Clone)]
pub struct SigningCredentials {
    /// Access key id (not secret).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Security (session) token of temporary credentials.
    pub security_token: Option<Secret>,
}

/// A request about to be signed: the URL exactly as it goes on the wire (already
/// percent-encoded), and the headers the caller sets.
#[derive(Debug, Clone)]
pub struct UnsignedRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// Absolute URL as sent.
    pub url: String,
    /// Headers in the order they will be sent.
    pub headers: Vec<(String, String)>,
}

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The URL is not `scheme://host[:port]/path[?query]`.
    #[error("invalid URL {0:?}: expected scheme://host/path")]
    InvalidUrl(String),
    /// A header name or value cannot be sent.
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
    /// The signing time is not `YYYYMMDDTHHMMSSZ`.
    #[error("invalid signing time {0:?}: expected YYYYMMDDTHHMMSSZ")]
    InvalidTime(String),
    /// Presigned URLs live between 1 s and 7 days.
    #[error("presigned URLs expire after 1 to 604800 seconds, not {0}")]
    InvalidExpiry(u64),
}

/// The parts of an absolute URL, kept exactly as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawUrl<'a> {
    /// `http`, `https`.
    pub scheme: &'a str,
    /// `host[:port]`.
    pub authority: &'a str,
    /// The path as sent (`/` when empty).
    pub path: &'a str,
    /// The query as sent, without `?`.
    pub query: Option<&'a str>,
}

impl<'a> RawUrl<'a> {
    /// Splits `url` without decoding or normalising anything.
    pub fn parse(url: &'a str) -> Result<Self, SignError> {
        let invalid = || SignError::InvalidUrl(url.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (authority, path_and_query) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => match rest.find('?') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            },
        };
        if scheme.is_empty() || authority.is_empty() || authority.contains(['@', ' ']) {
            return Err(invalid());
        }
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        Ok(Self {
            scheme,
            authority,
            path: if path.is_empty() { "/" } else { path },
            query,
        })
    }

    /// The `Host` header value: the authority without a default port.
    pub fn host(&self) -> &'a str {
        let default = match self.scheme {
            "http" => Some(":80"),
            "https" => Some(":443"),
            _ => None,
        };
        match default {
            Some(port) => self.authority.strip_suffix(port).unwrap_or(self.authority),
            None => self.authority,
        }
    }
}

/// Characters never percent-encoded (RFC 3986 unreserved).
fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes every byte but the unreserved ones (and `/` when `keep_slash`).
pub fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len() * 3 / 2);
    for &byte in input.as_bytes() {
        if unreserved(byte) || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; anything else (a stray `%`, `+`) stays as it is.
pub fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_without_normalising() {
        let url = RawUrl::parse("https://h.example:443/a//b/../c%20d?x=1&y").unwrap();
        assert_eq!(url.scheme, "https");
        assert_eq!(url.host(), "h.example");
        assert_eq!(url.path, "/a//b/../c%20d");
        assert_eq!(url.query, Some("x=1&y"));
        assert_eq!(RawUrl::parse("http://127.0.0.1:9000").unwrap().path, "/");
        assert_eq!(
            RawUrl::parse("http://127.0.0.1:9000").unwrap().host(),
            "127.0.0.1:9000"
        );
        assert!(RawUrl::parse("no-scheme/x").is_err());
    }

    #[test]
    fn decoding_leaves_what_is_not_an_escape() {
        assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
        assert_eq!(uri_encode("a b+c/~", false), "a%20b%2Bc%2F~");
        assert_eq!(uri_encode("a b/c", true), "a%20b/c");
    }
}
