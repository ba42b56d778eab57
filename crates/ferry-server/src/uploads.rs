//! Upload confirmations and history. A confirmation is checked against the store (the object
//! must exist with the confirmed size and ETag, under the caller's prefix) and merged into the
//! row the store recorded when it committed the object, so one upload is one row.

use ferry_protocol::{
    Confirmation, ConfirmedBy, DayStats, Role, Stats, UploadPage, UploadRecord, UploadStatus, User,
};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, Time};

use crate::db::{ClientConfirmation, Db, HistoryFilter, Recorded, StoredUpload};
use crate::error::{Error, Result};
use crate::grants::user_prefix;
use crate::object_key;
use crate::store::{ObjectInfo, Store};

/// Query string of the history endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only this account's rows (admins only, or one's own name).
    pub user: Option<String>,
    /// `stored` or `confirmed`.
    pub status: Option<String>,
    /// Completed at or after: RFC 3339 or `YYYY-MM-DD`.
    pub since: Option<String>,
    /// Completed before: RFC 3339, or `YYYY-MM-DD` meaning the end of that day.
    pub until: Option<String>,
    /// Substring of the key or the name.
    pub q: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Rows per page, 1–500 (default 50).
    pub limit: Option<usize>,
    /// Grouping for statistics; only `day`.
    pub by: Option<String>,
}

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;
const MAX_EXPORT: usize = 100_000;

fn parse_time(value: &str, end_of_day: bool) -> Result<i64> {
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(value, &format).map_err(|_| {
        Error::InvalidRequest(format!(
            "{value:?} is not a date (YYYY-MM-DD) or RFC 3339 time"
        ))
    })?;
    let start = date.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp();
    Ok(if end_of_day { start + 86_400 } else { start })
}

fn to_time(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn record(row: StoredUpload) -> UploadRecord {
    UploadRecord {
        id: row.id,
        user: row.user,
        bucket: row.bucket,
        key: row.key,
        name: row.name,
        size: row.size,
        etag: row.etag,
        checksum: row.checksum,
        device: row.device,
        upload_id: row.client_upload_id,
        started_at: to_time(row.started_at),
        completed_at: to_time(row.completed_at),
        status: if row.status == "confirmed" {
            UploadStatus::Confirmed
        } else {
            UploadStatus::Stored
        },
        confirmed_by: match row.confirmed_by.as_str() {
            "client" => ConfirmedBy::Client,
            "provider" => ConfirmedBy::Provider,
            _ => ConfirmedBy::Store,
        },
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(format!(
            "{field} must be 1–{max} bytes without control characters"
        )));
    }
    Ok(())
}

/// Confirmations and history.
pub(crate) struct Uploads {
    db: Db,
    store: Store,
    bucket: UploadBucket,
}

/// The bucket uploads go to.
#[derive(Debug, Clone)]
pub(crate) struct UploadBucket {
    pub(crate) name: String,
    /// Whether it is the embedded store's: then a confirmation is checked against the object.
    /// A cloud's bucket (a broker's) the server cannot look into: the client's word is
    /// recorded as such (`confirmed_by: client`), unless the store's callback vouches for it.
    pub(crate) in_store: bool,
}

impl Uploads {
    pub(crate) fn new(db: Db, store: Store, bucket: UploadBucket) -> Self {
        Self { db, store, bucket }
    }

    /// Records the client's confirmation after checking the object in the store.
    pub(crate) async fn confirm(&self, user: &User, c: Confirmation) -> Result<UploadRecord> {
        self.record(user.id, c, "client").await
    }

    /// Records what a verified provider callback says of user `user_id`'s upload, checked
    /// against the store like a client's confirmation: a callback for an object the store no
    /// longer holds with that size and ETag (a replay after the object changed) is refused.
    /// For a cloud's bucket it stays the client's word: the body is the template the client
    /// sent with its own credentials, and the server cannot look at the object.
    pub(crate) async fn confirm_by_provider(
        &self,
        user_id: i64,
        c: Confirmation,
    ) -> Result<UploadRecord> {
        let by = if self.bucket.in_store {
            "provider"
        } else {
            "client"
        };
        self.record(user_id, c, by).await
    }

