//! What the store lets in before any byte of a request body is read: only requests signed with
//! SigV4 (an `AWS4-HMAC-SHA256` `Authorization` header or a presigned `X-Amz-Signature` query),
//! and never a POST form upload.
//!
//! s3s reads a POST form's file part into memory before its access check runs (up to
//! `post_object_max_file_size`), and it verifies SigV2 signatures as readily as SigV4. Neither is
//! something Ferry uses, so both are answered here from the request head alone, with an S3 XML
//! error and `Connection: close`: the body is never read, and the connection does not stay open
//! for the rest of it.

use futures::future::BoxFuture;
use hyper::body::Incoming;
use s3s::service::S3Service;
use s3s::{Body, HttpError, HttpResponse};

/// Why a request is turned away at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Neither an `Authorization` header nor a presigned signature.
    Unsigned,
    /// A browser-style `multipart/form-data` POST upload (PostObject).
    FormUpload,
    /// A signature other than SigV4 (SigV2 header or query, or an unknown scheme).
    NotSigV4,
    /// A `Content-MD5` header that is not the base64 of 16 bytes (an empty one included).
    BadContentMd5,
    /// A CompleteMultipartUpload (read whole into memory) without a `Content-Length`.
    MissingLength,
    /// A CompleteMultipartUpload body larger than [`MAX_XML_BODY`].
    XmlTooLarge,
}

impl Refusal {
    fn status(self) -> http::StatusCode {
        match self {
            Self::Unsigned | Self::FormUpload => http::StatusCode::FORBIDDEN,
            Self::NotSigV4 | Self::BadContentMd5 | Self::XmlTooLarge => {
                http::StatusCode::BAD_REQUEST
            }
            Self::MissingLength => http::StatusCode::LENGTH_REQUIRED,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::Unsigned | Self::FormUpload => "AccessDenied",
            Self::NotSigV4 => "InvalidRequest",
            Self::BadContentMd5 => "InvalidDigest",
            Self::MissingLength => "MissingContentLength",
            Self::XmlTooLarge => "MaxMessageLengthExceeded",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Unsigned => "Anonymous requests are not accepted; sign requests with SigV4.",
            Self::FormUpload => "POST form uploads are not accepted; use PutObject or multipart.",
            Self::NotSigV4 => {
                "The authorization mechanism you have provided is not supported. \
                 Please use AWS4-HMAC-SHA256."
            }
            Self::BadContentMd5 => "The Content-MD5 you specified is not valid.",
            Self::MissingLength => "You must provide the Content-Length HTTP header.",
            Self::XmlTooLarge => "Your request was too big.",
        }
    }
}

/// Largest XML body (a CompleteMultipartUpload) the store reads; s3s gets the same limit.
/// 10 000 parts with checksums stay well under it. Checked here from `Content-Length` because
/// s3s answers a body over its limit with a 500 rather than `MaxMessageLengthExceeded`.
pub(crate) const MAX_XML_BODY: usize = 4 * 1024 * 1024;

/// Query parameter names that only a SigV2 presigned URL carries.
const SIGV2_QUERY: &[&str] = &["AWSAccessKeyId", "Signature"];

fn query_names(query: &str) -> impl Iterator<Item = &str> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
}

fn is_form_upload<B>(request: &http::Request<B>) -> bool {
    request.method() == http::Method::POST
        && request
            .headers()
            .get_all(http::header::CONTENT_TYPE)
            .iter()
            .any(|value| {
                value.to_str().is_ok_and(|v| {
                    v.trim_start()
                        .to_ascii_lowercase()
                        .starts_with("multipart/form-data")
                })
            })
}

/// Whether a `Content-MD5` value is the base64 of an MD5 digest (16 bytes). s3s passes an empty
/// value on as no digest at all, so the check is made here.
fn is_md5_base64(value: &[u8]) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(value.trim_ascii())
        .is_ok_and(|digest| digest.len() == 16)
}

