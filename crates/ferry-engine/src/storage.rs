//! S3 operations against the grant's store, each signed just before it is sent. A request the
//! store rejects for its credentials (`ExpiredToken`, `InvalidToken`, `InvalidAccessKeyId`) is
//! retried once with a fresh grant; `RequestTimeTooSkewed` corrects the clock offset and retries
//! once; transient failures (connection errors, timeouts, 5xx, 429) retry with jittered
//! exponential backoff, bounded in count.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferry_protocol::Grant;
use futures::StreamExt;
use rand::Rng;
use time::OffsetDateTime;

use crate::credentials::Credentials;
use crate::dialect::{SigningCredentials, UnsignedRequest, key_path, s3, uri_encode};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::transfer::throttle::Throttle;

/// Attempts per request for transient failures.
const ATTEMPTS: u32 = 5;
/// First backoff; doubled each time, with jitter.
const BACKOFF: Duration = Duration::from_millis(250);
/// Body chunk for bandwidth limiting and progress.
const CHUNK: usize = 64 * 1024;

/// The body of a request: bytes in memory (at most one part), with an optional progress
/// callback that learns how many bytes went out.
#[derive(Clone, Default)]
pub(crate) struct Payload {
    pub(crate) bytes: Bytes,
    pub(crate) content_md5: Option<String>,
    pub(crate) progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

/// A successful reply.
pub(crate) struct Reply {
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn etag(&self) -> Option<String> {
        self.headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().trim_matches('"').to_owned())
            .or_else(|| xml_value(&self.text(), "ETag").map(|v| v.trim_matches('"').to_owned()))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// First `<tag>…</tag>` of an S3 XML body.
pub(crate) fn xml_value(xml: &str, tag: &str) -> Option<String> {
    xml_values(xml, tag).into_iter().next()
}

/// Every `<tag>…</tag>` of an S3 XML body, unescaped.
pub(crate) fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(
            after[..end]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    out
}

/// A part as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredPart {
    pub(crate) number: u32,
    pub(crate) size: u64,
    pub(crate) etag: String,
}

/// The store client.
#[derive(Clone)]
pub(crate) struct Storage {
    http: reqwest::Client,
    credentials: Arc<Credentials>,
    throttle: Option<Arc<Throttle>>,
}

fn is_credential_rejection(code: &str) -> bool {
    matches!(
        code,
        "ExpiredToken" | "InvalidToken" | "InvalidAccessKeyId" | "TokenRefreshRequired"
    )
}

fn jittered(attempt: u32) -> Duration {
    let base = BACKOFF * 2u32.pow(attempt.min(6));
    let jitter = rand::thread_rng().gen_range(0.5..1.5);
    base.mul_f64(jitter)
}

impl Storage {
    pub(crate) fn new(
        credentials: Arc<Credentials>,
        throttle: Option<Arc<Throttle>>,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|source| Error::Network {
                operation: "starting the HTTP client",
                target: String::new(),
                source,
            })?;
        Ok(Self {
            http,
            credentials,
            throttle,
        })
    }

    /// The grant requests are signed with now.
    pub(crate) async fn grant(&self) -> Result<Arc<Grant>> {
        self.credentials.current().await
    }

    fn body(&self, payload: &Payload) -> reqwest::Body {
        let bytes = payload.bytes.clone();
        if self.throttle.is_none() && payload.progress.is_none() {
            return reqwest::Body::from(bytes);
        }
        let throttle = self.throttle.clone();
        let progress = payload.progress.clone();
        let chunks: Vec<Bytes> = (0..bytes.len())
            .step_by(CHUNK)
            .map(|start| bytes.slice(start..(start + CHUNK).min(bytes.len())))
            .collect();
        let stream = futures::stream::iter(chunks).then(move |chunk| {
            let throttle = throttle.clone();
            let progress = progress.clone();
            async move {
                if let Some(throttle) = throttle {
                    throttle.take(chunk.len() as u64).await;
                }
                if let Some(progress) = progress {
                    progress(chunk.len() as u64);
                }
                Ok::<_, std::io::Error>(chunk)
            }
        });
        reqwest::Body::wrap_stream(stream)
    }

