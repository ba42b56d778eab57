//! Signing in and out of an app server. The session token lives in the keychain (never on
//! disk) under the server's URL, so a restart finds it again.

use std::sync::{Arc, RwLock};

use ferry_protocol::{Session as WireSession, User};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::api::ApiClient;
use crate::error::{Error, Result};
use crate::journal::Owner;
use crate::keychain::Keychain;
use crate::secret::Secret;

/// What the keychain keeps of a session.
#[derive(Serialize, Deserialize)]
struct Stored {
    token: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    user: User,
}

/// What restoring a kept session does when the app server cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offline {
    /// Fail with the network error (a command that is run once and should say so).
    Fail,
    /// Take the kept session while it has not expired; the server's first refusal asks for a
    /// sign-in (an app started at login, before the network).
    Keep,
}

/// The signed-in state of one app server.
pub struct Session {
    api: ApiClient,
    keychain: Arc<dyn Keychain>,
    current: RwLock<Option<(Secret, User, OffsetDateTime)>>,
}

fn entry_name(server: &str) -> String {
    format!("session:{server}")
}

impl Session {
    /// A signed-out session for `api`'s server.
    pub fn new(api: ApiClient, keychain: Arc<dyn Keychain>) -> Self {
        Self {
            api,
            keychain,
            current: RwLock::new(None),
        }
    }

    /// The API client.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// The keychain secrets are kept in.
    pub fn keychain(&self) -> &Arc<dyn Keychain> {
        &self.keychain
    }

    /// Signs in and keeps the token in the keychain.
    pub async fn sign_in(&self, username: &str, password: &Secret, device: &str) -> Result<User> {
        let WireSession {
            token,
            expires_at,
            user,
        } = self.api.sign_in(username, password, device).await?;
        let stored = Stored {
            token: token.clone(),
            expires_at,
            user: user.clone(),
        };
        let json = serde_json::to_string(&stored).map_err(|e| Error::Protocol {
            operation: "storing the session",
            detail: e.to_string(),
        })?;
        self.in_keychain(move |k, name| k.set(name, &Secret::new(json)))
            .await?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) =
            Some((Secret::new(token), user.clone(), expires_at));
        Ok(user)
    }

    /// Restores the session kept in the keychain, if it is still valid on the server. When the
    /// server cannot be reached, `offline` says what to do: fail (a one-off command), or take
    /// the kept session while it has not expired (an app started before the network is up).
    pub async fn restore(&self, offline: Offline) -> Result<Option<User>> {
        let Some(json) = self.in_keychain(|k, name| k.get(name)).await? else {
            return Ok(None);
        };
        let Ok(stored) = serde_json::from_str::<Stored>(json.expose()) else {
            self.in_keychain(|k, name| k.delete(name)).await?;
            return Ok(None);
        };
        let token = Secret::new(stored.token);
        match self.api.check_session(&token, &stored.user).await {
            Ok(user) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) =
                    Some((token, user.clone(), stored.expires_at));
                Ok(Some(user))
            }
            Err(err) if err.needs_sign_in() => {
                self.in_keychain(|k, name| k.delete(name)).await?;
                Ok(None)
            }
            // The server cannot be reached (a start before the network is up): the kept session
            // is taken as it is until the server says otherwise — its first refusal asks for a
            // sign-in, and uploads wait for the link meanwhile.
            Err(err)
                if offline == Offline::Keep
                    && err.is_transient()
                    && stored.expires_at > OffsetDateTime::now_utc() =>
            {
                tracing::warn!(error = %err, "the app server cannot be reached; using the kept session");
                *self.current.write().unwrap_or_else(|p| p.into_inner()) =
                    Some((token, stored.user.clone(), stored.expires_at));
                Ok(Some(stored.user))
            }
            Err(err) => Err(err),
        }
    }

    /// The session kept in the keychain, read without asking the server anything.
    fn stored(&self) -> Result<Option<Stored>> {
        let Some(json) = self.keychain.get(&entry_name(self.api.base()))? else {
            return Ok(None);
        };
        Ok(serde_json::from_str::<Stored>(json.expose()).ok())
    }

    /// The account of the session kept in the keychain, without asking the server whether it
    /// is still valid (for status displays that must not touch the network).
    pub fn stored_owner(&self) -> Result<Option<Owner>> {
        Ok(self.stored()?.map(|stored| Owner {
            server: self.api.base().to_owned(),
            user_id: stored.user.id,
            user_name: stored.user.name,
        }))
    }

    /// The token of the session kept in the keychain (what diagnostics written by another
    /// process than the one signed in leave out).
    pub(crate) fn stored_token(&self) -> Result<Option<Secret>> {
        Ok(self.stored()?.map(|stored| Secret::new(stored.token)))
    }

    /// Ends the session here and on the server (best effort there).
    pub async fn sign_out(&self) -> Result<()> {
        let token = self
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((token, _, _)) = token
            && let Err(err) = self.api.sign_out(&token).await
        {
            tracing::warn!(error = %err, "the server did not take the sign-out");
        }
        self.in_keychain(|k, name| k.delete(name)).await
    }

    /// Runs a keychain call for this server's session entry on a blocking thread (D-Bus calls
    /// wait; async workers must not).
    async fn in_keychain<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Keychain, &str) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let keychain = self.keychain.clone();
        let name = entry_name(self.api.base());
        crate::blocking::run("a keychain call", move || f(keychain.as_ref(), &name)).await
    }

    /// Forgets the session locally after the server said it ended; `true` when it was still
    /// there (so that the end is reported once).
    pub fn expired(&self) -> bool {
        self.current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some()
    }

    /// The bearer token, or [`Error::SignedOut`].
    pub fn token(&self) -> Result<Secret> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(token, _, _)| token.clone())
            .ok_or(Error::SignedOut)
    }

    /// The account files are added for and uploaded as: this server and the signed-in user.
    pub fn owner(&self) -> Option<Owner> {
        self.user().map(|(user, _)| Owner {
            server: self.api.base().to_owned(),
            user_id: user.id,
            user_name: user.name,
        })
    }

    /// The signed-in user and when the session ends.
    pub fn user(&self) -> Option<(User, OffsetDateTime)> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(_, user, expires)| (user.clone(), *expires))
    }
}