/// The refusal for a request head, if it is refused.
pub(crate) fn check<B>(request: &http::Request<B>) -> Option<Refusal> {
    let query = request.uri().query().unwrap_or("");
    if query_names(query).any(|name| SIGV2_QUERY.contains(&name)) {
        return Some(Refusal::NotSigV4);
    }
    let mut authorizations = request
        .headers()
        .get_all(http::header::AUTHORIZATION)
        .iter();
    let header_signed = match authorizations.next() {
        Some(value) => {
            let sigv4 = value
                .to_str()
                .is_ok_and(|v| v.starts_with("AWS4-HMAC-SHA256 "));
            if !sigv4 || authorizations.next().is_some() {
                return Some(Refusal::NotSigV4);
            }
            true
        }
        None => false,
    };
    if is_form_upload(request) {
        return Some(Refusal::FormUpload);
    }
    let presigned = query_names(query).any(|name| name == "X-Amz-Signature");
    if !header_signed && !presigned {
        return Some(Refusal::Unsigned);
    }
    if request
        .headers()
        .get_all("content-md5")
        .iter()
        .any(|value| !is_md5_base64(value.as_bytes()))
    {
        return Some(Refusal::BadContentMd5);
    }
    let completes =
        request.method() == http::Method::POST && query_names(query).any(|name| name == "uploadId");
    if completes {
        let length = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match length {
            None => return Some(Refusal::MissingLength),
            Some(n) if n > MAX_XML_BODY as u64 => return Some(Refusal::XmlTooLarge),
            Some(_) => {}
        }
    }
    None
}

/// The S3 error reply for a refusal; it closes the connection so the unread body goes with it.
fn refusal_response(refusal: Refusal) -> HttpResponse {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Error><Code>{}</Code><Message>{}</Message></Error>",
        refusal.code(),
        refusal.message()
    );
    let mut response = http::Response::new(Body::from(xml));
    *response.status_mut() = refusal.status();
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

/// The store's service: the admission check in front of the s3s service.
#[derive(Clone)]
pub(crate) struct Admission {
    inner: S3Service,
}

impl Admission {
    pub(crate) fn new(inner: S3Service) -> Self {
        Self { inner }
    }
}

impl hyper::service::Service<http::Request<Incoming>> for Admission {
    type Response = HttpResponse;
    type Error = HttpError;
    type Future = BoxFuture<'static, Result<HttpResponse, HttpError>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        match check(&request) {
            Some(refusal) => {
                tracing::debug!(?refusal, method = %request.method(), "store request refused");
                let response = refusal_response(refusal);
                Box::pin(async move { Ok(response) })
            }
            None => hyper::service::Service::call(&self.inner, request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    const V4: &str = "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, \
                      SignedHeaders=host, Signature=00";

    #[test]
    fn sigv4_header_and_presigned_requests_pass() {
        assert_eq!(
            check(&request("PUT", "/b/k", &[("authorization", V4)])),
            None
        );
        let presigned = "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00";
        assert_eq!(check(&request("PUT", presigned, &[])), None);
        let multipart = [("authorization", V4), ("content-type", "application/xml")];
        assert_eq!(check(&request("POST", "/b/k?uploads=", &multipart)), None);
    }

    #[test]
    fn unsigned_form_and_sigv2_requests_are_refused() {
        assert_eq!(check(&request("PUT", "/b/k", &[])), Some(Refusal::Unsigned));
        let form = [("content-type", "Multipart/Form-Data; boundary=x")];
        assert_eq!(
            check(&request("POST", "/b", &form)),
            Some(Refusal::FormUpload)
        );
        let signed_form = [("authorization", V4), form[0]];
        assert_eq!(
            check(&request("POST", "/b", &signed_form)),
            Some(Refusal::FormUpload)
        );
        assert_eq!(
            check(&request("PUT", "/b/k", &[("authorization", "AWS AK:c2ln")])),
            Some(Refusal::NotSigV4)
        );
        let v2_query = "/b/k?AWSAccessKeyId=AK&Expires=1&Signature=c2ln";
        assert_eq!(
            check(&request("PUT", v2_query, &[])),
            Some(Refusal::NotSigV4)
        );
        for md5 in ["", "AAAA", "not base64!"] {
            let headers = [("authorization", V4), ("content-md5", md5)];
            assert_eq!(
                check(&request("PUT", "/b/k", &headers)),
                Some(Refusal::BadContentMd5),
                "{md5:?}"
            );
        }
        let good = [
            ("authorization", V4),
            ("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
        ];
        assert_eq!(check(&request("PUT", "/b/k", &good)), None);
        let two = http::Request::builder()
            .uri("/b/k")
            .header("authorization", V4)
            .header("authorization", V4)
            .body(())
            .unwrap();
        assert_eq!(check(&two), Some(Refusal::NotSigV4));
    }
}
