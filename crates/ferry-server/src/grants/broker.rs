//! What every cloud broker shares: the call's inputs, sending it (bounded in time, tries and
//! answer size), telling a refusal from a transient failure, and turning the cloud's
//! credentials into a [`Grant`] that never outlives the server's limit.
//!
//! Each cloud only builds its signed request ([`Cloud::request`]) and reads its answer
//! ([`Cloud::answer`]); both are pure, so tests compare them with the vendors' SDKs.

use std::time::{Duration, Instant};

use ferry_protocol::{Grant, User};
use ferry_sign::Secret;
use time::OffsetDateTime;

use super::config::BrokerConfig;
use super::policy::Policy;
use super::user_prefix;

/// Longest answer read from a credential service; real ones are a few KiB.
const MAX_ANSWER: usize = 256 * 1024;

/// The inputs of one call, fixed before signing so that a test can repeat them.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// Who the credentials are for, as the cloud records it.
    pub(crate) session_name: String,
    /// What the credentials may do.
    pub(crate) policy: Policy,
    /// The lifetime asked of the cloud, in seconds.
    pub(crate) duration_secs: u64,
    /// The signing time.
    pub(crate) time: OffsetDateTime,
    /// A value never used twice (clouds that reject replays ask for one).
    pub(crate) nonce: String,
}

/// A request ready to send, exactly as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedRequest {
    pub(crate) method: &'static str,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// Temporary credentials as the cloud issued them.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: Secret,
    pub(crate) security_token: Secret,
    pub(crate) expiration: OffsetDateTime,
}

/// An answer that carries no credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answered {
    /// The cloud's error, with its own code.
    Refused { code: String, message: String },
    /// Not the cloud's answer format; says what was wrong.
    Unreadable(String),
}

/// One cloud's API: how to sign a call and read its answer.
pub(crate) trait Cloud: Send + Sync {
    /// The signed request for `call`.
    fn request(&self, call: &Call) -> Result<SignedRequest, BrokerError>;
    /// The credentials in a `status` answer, or why there are none.
    fn answer(&self, status: u16, body: &[u8]) -> Result<Issued, Answered>;
    /// The session policy limiting a grant to `bucket/prefix`.
    fn policy(&self, bucket: &str, prefix: &str) -> Policy;
    /// Whether a refusal with this code may succeed when tried again (throttling).
    fn transient_code(&self, _code: &str) -> bool {
        false
    }
}

/// Why a broker vended nothing. Messages never carry secrets or signed URLs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The cloud refused, with its own error code.
    #[error("{broker} refused the grant (HTTP {status}): {code}: {message}")]
    Refused {
        /// The broker kind.
        broker: &'static str,
        /// The HTTP status of the refusal.
        status: u16,
        /// The cloud's error code.
        code: String,
        /// The cloud's message.
        message: String,
    },
    /// No connection, or it broke.
    #[error("{broker} could not be reached: {source}")]
    Unreachable {
        /// The broker kind.
        broker: &'static str,
        /// The cause (its URL removed).
        source: reqwest::Error,
    },
    /// No complete answer in time.
    #[error("{broker} did not answer within {secs} s")]
    TimedOut {
        /// The broker kind.
        broker: &'static str,
        /// The time allowed.
        secs: u64,
    },
    /// A server error or throttling without a readable refusal.
    #[error("{broker} failed with HTTP {status}: {detail}")]
    Failing {
        /// The broker kind.
        broker: &'static str,
        /// The HTTP status.
        status: u16,
        /// What the answer said, shortened.
        detail: String,
    },
    /// A success status with something that is not credentials.
    #[error("{broker} answered something that is not its credential answer: {detail}")]
    BadAnswer {
        /// The broker kind.
        broker: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The request could not be built (a configuration the signer cannot use).
    #[error("{broker}: the request could not be signed: {source}")]
    Sign {
        /// The broker kind.
        broker: &'static str,
        /// The cause.
        source: ferry_sign::SignError,
    },
    /// Transient failures until the tries or the time ran out.
    #[error("{broker}: gave up after {tries} tries in {secs} s; last: {last}")]
    GaveUp {
        /// The broker kind.
        broker: &'static str,
        /// Calls made.
        tries: u32,
        /// Time spent.
        secs: u64,
        /// The last failure.
        #[source]
        last: Box<BrokerError>,
    },
}

