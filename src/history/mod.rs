//! The history of audits: every run recorded (its findings, the JSON output), so that the next
//! run of the same organization knows what is new, what is unchanged, what came back, what was
//! resolved, and how long each finding has been open.
//!
//! [`Store`] is what a backend does; [`sqlite::SqliteStore`] is the embedded one. A location is a
//! path or `sqlite:PATH`. The history reads and writes its own records only; it never changes a
//! finding's fingerprint, which is what ties runs together.

mod sqlite;

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::findings::{AuditReport, BaselineStatus, Finding};
pub use crate::findings::{HistoryInfo, RunInfo};

pub use sqlite::SqliteStore;

/// An error of the history store: exit status 3 (storage), or 2 for a bad location.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history {location}: {message}")]
    Location { location: String, message: String },
    #[error("history {location}: {message}")]
    Storage { location: String, message: String },
}

impl HistoryError {
    pub fn exit_code(&self) -> u8 {
        match self {
            HistoryError::Location { .. } => 2,
            HistoryError::Storage { .. } => 3,
        }
    }
}

/// Where a history lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
}

impl Location {
    /// A path, or `sqlite:PATH`. Other schemes are refused with what is supported.
    pub fn parse(s: &str) -> Result<Location, HistoryError> {
        // A URL may hold a password: it is never echoed.
        let shown = if s.contains("://") {
            crate::diag::redact_url(s)
        } else {
            s.to_string()
        };
        let bad = |message: String| HistoryError::Location {
            location: shown.clone(),
            message,
        };
        if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(bad("`sqlite:` needs a path, e.g. sqlite:history.db".into()));
            }
            return Ok(Location::Sqlite(path.into()));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(bad(format!(
                "`{scheme}://` histories are not supported by this version; give a file path or sqlite:PATH"
            )));
        }
        if s.trim().is_empty() {
            return Err(bad("empty location; give a file path or sqlite:PATH".into()));
        }
        Ok(Location::Sqlite(s.into()))
    }

    pub fn open(&self) -> Result<Box<dyn Store>, HistoryError> {
        match self {
            Location::Sqlite(path) => Ok(Box::new(SqliteStore::open(path)?)),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
        }
    }
}

/// What the history knows of one fingerprint, for an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The `audited_at` of the first run that had it.
    pub first_seen: String,
    /// The `audited_at` of the last run that had it.
    pub last_seen: String,
}

/// The previous run of an organization: its id and time, and its findings as it wrote them.
#[derive(Debug, Clone)]
pub struct Previous {
    pub run: RunInfo,
    pub findings: Vec<Finding>,
}

/// What a backend does.
pub trait Store {
    /// The last recorded run of `organization`.
    fn previous(&mut self, organization: &str) -> Result<Option<Previous>, HistoryError>;
    /// Every fingerprint ever recorded for `organization`, with its first and last run.
    fn seen(&mut self, organization: &str) -> Result<HashMap<String, Seen>, HistoryError>;
    /// Records a run whole (its findings, its JSON output and a snapshot of the report it
    /// audited), or nothing: one transaction.
    fn record(
        &mut self,
        organization: &str,
        report: &AuditReport,
        snapshot: Option<&crate::model::Report>,
    ) -> Result<i64, HistoryError>;
    /// The report a run audited, in the API's JSON shape; `None` if it kept none.
    fn snapshot(&mut self, run: i64) -> Result<Option<Vec<u8>>, HistoryError>;
    /// Every run, newest first.
    fn list(&mut self) -> Result<Vec<RunInfo>, HistoryError>;
    /// The chain's head: the hash of the last run recorded.
    fn head(&mut self) -> Result<Option<String>, HistoryError>;
    /// The JSON output a run wrote, byte for byte.
    fn output(&mut self, run: i64) -> Result<Option<Vec<u8>>, HistoryError>;
    /// Recomputes the chain of runs: each run's content hash and its link to the one before.
    fn verify(&mut self) -> Result<Verified, HistoryError>;
}

/// What `history verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Every run is as recorded; `head` is the last run's hash.
    Intact { runs: usize, head: Option<String> },
    /// The first run whose content, hash or predecessor is not what was recorded.
    Broken { run: i64, why: String },
}

/// The history a command names (or `ORGAUDIT_HISTORY`), opened.
pub fn open_named(location: Option<String>) -> Result<Box<dyn Store>, crate::Error> {
    let location = location
        .or_else(|| std::env::var(crate::defaults::HISTORY_ENV).ok())
        .ok_or_else(|| {
            crate::Error::Usage(format!(
                "give --history LOCATION (or set {})",
                crate::defaults::HISTORY_ENV
            ))
        })?;
    Ok(Location::parse(&location)?.open()?)
}

