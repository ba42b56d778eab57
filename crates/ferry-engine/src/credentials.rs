//! Storage credentials: the current grant, refreshed before it expires (when half its
//! lifetime has passed or 5 minutes remain, whichever comes first), one refresh at a time, kept
//! in the keychain (never the journal), and the clock offset the store reported.
//!
//! Front ends see the cache through [`CredentialStatus`] (what it holds, whether a refresh is
//! under way, the last failure) and the `credentials_*` events. A refresh that fails while the
//! old grant is still good is not tried again by every request: the next try waits out a
//! backoff. A grant that cannot be saved in the keychain is still used (from memory); the
//! keychain problem is reported, not turned into a failed refresh.
//!
//! A grant belongs to the account it was fetched for: it is kept in the keychain under that
//! account, handed out only for it, and dropped when the session changes hands — so one
//! account's files are never signed with another's credentials.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use ferry_protocol::{Grant, GrantRequest};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::events::{ErrorInfo, Event, EventSink};
use crate::journal::Owner;
use crate::secret::Secret;
use crate::session::Session;

/// Refresh at the latest when this little lifetime remains.
const MIN_REMAINING: Duration = Duration::from_secs(300);
/// A grant this close to its expiry is no longer handed out.
const USABLE_MARGIN: time::Duration = time::Duration::seconds(5);
/// The wait after the first failed refresh; it doubles with each further failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two refresh attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct Cached {
    owner: Owner,
    grant: Arc<Grant>,
    received_at: OffsetDateTime,
}

impl Cached {
    fn secrets(&self) -> [String; 2] {
        [
            self.grant.secret_access_key.clone(),
            self.grant.security_token.clone(),
        ]
    }

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

    /// Whether requests may still be signed with it at `now`: not in its last 5 seconds (a
    /// quarter of its lifetime for grants shorter than 20 seconds), so a request signed now
    /// still arrives in time.
    fn usable(&self, now: OffsetDateTime) -> bool {
        let lifetime: time::Duration = self.grant.expires_at - self.received_at;
        let margin = (lifetime / 4_i32).min(USABLE_MARGIN);
        self.grant.expires_at > now + margin
    }
}

/// The wait before the next refresh attempt after `failures` failed ones in a row.
fn backoff(failures: u32) -> Duration {
    let doubling = 1u32 << failures.saturating_sub(1).min(6);
    (FIRST_BACKOFF * doubling).min(MAX_BACKOFF)
}

/// What the credential cache holds and how its refreshes go, for front ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CredentialStatus {
    /// When the current grant expires, if there is one.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Whether a refresh is under way right now.
    pub refreshing: bool,
    /// When the current grant was received.
    #[serde(with = "time::serde::rfc3339::option")]
    pub refreshed_at: Option<OffsetDateTime>,
    /// Why the last refresh failed; cleared by the next good one.
    pub last_error: Option<ErrorInfo>,
    /// After a failed refresh: the next try. Requests wait for it while the old grant is still
    /// usable; without one they try at once.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retry_at: Option<OffsetDateTime>,
    /// Why the current grant could not be saved in the keychain (it is used from memory).
    pub keychain_error: Option<ErrorInfo>,
}

/// The status and the backoff bookkeeping behind it.
#[derive(Default)]
struct Tracker {
    status: CredentialStatus,
    failures: u32,
}

/// Marks a refresh as under way for as long as it lives, so a refresh that is abandoned
/// (its request dropped) does not stay "refreshing" for ever.
struct Refreshing<'a>(&'a std::sync::Mutex<Tracker>);

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .status
            .refreshing = false;
    }
}

/// The credential cache of one session.
pub struct Credentials {
    session: Arc<Session>,
    cached: Mutex<Option<Cached>>,
    /// Secrets of the grants held so far (for [`Credentials::secrets`]).
    seen: std::sync::Mutex<Vec<String>>,
    tracker: std::sync::Mutex<Tracker>,
    events: EventSink,
    offset_ms: AtomicI64,
    refreshes: AtomicU64,
    ask: GrantRequest,
}

