//! A request to the OSS or OBS front as it arrived, decoded once: method, host, bucket and key
//! (from the host or the path), query pairs and headers; and which upload operation it is.
//!
//! Three addressings reach the same bucket: virtual-hosted (`Host: <bucket>.<domain>`, the
//! vendors' default), the bucket's own domain (`/<key>` on the grant's endpoint; the SDKs call
//! it CNAME mode) and path-style (`/<bucket>/<key>`, which oss2 and esdk-obs-python fall back
//! to by themselves whenever the endpoint is an IP address).

use super::dialect::Dialect;
use crate::store::rules::{Operation, Target};

/// How the bucket appeared in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Addressing {
    VirtualHosted,
    Path,
    Domain,
}

/// A request head, decoded.
#[derive(Clone)]
pub(crate) struct Received {
    pub(crate) method: String,
    /// The `Host` header (or the authority of an absolute-form request line).
    pub(crate) host: String,
    pub(crate) bucket: String,
    /// The object key, decoded; `None` for bucket-level requests.
    pub(crate) key: Option<String>,
    pub(crate) addressing: Addressing,
    /// The query as decoded `(name, value)` pairs, in order (`name` alone has `""`).
    pub(crate) query: Vec<(String, String)>,
    /// The headers as received, names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
}

/// The host without its port (`[::1]:80` → `[::1]`).
pub(crate) fn hostname(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn decode(raw: &str) -> Option<String> {
    let key = ferry_sign::percent_decode(raw);
    (!key.is_empty()).then_some(key)
}

/// Names of what must never reach a log: signatures and tokens, in headers and queries.
fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "authorization" || name.contains("signature") || name.contains("security-token")
}

fn redacted(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(n, v)| {
            (
                n.as_str(),
                if secret_name(n) { "******" } else { v.as_str() },
            )
        })
        .collect()
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("addressing", &self.addressing)
            .field("query", &redacted(&self.query))
            .field("headers", &redacted(&self.headers))
            .finish()
    }
}

impl Received {
    /// Decodes a request head. `bucket` is the store's bucket: a path that starts with it is
    /// path-style, a host that starts with it and a dot is virtual-hosted.
    pub(crate) fn parse<B>(request: &http::Request<B>, bucket: &str) -> Self {
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let host = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| find_header(&headers, "host").map(str::to_owned))
            .unwrap_or_default();
        let path = request.uri().path();
        let in_host = hostname(&host)
            .strip_prefix(bucket)
            .is_some_and(|rest| rest.starts_with('.'));
        let (addressing, key) = if in_host {
            (
                Addressing::VirtualHosted,
                decode(&path[1.min(path.len())..]),
            )
        } else if path == format!("/{bucket}") {
            (Addressing::Path, None)
        } else if let Some(rest) = path.strip_prefix(&format!("/{bucket}/")) {
            (Addressing::Path, decode(rest))
        } else {
            (Addressing::Domain, decode(&path[1.min(path.len())..]))
        };
        let query = request
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (
                    ferry_sign::percent_decode(name),
                    ferry_sign::percent_decode(value),
                )
            })
            .collect();
        Self {
            method: request.method().as_str().to_owned(),
            host,
            bucket: bucket.to_owned(),
            key,
            addressing,
            query,
            headers,
        }
    }

    /// The first header named `name` (lower case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The value of query parameter `name`, if present.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The bucket the dialect's canonical resource names: OBS signs the domain in CNAME mode.
    pub(crate) fn resource_bucket(&self, dialect: Dialect) -> &str {
        match (dialect, self.addressing) {
            (Dialect::Obs, Addressing::Domain) => hostname(&self.host),
            _ => &self.bucket,
        }
    }

    /// What the request is about.
    pub(crate) fn target(&self) -> Target<'_> {
        match &self.key {
            Some(key) => Target::Object {
                bucket: &self.bucket,
                key,
            },
            None => Target::Bucket {
                bucket: &self.bucket,
            },
        }
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Query parameters that carry a signature, never an operation's argument.
fn is_signing_param(dialect: Dialect, name: &str) -> bool {
    match dialect {
        Dialect::Oss => {
            matches!(
                name,
                "OSSAccessKeyId" | "Expires" | "Signature" | "security-token"
            ) || name.starts_with("x-oss-")
        }
        Dialect::Obs => {
            matches!(
                name,
                "AccessKeyId"
                    | "Expires"
                    | "Signature"
                    | "x-obs-security-token"
                    // The S3 V2 flavor OBS accepts for its own grants.
                    | "AWSAccessKeyId"
                    | "x-amz-security-token"
            )
        }
    }
}

/// The arguments each operation may carry; anything else asks for more than an upload.
fn arguments(op: Operation) -> &'static [&'static str] {
    match op {
        Operation::PutObject | Operation::HeadObject => &[],
        Operation::CreateMultipartUpload => &["uploads", "encoding-type"],
        Operation::UploadPart => &["uploadId", "partNumber"],
        Operation::CompleteMultipartUpload => &["uploadId", "encoding-type"],
        Operation::AbortMultipartUpload => &["uploadId"],
        Operation::ListParts => &[
            "uploadId",
            "max-parts",
            "part-number-marker",
            "encoding-type",
        ],
        Operation::ListMultipartUploads => &[
            "uploads",
            "prefix",
            "key-marker",
            "upload-id-marker",
            "max-uploads",
            "encoding-type",
            "delimiter",
        ],
    }
}

