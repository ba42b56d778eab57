//! What the store lets in before any byte of a request body is read, and which front answers:
//! the S3 front (s3s) for SigV4 (an `AWS4-HMAC-SHA256` `Authorization` header or a presigned
//! `X-Amz-Signature` query), the OSS front for `OSS4-HMAC-SHA256` and `OSS ak:sig` (headers, or
//! presigned `x-oss-signature` / `OSSAccessKeyId` queries), the OBS front for `OBS ak:sig` (or a
//! presigned `AccessKeyId` query) and the SigV2 flavor OBS also accepts (`AWS ak:sig`,
//! `AWSAccessKeyId`), which the OBS front refuses for any but an OBS grant. Never a POST form
//! upload, never unsigned.
//!
//! s3s reads a POST form's file part into memory before its access check runs (up to
//! `post_object_max_file_size`), and it verifies SigV2 signatures as readily as SigV4 (for any
//! grant). Neither is something Ferry's S3 front accepts, so form uploads are answered here from
//! the request head alone and SigV2 never reaches s3s; refusals come with an XML
//! error (in the dialect the request looks like) and `Connection: close`: the body is never
//! read, and the connection does not stay open for the rest of it.

use futures::FutureExt;
use futures::future::BoxFuture;
use hyper::body::Incoming;
use s3s::service::S3Service;
use s3s::{Body, HttpError, HttpResponse};

use super::native::{Dialect, NativeFront};

/// The front that answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Front {
    /// SigV4, through s3s.
    S3,
    /// OSS or OBS.
    Native(Dialect),
}

/// Why a request is turned away at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Neither an `Authorization` header nor a presigned signature.
    Unsigned,
    /// A browser-style `multipart/form-data` POST upload (PostObject).
    FormUpload,
    /// A signature scheme no front speaks (SigV2 header or query, or an unknown scheme), or
    /// two at once.
    NotSupported,
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
            Self::NotSupported | Self::BadContentMd5 | Self::XmlTooLarge => {
                http::StatusCode::BAD_REQUEST
            }
            Self::MissingLength => http::StatusCode::LENGTH_REQUIRED,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::Unsigned | Self::FormUpload => "AccessDenied",
            Self::NotSupported => "InvalidRequest",
            Self::BadContentMd5 => "InvalidDigest",
            Self::MissingLength => "MissingContentLength",
            Self::XmlTooLarge => "MaxMessageLengthExceeded",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Unsigned => "Anonymous requests are not accepted; sign requests.",
            Self::FormUpload => "POST form uploads are not accepted; use PutObject or multipart.",
            Self::NotSupported => {
                "The authorization mechanism you have provided is not supported. \
                 Please use AWS4-HMAC-SHA256, OSS4-HMAC-SHA256, OSS or OBS, and only one."
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

fn query_names(query: &str) -> impl Iterator<Item = &str> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
}

/// The front of an `Authorization` header's scheme, if any front speaks it.
fn header_front(value: &str) -> Option<Front> {
    if value.starts_with("AWS4-HMAC-SHA256 ") {
        Some(Front::S3)
    } else if value.starts_with("OSS4-HMAC-SHA256 ") || value.starts_with("OSS ") {
        Some(Front::Native(Dialect::Oss))
    } else if value.starts_with("OBS ") || value.starts_with("AWS ") {
        // SigV2 is the second flavor OBS accepts (its SDKs use it in CNAME and path-style
        // mode); the OBS front refuses it for every grant but an OBS one.
        Some(Front::Native(Dialect::Obs))
    } else {
        None
    }
}

/// The front of a presigned URL's query, if it is one; `Err` for an unknown one.
fn query_front(query: &str) -> Result<Option<Front>, Refusal> {
    let has = |wanted: &str| query_names(query).any(|name| name == wanted);
    Ok(if has("X-Amz-Signature") {
        Some(Front::S3)
    } else if has("x-oss-signature") || (has("OSSAccessKeyId") && has("Signature")) {
        Some(Front::Native(Dialect::Oss))
    } else if (has("AccessKeyId") || has("AWSAccessKeyId")) && has("Signature") {
        Some(Front::Native(Dialect::Obs))
    } else if has("Signature") {
        return Err(Refusal::NotSupported);
    } else {
        None
    })
}

