//! Sign-in sessions: random bearer tokens stored only as hashes, with an expiry, and the sign-in
//! throttle that slows and then refuses repeated failures per user and per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_protocol::{Session, User};
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::accounts::{self, Accounts};
use crate::db::Db;
use crate::error::{Error, Result};

/// A new random token (256 bits, URL-safe base64).
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps of a token.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Limits of the sign-in throttle.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures are counted over this window.
    pub window: Duration,
    /// Failures for one username before it is refused.
    pub per_user: u32,
    /// Failures from one address before it is refused.
    pub per_address: u32,
    /// From this many failures on, answers are slowed down.
    pub slow_after: u32,
    /// Most usernames and addresses tracked at once; past it the oldest entry is dropped, so
    /// guesses spread over many names or addresses cannot grow the server's memory.
    pub max_tracked: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            per_user: 5,
            per_address: 20,
            slow_after: 2,
            max_tracked: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
}

/// What the throttle counts by: a username (hashed, so its length is bounded whatever was
/// sent) or an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    User([u8; 32]),
    Address(IpAddr),
}

impl Subject {
    fn pair(user: &str, addr: IpAddr) -> [Self; 2] {
        [
            Self::User(Sha256::digest(user.as_bytes()).into()),
            Self::Address(addr),
        ]
    }
}

/// Counts sign-in attempts by user and by address. An attempt counts as a failure from the
/// moment it is admitted (before the password is checked), so guesses sent in parallel are
/// counted as they arrive; a success takes its own count back.
pub(crate) struct Throttle {
    policy: ThrottlePolicy,
    failures: Mutex<HashMap<Subject, Failures>>,
}

impl Throttle {
    pub(crate) fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn limit(&self, subject: &Subject) -> u32 {
        match subject {
            Subject::User(_) => self.policy.per_user,
            Subject::Address(_) => self.policy.per_address,
        }
    }

    /// Refuses when a limit is reached; otherwise counts the attempt and says how long to
    /// hold the answer back.
    fn admit(&self, user: &str, addr: IpAddr) -> Result<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, f| now.duration_since(f.first) < self.policy.window);
        let subjects = Subject::pair(user, addr);
        let mut worst = 0;
        for subject in &subjects {
            let Some(f) = map.get(subject) else { continue };
            if f.count >= self.limit(subject) {
                let left = self
                    .policy
                    .window
                    .saturating_sub(now.duration_since(f.first));
                return Err(Error::RateLimited {
                    retry_after_secs: left.as_secs().max(1),
                });
            }
            worst = worst.max(f.count);
        }
        for subject in subjects {
            if !map.contains_key(&subject) {
                self.make_room(&mut map);
            }
            map.entry(subject)
                .or_insert(Failures {
                    count: 0,
                    first: now,
                })
                .count += 1;
        }
        let extra = worst.saturating_sub(self.policy.slow_after);
        Ok(if extra == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(200 << extra.min(4))
        })
    }

    /// Drops the oldest entries until one more fits under `max_tracked`.
    fn make_room(&self, map: &mut HashMap<Subject, Failures>) {
        while map.len() >= self.policy.max_tracked.max(2) {
            let oldest = map
                .iter()
                .min_by_key(|(_, f)| f.first)
                .map(|(subject, _)| subject.clone());
            match oldest {
                Some(subject) => map.remove(&subject),
                None => return,
            };
        }
    }

    /// Takes an admitted attempt back: all of the user's failures when the password was right
    /// (`clear_user`), otherwise just this attempt (the server failed, not the caller).
    fn settle(&self, user: &str, addr: IpAddr, clear_user: bool) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let [user, addr] = Subject::pair(user, addr);
        if clear_user {
            map.remove(&user);
        } else {
            refund(&mut map, &user);
        }
        refund(&mut map, &addr);
    }

    /// How many users and addresses are tracked now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

fn refund(map: &mut HashMap<Subject, Failures>, subject: &Subject) {
    if let Some(f) = map.get_mut(subject) {
        f.count = f.count.saturating_sub(1);
        if f.count == 0 {
            map.remove(subject);
        }
    }
}

/// Password checks run here: argon2 takes tens of MiB and a good share of a core, so only a
/// few run at once and only so many may wait; past that, a sign-in is refused as rate-limited.
struct PasswordChecks {
    accounts: Accounts,
    throttle: Throttle,
    permits: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
}

/// Password checks running at once.
const CONCURRENT_CHECKS: usize = 4;
/// Password checks waiting for their turn, at most.
const WAITING_CHECKS: usize = 64;

impl PasswordChecks {
    /// Checks `password` to the end, whatever the client does meanwhile, and sends the outcome
    /// on `answer`. An admitted attempt stays counted once its answer was taken (a failure is a
    /// guess); if nobody took it (the client hung up), it is taken back — a guess without an
    /// answer tells nothing — but only after the check ran, so hanging up buys no extra
    /// checks either.
    async fn check(
        &self,
        user: &str,
        password: &str,
        addr: IpAddr,
        delay: Duration,
        answer: tokio::sync::oneshot::Sender<Result<crate::db::UserRow>>,
    ) {
        tokio::time::sleep(delay).await;
        let result = match self.permits.acquire().await {
            Ok(_permit) => self.accounts.authenticate(user, password).await,
            Err(_) => Err(Error::InvalidCredentials),
        };
        self.waiting
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        let (right, wrong) = (
            result.is_ok(),
            matches!(result, Err(Error::InvalidCredentials)),
        );
        match answer.send(result) {
            Ok(()) if right => self.throttle.settle(user, addr, true),
            // A failure of the server, not of the password: not the caller's attempt.
            Ok(()) if !wrong => self.throttle.settle(user, addr, false),
            Ok(()) => {}
            Err(_) => self.throttle.settle(user, addr, right),
        }
    }
}

