//! S3 operations against the grant's store, each signed just before it is sent. A request the
//! store rejects for its credentials (`ExpiredToken`, `InvalidToken`, `InvalidAccessKeyId`) is
//! retried once with a fresh grant; `RequestTimeTooSkewed` corrects the clock offset and retries
//! once; transient failures (connection errors, timeouts, 5xx, 429) retry with jittered
//! exponential backoff, bounded in count.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use ferry_protocol::Grant;
use futures::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use crate::credentials::Credentials;
use crate::dialect::s3::xml::{self, ListedPart};
use crate::dialect::{Dialect, Refusal, SigningCredentials, UnsignedRequest, uri_encode};
use crate::error::{Error, Result};
use crate::events::EventSink;
use crate::journal::Owner;
use crate::network::Client;
use crate::retry::{self, ATTEMPTS};

mod callback;
mod span;
mod stall;

pub(crate) use self::callback::CallbackOutcome;
pub(crate) use self::span::BLOCK;

use self::stall::{Stall, read_answer};
use crate::secret::Secret;
use crate::transfer::throttle::Throttle;

/// Body chunk for bandwidth limiting, progress and the stall watch.
const CHUNK: usize = 64 * 1024;
/// Largest answer read from the store (its answers are XML of a few KiB at most).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// Where a request body's bytes come from.
#[derive(Clone)]
pub(crate) enum Body {
    /// In memory: small bodies (XML, one small file).
    Bytes(Bytes),
    /// A span of a file, read as it is sent, a few blocks at a time: a part in flight costs
    /// a read or two of 256 KiB (the next is read while the last is sent), not the part. A file that shrinks meanwhile ends the request in an error.
    Span {
        path: std::path::PathBuf,
        offset: u64,
        len: u64,
    },
}

impl Default for Body {
    fn default() -> Self {
        Self::Bytes(Bytes::new())
    }
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Self::Bytes(bytes) => bytes.len() as u64,
            Self::Span { len, .. } => *len,
        }
    }

    /// The bytes in pieces of at most [`CHUNK`].
    fn chunks(&self) -> futures::stream::BoxStream<'static, std::io::Result<Bytes>> {
        match self {
            Self::Bytes(bytes) => pieces(bytes.clone()).boxed(),
            Self::Span { path, offset, len } => span::blocks(path.clone(), *offset, *len)
                .map_ok(pieces)
                .try_flatten()
                .boxed(),
        }
    }
}

/// `bytes` in pieces of at most [`CHUNK`] (slices, not copies).
fn pieces(bytes: Bytes) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    let slices: Vec<std::io::Result<Bytes>> = (0..bytes.len())
        .step_by(CHUNK)
        .map(|start| Ok(bytes.slice(start..(start + CHUNK).min(bytes.len()))))
        .collect();
    futures::stream::iter(slices)
}

/// The body of a request, with an optional progress counter that learns how many bytes went
/// out.
#[derive(Clone, Default)]
pub(crate) struct Payload {
    pub(crate) body: Body,
    pub(crate) content_md5: Option<String>,
    /// Counts the bytes that went out; what an attempt counted is taken back if it fails, so a
    /// retried request never counts its bytes twice.
    pub(crate) progress: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The dialect's callback headers (signed like the others), when the store is to call the
    /// app server back once the object is stored.
    pub(crate) callback: Vec<(String, String)>,
    /// Whether the write may replace an object at its key (a write that may not is sent with
    /// the dialect's condition, where it has one).
    pub(crate) write: Option<crate::conflict::Write>,
}

/// A successful reply.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Bytes,
    /// The CRC-64 of what the store stored, when its dialect answers one.
    pub(crate) crc64: Option<u64>,
}

impl Reply {
    /// The `ETag` header without its quotes.
    pub(crate) fn etag(&self) -> Option<String> {
        self.headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().trim_matches('"').to_owned())
    }
}

fn unreadable(operation: &'static str) -> impl FnOnce(xml::XmlError) -> Error {
    move |err| Error::Protocol {
        operation,
        detail: err.to_string(),
    }
}

/// On whose behalf a request goes: the account (whose grant signs it) and the journal's file
/// it is for (named in the retry events front ends show).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Who<'a> {
    pub(crate) owner: &'a Owner,
    pub(crate) file: Option<i64>,
}

