//! Request signatures of the object stores Ferry speaks, as pure functions shared by the
//! uploader (which signs) and the app server's embedded store (which verifies): AWS Signature
//! Version 4 ([`sigv4`]), Alibaba OSS V4 and V1 ([`oss`]) and Huawei OBS ([`obs`]). A request is
//! described as it goes on the wire ([`UnsignedRequest`]: the URL already percent-encoded);
//! nothing here does I/O.
//!
//! Each dialect exposes its steps separately (canonical string, string to sign, signature,
//! `Authorization` value and its parser) taking the method, decoded query pairs
//! ([`query_pairs`]) and headers as received, so that a store verifies with the very functions the
//! uploader signs with; `sign` and `presign` put the steps together for a request to send.

#![warn(missing_docs)]

pub mod obs;
pub mod oss;
pub mod secret;
pub mod sigv4;

use hmac::{Hmac, KeyInit, Mac};
use time::OffsetDateTime;

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
    /// OSS V4: a header named in `AdditionalHeaders` is not in the request.
    #[error("additional header {0:?} is not in the request")]
    MissingAdditionalHeader(String),
    /// An object key was given without the bucket that holds it.
    #[error("an object key needs its bucket")]
    KeyWithoutBucket,
    /// An `Authorization` value (or presigned query) that is not of the scheme expected.
    #[error("malformed authorization: {0}")]
    MalformedAuthorization(String),
}

/// The bucket and object key a request is about, unencoded: OSS and OBS sign them (the
/// canonical resource) rather than the URL path, since the bucket may be in the host name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resource<'a> {
    /// The bucket (for OBS in CNAME mode: the bucket's own domain, as the OBS SDKs sign it).
    pub bucket: Option<&'a str>,
    /// The object key, unencoded (`None` for bucket- and service-level requests).
    pub key: Option<&'a str>,
}

/// A request signed by a dialect other than SigV4, with the intermediate strings. Its `Debug`
/// shows only the signature, the `Authorization` value and the header names: the other fields
/// may carry the security token.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The canonical request that was hashed (OSS V4 only).
    pub canonical_request: Option<String>,
    /// The string that was signed.
    pub string_to_sign: String,
    /// The signature (hex for OSS V4, base64 for OSS V1 and OBS).
    pub signature: String,
    /// The `Authorization` header value (header mode only).
    pub authorization: Option<String>,
    /// The URL to send (presign mode adds the signing query).
    pub url: String,
    /// Every header to send, in order (header mode includes `Authorization`).
    pub headers: Vec<(String, String)>,
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

    /// The host name without any port (`[::1]` stays bracketed).
    pub fn hostname(&self) -> &'a str {
        match self.authority.rfind(':') {
            Some(i) if !self.authority[i..].contains(']') => &self.authority[..i],
            _ => self.authority,
        }
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

impl std::fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("SignedRequest")
            .field("signature", &self.signature)
            .field("authorization", &self.authorization)
            .field("header_names", &names)
            .finish_non_exhaustive()
    }
}

/// The query of a URL as decoded `(name, value)` pairs in their order: `%XX` escapes decoded
/// (`+` stays `+`), a parameter without `=` has the empty value. Empty pieces are skipped.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// The value of the first header named `name` (ASCII case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Formats a time as an RFC 1123 HTTP date, `Thu, 17 Nov 2005 18:49:58 GMT`.
pub fn http_date(time: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// Parses an RFC 1123 HTTP date (`Thu, 17 Nov 2005 18:49:58 GMT`).
pub fn parse_http_date(value: &str) -> Result<OffsetDateTime, SignError> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value.trim(), &format)
        .map(|t| t.assume_utc())
        .map_err(|_| SignError::InvalidTime(value.to_owned()))
}

/// Compares two signatures in time independent of where they differ, so a verifier does not
/// tell an attacker how many leading characters were right.
pub fn signatures_match(expected: &str, received: &str) -> bool {
    use subtle::ConstantTimeEq;
    expected.len() == received.len() && bool::from(expected.as_bytes().ct_eq(received.as_bytes()))
}

/// Base64 of HMAC-SHA1 (OSS V1 and OBS signatures).
fn hmac_sha1_base64(key: &str, data: &str) -> String {
    use base64::Engine as _;
    let mut mac =
        <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `x-oss-meta-a: v` style headers: lower-cased names starting with `prefix`, values joined with
/// `,` when a name repeats, sorted by name (the `CanonicalizedOSSHeaders` / OBS headers block).
fn prefixed_headers(
    headers: &[(String, String)],
    prefix: &str,
    value: impl Fn(&str, &str) -> String,
) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (name, raw) in headers {
        let name = name.trim().to_ascii_lowercase();
        if !name.starts_with(prefix) {
            continue;
        }
        let v = value(&name, raw);
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            None => merged.push((name, v)),
        }
    }
    merged.sort_by(|a, b| a.0.cmp(&b.0));
    merged
}

/// Appends `name: value` unless a header of that name is already there.
fn add_header(headers: &mut Vec<(String, String)>, name: &str, value: impl FnOnce() -> String) {
    if header(headers, name).is_none() {
        headers.push((name.to_owned(), value()));
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
    fn query_pairs_decode_and_keep_order() {
        assert_eq!(
            query_pairs(Some("uploads&b=%2B1+2&&a=")),
            vec![
                ("uploads".to_owned(), String::new()),
                ("b".to_owned(), "+1+2".to_owned()),
                ("a".to_owned(), String::new()),
            ]
        );
        assert!(query_pairs(None).is_empty());
    }

    #[test]
    fn http_dates_round_trip() {
        let time = parse_http_date("Thu, 17 Nov 2005 18:49:58 GMT").unwrap();
        assert_eq!(time.unix_timestamp(), 1_132_253_398);
        assert_eq!(http_date(time), "Thu, 17 Nov 2005 18:49:58 GMT");
        assert!(parse_http_date("17 Nov 2005").is_err());
    }

    #[test]
    fn hostnames_drop_the_port() {
        assert_eq!(
            RawUrl::parse("http://a.b:9000/x").unwrap().hostname(),
            "a.b"
        );
        assert_eq!(RawUrl::parse("http://[::1]/x").unwrap().hostname(), "[::1]");
        assert_eq!(
            RawUrl::parse("http://[::1]:80/").unwrap().hostname(),
            "[::1]"
        );
    }

    #[test]
    fn signatures_compare_whole() {
        assert!(signatures_match("abc=", "abc="));
        assert!(!signatures_match("abc=", "abd="));
        assert!(!signatures_match("abc=", "abc"));
    }

    #[test]
    fn decoding_leaves_what_is_not_an_escape() {
        assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
        assert_eq!(uri_encode("a b+c/~", false), "a%20b%2Bc%2F~");
        assert_eq!(uri_encode("a b/c", true), "a%20b/c");
    }
}
