//! SQL for users, sessions and grants.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Cached, Db, DbError};

/// A user as stored.
#[derive(Debug, Clone)]
pub(crate) struct UserRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) password_hash: String,
    pub(crate) role: String,
    pub(crate) disabled: bool,
}

/// A grant as stored: no secret, only the hash of its session token.
#[derive(Debug, Clone)]
pub(crate) struct GrantRow {
    pub(crate) access_key_id: String,
    pub(crate) user_id: i64,
    pub(crate) bucket: String,
    pub(crate) prefix: String,
    pub(crate) token_hash: Vec<u8>,
    pub(crate) expires_at: i64,
    /// The dialect it was minted for: `s3`, `oss` or `obs`.
    pub(crate) provider: String,
    /// The signature its requests carry: `v4`, or `v1` (OSS only).
    pub(crate) signature_version: String,
}

const USER_COLUMNS: &str = "id, name, password_hash, role, disabled";

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: row.get(0)?,
        name: row.get(1)?,
        password_hash: row.get(2)?,
        role: row.get(3)?,
        disabled: row.get(4)?,
    })
}

fn user_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<UserRow>> {
    conn.row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"),
        [name],
        user_from_row,
    )
    .optional()
}

impl Db {
    /// Inserts a user; `Ok(None)` when the name is taken.
    pub(crate) fn insert_user(
        &self,
        name: &str,
        password_hash: &str,
        role: &str,
    ) -> Result<Option<i64>, DbError> {
        self.call_sync(|c| {
            let inserted = c.run(
                "INSERT INTO users (name, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO NOTHING",
                params![name, password_hash, role, super::now()],
            )?;
            Ok((inserted == 1).then(|| c.last_insert_rowid()))
        })
    }

    pub(crate) fn user_by_name_sync(&self, name: &str) -> Result<Option<UserRow>, DbError> {
        self.call_sync(|c| user_by_name(c, name))
    }

    pub(crate) async fn user_by_name(&self, name: String) -> Result<Option<UserRow>, DbError> {
        self.call(move |c| user_by_name(c, &name)).await
    }

    pub(crate) fn list_users(&self) -> Result<Vec<UserRow>, DbError> {
        self.call_sync(|c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))?;
            stmt.query_map([], user_from_row)?.collect()
        })
    }

    /// Returns whether a user of that name existed.
    pub(crate) fn set_password_hash(&self, name: &str, hash: &str) -> Result<bool, DbError> {
        self.call_sync(|c| {
            Ok(c.run(
                "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                params![name, hash],
            )? == 1)
        })
    }

    /// Disables a user and ends their sessions; returns whether the user existed.
    pub(crate) fn disable_user(&self, name: &str) -> Result<bool, DbError> {
        self.call_sync(|c| {
            let tx = c.transaction()?;
            let found = tx.run("UPDATE users SET disabled = 1 WHERE name = ?1", [name])? == 1;
            tx.run(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
                [name],
            )?;
            tx.run(
                "DELETE FROM grants WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
                [name],
            )?;
            tx.commit()?;
            Ok(found)
        })
    }

    pub(crate) async fn insert_session(
        &self,
        token_hash: Vec<u8>,
        user_id: i64,
        device: Option<String>,
        expires_at: i64,
    ) -> Result<(), DbError> {
        self.call(move |c| {
            let now = super::now();
            c.run("DELETE FROM sessions WHERE expires_at < ?1", [now])?;
            c.run(
                "INSERT INTO sessions (token_hash, user_id, device, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![token_hash, user_id, device, now, expires_at],
            )?;
            Ok(())
        })
        .await
    }

    /// The session's user and expiry, for an enabled user.
    pub(crate) async fn session(
        &self,
        token_hash: Vec<u8>,
    ) -> Result<Option<(UserRow, i64)>, DbError> {
        self.call(move |c| {
            c.row(
                "SELECT u.id, u.name, u.password_hash, u.role, u.disabled, s.expires_at
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND u.disabled = 0",
                [token_hash],
                |row| Ok((user_from_row(row)?, row.get(5)?)),
            )
            .optional()
        })
        .await
    }

    pub(crate) async fn delete_session(&self, token_hash: Vec<u8>) -> Result<(), DbError> {
        self.call(move |c| {
            c.run("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn insert_grant(&self, grant: GrantRow) -> Result<(), DbError> {
        self.call(move |c| {
            let now = super::now();
            // Expired grants are only kept for a day so that ExpiredToken (rather than an
            // unknown key) is answered for a while after expiry.
            c.run("DELETE FROM grants WHERE expires_at < ?1", [now - 86_400])?;
            c.run(
                "INSERT INTO grants
                 (access_key_id, user_id, bucket, prefix, token_hash, created_at, expires_at,
                  provider, signature_version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    grant.access_key_id,
                    grant.user_id,
                    grant.bucket,
                    grant.prefix,
                    grant.token_hash,
                    now,
                    grant.expires_at,
                    grant.provider,
                    grant.signature_version
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn grant(&self, access_key_id: String) -> Result<Option<GrantRow>, DbError> {
        self.call(move |c| {
            c.row(
                "SELECT g.access_key_id, g.user_id, g.bucket, g.prefix, g.token_hash, g.expires_at,
                        g.provider, g.signature_version
                 FROM grants g JOIN users u ON u.id = g.user_id
                 WHERE g.access_key_id = ?1 AND u.disabled = 0",
                [access_key_id],
                |row| {
                    Ok(GrantRow {
                        access_key_id: row.get(0)?,
                        user_id: row.get(1)?,
                        bucket: row.get(2)?,
                        prefix: row.get(3)?,
                        token_hash: row.get(4)?,
                        expires_at: row.get(5)?,
                        provider: row.get(6)?,
                        signature_version: row.get(7)?,
                    })
                },
            )
            .optional()
        })
        .await
    }
}