impl<'a> Who<'a> {
    pub(crate) fn file(owner: &'a Owner, id: i64) -> Self {
        Self {
            owner,
            file: Some(id),
        }
    }
}

/// What the store says it stored: its ETag and, when its dialect answers one, the CRC-64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) etag: String,
    pub(crate) crc64: Option<u64>,
    /// How the callback went, when the request asked for one.
    pub(crate) callback: Option<CallbackOutcome>,
}

impl Stored {
    fn from_headers(operation: &'static str, reply: &Reply, asked: bool) -> Result<Self> {
        Ok(Self {
            etag: reply.etag().ok_or(Error::Protocol {
                operation,
                detail: "no ETag".into(),
            })?,
            crc64: reply.crc64,
            callback: asked.then(|| CallbackOutcome::of(reply)),
        })
    }
}

/// What HeadObject says of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectHead {
    pub(crate) size: u64,
    pub(crate) etag: String,
    /// `Last-Modified`, when the store gives one that can be read.
    pub(crate) modified: Option<time::OffsetDateTime>,
}

/// Idle connections to the store kept for the next requests, at most. Small files in flight
/// go up to the user's ceiling (128 by default) and each holds a connection: a pool that kept
/// 16 closed one for every few small files and opened another
/// (`faults::store::small_files_reuse_the_connections_they_opened`). Above the default
/// ceilings of files and parts together, with room for wider settings; each idle connection
/// holds a socket and its buffers.
const IDLE_MOST: usize = 512;

/// How long an idle connection to the store is kept: less than the app server's store keeps
/// one without a request (30 s), so a request seldom goes out on a connection being closed at
/// that moment (it would be retried).
const IDLE_FOR: Duration = Duration::from_secs(20);

/// The store client.
#[derive(Clone)]
pub(crate) struct Storage {
    http: Client,
    credentials: Arc<Credentials>,
    throttle: Arc<Throttle>,
    events: EventSink,
    stall: Duration,
}

impl Storage {
    /// A client whose requests give up when nothing moves for `stall` (see [`Stall`]).
    pub(crate) fn new(
        network: &crate::network::Network,
        credentials: Arc<Credentials>,
        throttle: Arc<Throttle>,
        events: EventSink,
        stall: Duration,
    ) -> Result<Self> {
        // No overall or read timeout: a part may take minutes on a slow link, and reqwest's read
        // timeout runs from the start of the request. The stall watch below times out what
        // stops moving instead.
        let http = Client::new(network, Duration::from_secs(10), |b| {
            b.pool_max_idle_per_host(IDLE_MOST)
                .pool_idle_timeout(IDLE_FOR)
        })?;
        Ok(Self {
            http,
            credentials,
            throttle,
            events,
            stall,
        })
    }

    /// The HTTP client, whose network can change.
    pub(crate) fn http(&self) -> &Client {
        &self.http
    }

