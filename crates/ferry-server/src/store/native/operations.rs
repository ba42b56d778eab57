//! The OSS and OBS fronts' operations: each reads its arguments from the decoded request, calls
//! the [`Core`], and answers in the dialect's headers and XML (upper-case ETags and the CRC-64
//! for OSS, OBS's namespace).

use std::time::Duration;

use http_body_util::{BodyDataStream, BodyExt, Limited};
use hyper::body::Incoming;
use s3s::HttpResponse;
use serde::Deserialize;

use super::Failure;
use super::dialect::Dialect;
use super::reply::{self, Reply};
use super::request::Received;
use crate::callbacks::{Asked, Committed, Delivery, Outcome, Vendor};
use crate::grants::Principal;
use crate::store::admission::MAX_XML_BODY;
use crate::store::core::{Core, IfExists, ListedPart, StoreError, Stored, Upload, UploadListing};
use crate::store::rules::Operation;

/// Longest a CompleteMultipartUpload body may take to arrive (it is small).
const XML_BODY_TIMEOUT: Duration = Duration::from_secs(60);

type Answer = Result<HttpResponse, Failure>;

/// One allowed request on its way to the core.
pub(super) struct Call<'a> {
    pub(super) core: &'a Core,
    pub(super) delivery: &'a Delivery,
    pub(super) who: &'a Principal,
    pub(super) received: &'a Received,
    pub(super) reply: &'a Reply,
}

impl Call<'_> {
    /// Runs `op` (already allowed) and answers it.
    pub(super) async fn run(&self, op: Operation, body: Incoming) -> Answer {
        match op {
            Operation::PutObject => self.put_object(body).await,
            Operation::CreateMultipartUpload => self.create().await,
            Operation::UploadPart => self.upload_part(body).await,
            Operation::CompleteMultipartUpload => self.complete(body).await,
            Operation::ListParts => self.list_parts().await,
            Operation::AbortMultipartUpload => self.abort().await,
            Operation::HeadObject => self.head().await,
            Operation::ListMultipartUploads => self.list_uploads().await,
        }
    }
}

/// `<CompleteMultipartUpload>` as the SDKs send it.
#[derive(Deserialize)]
struct CompleteRequest {
    #[serde(rename = "Part", default)]
    parts: Vec<CompleteRequestPart>,
}

#[derive(Deserialize)]
struct CompleteRequestPart {
    #[serde(rename = "PartNumber")]
    number: i32,
    #[serde(rename = "ETag", default)]
    etag: Option<String>,
}

fn invalid(message: String) -> Failure {
    StoreError::InvalidArgument(message).into()
}

