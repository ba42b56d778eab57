//! How Ferry's SQLite databases — the client's journal and the app server's — are opened and
//! run the statements they run for every file: each one prepared once per connection and
//! kept, with a plan that does not depend on the values bound to it.

use rusqlite::Connection;

/// Statements prepared once per connection and kept: the same few run for every file, and
/// parsing them each time was a visible part of a small file's cost (a tenth of the app
/// server's CPU).
pub trait Cached {
    /// Like `Connection::execute`, with the statement from the cache.
    fn run<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    /// Like `Connection::query_row`, with the statement from the cache.
    fn row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn run<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// What every connection is opened with: a wait for a busy database, a cache of prepared
/// statements, and plans that do not depend on bound values — otherwise SQLite prepares a
/// statement again each time its bindings are cleared, which the statement cache does after
/// every use, and did for the queries run for every file. (Queries that must use an index
/// name it; partial indexes' conditions are written with literals.)
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// How many times the cached statement for `sql` has run, and been prepared again before it
/// ran (what tests read to know a statement is kept and not compiled again).
pub fn statement_status(conn: &Connection, sql: &str) -> rusqlite::Result<(i32, i32)> {
    use rusqlite::StatementStatus::{RePrepare, Run};
    let stmt = conn.prepare_cached(sql)?;
    Ok((stmt.get_status(Run), stmt.get_status(RePrepare)))
}
