//! The embedded history: one SQLite file (rusqlite, SQLite bundled), created on first use,
//! versioned by migrations, written in WAL mode with a busy timeout so that two audits writing
//! at once both land. A run is one `BEGIN IMMEDIATE` transaction.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{HistoryError, Previous, RunInfo, Seen, Store, Verified};
use crate::findings::{AuditReport, Finding};

/// The schema, one migration per version; `user_version` says how far a file is.
const MIGRATIONS: &[&str] = &[
    // 1: runs with their JSON output (gzip), and their findings.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        organization TEXT NOT NULL,
        audited_at TEXT NOT NULL,
        tool_version TEXT NOT NULL,
        source_sha256 TEXT NOT NULL,
        source_kind TEXT NOT NULL,
        findings INTEGER NOT NULL,
        unwaived INTEGER NOT NULL,
        output BLOB NOT NULL,
        snapshot BLOB,
        content_hash TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX runs_by_org ON runs (organization, audited_at);
    CREATE TABLE findings (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (run_id, fingerprint)
    ) WITHOUT ROWID;",
];

/// A history in a SQLite file.
pub struct SqliteStore {
    conn: Connection,
    location: String,
}

impl SqliteStore {
    /// Opens (or creates) the history at `path`. A file that is not a SQLite database, or one
    /// of a newer schema than this version knows, is an error and is never overwritten.
    pub fn open(path: &Path) -> Result<SqliteStore, HistoryError> {
        let location = path.display().to_string();
        let fail = |message: String| HistoryError::Storage {
            location: location.clone(),
            message,
        };
        let conn = Connection::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| fail(e.to_string()))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| fail(format!("not a history database: {e}")))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(fail(format!(
                "its schema is version {version}, newer than this orgaudit knows ({known}); use a newer orgaudit"
            )));
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| fail(format!("cannot open: {e}")))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| fail(e.to_string()))?;
        let mut store = SqliteStore { conn, location };
        store.migrate(version)?;
        #[cfg(unix)]
        {
            // The history holds every user's email: the owner's only, as new reports are.
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 && version == 0 {
                    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
                }
            }
        }
        Ok(store)
    }

    fn fail(&self, e: impl std::fmt::Display) -> HistoryError {
        HistoryError::Storage {
            location: self.location.clone(),
            message: e.to_string(),
        }
    }

    fn migrate(&mut self, from: i64) -> Result<(), HistoryError> {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self_fail(&self.location, e))?;
            tx.execute_batch(sql)
                .map_err(|e| self_fail(&self.location, format!("migration {}: {e}", i + 1)))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(|e| self_fail(&self.location, e))?;
            tx.commit().map_err(|e| self_fail(&self.location, e))?;
        }
        Ok(())
    }
}

/// A run's listing from a row of `id, organization, audited_at, findings, unwaived`.
fn run_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunInfo> {
    Ok(RunInfo {
        id: r.get(0)?,
        organization: r.get(1)?,
        audited_at: r.get(2)?,
        findings: r.get::<_, i64>(3)? as usize,
        unwaived: r.get::<_, i64>(4)? as usize,
    })
}

fn self_fail(location: &str, e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Storage {
        location: location.to_string(),
        message: e.to_string(),
    }
}

/// The chain's start: the `prev_hash` of the first run.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A run's content: the hashes of its JSON output and of its snapshot.
fn content_hash(output: &[u8], snapshot: Option<&[u8]>) -> String {
    let snap = snapshot.map(crate::source::sha256_hex).unwrap_or_default();
    let out = crate::source::sha256_hex(output);
    crate::source::sha256_hex(format!("{out}\n{snap}\n").as_bytes())
}

/// A run's place in the chain: its content hashed after the previous run's hash.
fn chain_hash(prev: &str, content: &str) -> String {
    crate::source::sha256_hex(format!("{prev}\n{content}\n").as_bytes())
}

/// A stored record unpacked, up to a cap: a history file is read like any input.
fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    crate::diag::read_all_capped(
        flate2::read::GzDecoder::new(bytes),
        crate::defaults::STORED_MAX_BYTES,
    )
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes)?;
    gz.finish()
}

impl Store for SqliteStore {
    fn previous(&mut self, organization: &str) -> Result<Option<Previous>, HistoryError> {
        let run = self
            .conn
            .query_row(
                "SELECT id, organization, audited_at, findings, unwaived FROM runs
                 WHERE organization = ?1 ORDER BY audited_at DESC, id DESC LIMIT 1",
                params![organization],
                run_info,
            )
            .optional()
            .map_err(|e| self.fail(e))?;
        let Some(run) = run else {
            return Ok(None);
        };
        // Its findings as it wrote them: the stored JSON output's list.
        let output = self.output(run.id)?.unwrap_or_default();
        #[derive(serde::Deserialize)]
        struct Doc {
            findings: Vec<Finding>,
        }
        let findings = serde_json::from_slice::<Doc>(&output)
            .map_err(|e| self.fail(format!("run {}: its stored output: {e}", run.id)))?
            .findings;
        Ok(Some(Previous { run, findings }))
    }