impl Call<'_> {
    fn bucket(&self) -> &str {
        &self.received.bucket
    }

    /// The object key (operations on objects only run with one).
    fn key(&self) -> &str {
        self.received.key.as_deref().unwrap_or_default()
    }

    fn param<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Failure> {
        match self.received.param(name) {
            None | Some("") => Ok(None),
            Some(value) => value
                .parse()
                .map(Some)
                .map_err(|_| invalid(format!("{name} {value:?} is not a number"))),
        }
    }

    fn upload_id(&self) -> Result<&str, Failure> {
        self.received
            .param("uploadId")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| invalid("uploadId is missing".into()))
    }

    /// Keys are URL-encoded in answers when the client asked for `encoding-type=url`.
    fn encoding(&self) -> Option<&'static str> {
        (self.received.param("encoding-type") == Some("url")).then_some("url")
    }

    fn encode_key(&self, key: &str) -> String {
        match self.encoding() {
            Some(_) => ferry_sign::uri_encode(key, false),
            None => key.to_owned(),
        }
    }

    fn upload(&self, body: Incoming) -> Result<Upload<BodyDataStream<Incoming>>, Failure> {
        let content_length = match self.received.header("content-length") {
            Some(value) => Some(
                value
                    .trim()
                    .parse()
                    .map_err(|_| invalid("Content-Length is not a number".into()))?,
            ),
            None => None,
        };
        Ok(Upload {
            body: BodyDataStream::new(body),
            content_md5: self.received.header("content-md5").map(str::to_owned),
            content_length,
        })
    }

    /// ETag and (OSS) CRC-64 headers of stored bytes.
    fn stored_headers(&self, stored: &Stored) -> Vec<(&'static str, String)> {
        let dialect = self.reply.dialect;
        let mut headers = vec![("etag", dialect.etag(&stored.etag))];
        if let (Some(name), Some(crc)) = (dialect.crc64_header(), stored.crc64) {
            headers.push((name, crc.to_string()));
        }
        headers
    }

    /// The callback the request asks for, checked before anything is stored.
    fn asked_callback(&self) -> Result<Option<Asked>, Failure> {
        let vendor = match self.reply.dialect {
            Dialect::Oss => Vendor::Oss,
            Dialect::Obs => Vendor::Obs,
        };
        self.delivery
            .asked(vendor, |name| self.received.header(name))
            .map_err(invalid)
    }

    /// The answer to a stored object: plain, or after its callback (the callback's answer, or
    /// `203 CallbackFailed` with the object kept).
    async fn stored_answer(
        &self,
        stored: &Stored,
        asked: Option<Asked>,
        plain: HttpResponse,
    ) -> HttpResponse {
        let Some(asked) = asked else {
            return plain;
        };
        let dialect = self.reply.dialect;
        let etag = dialect.etag(&stored.etag);
        let committed = Committed {
            bucket: self.bucket(),
            key: self.key(),
            etag: etag.trim_matches('"'),
            size: stored.size,
            mime_type: self
                .received
                .header("content-type")
                .unwrap_or("application/octet-stream"),
        };
        let vendor = match dialect {
            Dialect::Oss => Vendor::Oss,
            Dialect::Obs => Vendor::Obs,
        };
        let mut response = match self.delivery.deliver(vendor, &asked, &committed).await {
            Outcome::Answered { body, content_type } => {
                let headers = [("content-type", content_type)];
                let mut response = self.reply.empty(http::StatusCode::OK, &headers);
                *response.body_mut() = s3s::Body::from(body);
                response
            }
            Outcome::Failed(reason) => {
                tracing::info!(%reason, key = self.key(), "callback failed; the object is kept");
                let named = super::dialect::Named {
                    status: http::StatusCode::NON_AUTHORITATIVE_INFORMATION,
                    code: "CallbackFailed",
                    ec: None,
                };
                self.reply.error(named, &reason)
            }
        };
        for (name, value) in self.stored_headers(stored) {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }

    /// Whether the write may replace an object: the dialect's forbid-overwrite header, `true`
    /// or `false` (any case); another value is refused, as OSS does.
    fn if_exists(&self) -> Result<IfExists, Failure> {
        let Some(name) = self.reply.dialect.forbid_overwrite_header() else {
            return Ok(IfExists::Replace);
        };
        match self.received.header(name).map(str::trim) {
            None => Ok(IfExists::Replace),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(IfExists::Replace),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(IfExists::Refuse),
            Some(v) => Err(invalid(format!("{name} is {v:?}; it takes true or false"))),
        }
    }

    async fn put_object(&self, body: Incoming) -> Answer {
        let asked = self.asked_callback()?;
        let if_exists = self.if_exists()?;
        let upload = self.upload(body)?;
        let stored = self
            .core
            .put_object(self.who, self.bucket(), self.key(), upload, if_exists)
            .await?;
        let plain = self
            .reply
            .empty(http::StatusCode::OK, &self.stored_headers(&stored));
        Ok(self.stored_answer(&stored, asked, plain).await)
    }

    async fn create(&self) -> Answer {
        // OSS checks the condition when the upload begins too: nothing is sent in vain.
        self.core
            .check_new(self.bucket(), self.key(), self.if_exists()?)
            .await?;
        let upload_id = self
            .core
            .create_multipart(self.who, self.bucket(), self.key())
            .await?;
        let document = reply::Initiated {
            xmlns: self.reply.dialect.xmlns(),
            bucket: self.bucket().to_owned(),
            key: self.encode_key(self.key()),
            upload_id,
            encoding_type: self.encoding(),
        };
        Ok(self.reply.xml("InitiateMultipartUploadResult", &document))
    }

    async fn upload_part(&self, body: Incoming) -> Answer {
        let number = self
            .param::<i32>("partNumber")?
            .ok_or_else(|| invalid("partNumber is missing".into()))?;
        let upload_id = self.upload_id()?;
        let upload = self.upload(body)?;
        let stored = self
            .core
            .upload_part(
                self.who,
                self.bucket(),
                self.key(),
                upload_id,
                number,
                upload,
            )
            .await?;
        Ok(self
            .reply
            .empty(http::StatusCode::OK, &self.stored_headers(&stored)))
    }

    /// The parts a completion lists, read from its (small, length-checked) body.
    async fn listed_parts(&self, body: Incoming) -> Result<Vec<ListedPart>, Failure> {
        let read =
            tokio::time::timeout(XML_BODY_TIMEOUT, Limited::new(body, MAX_XML_BODY).collect())
                .await
                .map_err(|_| {
                    StoreError::RequestTimeout("the request body stopped arriving".into())
                })?
                .map_err(|err| StoreError::IncompleteBody(err.to_string()))?
                .to_bytes();
        let text = std::str::from_utf8(&read)
            .map_err(|_| StoreError::MalformedXml("the body is not UTF-8".into()))?;
        let request: CompleteRequest = quick_xml::de::from_str(text).map_err(|err| {
            StoreError::MalformedXml(format!("the body is not a part list: {err}"))
        })?;
        Ok(request
            .parts
            .into_iter()
            .map(|p| ListedPart {
                number: p.number,
                etag: p.etag,
            })
            .collect())
    }

    async fn complete(&self, body: Incoming) -> Answer {
        let upload_id = self.upload_id()?;
        if self.received.header("x-oss-complete-all").is_some() {
            return Err(invalid(
                "x-oss-complete-all is not supported: list the parts".into(),
            ));
        }
        let asked = self.asked_callback()?;
        let if_exists = self.if_exists()?;
        let listed = self.listed_parts(body).await?;
        let stored = self
            .core
            .complete(
                self.who,
                self.bucket(),
                self.key(),
                upload_id,
                &listed,
                if_exists,
            )
            .await?;
        let document = reply::Completed {
            xmlns: self.reply.dialect.xmlns(),
            encoding_type: self.encoding(),
            location: format!(
                "http://{}/{}",
                self.received.host,
                ferry_sign::uri_encode(self.key(), true)
            ),
            bucket: self.bucket().to_owned(),
            key: self.encode_key(self.key()),
            etag: self.reply.dialect.etag(&stored.etag),
        };
        let mut response = self.reply.xml("CompleteMultipartUploadResult", &document);
        for (name, value) in self.stored_headers(&stored) {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        Ok(self.stored_answer(&stored, asked, response).await)
    }

    async fn list_parts(&self) -> Answer {
        let upload_id = self.upload_id()?;
        let page = self
            .core
            .list_parts(
                self.who,
                self.bucket(),
                self.key(),
                upload_id,
                self.param("part-number-marker")?,
                self.param("max-parts")?,
            )
            .await?;
        let dialect = self.reply.dialect;
        let document = reply::Parts {
            xmlns: dialect.xmlns(),
            bucket: self.bucket().to_owned(),
            encoding_type: self.encoding(),
            key: self.encode_key(self.key()),
            upload_id: upload_id.to_owned(),
            part_number_marker: page.marker,
            next_part_number_marker: page
                .next_marker
                .or(page.parts.last().map(|p| p.part_number))
                .unwrap_or(0),
            max_parts: page.max,
            is_truncated: page.next_marker.is_some(),
            parts: page
                .parts
                .into_iter()
                .map(|p| reply::ListedPart {
                    part_number: p.part_number,
                    last_modified: reply::iso_time(p.modified_at),
                    etag: dialect.etag(&p.etag),
                    crc64: dialect
                        .crc64_header()
                        .and(p.crc64)
                        .map(|crc| crc.to_string()),
                    size: p.size,
                })
                .collect(),
        };
        Ok(self.reply.xml("ListPartsResult", &document))
    }

    async fn abort(&self) -> Answer {
        let upload_id = self.upload_id()?;
        self.core
            .abort(self.who, self.bucket(), self.key(), upload_id)
            .await?;
        Ok(self.reply.empty(http::StatusCode::NO_CONTENT, &[]))
    }

    async fn head(&self) -> Answer {
        let object = self.core.head(self.bucket(), self.key()).await?;
        let dialect = self.reply.dialect;
        let kind = if object.etag.contains('-') {
            "Multipart"
        } else {
            "Normal"
        };
        let mut headers = vec![
            ("content-length", object.size.to_string()),
            ("content-type", "application/octet-stream".to_owned()),
            ("etag", dialect.etag(&object.etag)),
            ("last-modified", reply::http_time(object.created_at)),
        ];
        if let (Some(name), Some(crc)) = (dialect.crc64_header(), object.crc64) {
            headers.push((name, crc.to_string()));
            headers.push(("x-oss-object-type", kind.to_owned()));
        }
        Ok(self.reply.empty(http::StatusCode::OK, &headers))
    }

    async fn list_uploads(&self) -> Answer {
        let listing = UploadListing {
            prefix: self.received.param("prefix").map(str::to_owned),
            key_marker: self
                .received
                .param("key-marker")
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
            upload_id_marker: self
                .received
                .param("upload-id-marker")
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
            max: self.param("max-uploads")?,
        };
        let page = self
            .core
            .list_uploads(self.who, self.bucket(), listing.clone())
            .await?;
        let (next_key, next_id) = page.next.clone().unwrap_or_default();
        let document = reply::Uploads {
            xmlns: self.reply.dialect.xmlns(),
            bucket: self.bucket().to_owned(),
            encoding_type: self.encoding(),
            key_marker: self.encode_key(&listing.key_marker.unwrap_or_default()),
            upload_id_marker: listing.upload_id_marker.unwrap_or_default(),
            next_key_marker: self.encode_key(&next_key),
            next_upload_id_marker: next_id,
            prefix: self.encode_key(&page.prefix),
            max_uploads: page.max,
            is_truncated: page.next.is_some(),
            uploads: page
                .uploads
                .into_iter()
                .map(|u| reply::ListedUpload {
                    key: self.encode_key(&u.key),
                    upload_id: u.upload_id,
                    initiated: reply::iso_time(u.initiated_at),
                })
                .collect(),
        };
        Ok(self.reply.xml("ListMultipartUploadsResult", &document))
    }
}