/// Signs people in and out and resolves bearer tokens.
pub(crate) struct Sessions {
    db: Db,
    checks: std::sync::Arc<PasswordChecks>,
    ttl: Duration,
}

impl Sessions {
    pub(crate) fn new(db: Db, policy: ThrottlePolicy, ttl: Duration) -> Self {
        Self {
            checks: std::sync::Arc::new(PasswordChecks {
                accounts: Accounts::new(db.clone()),
                throttle: Throttle::new(policy),
                permits: tokio::sync::Semaphore::new(CONCURRENT_CHECKS),
                waiting: std::sync::atomic::AtomicUsize::new(0),
            }),
            db,
            ttl,
        }
    }

    /// Checks the password (throttled, a few at a time) and starts a session.
    pub(crate) async fn sign_in(
        &self,
        username: &str,
        password: &str,
        device: Option<String>,
        addr: IpAddr,
    ) -> Result<Session> {
        let checks = self.checks.clone();
        let delay = checks.throttle.admit(username, addr)?;
        let waiting = checks
            .waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if waiting >= WAITING_CHECKS {
            checks
                .waiting
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            checks.throttle.settle(username, addr, false);
            return Err(Error::RateLimited {
                retry_after_secs: 1,
            });
        }
        let (answer, outcome) = tokio::sync::oneshot::channel();
        let (user, secret) = (username.to_owned(), password.to_owned());
        tokio::spawn(async move { checks.check(&user, &secret, addr, delay, answer).await });
        let row = outcome.await.map_err(|_| Error::Io {
            context: "checking the password".into(),
            source: std::io::Error::other("the password check ended without an answer"),
        })??;
        let token = random_token();
        let expires_at = OffsetDateTime::now_utc() + self.ttl;
        self.db
            .insert_session(
                token_hash(&token),
                row.id,
                device,
                expires_at.unix_timestamp(),
            )
            .await?;
        tracing::info!(user = %row.name, "signed in");
        Ok(Session {
            token,
            expires_at,
            user: accounts::user_of(&row),
        })
    }

    /// The user behind a bearer token.
    pub(crate) async fn resolve(&self, token: &str) -> Result<User> {
        let (row, expires_at) = self
            .db
            .session(token_hash(token))
            .await?
            .ok_or(Error::Unauthenticated)?;
        if expires_at <= crate::db::now() {
            return Err(Error::SessionExpired);
        }
        Ok(accounts::user_of(&row))
    }

    pub(crate) async fn sign_out(&self, token: &str) -> Result<()> {
        Ok(self.db.delete_session(token_hash(token)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_slows_then_refuses_and_success_resets_the_user() {
        let t = Throttle::new(ThrottlePolicy::default());
        let addr: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..3 {
            assert_eq!(t.admit("a", addr).unwrap(), Duration::ZERO);
        }
        assert!(t.admit("a", addr).unwrap() > Duration::ZERO);
        t.admit("a", addr).unwrap();
        assert!(matches!(t.admit("a", addr), Err(Error::RateLimited { .. })));
        // Another user from another address is not affected.
        assert!(t.admit("b", [127, 0, 0, 2].into()).is_ok());
        t.settle("a", addr, true);
        assert!(t.admit("a", addr).is_ok());
    }

    #[test]
    fn attempts_count_from_the_moment_they_are_admitted() {
        let t = Throttle::new(ThrottlePolicy::default());
        let addr: IpAddr = [127, 0, 0, 1].into();
        // Five guesses in flight at once, none of them answered yet: the sixth is refused.
        for _ in 0..5 {
            assert!(t.admit("a", addr).is_ok());
        }
        assert!(matches!(t.admit("a", addr), Err(Error::RateLimited { .. })));
    }

    #[test]
    fn a_success_takes_back_its_own_attempt_only() {
        let policy = ThrottlePolicy {
            per_address: 3,
            ..ThrottlePolicy::default()
        };
        let t = Throttle::new(policy);
        let addr: IpAddr = [127, 0, 0, 1].into();
        t.admit("x", addr).unwrap();
        t.admit("y", addr).unwrap();
        // Right passwords from the same address do not use up its allowance…
        for _ in 0..10 {
            t.admit("ok", addr).unwrap();
            t.settle("ok", addr, true);
        }
        // …while the two failures still count: one more, and the address is refused.
        t.admit("z", addr).unwrap();
        assert!(matches!(
            t.admit("ok", addr),
            Err(Error::RateLimited { .. })
        ));
    }

    #[test]
    fn guesses_over_many_names_and_addresses_stay_bounded() {
        let policy = ThrottlePolicy {
            max_tracked: 100,
            ..ThrottlePolicy::default()
        };
        let t = Throttle::new(policy);
        for i in 0..2000u32 {
            let addr = IpAddr::from(std::net::Ipv6Addr::from(u128::from(i)));
            let long_name = format!("{i}-{}", "x".repeat(10_000));
            let _ = t.admit(&long_name, addr);
            assert!(t.tracked() <= 100, "{} tracked after {i}", t.tracked());
        }
        // The newest entries are the ones kept.
        let last = IpAddr::from(std::net::Ipv6Addr::from(1999u128));
        let mut map = t.failures.lock().unwrap();
        assert!(map.remove(&Subject::Address(last)).is_some());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = random_token();
        assert_ne!(a, random_token());
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), a.as_bytes());
    }
}
