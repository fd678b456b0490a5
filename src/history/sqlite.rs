//! The embedded history: one SQLite file (rusqlite, SQLite bundled), created on first use,
//! written in WAL mode with a busy timeout so that two audits writing at once both land. A
//! write is one `BEGIN IMMEDIATE` transaction.

use std::path::Path;

use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::Connection;

use super::store::{Dialect, Driver, SqlStore, Val};
use super::HistoryError;

/// The SQLite driver of [`SqlStore`].
pub(crate) struct Sqlite {
    conn: Connection,
}

/// A history in a SQLite file.
pub(crate) type SqliteStore = SqlStore<Sqlite>;

/// Opens (or creates) the history at `path`. A file that is not a SQLite database, or one of a
/// newer schema than this version knows, is an error and is never overwritten.
pub(crate) fn open(path: &Path) -> Result<SqliteStore, HistoryError> {
    let location = path.display().to_string();
    let fail = |message: String| HistoryError::Storage {
        location: location.clone(),
        message,
    };
    let existed = path.exists();
    let conn = Connection::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| fail(e.to_string()))?;
    // Reading the header first: a file that is not a database fails here, before any write.
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(|e| fail(format!("not a history database: {e}")))?;
    if !existed {
        // Runs are large blobs: big pages mean fewer of them to write.
        conn.pragma_update(None, "page_size", 65536)
            .map_err(|e| fail(format!("cannot open: {e}")))?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| fail(format!("cannot open: {e}")))?;
    // In WAL mode, NORMAL never corrupts the database; a power cut may lose the last run.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| fail(format!("cannot open: {e}")))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| fail(e.to_string()))?;
    #[cfg(unix)]
    if !existed {
        // The history holds every user's email: the owner's only, as new reports are.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = existed;
    SqlStore::new(Sqlite { conn }, location)
}

fn bind(params: &[Val]) -> Vec<Sql> {
    params
        .iter()
        .map(|v| match v {
            Val::Int(i) => Sql::Integer(*i),
            Val::Text(s) => Sql::Text(s.clone()),
            Val::Bytes(b) => Sql::Blob(b.clone()),
            Val::Null => Sql::Null,
        })
        .collect()
}

impl Driver for Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;

    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, String> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| e.to_string())?;
        stmt.execute(rusqlite::params_from_iter(bind(params)))
            .map(|n| n as u64)
            .map_err(|e| e.to_string())
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, String> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| e.to_string())?;
        let n = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(bind(params)))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                vals.push(match row.get_ref(i).map_err(|e| e.to_string())? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(i) => Val::Int(i),
                    ValueRef::Real(f) => Val::Int(f as i64),
                    ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Val::Bytes(b.to_vec()),
                });
            }
            out.push(vals);
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), String> {
        self.conn.execute_batch(sql).map_err(|e| e.to_string())
    }

    fn begin_write(&mut self) -> Result<(), String> {
        self.batch("BEGIN IMMEDIATE")
    }

    fn schema_version(&mut self) -> Result<i64, String> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| e.to_string())
    }

    fn set_schema_version(&mut self, version: i64) -> Result<(), String> {
        self.batch(&format!("PRAGMA user_version = {version}"))
    }
}
