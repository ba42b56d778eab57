//! Accounts: usernames, argon2 password hashes, roles, and checking a sign-in.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use ferry_protocol::{Role, User};
use rand::RngCore;

use crate::db::{Db, UserRow};
use crate::error::{Error, Result};

/// Checks a username: 1–64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub(crate) fn check_username(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(Error::InvalidUsername("it is empty"));
    };
    if name.len() > 64 {
        return Err(Error::InvalidUsername("it is longer than 64 characters"));
    }
    if !first.is_ascii_lowercase() && !first.is_ascii_digit() {
        return Err(Error::InvalidUsername("it must start with a-z or 0-9"));
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)) {
        return Err(Error::InvalidUsername(
            "only a-z, 0-9, '.', '_' and '-' are allowed",
        ));
    }
    Ok(())
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub(crate) fn hash_password(password: &str) -> Result<String> {
    if password.is_empty() {
        return Err(Error::InvalidRequest("the password is empty".into()));
    }
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::PasswordHash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::PasswordHash(e.to_string()))
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A password checked against nobody, so that an unknown user costs as much as a known one.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("ferry-dummy-password").unwrap_or_default())
}

pub(crate) fn role_of(row: &UserRow) -> Role {
    if row.role == "admin" {
        Role::Admin
    } else {
        Role::User
    }
}

pub(crate) fn user_of(row: &UserRow) -> User {
    User {
        id: row.id,
        name: row.name.clone(),
        role: role_of(row),
    }
}

/// Account administration, as the `ferry-server user …` commands and `--demo` use it.
#[derive(Clone)]
pub struct Accounts {
    db: Db,
}

impl Accounts {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// Creates an account; fails when the name is invalid or taken.
    pub fn add(&self, name: &str, password: &str, role: Role) -> Result<i64> {
        check_username(name)?;
        let hash = hash_password(password)?;
        self.db
            .insert_user(name, &hash, role.as_str())?
            .ok_or_else(|| Error::UserExists(name.to_owned()))
    }

    /// Whether an account of that name exists.
    pub fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.db.user_by_name_sync(name)?.is_some())
    }

    /// Every account as `(user, disabled)`.
    pub fn list(&self) -> Result<Vec<(User, bool)>> {
        Ok(self
            .db
            .list_users()?
            .iter()
            .map(|row| (user_of(row), row.disabled))
            .collect())
    }

    /// Sets a new password.
    pub fn set_password(&self, name: &str, password: &str) -> Result<()> {
        let hash = hash_password(password)?;
        if self.db.set_password_hash(name, &hash)? {
            Ok(())
        } else {
            Err(Error::NoSuchUser(name.to_owned()))
        }
    }

    /// Disables an account and ends its sessions and grants.
    pub fn disable(&self, name: &str) -> Result<()> {
        if self.db.disable_user(name)? {
            Ok(())
        } else {
            Err(Error::NoSuchUser(name.to_owned()))
        }
    }

    /// Checks a sign-in. Unknown users, wrong passwords and disabled accounts are one error,
    /// and cost the same time.
    pub(crate) async fn authenticate(&self, name: &str, password: &str) -> Result<UserRow> {
        let row = self.db.user_by_name(name.to_owned()).await?;
        let hash = row
            .as_ref()
            .map_or_else(|| dummy_hash().to_owned(), |r| r.password_hash.clone());
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || password_matches(&password, &hash))
            .await
            .unwrap_or(false);
        match row {
            Some(row) if matches && !row.disabled => Ok(row),
            _ => Err(Error::InvalidCredentials),
        }
    }
}

/// Random printable password for demo accounts.
pub(crate) fn random_password() -> String {
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["alice", "a", "bob.smith", "x_1-2", "9lives"] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in ["", "Alice", "-x", "a b", "a/b", "ü", "../x", long.as_str()] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_hashes_verify_and_salt() {
        let a = hash_password("pw").unwrap();
        let b = hash_password("pw").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(password_matches("pw", &a));
        assert!(!password_matches("pW", &a));
        assert!(!password_matches("pw", "not a hash"));
    }
}
