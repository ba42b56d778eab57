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
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            per_user: 5,
            per_address: 20,
            slow_after: 2,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
}

/// Counts failed sign-ins by user and by address.
pub(crate) struct Throttle {
    policy: ThrottlePolicy,
    failures: Mutex<HashMap<String, Failures>>,
}

impl Throttle {
    pub(crate) fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(user: &str, addr: IpAddr) -> [(String, bool); 2] {
        [
            (format!("user:{user}"), true),
            (format!("addr:{addr}"), false),
        ]
    }

    /// Refuses when a limit is reached; otherwise says how long to hold the answer back.
    fn admit(&self, user: &str, addr: IpAddr) -> Result<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, f| now.duration_since(f.first) < self.policy.window);
        let mut worst = 0;
        for (key, is_user) in Self::keys(user, addr) {
            let Some(f) = map.get(&key) else { continue };
            let limit = if is_user {
                self.policy.per_user
            } else {
                self.policy.per_address
            };
            if f.count >= limit {
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
        let extra = worst.saturating_sub(self.policy.slow_after);
        Ok(if extra == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(200 << extra.min(4))
        })
    }

    fn failed(&self, user: &str, addr: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for (key, _) in Self::keys(user, addr) {
            map.entry(key)
                .or_insert(Failures {
                    count: 0,
                    first: now,
                })
                .count += 1;
        }
    }

    fn succeeded(&self, user: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("user:{user}"));
    }
}

/// Signs people in and out and resolves bearer tokens.
pub(crate) struct Sessions {
    db: Db,
    accounts: Accounts,
    throttle: Throttle,
    ttl: Duration,
}

impl Sessions {
    pub(crate) fn new(db: Db, policy: ThrottlePolicy, ttl: Duration) -> Self {
        Self {
            accounts: Accounts::new(db.clone()),
            db,
            throttle: Throttle::new(policy),
            ttl,
        }
    }

    /// Checks the password (throttled) and starts a session.
    pub(crate) async fn sign_in(
        &self,
        username: &str,
        password: &str,
        device: Option<String>,
        addr: IpAddr,
    ) -> Result<Session> {
        let delay = self.throttle.admit(username, addr)?;
        tokio::time::sleep(delay).await;
        let row = match self.accounts.authenticate(username, password).await {
            Ok(row) => row,
            Err(err) => {
                if matches!(err, Error::InvalidCredentials) {
                    self.throttle.failed(username, addr);
                }
                return Err(err);
            }
        };
        self.throttle.succeeded(username);
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
        assert_eq!(t.admit("a", addr).unwrap(), Duration::ZERO);
        for _ in 0..3 {
            t.failed("a", addr);
        }
        assert!(t.admit("a", addr).unwrap() > Duration::ZERO);
        t.failed("a", addr);
        t.failed("a", addr);
        assert!(matches!(t.admit("a", addr), Err(Error::RateLimited { .. })));
        // Another user from another address is not affected.
        assert!(t.admit("b", [127, 0, 0, 2].into()).is_ok());
        t.succeeded("a");
        assert!(t.admit("a", addr).is_ok());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = random_token();
        assert_ne!(a, random_token());
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), a.as_bytes());
    }
}
