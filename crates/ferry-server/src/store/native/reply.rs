//! The OSS and OBS fronts' answers: the request-id headers every reply carries, the error
//! document (`<Error><Code/><Message/><RequestId/><HostId/>…`), and the multipart XML documents,
//! serialised with quick-xml from the types below.

use s3s::{Body, HttpResponse};
use serde::Serialize;
use time::OffsetDateTime;

use super::dialect::{Dialect, Named};

/// The answer to one request: who answers and under which request id.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) dialect: Dialect,
    pub(crate) request_id: String,
    /// What `HostId` names: the host the client addressed.
    pub(crate) host: String,
    /// A HEAD request's answers have no body.
    pub(crate) head: bool,
}

/// An ISO 8601 time with milliseconds, as the vendors write `LastModified` and `Initiated`.
pub(crate) fn iso_time(unix: i64) -> String {
    let time = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z");
    time.format(&format).unwrap_or_default()
}

/// An RFC 1123 date, for `Last-Modified` and `Date`.
pub(crate) fn http_time(unix: i64) -> String {
    let time = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time.format(&format).unwrap_or_default()
}

#[derive(Serialize)]
struct ErrorDocument<'a> {
    #[serde(rename = "Code")]
    code: &'a str,
    #[serde(rename = "Message")]
    message: &'a str,
    #[serde(rename = "RequestId")]
    request_id: &'a str,
    #[serde(rename = "HostId")]
    host_id: &'a str,
    #[serde(rename = "EC", skip_serializing_if = "Option::is_none")]
    ec: Option<&'a str>,
}

const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

impl Reply {
    /// A new request id (24 upper-case hex digits, like OSS's).
    pub(crate) fn new(dialect: Dialect, host: &str, head: bool) -> Self {
        let id = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_ascii_uppercase();
        Self {
            dialect,
            request_id: id[..24].to_owned(),
            host: host.to_owned(),
            head,
        }
    }

    /// A response with the headers every answer carries.
    pub(crate) fn builder(&self, status: http::StatusCode) -> http::response::Builder {
        let builder = http::Response::builder()
            .status(status)
            .header(http::header::SERVER, self.dialect.server())
            .header(http::header::DATE, http_time(crate::db::now()))
            .header(self.dialect.request_id_header(), &self.request_id);
        match self.dialect {
            Dialect::Obs => builder.header("x-obs-id-2", &self.request_id),
            Dialect::Oss => builder,
        }
    }

    fn finish(&self, builder: http::response::Builder, body: Body) -> HttpResponse {
        builder.body(body).unwrap_or_else(|err| {
            tracing::error!(%err, "building a store reply failed");
            let mut response = http::Response::new(Body::empty());
            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            response
        })
    }

    /// The dialect's error document (no body for HEAD; the code is in headers too).
    pub(crate) fn error(&self, named: Named, message: &str) -> HttpResponse {
        let document = ErrorDocument {
            code: named.code,
            message,
            request_id: &self.request_id,
            host_id: &self.host,
            ec: named.ec,
        };
        let mut builder = self
            .builder(named.status)
            .header(http::header::CONTENT_TYPE, "application/xml");
        builder = match self.dialect {
            Dialect::Oss => match named.ec {
                Some(ec) => builder.header("x-oss-ec", ec),
                None => builder,
            },
            Dialect::Obs => builder
                .header("x-obs-error-code", named.code)
                .header("x-obs-error-message", message_header(message)),
        };
        if self.head {
            return self.finish(builder, Body::empty());
        }
        let xml = quick_xml::se::to_string_with_root("Error", &document)
            .map(|doc| format!("{XML_DECLARATION}{doc}"))
            .unwrap_or_default();
        self.finish(builder, Body::from(xml))
    }

    /// An XML document named `root`.
    pub(crate) fn xml<T: Serialize>(&self, root: &str, document: &T) -> HttpResponse {
        match quick_xml::se::to_string_with_root(root, document) {
            Ok(doc) => self.finish(
                self.builder(http::StatusCode::OK)
                    .header(http::header::CONTENT_TYPE, "application/xml"),
                Body::from(format!("{XML_DECLARATION}{doc}")),
            ),
            Err(err) => {
                tracing::error!(%err, "serialising a store reply failed");
                let named = Named {
                    status: http::StatusCode::INTERNAL_SERVER_ERROR,
                    code: "InternalError",
                    ec: None,
                };
                self.error(named, "the store could not write its answer")
            }
        }
    }

    /// An empty answer with extra headers.
    pub(crate) fn empty(
        &self,
        status: http::StatusCode,
        headers: &[(&str, String)],
    ) -> HttpResponse {
        let mut builder = self.builder(status);
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        self.finish(builder, Body::empty())
    }
}

/// A message fit for a header value (ASCII, no line breaks).
fn message_header(message: &str) -> String {
    message
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .collect()
}