/// Secrets of earlier grants remembered for redaction, at most.
const SEEN_MOST: usize = 64;

/// The keychain entry of an account's grant.
fn keychain_name(owner: &Owner) -> String {
    format!("grant:{}:{}", owner.server, owner.user_id)
}

/// Where grants were kept before they were kept per account (removed on sign-out).
fn legacy_keychain_name(server: &str) -> String {
    format!("grant:{server}")
}

impl Credentials {
    /// A cache for `session`, asking the app server for grants with `ask` (a shorter lifetime,
    /// a dialect where the server offers several).
    pub fn new(session: Arc<Session>, events: EventSink, ask: GrantRequest) -> Self {
        Self {
            session,
            cached: Mutex::new(None),
            seen: std::sync::Mutex::default(),
            tracker: std::sync::Mutex::new(Tracker::default()),
            events,
            offset_ms: AtomicI64::new(0),
            refreshes: AtomicU64::new(0),
            ask,
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

    /// The secrets (secret key and security token) of every grant this process held and of
    /// the one the keychain keeps for the signed-in account, to keep them out of what is
    /// written for others to read (diagnostics). Never waits for a refresh under way.
    pub(crate) async fn secrets(&self) -> Vec<String> {
        let mut secrets = self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Ok(cached) = self.cached.try_lock()
            && let Some(c) = cached.as_ref()
        {
            secrets.extend(c.secrets());
        }
        let owner = self.session.owner();
        let owner = owner.or_else(|| self.session.stored_owner().ok().flatten());
        if let Some(owner) = owner
            && let Some(kept) = self.load_from_keychain(&owner).await
        {
            secrets.extend(kept.secrets());
        }
        secrets
    }

    /// Remembers the secrets of a grant taken into the cache (see [`Credentials::secrets`]).
    fn seen(&self, cached: &Cached) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for secret in cached.secrets() {
            if !seen.contains(&secret) {
                seen.push(secret);
            }
        }
        // The newest grants' (a log file holds a few hours of them at most).
        let extra = seen.len().saturating_sub(SEEN_MOST);
        seen.drain(..extra);
    }

    /// How many grants were fetched so far.
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// What the cache holds and how refreshing goes; never waits for a refresh under way.
    pub fn status(&self) -> CredentialStatus {
        self.track(|t| t.status.clone())
    }

    /// When the current grant expires, if there is one.
    pub async fn expires_at(&self) -> Option<OffsetDateTime> {
        self.status().expires_at
    }

    /// When `owner`'s grant in hand, or else the one kept in the keychain, expires (no
    /// network).
    pub async fn stored_expiry(&self, owner: &Owner) -> Option<OffsetDateTime> {
        if let Some(c) = self.cached.lock().await.as_ref()
            && c.owner == *owner
        {
            return Some(c.grant.expires_at);
        }
        self.load_from_keychain(owner)
            .await
            .map(|c| c.grant.expires_at)
    }

    /// When the current grant was received, if there is one.
    pub async fn refreshed_at(&self) -> Option<OffsetDateTime> {
        self.status().refreshed_at
    }

    fn track<T>(&self, f: impl FnOnce(&mut Tracker) -> T) -> T {
        f(&mut self.tracker.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A grant of the signed-in account, good for now (see [`Credentials::grant_for`]).
    pub async fn current(&self) -> Result<Arc<Grant>> {
        let owner = self.session.owner().ok_or(Error::SignedOut)?;
        self.grant_for(&owner).await
    }

    /// Refuses unless `owner` is the signed-in account.
    fn check(&self, owner: &Owner) -> Result<()> {
        if self.session.owner().as_ref() == Some(owner) {
            Ok(())
        } else {
            Err(Error::SignedOut)
        }
    }

    /// A grant of `owner` good for now, fetching a new one when the current one is due (unless
    /// the last attempt failed moments ago and the current one is still good). Refused unless
    /// `owner` is the signed-in account; a grant in hand of another account is dropped.
    pub async fn grant_for(&self, owner: &Owner) -> Result<Arc<Grant>> {
        self.check(owner)?;
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| c.owner != *owner) {
            *cached = None;
            self.track(|t| *t = Tracker::default());
        }
        if cached.is_none() {
            *cached = self.load_from_keychain(owner).await;
            if let Some(kept) = cached.as_ref() {
                self.seen(kept);
            }
            if let Some(c) = cached.as_ref() {
                self.track(|t| {
                    t.status.expires_at = Some(c.grant.expires_at);
                    t.status.refreshed_at = Some(c.received_at);
                });
            }
        }
        if let Some(c) = cached.as_ref() {
            let now = self.now();
            let backing_off = self.track(|t| t.status.retry_at.is_some_and(|at| now < at));
            if now < c.refresh_at() || (backing_off && c.usable(now)) {
                return Ok(c.grant.clone());
            }
        }
        let fresh = self.fetch(owner, cached.as_ref()).await?;
        let grant = fresh.grant.clone();
        self.seen(&fresh);
        *cached = Some(fresh);
        Ok(grant)
    }

    /// After the store rejected `access_key_id` (expired or invalid token): a new grant for
    /// `owner`, unless another request already replaced that one.
    pub async fn after_rejection(&self, owner: &Owner, access_key_id: &str) -> Result<Arc<Grant>> {
        self.check(owner)?;
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.owner == *owner
            && c.grant.access_key_id != access_key_id
        {
            return Ok(c.grant.clone());
        }
        let fresh = self.fetch(owner, None).await?;
        let grant = fresh.grant.clone();
        self.seen(&fresh);
        *cached = Some(fresh);
        Ok(grant)
    }

    /// Keeps a grant at hand while the session lasts: fetches one now and again whenever it is
    /// due (or its backoff ends), so the expiry a front end shows is never stale, even while
    /// nothing uploads. Returns when the session has ended.
    pub async fn keep_fresh(&self) -> Error {
        loop {
            if let Err(err) = self.current().await
                && err.needs_sign_in()
            {
                return err;
            }
            let next = {
                let cached = self.cached.lock().await;
                let due = cached.as_ref().map(Cached::refresh_at);
                let retry = self.status().retry_at;
                match (due, retry) {
                    (Some(due), Some(retry)) => due.max(retry),
                    (Some(at), None) | (None, Some(at)) => at,
                    (None, None) => self.now() + MAX_BACKOFF,
                }
            };
            let wait = (next - self.now())
                .clamp(time::Duration::milliseconds(200), time::Duration::hours(1));
            tokio::time::sleep(wait.unsigned_abs()).await;
        }
    }

    /// Drops the grant in hand (another account is signing in; each keeps its own in the
    /// keychain).
    pub async fn drop_cached(&self) {
        *self.cached.lock().await = None;
        self.track(|t| *t = Tracker::default());
    }

    /// Drops the signed-in account's grant here and in the keychain (sign-out).
    pub async fn forget(&self) -> Result<()> {
        self.drop_cached().await;
        let keychain = self.session.keychain().clone();
        let mut names = vec![legacy_keychain_name(self.session.api().base())];
        // Signed out without a session restored first (`ferry logout`): the account is the
        // one whose session the keychain holds.
        let owner = match self.session.owner() {
            Some(owner) => Some(owner),
            None => self.session.stored_owner().ok().flatten(),
        };
        if let Some(owner) = owner {
            names.push(keychain_name(&owner));
        }
        crate::blocking::run("a keychain call", move || {
            names.iter().try_for_each(|name| keychain.delete(name))
        })
        .await
    }

    async fn load_from_keychain(&self, owner: &Owner) -> Option<Cached> {
        let keychain = self.session.keychain().clone();
        let name = keychain_name(owner);
        let json = crate::blocking::run("a keychain call", move || keychain.get(&name))
            .await
            .ok()??;
        let (grant, received_at): (Grant, i64) = serde_json::from_str(json.expose()).ok()?;
        let received_at = OffsetDateTime::from_unix_timestamp(received_at).ok()?;
        Some(Cached {
            owner: owner.clone(),
            grant: Arc::new(grant),
            received_at,
        })
    }

    /// Fetches a new grant for `owner` (the caller holds the lock: one refresh at a time).
    /// When that fails and `old` is still usable, it is kept, the failure reported, and the
    /// next try put off. A grant that arrives after the session changed hands is not kept.
    async fn fetch(&self, owner: &Owner, old: Option<&Cached>) -> Result<Cached> {
        let token = self.session.token()?;
        let request = self.ask.clone();
        self.track(|t| t.status.refreshing = true);
        let _refreshing = Refreshing(&self.tracker);
        (self.events)(Event::CredentialsRefreshing);
        let api = self.session.api();
        match api.grant_for(&token, &request, &owner.user_name).await {
            Ok(grant) => {
                self.check(owner)?;
                Ok(self.received(owner, grant).await)
            }
            Err(err) => {
                if err.needs_sign_in() {
                    self.session.expired();
                    (self.events)(Event::SessionExpired);
                    return Err(err);
                }
                let now = self.now();
                let keep = old.filter(|old| old.usable(now));
                self.track(|t| {
                    t.failures += 1;
                    t.status.last_error = Some((&err).into());
                    t.status.retry_at = Some(now + backoff(t.failures));
                });
                tracing::warn!(error = %err, keeping_old = keep.is_some(), "credential refresh failed");
                (self.events)(Event::CredentialsRefreshFailed {
                    error: (&err).into(),
                });
                keep.cloned().ok_or(err)
            }
        }
    }

    /// Takes a new grant of `owner` into use: status, event, and (best effort) the keychain.
    async fn received(&self, owner: &Owner, grant: Grant) -> Cached {
        let received_at = self.now();
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let saved = self.save(owner, &grant, received_at).await;
        self.track(|t| {
            t.failures = 0;
            t.status.expires_at = Some(grant.expires_at);
            t.status.refreshed_at = Some(received_at);
            t.status.last_error = None;
            t.status.retry_at = None;
            t.status.keychain_error = saved.as_ref().err().map(ErrorInfo::from);
        });
        tracing::info!(expires_at = %grant.expires_at, "storage credentials refreshed");
        (self.events)(Event::CredentialsRefreshed {
            expires_at: grant.expires_at,
        });
        if let Err(err) = saved {
            // The grant works from memory; only a restart within its lifetime loses it.
            tracing::warn!(error = %err, "the new storage credentials were not saved");
            (self.events)(Event::CredentialsNotSaved {
                error: (&err).into(),
            });
        }
        Cached {
            owner: owner.clone(),
            grant: Arc::new(grant),
            received_at,
        }
    }

    /// Saves `owner`'s grant in the keychain, so a restart within its lifetime needs no new
    /// one.
    async fn save(&self, owner: &Owner, grant: &Grant, received_at: OffsetDateTime) -> Result<()> {
        let json = serde_json::to_string(&(grant, received_at.unix_timestamp())).map_err(|e| {
            Error::Protocol {
                operation: "storing the grant",
                detail: e.to_string(),
            }
        })?;
        let keychain = self.session.keychain().clone();
        let name = keychain_name(owner);
        crate::blocking::run("a keychain call", move || {
            keychain.set(&name, &Secret::new(json))
        })
        .await
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
            addressing: Default::default(),
            signature_version: Default::default(),
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
            owner: Owner {
                server: String::new(),
                user_id: 1,
                user_name: String::new(),
            },
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

    #[test]
    fn backoff_doubles_from_one_second_up_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_grant_is_not_used_in_its_last_seconds() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let at = |secs: i64| start + time::Duration::seconds(secs);
        // 15 minutes: the last 5 seconds are off limits.
        assert!(cached(900).usable(at(894)));
        assert!(!cached(900).usable(at(895)));
        // 8 seconds: the last quarter (2 s).
        assert!(cached(8).usable(at(5)));
        assert!(!cached(8).usable(at(6)));
    }
}
