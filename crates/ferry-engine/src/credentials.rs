//! Storage credentials: the current grant, refreshed before it expires (when half its
//! lifetime has passed or 5 minutes remain, whichever comes first), one refresh at a time, kept
//! in the keychain (never the journal), and the clock offset the store reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use ferry_protocol::{Grant, GrantRequest};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::events::{Event, EventSink};
use crate::secret::Secret;
use crate::session::Session;

/// Refresh at the latest when this little lifetime remains.
const MIN_REMAINING: Duration = Duration::from_secs(300);

#[derive(Clone)]
struct Cached {
    grant: Arc<Grant>,
    received_at: OffsetDateTime,
}

impl Cached {
    /// When this grant should be replaced: at half its lifetime or when 5 minutes remain,
    /// whichever comes first. A grant shorter than 5 minutes would be due at once by the second
    /// rule, refreshing on every request; for those the half-life rule alone applies.
    fn refresh_at(&self) -> OffsetDateTime {
        let lifetime = self.grant.expires_at - self.received_at;
        let half = self.received_at + lifetime / 2;
        if lifetime < MIN_REMAINING {
            return half;
        }
        half.min(self.grant.expires_at - MIN_REMAINING)
    }
}

/// The credential cache of one session.
pub struct Credentials {
    session: Arc<Session>,
    cached: Mutex<Option<Cached>>,
    events: EventSink,
    offset_ms: AtomicI64,
    refreshes: AtomicU64,
    ttl: Option<u64>,
}

fn keychain_name(server: &str) -> String {
    format!("grant:{server}")
}

impl Credentials {
    /// A cache for `session`; `ttl` asks the server for shorter grants (tests, mostly).
    pub fn new(session: Arc<Session>, events: EventSink, ttl: Option<u64>) -> Self {
        Self {
            session,
            cached: Mutex::new(None),
            events,
            offset_ms: AtomicI64::new(0),
            refreshes: AtomicU64::new(0),
            ttl,
        }
    }

    /// Now, on the store's clock.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Learns the store's clock from its `Date` after it said our time is off.
    pub fn correct_clock(&self, server_now: OffsetDateTime) {
        let offset = server_now - OffsetDateTime::now_utc();
        self.offset_ms
            .store(offset.whole_milliseconds() as i64, Ordering::Relaxed);
        tracing::info!(
            offset_ms = offset.whole_milliseconds() as i64,
            "clock offset corrected"
        );
    }

    /// How many grants were fetched so far.
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// When the current grant expires, if there is one.
    pub async fn expires_at(&self) -> Option<OffsetDateTime> {
        self.cached
            .lock()
            .await
            .as_ref()
            .map(|c| c.grant.expires_at)
    }

    /// When the grant in hand, or else the one kept in the keychain, expires (no network).
    pub fn stored_expiry(&self) -> Option<OffsetDateTime> {
        if let Ok(cached) = self.cached.try_lock()
            && let Some(c) = cached.as_ref()
        {
            return Some(c.grant.expires_at);
        }
        self.load_from_keychain().map(|c| c.grant.expires_at)
    }

    /// When the current grant was received, if there is one.
    pub async fn refreshed_at(&self) -> Option<OffsetDateTime> {
        self.cached.lock().await.as_ref().map(|c| c.received_at)
    }

    /// A grant good for now, fetching a new one when the current one is due.
    pub async fn current(&self) -> Result<Arc<Grant>> {
        let mut cached = self.cached.lock().await;
        if cached.is_none() {
            *cached = self.load_from_keychain();
        }
        if let Some(c) = cached.as_ref()
            && self.now() < c.refresh_at()
        {
            return Ok(c.grant.clone());
        }
        let fresh = self.fetch(cached.as_ref()).await?;
        let grant = fresh.grant.clone();
        *cached = Some(fresh);
        Ok(grant)
    }