/// `InitiateMultipartUploadResult`.
#[derive(Serialize)]
pub(crate) struct Initiated {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none")]
    pub(crate) xmlns: Option<&'static str>,
    #[serde(rename = "Bucket")]
    pub(crate) bucket: String,
    #[serde(rename = "Key")]
    pub(crate) key: String,
    #[serde(rename = "UploadId")]
    pub(crate) upload_id: String,
    #[serde(rename = "EncodingType", skip_serializing_if = "Option::is_none")]
    pub(crate) encoding_type: Option<&'static str>,
}

/// `CompleteMultipartUploadResult`.
#[derive(Serialize)]
pub(crate) struct Completed {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none")]
    pub(crate) xmlns: Option<&'static str>,
    #[serde(rename = "EncodingType", skip_serializing_if = "Option::is_none")]
    pub(crate) encoding_type: Option<&'static str>,
    #[serde(rename = "Location")]
    pub(crate) location: String,
    #[serde(rename = "Bucket")]
    pub(crate) bucket: String,
    #[serde(rename = "Key")]
    pub(crate) key: String,
    #[serde(rename = "ETag")]
    pub(crate) etag: String,
}

/// One `Part` of `ListPartsResult`.
#[derive(Serialize)]
pub(crate) struct ListedPart {
    #[serde(rename = "PartNumber")]
    pub(crate) part_number: i32,
    #[serde(rename = "LastModified")]
    pub(crate) last_modified: String,
    #[serde(rename = "ETag")]
    pub(crate) etag: String,
    #[serde(rename = "HashCrc64ecma", skip_serializing_if = "Option::is_none")]
    pub(crate) crc64: Option<String>,
    #[serde(rename = "Size")]
    pub(crate) size: u64,
}

/// `ListPartsResult`.
#[derive(Serialize)]
pub(crate) struct Parts {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none")]
    pub(crate) xmlns: Option<&'static str>,
    #[serde(rename = "Bucket")]
    pub(crate) bucket: String,
    #[serde(rename = "EncodingType", skip_serializing_if = "Option::is_none")]
    pub(crate) encoding_type: Option<&'static str>,
    #[serde(rename = "Key")]
    pub(crate) key: String,
    #[serde(rename = "UploadId")]
    pub(crate) upload_id: String,
    #[serde(rename = "PartNumberMarker")]
    pub(crate) part_number_marker: i32,
    #[serde(rename = "NextPartNumberMarker")]
    pub(crate) next_part_number_marker: i32,
    #[serde(rename = "MaxParts")]
    pub(crate) max_parts: i32,
    #[serde(rename = "IsTruncated")]
    pub(crate) is_truncated: bool,
    #[serde(rename = "Part")]
    pub(crate) parts: Vec<ListedPart>,
}

/// One `Upload` of `ListMultipartUploadsResult`.
#[derive(Serialize)]
pub(crate) struct ListedUpload {
    #[serde(rename = "Key")]
    pub(crate) key: String,
    #[serde(rename = "UploadId")]
    pub(crate) upload_id: String,
    #[serde(rename = "Initiated")]
    pub(crate) initiated: String,
}

/// `ListMultipartUploadsResult`.
#[derive(Serialize)]
pub(crate) struct Uploads {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none")]
    pub(crate) xmlns: Option<&'static str>,
    #[serde(rename = "Bucket")]
    pub(crate) bucket: String,
    #[serde(rename = "EncodingType", skip_serializing_if = "Option::is_none")]
    pub(crate) encoding_type: Option<&'static str>,
    #[serde(rename = "KeyMarker")]
    pub(crate) key_marker: String,
    #[serde(rename = "UploadIdMarker")]
    pub(crate) upload_id_marker: String,
    #[serde(rename = "NextKeyMarker")]
    pub(crate) next_key_marker: String,
    #[serde(rename = "NextUploadIdMarker")]
    pub(crate) next_upload_id_marker: String,
    #[serde(rename = "Prefix")]
    pub(crate) prefix: String,
    #[serde(rename = "MaxUploads")]
    pub(crate) max_uploads: i32,
    #[serde(rename = "IsTruncated")]
    pub(crate) is_truncated: bool,
    #[serde(rename = "Upload")]
    pub(crate) uploads: Vec<ListedUpload>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_escaped_and_namespaced() {
        let reply = Reply::new(Dialect::Obs, "127.0.0.1:1", false);
        let response = reply.xml(
            "InitiateMultipartUploadResult",
            &Initiated {
                xmlns: Dialect::Obs.xmlns(),
                bucket: "ferry".into(),
                key: "uploads/1/a&b<c>".into(),
                upload_id: "u".into(),
                encoding_type: None,
            },
        );
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(
            response.headers()["x-obs-request-id"].to_str().unwrap(),
            reply.request_id
        );
        let xml = quick_xml::se::to_string_with_root(
            "InitiateMultipartUploadResult",
            &Initiated {
                xmlns: Dialect::Obs.xmlns(),
                bucket: "ferry".into(),
                key: "a&b<c>".into(),
                upload_id: "u".into(),
                encoding_type: None,
            },
        )
        .unwrap();
        assert!(xml.starts_with(
            "<InitiateMultipartUploadResult xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\">"
        ));
        assert!(xml.contains("<Key>a&amp;b&lt;c&gt;</Key>"), "{xml}");
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(http_time(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