impl BrokerError {
    /// Whether the cloud said no (rather than could not answer). Giving up is never a
    /// refusal: only transient failures are tried again, even when the last one was a
    /// refusal code that means "later" (throttling).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }

    fn is_transient(&self, cloud: &dyn Cloud) -> bool {
        match self {
            Self::Unreachable { .. } | Self::TimedOut { .. } | Self::Failing { .. } => true,
            Self::Refused { status, code, .. } => {
                *status >= 500 || *status == 429 || cloud.transient_code(code)
            }
            _ => false,
        }
    }
}

/// The expiry `field` of a credential answer, an RFC 3339 time (surrounding space ignored).
pub(crate) fn rfc3339_expiry(field: &str, text: &str) -> Result<time::OffsetDateTime, Answered> {
    time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|_| Answered::Unreadable(format!("{field} {text:?} is not an RFC 3339 time")))
}

/// Why an answer with `status` could not be read as `what`. A success answer is never quoted
/// (it may carry credentials, and this message reaches logs and clients), and of the parser's
/// complaint only a missing field's name is kept (others may quote a value).
pub(crate) fn unreadable(
    what: &str,
    status: u16,
    err: &dyn std::fmt::Display,
    body: &[u8],
) -> Answered {
    if !(200..300).contains(&status) {
        return Answered::Unreadable(format!("not {what} ({err}): {}", excerpt(body)));
    }
    let err = err.to_string();
    let reason = match err.find("missing field `") {
        Some(at) => err[at..]
            .split(" at line")
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => "not the documented shape".to_owned(),
    };
    Answered::Unreadable(format!(
        "not {what} ({reason}; the answer is not shown: it may carry credentials)"
    ))
}