    fn seen(&mut self, organization: &str) -> Result<HashMap<String, Seen>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT f.fingerprint, MIN(r.audited_at), MAX(r.audited_at)
                 FROM findings f JOIN runs r ON r.id = f.run_id
                 WHERE r.organization = ?1 GROUP BY f.fingerprint",
            )
            .map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map(params![organization], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Seen {
                        first_seen: r.get(1)?,
                        last_seen: r.get(2)?,
                    },
                ))
            })
            .map_err(|e| self_fail(&self.location, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self_fail(&self.location, e))
    }

    fn record(
        &mut self,
        organization: &str,
        report: &AuditReport,
        snapshot: Option<&crate::model::Report>,
    ) -> Result<i64, HistoryError> {
        let location = self.location.clone();
        let fail = |e: &dyn std::fmt::Display| self_fail(&location, e);
        // The JSON output exactly as `-f json` writes it: `history show` gives it back byte for
        // byte, and its hash is the run's content in the chain.
        let mut output = Vec::new();
        crate::render::render(
            report,
            crate::render::Format::Json,
            &Default::default(),
            &mut output,
        )
        .map_err(|e| fail(&e))?;
        let snap = match snapshot {
            Some(r) => {
                let mut bytes = Vec::new();
                crate::source::write_json(r, &mut bytes).map_err(|e| fail(&e))?;
                Some(bytes)
            }
            None => None,
        };
        let content_hash = content_hash(&output, snap.as_deref());
        let packed = gzip(&output).map_err(|e| fail(&e))?;
        let snap = snap.map(|s| gzip(&s)).transpose().map_err(|e| fail(&e))?;
        // The head is read inside the write transaction: two audits never fork the chain.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| fail(&e))?;
        let prev_hash: String = tx
            .query_row("SELECT hash FROM runs ORDER BY id DESC LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| fail(&e))?
            .unwrap_or_else(|| GENESIS.to_string());
        let hash = chain_hash(&prev_hash, &content_hash);
        let unwaived = report.findings.iter().filter(|f| !f.waived).count();
        tx.execute(
            "INSERT INTO runs (organization, audited_at, tool_version, source_sha256, source_kind,
                findings, unwaived, output, snapshot, content_hash, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                organization,
                report.audited_at,
                report.tool.version,
                report.source.sha256,
                report.source.kind,
                report.findings.len() as i64,
                unwaived as i64,
                packed,
                snap,
                content_hash,
                prev_hash,
                hash
            ],
        )
        .map_err(|e| fail(&e))?;
        let id = tx.last_insert_rowid();
        {
            let mut insert = tx
                .prepare("INSERT OR IGNORE INTO findings (run_id, fingerprint) VALUES (?1, ?2)")
                .map_err(|e| fail(&e))?;
            for f in &report.findings {
                insert
                    .execute(params![id, f.fingerprint])
                    .map_err(|e| fail(&e))?;
            }
        }
        tx.commit().map_err(|e| fail(&e))?;
        Ok(id)
    }

    fn snapshot(&mut self, run: i64) -> Result<Option<Vec<u8>>, HistoryError> {
        let packed: Option<Option<Vec<u8>>> = self
            .conn
            .query_row(
                "SELECT snapshot FROM runs WHERE id = ?1",
                params![run],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.fail(e))?;
        packed
            .flatten()
            .map(|p| gunzip(&p).map_err(|e| self.fail(format!("run {run}: {e}"))))
            .transpose()
    }

    fn head(&mut self) -> Result<Option<String>, HistoryError> {
        self.conn
            .query_row("SELECT hash FROM runs ORDER BY id DESC LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.fail(e))
    }

    fn output(&mut self, run: i64) -> Result<Option<Vec<u8>>, HistoryError> {
        let packed: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT output FROM runs WHERE id = ?1", params![run], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.fail(e))?;
        packed
            .map(|p| gunzip(&p).map_err(|e| self.fail(format!("run {run}: {e}"))))
            .transpose()
    }

    fn verify(&mut self) -> Result<Verified, HistoryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, output, snapshot, content_hash, prev_hash, hash FROM runs ORDER BY id",
            )
            .map_err(|e| self.fail(e))?;
        type Row = (i64, Vec<u8>, Option<Vec<u8>>, String, String, String);
        let rows: Vec<Row> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .map_err(|e| self_fail(&self.location, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self_fail(&self.location, e))?;
        let mut prev = GENESIS.to_string();
        for (id, packed, snapshot, content, prev_hash, hash) in &rows {
            let snap = snapshot.as_deref().map(gunzip).transpose();
            let problem = match (gunzip(packed), snap) {
                (Err(e), _) | (_, Err(e)) => {
                    Some(format!("its stored output cannot be read ({e})"))
                }
                (Ok(out), Ok(snap)) if content_hash(&out, snap.as_deref()) != *content => {
                    Some("its content was changed after it was recorded".into())
                }
                _ if *prev_hash != prev => {
                    Some("the run before it in the chain is missing or was changed".into())
                }
                _ if chain_hash(prev_hash, content) != *hash => {
                    Some("its hash was changed after it was recorded".into())
                }
                _ => None,
            };
            if let Some(why) = problem {
                return Ok(Verified::Broken { run: *id, why });
            }
            prev = hash.clone();
        }
        Ok(Verified::Intact {
            runs: rows.len(),
            head: rows.last().map(|r| r.5.clone()),
        })
    }

    fn list(&mut self) -> Result<Vec<RunInfo>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, organization, audited_at, findings, unwaived FROM runs
                 ORDER BY audited_at DESC, id DESC",
            )
            .map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map([], run_info)
            .map_err(|e| self_fail(&self.location, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self_fail(&self.location, e))
    }
}