    /// Sends one S3 request to `key` (full key, unencoded) with a raw query.
    pub(crate) async fn call(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        key: Option<&str>,
        query: &str,
        payload: Payload,
    ) -> Result<Reply> {
        let mut grant = self.credentials.current().await?;
        let mut refreshed = false;
        let mut skew_fixed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .send_once(operation, &method, &grant, key, query, &payload)
                .await;
            let err = match result {
                Ok(reply) => return Ok(reply),
                Err(err) => err,
            };
            match &err {
                Error::Storage { code, .. } if is_credential_rejection(code) && !refreshed => {
                    refreshed = true;
                    grant = self
                        .credentials
                        .after_rejection(&grant.access_key_id)
                        .await?;
                    continue;
                }
                Error::Storage { code, .. } if code == "RequestTimeTooSkewed" && !skew_fixed => {
                    skew_fixed = true;
                    continue;
                }
                _ => {}
            }
            if err.is_transient() && attempt < ATTEMPTS {
                tracing::debug!(operation, attempt, error = %err, "retrying");
                tokio::time::sleep(jittered(attempt - 1)).await;
                grant = self.credentials.current().await?;
                continue;
            }
            return Err(err);
        }
    }

    async fn send_once(
        &self,
        operation: &'static str,
        method: &reqwest::Method,
        grant: &Grant,
        key: Option<&str>,
        query: &str,
        payload: &Payload,
    ) -> Result<Reply> {
        let path = match key {
            Some(key) => key_path(&grant.bucket, key),
            None => format!("/{}", uri_encode(&grant.bucket, false)),
        };
        let mut url = format!("{}{path}", grant.endpoint.trim_end_matches('/'));
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        let mut headers = Vec::new();
        if let Some(md5) = &payload.content_md5 {
            headers.push(("content-md5".to_owned(), md5.clone()));
        }
        let credentials = SigningCredentials {
            access_key_id: grant.access_key_id.clone(),
            secret_access_key: Secret::new(grant.secret_access_key.clone()),
            security_token: Some(Secret::new(grant.security_token.clone())),
        };
        let scope = s3::Scope {
            region: &grant.region,
            service: "s3",
            time: self.credentials.now(),
        };
        let request = UnsignedRequest {
            method: method.as_str().to_owned(),
            url,
            headers,
        };
        let signed = s3::sign(&request, &credentials, &scope, s3::UNSIGNED_PAYLOAD)?;
        // A streamed body would otherwise go out chunked; stores want the length.
        let mut builder = self
            .http
            .request(method.clone(), &signed.url)
            .header("content-length", payload.bytes.len());
        for (name, value) in &signed.headers {
            if !name.eq_ignore_ascii_case("host") {
                builder = builder.header(name, value);
            }
        }
        let network = |source| Error::Network {
            operation,
            target: grant.endpoint.clone(),
            source,
        };
        let response = builder
            .body(self.body(payload))
            .send()
            .await
            .map_err(network)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(network)?;
        if (200..300).contains(&status) {
            return Ok(Reply { headers, body });
        }
        let text = String::from_utf8_lossy(&body);
        let code = xml_value(&text, "Code").unwrap_or_else(|| format!("HTTP{status}"));
        if code == "RequestTimeTooSkewed"
            && let Some(date) = headers.get("date").and_then(|d| d.to_str().ok())
            && let Ok(server) =
                OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822)
        {
            self.credentials.correct_clock(server);
        }
        Err(Error::Storage {
            operation,
            status,
            message: xml_value(&text, "Message").unwrap_or_default(),
            code,
        })
    }

    /// PutObject; the ETag.
    pub(crate) async fn put_object(&self, key: &str, payload: Payload) -> Result<String> {
        let reply = self
            .call("PutObject", reqwest::Method::PUT, Some(key), "", payload)
            .await?;
        reply.etag().ok_or(Error::Protocol {
            operation: "PutObject",
            detail: "no ETag".into(),
        })
    }

    /// CreateMultipartUpload; the upload id.
    pub(crate) async fn create_multipart(&self, key: &str) -> Result<String> {
        let reply = self
            .call(
                "CreateMultipartUpload",
                reqwest::Method::POST,
                Some(key),
                "uploads=",
                Payload::default(),
            )
            .await?;
        xml_value(&reply.text(), "UploadId").ok_or(Error::Protocol {
            operation: "CreateMultipartUpload",
            detail: "no UploadId".into(),
        })
    }

    /// UploadPart; the ETag.
    pub(crate) async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        payload: Payload,
    ) -> Result<String> {
        let query = format!(
            "partNumber={number}&uploadId={}",
            uri_encode(upload_id, false)
        );
        let reply = self
            .call(
                "UploadPart",
                reqwest::Method::PUT,
                Some(key),
                &query,
                payload,
            )
            .await?;
        reply.etag().ok_or(Error::Protocol {
            operation: "UploadPart",
            detail: "no ETag".into(),
        })
    }

    /// Every part of an upload, following pages.
    pub(crate) async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<StoredPart>> {
        let mut parts = Vec::new();
        let mut marker = 0u32;
        for _ in 0..100 {
            let query = format!(
                "part-number-marker={marker}&uploadId={}",
                uri_encode(upload_id, false)
            );
            let reply = self
                .call(
                    "ListParts",
                    reqwest::Method::GET,
                    Some(key),
                    &query,
                    Payload::default(),
                )
                .await?;
            let text = reply.text();
            for part in xml_values(&text, "Part") {
                let number = xml_value(&part, "PartNumber").and_then(|n| n.parse().ok());
                let size = xml_value(&part, "Size").and_then(|n| n.parse().ok());
                let etag = xml_value(&part, "ETag").map(|e| e.trim_matches('"').to_owned());
                if let (Some(number), Some(size), Some(etag)) = (number, size, etag) {
                    parts.push(StoredPart { number, size, etag });
                }
            }
            let truncated = xml_value(&text, "IsTruncated").as_deref() == Some("true");
            match xml_value(&text, "NextPartNumberMarker").and_then(|n| n.parse().ok()) {
                Some(next) if truncated && next > marker => marker = next,
                _ => return Ok(parts),
            }
        }
        Ok(parts)
    }

    /// CompleteMultipartUpload; the ETag.
    pub(crate) async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<String> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (number, etag) in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>\"{etag}\"</ETag></Part>"
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let query = format!("uploadId={}", uri_encode(upload_id, false));
        let payload = Payload {
            bytes: Bytes::from(xml),
            ..Default::default()
        };
        let reply = self
            .call(
                "CompleteMultipartUpload",
                reqwest::Method::POST,
                Some(key),
                &query,
                payload,
            )
            .await?;
        let text = reply.text();
        if xml_value(&text, "Code").is_some() {
            // S3 may answer 200 with an error body when Complete fails late.
            return Err(Error::Storage {
                operation: "CompleteMultipartUpload",
                status: 500,
                code: xml_value(&text, "Code").unwrap_or_default(),
                message: xml_value(&text, "Message").unwrap_or_default(),
            });
        }
        xml_value(&text, "ETag")
            .map(|e| e.trim_matches('"').to_owned())
            .ok_or(Error::Protocol {
                operation: "CompleteMultipartUpload",
                detail: "no ETag".into(),
            })
    }

    /// AbortMultipartUpload; an upload that is already gone is fine.
    pub(crate) async fn abort(&self, key: &str, upload_id: &str) -> Result<()> {
        let query = format!("uploadId={}", uri_encode(upload_id, false));
        match self
            .call(
                "AbortMultipartUpload",
                reqwest::Method::DELETE,
                Some(key),
                &query,
                Payload::default(),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(Error::Storage { code, .. }) if code == "NoSuchUpload" => Ok(()),
            Err(err) => Err(err),
        }
    }
}