    /// The bandwidth limit every body draws from.
    pub(crate) fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Now, on the store's clock.
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.credentials.now()
    }

    /// The grant requests are signed with now; fetching one that fails in a way that may pass
    /// is retried (and announced) like any request.
    pub(crate) async fn grant(&self, who: &Who<'_>) -> Result<Arc<Grant>> {
        retry::retrying(
            &self.events,
            who.file,
            "getting storage credentials",
            || self.credentials.grant_for(who.owner),
        )
        .await
    }

    /// The body as a stream of chunks: throttled, counted for progress, and watched.
    fn body(&self, payload: &Payload, stall: &Arc<Stall>) -> reqwest::Body {
        let throttle = self.throttle.clone();
        let progress = payload.progress.clone();
        let count = payload.body.len().div_ceil(CHUNK as u64) as usize;
        let stall = stall.clone();
        let stream = payload.body.chunks().enumerate().then(move |(i, chunk)| {
            let throttle = throttle.clone();
            let progress = progress.clone();
            let stall = stall.clone();
            async move {
                let chunk = chunk?;
                // Asked for more: the store took what came before. Waiting for the
                // bandwidth limit is ours, not a stalled store.
                stall.moved(false);
                if throttle.limited() {
                    stall.throttled(true);
                    throttle.take(chunk.len() as u64).await;
                    stall.throttled(false);
                }
                if let Some(progress) = progress {
                    progress.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
                stall.counted(chunk.len() as u64);
                stall.moved(i + 1 == count);
                Ok::<_, std::io::Error>(chunk)
            }
        });
        reqwest::Body::wrap_stream(stream)
    }

    /// Sends one S3 request to `key` (full key, unencoded) with a raw query, on behalf of the
    /// journal's `file` (named in the retry events front ends show).
    pub(crate) async fn call(
        &self,
        who: &Who<'_>,
        operation: &'static str,
        method: reqwest::Method,
        key: Option<&str>,
        query: &str,
        payload: Payload,
    ) -> Result<Reply> {
        let mut grant = self.grant(who).await?;
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
                Error::Storage { code, .. }
                    if Dialect::of(&grant).refusal(code) == Refusal::Credentials && !refreshed =>
                {
                    refreshed = true;
                    grant = self
                        .credentials
                        .after_rejection(who.owner, &grant.access_key_id)
                        .await?;
                    continue;
                }
                Error::Storage { code, .. }
                    if Dialect::of(&grant).refusal(code) == Refusal::ClockSkew && !skew_fixed =>
                {
                    skew_fixed = true;
                    continue;
                }
                _ => {}
            }
            if err.is_transient() && attempt < ATTEMPTS {
                let wait = retry::announce(&self.events, who.file, operation, attempt, &err);
                tokio::time::sleep(wait).await;
                // One fetch, not a retried one: this loop already bounds the attempts.
                grant = self.credentials.grant_for(who.owner).await?;
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
        let dialect = Dialect::of(grant);
        let mut headers = payload.callback.clone();
        if payload
            .write
            .is_some_and(|w| w != crate::conflict::Write::Replace)
            && let Some((name, value)) = dialect.only_new_header()
        {
            headers.push((name.to_owned(), value.to_owned()));
        }
        if let Some(md5) = &payload.content_md5 {
            headers.push(("content-md5".to_owned(), md5.clone()));
        }
        let credentials = SigningCredentials {
            access_key_id: grant.access_key_id.clone(),
            secret_access_key: Secret::new(grant.secret_access_key.clone()),
            security_token: Some(Secret::new(grant.security_token.clone())),
        };
        let request = UnsignedRequest {
            method: method.as_str().to_owned(),
            url: dialect.url(grant, key, query)?,
            headers,
        };
        // Signed now, just before it is sent.
        let signed = dialect.sign(grant, &request, &credentials, key, self.credentials.now())?;
        // A streamed body would otherwise go out chunked; stores want the length.
        let mut builder = self
            .http
            .current()
            .request(method.clone(), &request.url)
            .header("content-length", payload.body.len());
        for (name, value) in &signed {
            if !name.eq_ignore_ascii_case("host") {
                builder = builder.header(name, value);
            }
        }
        let target = &grant.endpoint;
        let stall = Stall::new(payload.body.len() == 0);
        let send = builder.body(self.body(payload, &stall)).send();
        let response = stall
            .watch(self.stall, send, operation, target)
            .await
            .and_then(|sent| {
                sent.map_err(|source| match span::changed_file(&source) {
                    // Not the network's doing, and no retry mends it.
                    Some(path) => Error::File {
                        path,
                        code: "file_changed",
                        reason: "the file changed while it was being uploaded; starting again"
                            .into(),
                    },
                    None => Error::unreached(operation, target, source),
                })
            });
        let response = match response {
            Ok(response)
                if response.status() == reqwest::StatusCode::PROXY_AUTHENTICATION_REQUIRED =>
            {
                return Err(Error::ProxyRefused {
                    target: target.clone(),
                });
            }
            Ok(response) if response.status().is_success() => response,
            other => {
                // Not taken: the bytes this attempt counted will be sent again.
                if let Some(progress) = &payload.progress {
                    progress.fetch_sub(stall.counted.load(Ordering::Relaxed), Ordering::Relaxed);
                }
                other?
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_answer(response, self.stall, operation, target).await?;
        if (200..300).contains(&status) {
            let crc64 = stored_crc64(dialect, &headers, operation)?;
            return Ok(Reply {
                status,
                headers,
                body,
                crc64,
            });
        }
        let error = xml::error(&body).unwrap_or_default();
        let code = if error.code.is_empty() {
            format!("HTTP{status}")
        } else {
            error.code
        };
        if dialect.refusal(&code) == Refusal::ClockSkew
            && let Some(date) = headers.get("date").and_then(|d| d.to_str().ok())
            && let Ok(server) =
                OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822)
        {
            self.credentials.correct_clock(server);
        }
        // Every cloud names its request-id header differently; the error document has it too.
        let request_id = error.request_id.or_else(|| {
            [
                "x-amz-request-id",
                "x-oss-request-id",
                "x-obs-request-id",
                "x-jdcloud-request-id",
            ]
            .iter()
            .find_map(|name| headers.get(*name)?.to_str().ok())
            .map(str::to_owned)
        });
        Err(Error::Storage {
            operation,
            status,
            message: error.message,
            code,
            request_id,
        })
    }

    /// PutObject; the ETag.
    pub(crate) async fn put_object(
        &self,
        who: &Who<'_>,
        key: &str,
        payload: Payload,
    ) -> Result<Stored> {
        let asked = !payload.callback.is_empty();
        let reply = self
            .call(
                who,
                "PutObject",
                reqwest::Method::PUT,
                Some(key),
                "",
                payload,
            )
            .await?;
        Stored::from_headers("PutObject", &reply, asked)
    }

    /// Whether the store answers `who`'s grant, in one request and no retry (for "Test
    /// connection"): a listing of the open uploads under a key of the grant's prefix. Its own
    /// XML answer, a refusal too, is the store's (a proxy's or gateway's page is not).
    pub(crate) async fn probe(&self, who: &Who<'_>) -> Result<()> {
        let grant = self.grant(who).await?;
        let query = format!(
            "prefix={}&uploads=",
            uri_encode(&format!("{}.ferry-connection-check", grant.prefix), false)
        );
        let operation = "reaching the storage";
        let sent = self
            .send_once(
                operation,
                &reqwest::Method::GET,
                &grant,
                None,
                &query,
                &Payload::default(),
            )
            .await;
        match sent {
            // The listing itself, not a captive portal's page.
            Ok(reply)
                if String::from_utf8_lossy(&reply.body).contains("ListMultipartUploadsResult") =>
            {
                Ok(())
            }
            Ok(reply) => Err(Error::Protocol {
                operation,
                detail: format!(
                    "{} answered {} with something that is not a store's listing",
                    grant.endpoint, reply.status
                ),
            }),
            Err(Error::Storage { status, code, .. })
                if status < 500 && !code.starts_with("HTTP") =>
            {
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// HeadObject: the object's size and ETag, or `None` when there is none.
    pub(crate) async fn head(&self, who: &Who<'_>, key: &str) -> Result<Option<ObjectHead>> {
        let operation = "HeadObject";
        let reply = match self
            .call(
                who,
                operation,
                reqwest::Method::HEAD,
                Some(key),
                "",
                Payload::default(),
            )
            .await
        {
            Ok(reply) => reply,
            // A HEAD answer has no body, so no S3 code: the status says it.
            Err(Error::Storage { status: 404, .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        let size = reply
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let modified = reply
            .headers
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()
            });
        match (size, reply.etag()) {
            (Some(size), Some(etag)) => Ok(Some(ObjectHead {
                size,
                etag,
                modified,
            })),
            _ => Err(Error::Protocol {
                operation,
                detail: "no Content-Length or ETag".into(),
            }),
        }
    }

    /// CreateMultipartUpload; the upload id.
    pub(crate) async fn create_multipart(&self, who: &Who<'_>, key: &str) -> Result<String> {
        let operation = "CreateMultipartUpload";
        let reply = self
            .call(
                who,
                operation,
                reqwest::Method::POST,
                Some(key),
                "uploads=",
                Payload::default(),
            )
            .await?;
        xml::upload_id(&reply.body).map_err(unreadable(operation))
    }

    /// UploadPart; the ETag.
    pub(crate) async fn upload_part(
        &self,
        who: &Who<'_>,
        key: &str,
        upload_id: &str,
        number: u32,
        payload: Payload,
    ) -> Result<Stored> {
        let query = format!(
            "partNumber={number}&uploadId={}",
            uri_encode(upload_id, false)
        );
        let reply = self
            .call(
                who,
                "UploadPart",
                reqwest::Method::PUT,
                Some(key),
                &query,
                payload,
            )
            .await?;
        Stored::from_headers("UploadPart", &reply, false)
    }

    /// Every part of an upload, following pages (at most 10 000 parts, 1 000 a page).
    pub(crate) async fn list_parts(
        &self,
        who: &Who<'_>,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<ListedPart>> {
        let operation = "ListParts";
        let mut parts = Vec::new();
        let mut marker = 0u32;
        for _ in 0..10 {
            let query = format!(
                "part-number-marker={marker}&uploadId={}",
                uri_encode(upload_id, false)
            );
            let reply = self
                .call(
                    who,
                    operation,
                    reqwest::Method::GET,
                    Some(key),
                    &query,
                    Payload::default(),
                )
                .await?;
            let page = xml::parts_page(&reply.body).map_err(unreadable(operation))?;
            parts.extend(page.parts);
            match page.next_marker {
                Some(next) if next > marker => marker = next,
                _ => return Ok(parts),
            }
        }
        Err(Error::Protocol {
            operation,
            detail: "more than 10 pages of parts".into(),
        })
    }

    /// The store's open multipart uploads of exactly `key` (ListMultipartUploads, one page).
    pub(crate) async fn open_uploads(
        &self,
        who: &Who<'_>,
        key: &str,
    ) -> Result<Vec<xml::OpenUpload>> {
        let operation = "ListMultipartUploads";
        let query = format!("prefix={}&uploads=", uri_encode(key, false));
        let reply = self
            .call(
                who,
                operation,
                reqwest::Method::GET,
                None,
                &query,
                Payload::default(),
            )
            .await?;
        let uploads = xml::open_uploads(&reply.body).map_err(unreadable(operation))?;
        Ok(uploads.into_iter().filter(|u| u.key == key).collect())
    }

    /// CompleteMultipartUpload, with the dialect's `callback` headers if any; the ETag. With a
    /// callback the answer's body is the callback's (or `203 CallbackFailed`), so the ETag is
    /// read from the header.
    pub(crate) async fn complete(
        &self,
        who: &Who<'_>,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        callback: Vec<(String, String)>,
        write: crate::conflict::Write,
    ) -> Result<Stored> {
        let operation = "CompleteMultipartUpload";
        let query = format!("uploadId={}", uri_encode(upload_id, false));
        let asked = !callback.is_empty();
        let payload = Payload {
            body: Body::Bytes(Bytes::from(xml::complete_request(parts))),
            callback,
            write: Some(write),
            ..Default::default()
        };
        let reply = self
            .call(
                who,
                operation,
                reqwest::Method::POST,
                Some(key),
                &query,
                payload,
            )
            .await?;
        // 203: stored, the callback failed (its body is OSS's `CallbackFailed` error document).
        if asked && reply.status == 203 {
            return Stored::from_headers(operation, &reply, true);
        }
        // S3 may answer 200 with an error body when Complete fails late, callback or not.
        if let Some(error) = xml::error(&reply.body) {
            return Err(Error::Storage {
                operation,
                status: 500,
                code: error.code,
                message: error.message,
                request_id: error.request_id,
            });
        }
        // With a callback the body is the app server's answer: the ETag is in the headers.
        if asked && xml::completed_etag(&reply.body).is_err() {
            return Stored::from_headers(operation, &reply, true);
        }
        Ok(Stored {
            etag: xml::completed_etag(&reply.body).map_err(unreadable(operation))?,
            crc64: reply.crc64,
            callback: asked.then(|| CallbackOutcome::of(&reply)),
        })
    }

    /// AbortMultipartUpload; an upload that is already gone is fine.
    pub(crate) async fn abort(&self, who: &Who<'_>, key: &str, upload_id: &str) -> Result<()> {
        let query = format!("uploadId={}", uri_encode(upload_id, false));
        match self
            .call(
                who,
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

/// The CRC-64 a store that reports one (OSS) gives for what it stored. A value that is not a
/// number is a store that cannot be trusted to have the bytes: an error. A missing one is
/// logged and the ETag alone vouches for the bytes (OSS-compatible stores that never send it).
fn stored_crc64(
    dialect: Dialect,
    headers: &reqwest::header::HeaderMap,
    operation: &'static str,
) -> Result<Option<u64>> {
    let Some(name) = dialect.crc64_header() else {
        return Ok(None);
    };
    let Some(value) = headers.get(name) else {
        if matches!(
            operation,
            "PutObject" | "UploadPart" | "CompleteMultipartUpload"
        ) {
            tracing::warn!(
                operation,
                "the store reported no {name}; the ETag alone is checked"
            );
        }
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| Error::Protocol {
            operation,
            detail: format!("{name} is not a number: {value:?}"),
        })
}