    /// After the store rejected `access_key_id` (expired or invalid token): a new grant, unless
    /// another request already replaced that one.
    pub async fn after_rejection(&self, access_key_id: &str) -> Result<Arc<Grant>> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.grant.access_key_id != access_key_id
        {
            return Ok(c.grant.clone());
        }
        let fresh = self.fetch(None).await?;
        let grant = fresh.grant.clone();
        *cached = Some(fresh);
        Ok(grant)
    }

    /// Drops the grant here and in the keychain (sign-out).
    pub async fn forget(&self) -> Result<()> {
        *self.cached.lock().await = None;
        self.session
            .keychain()
            .delete(&keychain_name(self.session.api().base()))
    }

    fn load_from_keychain(&self) -> Option<Cached> {
        let json = self
            .session
            .keychain()
            .get(&keychain_name(self.session.api().base()))
            .ok()??;
        let (grant, received_at): (Grant, i64) = serde_json::from_str(json.expose()).ok()?;
        let received_at = OffsetDateTime::from_unix_timestamp(received_at).ok()?;
        Some(Cached {
            grant: Arc::new(grant),
            received_at,
        })
    }

    /// Fetches a new grant (the caller holds the lock: one refresh at a time). When that fails
    /// and `old` is still valid, it is kept and the failure reported.
    async fn fetch(&self, old: Option<&Cached>) -> Result<Cached> {
        let token = self.session.token()?;
        let request = GrantRequest {
            ttl_seconds: self.ttl,
        };
        match self.session.api().grant(&token, &request).await {
            Ok(grant) => {
                let received_at = self.now();
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                let json = serde_json::to_string(&(&grant, received_at.unix_timestamp())).map_err(
                    |e| Error::Protocol {
                        operation: "storing the grant",
                        detail: e.to_string(),
                    },
                )?;
                self.session.keychain().set(
                    &keychain_name(self.session.api().base()),
                    &Secret::new(json),
                )?;
                tracing::info!(expires_at = %grant.expires_at, "storage credentials refreshed");
                (self.events)(Event::CredentialsRefreshed {
                    expires_at: grant.expires_at,
                });
                Ok(Cached {
                    grant: Arc::new(grant),
                    received_at,
                })
            }
            Err(err) => {
                if err.needs_sign_in() {
                    self.session.expired();
                    (self.events)(Event::SessionExpired);
                    return Err(err);
                }
                (self.events)(Event::CredentialsRefreshFailed {
                    error: (&err).into(),
                });
                match old {
                    Some(old) if old.grant.expires_at > self.now() + Duration::from_secs(5) => {
                        Ok(old.clone())
                    }
                    _ => Err(err),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(lifetime_secs: i64) -> Cached {
        let received_at = OffsetDateTime::UNIX_EPOCH;
        let grant = Grant {
            provider: ferry_protocol::Provider::S3,
            endpoint: String::new(),
            region: String::new(),
            bucket: String::new(),
            prefix: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            security_token: String::new(),
            expires_at: received_at + time::Duration::seconds(lifetime_secs),
            policy: serde_json::Value::Null,
            callback: None,
        };
        Cached {
            grant: Arc::new(grant),
            received_at,
        }
    }

    #[test]
    fn refresh_at_half_life_or_five_minutes_before_expiry() {
        // 15 minutes: half (7:30) comes before "5 minutes left" (10:00).
        assert_eq!(cached(900).refresh_at().unix_timestamp(), 450);
        // 1 hour: half (30:00) comes before "5 minutes left" (55:00).
        assert_eq!(cached(3600).refresh_at().unix_timestamp(), 1800);
        // 8 minutes: 5 minutes left at 3:00 comes before half (4:00).
        assert_eq!(cached(480).refresh_at().unix_timestamp(), 180);
        // 4 seconds: shorter than 5 minutes, so at half-life, not at once.
        assert_eq!(cached(4).refresh_at().unix_timestamp(), 2);
    }
}