/// A run by id, `latest`, `previous`, or a date (RFC 3339, or `YYYY-MM-DD` meaning the end of
/// that day: the last run at or before it). `runs` is newest first, as [`Store::list`] gives it.
pub fn find_run(runs: &[RunInfo], which: &str) -> Result<i64, crate::Error> {
    let none = || crate::Error::Usage(format!("no run `{which}` in the history"));
    match which {
        "latest" => runs.first().map(|r| r.id).ok_or_else(none),
        "previous" => runs.get(1).map(|r| r.id).ok_or_else(none),
        w => {
            if let Ok(id) = w.parse::<i64>() {
                return runs
                    .iter()
                    .find(|r| r.id == id)
                    .map(|r| r.id)
                    .ok_or_else(none);
            }
            let at = if w.len() == 10 {
                format!("{w}T23:59:59Z")
            } else {
                w.to_string()
            };
            let at = DateTime::parse_from_rfc3339(&at).map_err(|_| {
                crate::Error::Usage(format!(
                    "`{w}` is not a run: give a run id, latest, previous, or a date (YYYY-MM-DD)"
                ))
            })?;
            runs.iter()
                .find(|r| DateTime::parse_from_rfc3339(&r.audited_at).is_ok_and(|t| t <= at))
                .map(|r| r.id)
                .ok_or_else(none)
        }
    }
}

/// Whole days from one RFC 3339 time to another (0 when either does not parse).
fn days_between(from: &str, to: &str) -> i64 {
    match (
        DateTime::parse_from_rfc3339(from),
        DateTime::parse_from_rfc3339(to),
    ) {
        (Ok(a), Ok(b)) => (b.with_timezone(&Utc) - a.with_timezone(&Utc)).num_days(),
        _ => 0,
    }
}

/// Gives every finding its lifecycle from the history: `first_seen` and `age_days`; and, unless
/// an explicit baseline decided it (`baseline_decides`), `baseline_status` (new, unchanged since
/// the previous run, or reopened: seen before, gone in the previous run) and the previous run's
/// findings that are gone as `resolved` (with their `last_seen`).
pub fn apply(
    report: &mut AuditReport,
    previous: Option<&Previous>,
    seen: &HashMap<String, Seen>,
    info: HistoryInfo,
    baseline_decides: bool,
    sla: Option<&crate::findings::Sla>,
) {
    let now = report.audited_at.clone();
    let today = DateTime::parse_from_rfc3339(&now)
        .map(|t| t.with_timezone(&Utc).date_naive())
        .ok();
    let before: std::collections::HashSet<&str> = previous
        .map(|p| p.findings.iter().map(|f| f.fingerprint.as_str()).collect())
        .unwrap_or_default();
    let mut new = 0;
    for f in &mut report.findings {
        let first = seen
            .get(&f.fingerprint)
            .map_or(now.as_str(), |s| s.first_seen.as_str());
        f.age_days = Some(days_between(first, &now).max(0));
        f.first_seen = Some(first.to_string());
        // The SLA of its effective severity, in UTC days from the day it was first seen; a
        // waived finding is never overdue.
        let due = sla.and_then(|s| s.days(f.severity)).and_then(|days| {
            DateTime::parse_from_rfc3339(first)
                .ok()?
                .with_timezone(&Utc)
                .date_naive()
                .checked_add_days(chrono::Days::new(days.into()))
        });
        if let Some(due) = due {
            f.due = Some(due.to_string());
            f.overdue = Some(!f.waived && today.is_some_and(|t| t > due));
        }
        if baseline_decides || previous.is_none() {
            continue;
        }
        let status = if before.contains(f.fingerprint.as_str()) {
            BaselineStatus::Unchanged
        } else if seen.contains_key(&f.fingerprint) {
            BaselineStatus::Reopened
        } else {
            BaselineStatus::New
        };
        if status != BaselineStatus::Unchanged {
            new += 1;
        }
        f.baseline_status = Some(status);
    }
    if let (false, Some(prev)) = (baseline_decides, previous) {
        let now_fps: std::collections::HashSet<&str> = report
            .findings
            .iter()
            .map(|f| f.fingerprint.as_str())
            .collect();
        let mut resolved: Vec<Finding> = prev
            .findings
            .iter()
            .filter(|f| !now_fps.contains(f.fingerprint.as_str()))
            .cloned()
            .map(|mut f| {
                f.baseline_status = Some(BaselineStatus::Resolved);
                f.last_seen = Some(prev.run.audited_at.clone());
                f
            })
            .collect();
        crate::findings::sort(&mut resolved);
        report.summary.new = Some(new);
        report.summary.resolved = Some(resolved.len());
        report.resolved = Some(resolved);
    }
    report.history = Some(info);
}
