//! The embedded history: one SQLite file (rusqlite, SQLite bundled), created on first use,
//! versioned by migrations, written in WAL mode with a busy timeout so that two audits writing
//! at once both land. A run is one `BEGIN IMMEDIATE` transaction.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{HistoryError, Previous, RunInfo, Seen, Store};
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
        output BLOB NOT NULL
    );
    CREATE INDEX runs_by_org ON runs (organization, audited_at);
    CREATE TABLE findings (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        fingerprint TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        severity TEXT NOT NULL,
        subject_kind TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        waived INTEGER NOT NULL,
        finding TEXT NOT NULL,
        PRIMARY KEY (run_id, fingerprint)
    );
    CREATE INDEX findings_by_fingerprint ON findings (fingerprint);",
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

fn self_fail(location: &str, e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Storage {
        location: location.to_string(),
        message: e.to_string(),
    }
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
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
                |r| {
                    Ok(RunInfo {
                        id: r.get(0)?,
                        organization: r.get(1)?,
                        audited_at: r.get(2)?,
                        findings: r.get::<_, i64>(3)? as usize,
                        unwaived: r.get::<_, i64>(4)? as usize,
                    })
                },
            )
            .optional()
            .map_err(|e| self.fail(e))?;
        let Some(run) = run else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare("SELECT finding FROM findings WHERE run_id = ?1")
            .map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map(params![run.id], |r| r.get::<_, String>(0))
            .map_err(|e| self.fail(e))?;
        let mut findings = Vec::new();
        for row in rows {
            let text = row.map_err(|e| self_fail(&self.location, e))?;
            let f: Finding = serde_json::from_str(&text)
                .map_err(|e| self_fail(&self.location, format!("a stored finding: {e}")))?;
            findings.push(f);
        }
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

    fn record(&mut self, organization: &str, report: &AuditReport) -> Result<i64, HistoryError> {
        let location = self.location.clone();
        let fail = |e: &dyn std::fmt::Display| self_fail(&location, e);
        let output = serde_json::to_vec(report).map_err(|e| fail(&e))?;
        let output = gzip(&output).map_err(|e| fail(&e))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| fail(&e))?;
        let unwaived = report.findings.iter().filter(|f| !f.waived).count();
        tx.execute(
            "INSERT INTO runs (organization, audited_at, tool_version, source_sha256, source_kind,
                findings, unwaived, output) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                organization,
                report.audited_at,
                report.tool.version,
                report.source.sha256,
                report.source.kind,
                report.findings.len() as i64,
                unwaived as i64,
                output
            ],
        )
        .map_err(|e| fail(&e))?;
        let id = tx.last_insert_rowid();
        {
            let mut insert = tx
                .prepare(
                    "INSERT OR REPLACE INTO findings (run_id, fingerprint, rule_id, severity,
                        subject_kind, subject_id, waived, finding)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(|e| fail(&e))?;
            for f in &report.findings {
                let text = serde_json::to_string(f).map_err(|e| fail(&e))?;
                insert
                    .execute(params![
                        id,
                        f.fingerprint,
                        f.rule_id,
                        f.severity.as_str(),
                        f.subject.kind.as_str(),
                        f.subject.id,
                        f.waived,
                        text
                    ])
                    .map_err(|e| fail(&e))?;
            }
        }
        tx.commit().map_err(|e| fail(&e))?;
        Ok(id)
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
            .query_map([], |r| {
                Ok(RunInfo {
                    id: r.get(0)?,
                    organization: r.get(1)?,
                    audited_at: r.get(2)?,
                    findings: r.get::<_, i64>(3)? as usize,
                    unwaived: r.get::<_, i64>(4)? as usize,
                })
            })
            .map_err(|e| self_fail(&self.location, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self_fail(&self.location, e))
    }
}