    /// Records several of `user`'s confirmations, each checked as [`Uploads::confirm`] does,
    /// written in one transaction; one outcome per confirmation, in order. A confirmation
    /// that fails its checks fails alone.
    pub(crate) async fn confirm_batch(
        &self,
        user: &User,
        all: Vec<Confirmation>,
    ) -> Result<Vec<Result<UploadRecord>>> {
        if all.len() > ferry_protocol::MAX_BATCH {
            return Err(Error::InvalidRequest(format!(
                "at most {} confirmations per request",
                ferry_protocol::MAX_BATCH
            )));
        }
        let mut outcomes: Vec<Option<Result<UploadRecord>>> = Vec::with_capacity(all.len());
        let mut checked = Vec::new();
        for settled in self.checked_all(user.id, all).await? {
            match settled {
                Ok(ok) => {
                    checked.push((outcomes.len(), ok));
                    outcomes.push(None);
                }
                Err(err) => outcomes.push(Some(Err(err))),
            }
        }
        let (places, rows): (Vec<usize>, Vec<ClientConfirmation>) = checked.into_iter().unzip();
        let ids: Vec<String> = rows.iter().map(|r| r.upload_id.clone()).collect();
        let recorded = self.db.confirm_many(rows).await?;
        for ((place, id), recorded) in places.into_iter().zip(ids).zip(recorded) {
            outcomes[place] = Some(match recorded {
                Recorded::Row(row) => Ok(record(*row)),
                Recorded::Conflict => Err(Error::Conflict(id)),
            });
        }
        Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.expect("every confirmation has its outcome"))
            .collect())
    }

    /// Confirmations checked as [`Uploads::checked`] checks one, their objects looked up
    /// together; one outcome each, in order (a database error fails them all; the client then
    /// confirms each file alone).
    async fn checked_all(
        &self,
        user_id: i64,
        all: Vec<Confirmation>,
    ) -> Result<Vec<Result<ClientConfirmation>>> {
        let claims: Vec<Result<Claim>> = all
            .into_iter()
            .map(|c| claim(user_id, c, &self.bucket.name))
            .collect();
        let keys: Vec<String> = claims
            .iter()
            .flatten()
            .map(|claim| claim.c.key.clone())
            .collect();
        let objects = match self.bucket.in_store && !keys.is_empty() {
            true => self.store.heads(&self.bucket.name, keys).await?,
            false => Vec::new(),
        };
        // One object (or `None`: nothing there) per claim that passed, in order.
        let mut objects = objects.into_iter();
        let settled = claims
            .into_iter()
            .map(|claim| {
                claim.and_then(|claim| {
                    let object = objects.next().flatten();
                    self.settled(user_id, claim, "client", object)
                })
            })
            .collect();
        debug_assert!(
            objects.next().is_none(),
            "an object for every claim that passed"
        );
        Ok(settled)
    }

    async fn record(
        &self,
        user_id: i64,
        c: Confirmation,
        by: &'static str,
    ) -> Result<UploadRecord> {
        let upload_id = c.upload_id.clone();
        let checked = self.checked(user_id, c, by).await?;
        match self.db.confirm(checked).await? {
            Recorded::Row(row) => Ok(record(*row)),
            Recorded::Conflict => Err(Error::Conflict(upload_id)),
        }
    }

    /// A confirmation checked (fields, prefix, and for the embedded store the object itself)
    /// and ready to write.
    async fn checked(
        &self,
        user_id: i64,
        c: Confirmation,
        by: &'static str,
    ) -> Result<ClientConfirmation> {
        let claim = claim(user_id, c, &self.bucket.name)?;
        let object = if self.bucket.in_store {
            self.store.head(&claim.c.bucket, &claim.c.key).await?
        } else {
            None
        };
        self.settled(user_id, claim, by, object)
    }

    /// A claim checked against `object`, what the embedded store holds at its key (for a
    /// cloud's bucket, which the server cannot look into, the claim stands as the client's).
    fn settled(
        &self,
        user_id: i64,
        claim: Claim,
        by: &'static str,
        object: Option<ObjectInfo>,
    ) -> Result<ClientConfirmation> {
        let Claim { c, etag } = claim;
        let completed_at = if self.bucket.in_store {
            let info = object.ok_or_else(|| Error::ObjectMissing {
                bucket: c.bucket.clone(),
                key: c.key.clone(),
            })?;
            if info.size != c.size || info.etag != etag {
                return Err(Error::ObjectMismatch {
                    size: info.size,
                    etag: info.etag,
                });
            }
            info.created_at
        } else {
            crate::db::now()
        };
        Ok(ClientConfirmation {
            by,
            user_id,
            upload_id: c.upload_id,
            bucket: c.bucket,
            key: c.key,
            size: c.size,
            etag,
            checksum: c.checksum,
            name: c.name,
            device: c.device,
            completed_at,
        })
    }

    fn filter(&self, user: &User, q: &HistoryQuery) -> Result<HistoryFilter> {
        let mut filter = HistoryFilter::default();
        match (user.role, &q.user) {
            (Role::Admin, Some(name)) => filter.user_name = Some(name.clone()),
            (Role::Admin, None) => {}
            (Role::User, Some(name)) if *name != user.name => {
                return Err(Error::Forbidden("only admins see other users' uploads"));
            }
            (Role::User, _) => filter.user_id = Some(user.id),
        }
        if let Some(status) = &q.status {
            if status != UploadStatus::Stored.as_str() && status != UploadStatus::Confirmed.as_str()
            {
                return Err(Error::InvalidRequest(
                    "status is 'stored' or 'confirmed'".into(),
                ));
            }
            filter.status = Some(status.clone());
        }
        filter.since = q
            .since
            .as_deref()
            .map(|s| parse_time(s, false))
            .transpose()?;
        filter.until = q
            .until
            .as_deref()
            .map(|s| parse_time(s, true))
            .transpose()?;
        filter.query = q.q.clone().filter(|s| !s.is_empty());
        filter.before_id =
            match &q.cursor {
                Some(cursor) => Some(cursor.parse::<i64>().map_err(|_| {
                    Error::InvalidRequest("cursor is not one this server gave".into())
                })?),
                None => None,
            };
        Ok(filter)
    }

    /// One page of history, newest first.
    pub(crate) async fn page(&self, user: &User, q: &HistoryQuery) -> Result<UploadPage> {
        let filter = self.filter(user, q)?;
        let limit = q.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::InvalidRequest(format!(
                "limit goes from 1 to {MAX_PAGE}"
            )));
        }
        let mut rows = self.db.history(filter, limit + 1).await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(UploadPage {
            items: rows.into_iter().map(record).collect(),
            next_cursor,
        })
    }

    /// Every matching row as CSV (admins).
    pub(crate) async fn csv(&self, user: &User, q: &HistoryQuery) -> Result<String> {
        require_admin(user)?;
        let rows = self.db.history(self.filter(user, q)?, MAX_EXPORT).await?;
        let mut out = String::from(
            "id,user,bucket,key,name,size,etag,checksum,device,started_at,completed_at,status,confirmed_by\n",
        );
        for row in rows.into_iter().map(record) {
            let fields = [
                row.id.to_string(),
                row.user,
                row.bucket,
                row.key,
                row.name,
                row.size.to_string(),
                row.etag,
                row.checksum.unwrap_or_default(),
                row.device.unwrap_or_default(),
                row.started_at.format(&Rfc3339).unwrap_or_default(),
                row.completed_at.format(&Rfc3339).unwrap_or_default(),
                row.status.as_str().to_owned(),
                format!("{:?}", row.confirmed_by).to_lowercase(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        Ok(out)
    }

    /// Count and bytes per day and user (admins).
    pub(crate) async fn stats(&self, user: &User, q: &HistoryQuery) -> Result<Stats> {
        require_admin(user)?;
        if q.by.as_deref().is_some_and(|by| by != "day") {
            return Err(Error::InvalidRequest(
                "statistics are grouped by=day only".into(),
            ));
        }
        let rows = self.db.stats_by_day(self.filter(user, q)?).await?;
        Ok(Stats {
            by: "day".into(),
            rows: rows
                .into_iter()
                .map(|(day, user, count, bytes)| DayStats {
                    day,
                    user,
                    count,
                    bytes,
                })
                .collect(),
        })
    }
}

/// A confirmation whose fields and prefix are checked; its object is still to be looked at.
struct Claim {
    c: Confirmation,
    /// The ETag as the store keeps it: unquoted, lower case.
    etag: String,
}

/// Checks what `user_id`'s confirmation says of itself: its fields, and that the object is in
/// the user's prefix of the upload bucket.
fn claim(user_id: i64, c: Confirmation, bucket: &str) -> Result<Claim> {
    check_text("upload_id", &c.upload_id, 256)?;
    check_text("name", &c.name, 1024)?;
    if let Some(device) = &c.device {
        check_text("device", device, 256)?;
    }
    if let Some(checksum) = &c.checksum {
        check_text("checksum", checksum, 256)?;
    }
    object_key::check(&c.key).map_err(Error::InvalidKey)?;
    if c.bucket != bucket || !c.key.starts_with(&user_prefix(user_id)) {
        return Err(Error::Forbidden("the object is outside your upload prefix"));
    }
    // Hex ETags compare in any case: OSS hands them out in upper case, the store keeps them
    // in lower case.
    let etag = c.etag.trim().trim_matches('"').to_ascii_lowercase();
    Ok(Claim { c, etag })
}

fn require_admin(user: &User) -> Result<()> {
    match user.role {
        Role::Admin => Ok(()),
        Role::User => Err(Error::Forbidden("this is for admins only")),
    }
}

/// Quotes a CSV field when needed, and defuses leading characters spreadsheets would evaluate.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_dates() {
        assert_eq!(parse_time("1970-01-02", false).unwrap(), 86_400);
        assert_eq!(parse_time("1970-01-02", true).unwrap(), 2 * 86_400);
        assert_eq!(parse_time("1970-01-01T00:01:00Z", true).unwrap(), 60);
        assert!(parse_time("yesterday", false).is_err());
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }
}