/// The dialect a refused request looks like, to answer it in that dialect's XML.
fn looks_like<B>(request: &http::Request<B>) -> Front {
    let names = request.headers().keys().map(http::HeaderName::as_str);
    for name in names {
        if name.starts_with("x-oss-") {
            return Front::Native(Dialect::Oss);
        }
        if name.starts_with("x-obs-") {
            return Front::Native(Dialect::Obs);
        }
    }
    Front::S3
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

/// The front of a request's signature scheme, from its head alone.
fn front<B>(request: &http::Request<B>) -> Result<Front, Refusal> {
    let by_query = query_front(request.uri().query().unwrap_or(""))?;
    let mut authorizations = request
        .headers()
        .get_all(http::header::AUTHORIZATION)
        .iter();
    let by_header = match authorizations.next() {
        Some(value) => {
            let front = value.to_str().ok().and_then(header_front);
            if front.is_none() || authorizations.next().is_some() {
                return Err(Refusal::NotSupported);
            }
            front
        }
        None => None,
    };
    match (by_header, by_query) {
        (Some(a), Some(b)) if a != b => Err(Refusal::NotSupported),
        (Some(front), _) | (None, Some(front)) => Ok(front),
        (None, None) if is_form_upload(request) => Err(Refusal::FormUpload),
        (None, None) => Err(Refusal::Unsigned),
    }
}

/// The front for a request head, or why it is refused (and in which dialect to say so).
pub(crate) fn check<B>(request: &http::Request<B>) -> Result<Front, (Refusal, Front)> {
    let front = front(request).map_err(|refusal| (refusal, looks_like(request)))?;
    refuse_body(request).map_or(Ok(front), |refusal| Err((refusal, front)))
}

/// The refusal of a signed request's body rules, if any.
fn refuse_body<B>(request: &http::Request<B>) -> Option<Refusal> {
    if is_form_upload(request) {
        return Some(Refusal::FormUpload);
    }
    let query = request.uri().query().unwrap_or("");
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
fn refusal_response(refusal: Refusal, front: Front) -> HttpResponse {
    let mut response = match front {
        Front::Native(dialect) => {
            super::native::refusal(dialect, refusal.status(), refusal.code(), refusal.message())
        }
        Front::S3 => {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                 <Error><Code>{}</Code><Message>{}</Message></Error>",
                refusal.code(),
                refusal.message()
            );
            let mut response = http::Response::new(Body::from(xml));
            *response.status_mut() = refusal.status();
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/xml"),
            );
            response
        }
    };
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

/// The store's service: the admission check in front of the S3, OSS and OBS fronts.
#[derive(Clone)]
pub(crate) struct Admission {
    s3: S3Service,
    native: NativeFront,
}

impl Admission {
    pub(crate) fn new(s3: S3Service, native: NativeFront) -> Self {
        Self { s3, native }
    }
}

impl hyper::service::Service<http::Request<Incoming>> for Admission {
    type Response = HttpResponse;
    type Error = HttpError;
    type Future = BoxFuture<'static, Result<HttpResponse, HttpError>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        if request.method() == http::Method::GET
            && request.uri().path() == crate::callbacks::PUBLIC_KEY_PATH
        {
            return self.native.clone().public_key().map(Ok).boxed();
        }
        match check(&request) {
            Err((refusal, front)) => {
                tracing::debug!(?refusal, ?front, method = %request.method(), "store request refused");
                let response = refusal_response(refusal, front);
                Box::pin(async move { Ok(response) })
            }
            Ok(Front::S3) => hyper::service::Service::call(&self.s3, request),
            Ok(Front::Native(dialect)) => {
                self.native.clone().serve(dialect, request).map(Ok).boxed()
            }
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

    fn refusal(result: Result<Front, (Refusal, Front)>) -> Option<Refusal> {
        result.err().map(|(refusal, _)| refusal)
    }

    const V4: &str = "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, \
                      SignedHeaders=host, Signature=00";
    const OSS: Front = Front::Native(Dialect::Oss);
    const OBS: Front = Front::Native(Dialect::Obs);

    #[test]
    fn each_scheme_goes_to_its_front() {
        let front = |method, uri, headers: &[(&str, &str)]| check(&request(method, uri, headers));
        assert_eq!(
            front("PUT", "/b/k", &[("authorization", V4)]),
            Ok(Front::S3)
        );
        let presigned = "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00";
        assert_eq!(front("PUT", presigned, &[]), Ok(Front::S3));
        let multipart = [("authorization", V4), ("content-type", "application/xml")];
        assert_eq!(front("POST", "/b/k?uploads=", &multipart), Ok(Front::S3));
        let oss4 = "OSS4-HMAC-SHA256 Credential=AK/20260101/r/oss/aliyun_v4_request, Signature=0";
        assert_eq!(front("PUT", "/k", &[("authorization", oss4)]), Ok(OSS));
        assert_eq!(
            front("PUT", "/k", &[("authorization", "OSS AK:c2ln")]),
            Ok(OSS)
        );
        assert_eq!(
            front("PUT", "/k?x-oss-signature=0&x-oss-credential=c", &[]),
            Ok(OSS)
        );
        assert_eq!(
            front("PUT", "/k?OSSAccessKeyId=AK&Expires=1&Signature=s", &[]),
            Ok(OSS)
        );
        assert_eq!(
            front("PUT", "/k", &[("authorization", "OBS AK:c2ln")]),
            Ok(OBS)
        );
        assert_eq!(
            front("PUT", "/k?AccessKeyId=AK&Expires=1&Signature=s", &[]),
            Ok(OBS)
        );
        // SigV2 goes to OBS, which accepts it for OBS grants only.
        assert_eq!(
            front("PUT", "/b/k", &[("authorization", "AWS AK:c2ln")]),
            Ok(OBS)
        );
        assert_eq!(
            front("PUT", "/b/k?AWSAccessKeyId=AK&Expires=1&Signature=s", &[]),
            Ok(OBS)
        );
    }

    #[test]
    fn unsigned_form_sigv2_and_mixed_requests_are_refused() {
        assert_eq!(
            check(&request("PUT", "/b/k", &[])),
            Err((Refusal::Unsigned, Front::S3))
        );
        assert_eq!(
            check(&request("PUT", "/k", &[("x-oss-security-token", "t")])),
            Err((Refusal::Unsigned, OSS))
        );
        assert_eq!(
            check(&request("PUT", "/k", &[("x-obs-date", "d")])),
            Err((Refusal::Unsigned, OBS))
        );
        let form = [("content-type", "Multipart/Form-Data; boundary=x")];
        assert_eq!(
            refusal(check(&request("POST", "/b", &form))),
            Some(Refusal::FormUpload)
        );
        let signed_form = [("authorization", V4), form[0]];
        assert_eq!(
            refusal(check(&request("POST", "/b", &signed_form))),
            Some(Refusal::FormUpload)
        );
        for query in ["/b/k?Expires=1&Signature=c2ln", "/b/k?Signature=c2ln"] {
            assert_eq!(
                refusal(check(&request("PUT", query, &[]))),
                Some(Refusal::NotSupported),
                "{query}"
            );
        }
        let mixed = "/k?OSSAccessKeyId=AK&Expires=1&Signature=s";
        assert_eq!(
            refusal(check(&request("PUT", mixed, &[("authorization", V4)]))),
            Some(Refusal::NotSupported)
        );
        for md5 in ["", "AAAA", "not base64!"] {
            let headers = [("authorization", "OBS AK:c2ln"), ("content-md5", md5)];
            assert_eq!(
                check(&request("PUT", "/b/k", &headers)),
                Err((Refusal::BadContentMd5, OBS)),
                "{md5:?}"
            );
        }
        let good = [
            ("authorization", V4),
            ("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
        ];
        assert_eq!(check(&request("PUT", "/b/k", &good)), Ok(Front::S3));
        let unmeasured = [("authorization", "OSS AK:c2ln")];
        assert_eq!(
            check(&request("POST", "/k?uploadId=u", &unmeasured)),
            Err((Refusal::MissingLength, OSS))
        );
        let two = http::Request::builder()
            .uri("/b/k")
            .header("authorization", V4)
            .header("authorization", V4)
            .body(())
            .unwrap();
        assert_eq!(refusal(check(&two)), Some(Refusal::NotSupported));
    }
}