/// A few hundred characters of an answer, for messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut out: String = text.chars().take(300).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// The name a cloud records for a user's session: `ferry-<id>-<name>`, at most 64 characters
/// of `[a-z0-9._-]` (account names use nothing else), which every cloud accepts.
pub(crate) fn session_name(user: &User) -> String {
    let mut name = format!("ferry-{}-{}", user.id, user.name);
    name.retain(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    name.truncate(64);
    name
}

/// A cloud broker: its settings, its API and an HTTP client.
pub(crate) struct Broker {
    config: BrokerConfig,
    cloud: Box<dyn Cloud>,
    http: reqwest::Client,
    /// The longest grant the server hands out.
    limit: Duration,
}

impl Broker {
    pub(crate) fn new(config: BrokerConfig, cloud: Box<dyn Cloud>, limit: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with rustls");
        Self {
            config,
            cloud,
            http,
            limit,
        }
    }

    pub(crate) fn config(&self) -> &BrokerConfig {
        &self.config
    }

    fn name(&self) -> &'static str {
        self.config.kind.as_str()
    }

    /// A grant for `user` lasting `ttl` at most (and never longer than the server's limit).
    pub(crate) async fn vend(
        &self,
        user: &User,
        ttl: Option<Duration>,
    ) -> Result<Grant, BrokerError> {
        let ttl = ttl
            .map_or(self.limit, |asked| asked.min(self.limit))
            .max(Duration::from_secs(1));
        // The cloud has a minimum lifetime; the grant claims the shorter one asked for.
        let duration_secs = ttl.as_secs().max(self.config.kind.min_duration_secs());
        let prefix = user_prefix(user.id);
        let policy = self.cloud.policy(&self.config.bucket, &prefix);
        let started = OffsetDateTime::now_utc();
        let issued = self
            .call(|| Call {
                session_name: session_name(user),
                policy: policy.clone(),
                duration_secs,
                time: OffsetDateTime::now_utc(),
                nonce: uuid::Uuid::new_v4().to_string(),
            })
            .await?;
        // Never claim more than asked, and never more than the cloud's real expiry.
        let expires_at = issued.expiration.min(started + ttl);
        if expires_at <= OffsetDateTime::now_utc() {
            return Err(BrokerError::BadAnswer {
                broker: self.name(),
                detail: format!("the credentials expired already ({})", issued.expiration),
            });
        }
        tracing::info!(
            user = %user.name,
            broker = self.name(),
            access_key_id = %issued.access_key_id,
            ttl_secs = (expires_at - started).whole_seconds(),
            "grant issued by the cloud"
        );
        let config = &self.config;
        Ok(Grant {
            provider: config.provider,
            endpoint: config.store_endpoint.clone(),
            addressing: config.addressing,
            signature_version: config.signature_version,
            region: config.region.clone(),
            bucket: config.bucket.clone(),
            prefix,
            access_key_id: issued.access_key_id,
            secret_access_key: issued.secret_access_key.expose().to_owned(),
            security_token: issued.security_token.expose().to_owned(),
            expires_at,
            policy: policy.to_value(),
            callback: None,
        })
    }

    /// Calls the cloud, trying transient failures again (with backoff) while tries and time
    /// remain; each try is signed anew just before it is sent.
    async fn call(&self, call: impl Fn() -> Call) -> Result<Issued, BrokerError> {
        let started = Instant::now();
        let mut tries = 0;
        loop {
            tries += 1;
            let left = self.config.deadline.saturating_sub(started.elapsed());
            let err = match self.once(&call(), left.min(self.config.timeout)).await {
                Ok(issued) => return Ok(issued),
                Err(err) => err,
            };
            let wait = backoff(tries);
            let out_of_time = started.elapsed() + wait >= self.config.deadline;
            if !err.is_transient(self.cloud.as_ref()) {
                return Err(err);
            }
            if tries >= self.config.attempts || out_of_time {
                return Err(BrokerError::GaveUp {
                    broker: self.name(),
                    tries,
                    secs: started.elapsed().as_secs(),
                    last: Box::new(err),
                });
            }
            tracing::warn!(broker = self.name(), tries, error = %err, "broker call failed; trying again");
            tokio::time::sleep(wait).await;
        }
    }

    /// One call within `within`.
    async fn once(&self, call: &Call, within: Duration) -> Result<Issued, BrokerError> {
        let broker = self.name();
        let request = self.cloud.request(call)?;
        let timed_out = || BrokerError::TimedOut {
            broker,
            secs: within.as_secs().max(1),
        };
        let exchange = async {
            let mut builder = match request.method {
                "GET" => self.http.get(&request.url),
                _ => self.http.post(&request.url),
            };
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            let unreachable = |source: reqwest::Error| {
                if source.is_timeout() {
                    timed_out()
                } else {
                    BrokerError::Unreachable {
                        broker,
                        source: source.without_url(),
                    }
                }
            };
            let mut response = builder
                .body(request.body.clone())
                .send()
                .await
                .map_err(unreachable)?;
            let status = response.status().as_u16();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
                if body.len() + chunk.len() > MAX_ANSWER {
                    return Err(BrokerError::BadAnswer {
                        broker,
                        detail: format!("the answer is longer than {MAX_ANSWER} bytes"),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok((status, body))
        };
        let (status, body) = tokio::time::timeout(within, exchange)
            .await
            .map_err(|_| timed_out())??;
        self.cloud
            .answer(status, &body)
            .map_err(|answered| classify(broker, status, &body, answered))
    }
}

/// The error for an answer without credentials.
fn classify(broker: &'static str, status: u16, body: &[u8], answered: Answered) -> BrokerError {
    match answered {
        Answered::Refused { code, message } => BrokerError::Refused {
            broker,
            status,
            code,
            message: message.chars().take(500).collect(),
        },
        Answered::Unreadable(detail) if status >= 500 || status == 429 => {
            let shown = excerpt(body);
            BrokerError::Failing {
                broker,
                status,
                detail: if shown.is_empty() { detail } else { shown },
            }
        }
        Answered::Unreadable(detail) => BrokerError::BadAnswer {
            broker,
            detail: format!("HTTP {status}: {detail}"),
        },
    }
}

/// The wait before try `tries + 1`: 200 ms doubling, with up to 50 % jitter.
fn backoff(tries: u32) -> Duration {
    let base = 200u64 << tries.saturating_sub(1).min(5);
    let jitter = rand::random::<u64>() % (base / 2 + 1);
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::Role;

    #[test]
    fn session_names_fit_every_cloud() {
        let user = User {
            id: 12,
            name: "a.b_c-d".repeat(20),
            role: Role::User,
        };
        let name = session_name(&user);
        assert!(name.starts_with("ferry-12-a.b_c-d"), "{name}");
        assert_eq!(name.len(), 64);
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) < Duration::from_millis(301));
        assert!(backoff(3) >= Duration::from_millis(800));
        assert!(backoff(40) <= Duration::from_millis(6400 + 3200));
    }

    #[test]
    fn excerpts_are_short() {
        let long = "x".repeat(1000);
        assert_eq!(excerpt(long.as_bytes()).chars().count(), 301);
        assert_eq!(excerpt(b"  short \n"), "short");
    }
}