/// The upload operation a request asks for, if it is one a grant allows.
pub(crate) fn operation(dialect: Dialect, received: &Received) -> Option<Operation> {
    let has = |name: &str| received.param(name).is_some();
    let object = received.key.is_some();
    let op = match (received.method.as_str(), object) {
        ("PUT", true) if has("uploadId") || has("partNumber") => Operation::UploadPart,
        ("PUT", true) => Operation::PutObject,
        ("POST", true) if has("uploads") => Operation::CreateMultipartUpload,
        ("POST", true) if has("uploadId") => Operation::CompleteMultipartUpload,
        ("GET", true) if has("uploadId") => Operation::ListParts,
        ("DELETE", true) if has("uploadId") => Operation::AbortMultipartUpload,
        ("HEAD", true) => Operation::HeadObject,
        ("GET", false) if has("uploads") => Operation::ListMultipartUploads,
        _ => return None,
    };
    let allowed = arguments(op);
    let extra = received
        .query
        .iter()
        .any(|(name, _)| !is_signing_param(dialect, name) && !allowed.contains(&name.as_str()));
    let copies = received.header(dialect.copy_source_header()).is_some();
    (!extra && !copies).then_some(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(method: &str, uri: &str, host: &str) -> Received {
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", host)
            .body(())
            .unwrap();
        Received::parse(&request, "ferry")
    }

    #[test]
    fn bucket_and_key_from_each_addressing() {
        let domain = received("PUT", "/uploads/1/a%20b%2Bc", "127.0.0.1:9000");
        assert_eq!(domain.addressing, Addressing::Domain);
        assert_eq!(domain.key.as_deref(), Some("uploads/1/a b+c"));
        assert_eq!(domain.resource_bucket(Dialect::Obs), "127.0.0.1");
        assert_eq!(domain.resource_bucket(Dialect::Oss), "ferry");
        let path = received("PUT", "/ferry/uploads%2F1%2Fx", "127.0.0.1:9000");
        assert_eq!(path.addressing, Addressing::Path);
        assert_eq!(path.key.as_deref(), Some("uploads/1/x"));
        assert_eq!(path.resource_bucket(Dialect::Obs), "ferry");
        let hosted = received("PUT", "/uploads/1/x", "ferry.obs.test:9000");
        assert_eq!(hosted.addressing, Addressing::VirtualHosted);
        assert_eq!(hosted.key.as_deref(), Some("uploads/1/x"));
        let root = received("GET", "/?uploads", "ferry.obs.test");
        assert_eq!(root.key, None);
        assert_eq!(root.query, vec![("uploads".to_owned(), String::new())]);
        assert_eq!(hostname("[::1]:80"), "[::1]");
    }

    #[test]
    fn only_upload_operations_without_extra_arguments() {
        let op = |method, uri| operation(Dialect::Oss, &received(method, uri, "h"));
        assert_eq!(op("PUT", "/k"), Some(Operation::PutObject));
        assert_eq!(
            op("PUT", "/k?partNumber=1&uploadId=u"),
            Some(Operation::UploadPart)
        );
        assert_eq!(
            op("POST", "/k?uploads"),
            Some(Operation::CreateMultipartUpload)
        );
        assert_eq!(
            op("POST", "/k?uploadId=u"),
            Some(Operation::CompleteMultipartUpload)
        );
        assert_eq!(op("GET", "/k?uploadId=u"), Some(Operation::ListParts));
        assert_eq!(
            op("DELETE", "/k?uploadId=u"),
            Some(Operation::AbortMultipartUpload)
        );
        assert_eq!(
            op("GET", "/?uploads&prefix=a"),
            Some(Operation::ListMultipartUploads)
        );
        assert_eq!(
            op("PUT", "/k?OSSAccessKeyId=a&Expires=1&Signature=s"),
            Some(Operation::PutObject)
        );
        for (method, uri) in [
            ("GET", "/k"),
            ("DELETE", "/k"),
            ("PUT", "/k?acl"),
            ("POST", "/k?append&position=0"),
            ("GET", "/"),
            ("PUT", "/"),
        ] {
            assert_eq!(op(method, uri), None, "{method} {uri}");
        }
    }

    #[test]
    fn debug_output_hides_signatures_and_tokens() {
        let request = http::Request::builder()
            .method("PUT")
            .uri("/k?x-oss-signature=SIGQ&security-token=TOKQ&partNumber=1")
            .header("host", "127.0.0.1:9000")
            .header("authorization", "OSS AK:SIGH")
            .header("x-oss-security-token", "TOKH")
            .body(())
            .unwrap();
        let shown = format!("{:?}", Received::parse(&request, "ferry"));
        for secret in ["SIGQ", "TOKQ", "SIGH", "TOKH"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("partNumber"), "{shown}");
    }
}
