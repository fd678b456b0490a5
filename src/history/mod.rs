//! The history of audits: every run recorded (its findings, the JSON output), so that the next
//! run of the same organization knows what is new, what is unchanged, what came back, what was
//! resolved, and how long each finding has been open.
//!
//! [`Store`] is what a history does, written once (`store.rs`) over two drivers: SQLite (a path
//! or `sqlite:PATH`, the default) and PostgreSQL (`postgres://...`). The history reads and
//! writes its own records only; it never changes a finding's fingerprint, which is what ties
//! runs together.

mod forget;
mod postgres;
mod sqlite;
mod store;

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::findings::{AuditReport, BaselineStatus, Finding};
pub use crate::findings::{HistoryInfo, RunInfo, TrendPoint};

pub use forget::MARKER as FORGOTTEN;

/// An error of the history store: exit status 3 (storage), or 2 for a bad location.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history {location}: {message}")]
    Location { location: String, message: String },
    #[error("history {location}: {message}")]
    Storage { location: String, message: String },
    /// A file given to the history (`import`) is not what it should be.
    #[error("{path}: {message}")]
    Input { path: String, message: String },
}

impl HistoryError {
    pub fn exit_code(&self) -> u8 {
        match self {
            HistoryError::Location { .. } | HistoryError::Input { .. } => 2,
            HistoryError::Storage { .. } => 3,
        }
    }
}

/// Where a history lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL, without a password.
    Postgres(String),
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
            if scheme == "postgres" || scheme == "postgresql" {
                postgres::check_url(s).map_err(bad)?;
                return Ok(Location::Postgres(s.to_string()));
            }
            return Err(bad(format!(
                "`{scheme}://` histories are not supported; give a file path, sqlite:PATH or postgres://USER@HOST/DATABASE"
            )));
        }
        if s.trim().is_empty() {
            return Err(bad("empty location; give a file path or sqlite:PATH".into()));
        }
        Ok(Location::Sqlite(s.into()))
    }

    pub fn open(&self) -> Result<Box<dyn Store>, HistoryError> {
        match self {
            Location::Sqlite(path) => Ok(Box::new(sqlite::open(path)?)),
            Location::Postgres(url) => Ok(Box::new(postgres::open(url, &self.to_string())?)),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Location::Postgres(url) => f.write_str(&crate::diag::redact_url(url)),
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
    /// The report it audited (the API's JSON shape), when it kept one.
    pub snapshot: Option<Vec<u8>>,
}

/// What `history prune` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Runs of the last N days.
    Days(u32),
    /// The newest N runs of each organization.
    Runs(usize),
}

/// What pruning removed: the chain's prefix up to a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub removed: usize,
    /// Runs old enough to go that stay because a newer run before them in the chain stays.
    pub kept_for_chain: usize,
    pub checkpoint: Option<Checkpoint>,
}

/// What a prune leaves in place of the runs it removed, for `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last run removed.
    pub through_run: i64,
    pub runs: usize,
    /// That run's hash: the chain goes on from it.
    pub head: String,
    /// The hash of the removed runs' hashes.
    pub removed_sha256: String,
    pub created_at: String,
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
    /// The counts of the last `runs` runs of `organization`, oldest first.
    fn trend(&mut self, organization: &str, runs: usize) -> Result<Vec<TrendPoint>, HistoryError>;
    /// Every (run, fingerprint, rule) recorded for `organization`.
    fn fingerprints(
        &mut self,
        organization: &str,
    ) -> Result<Vec<(i64, String, String)>, HistoryError>;
    /// Earlier JSON outputs, as runs of `organization` in time order, marked imported; only
    /// into an empty history. How many.
    /// `outputs` are (file name, bytes).
    fn import(
        &mut self,
        organization: &str,
        outputs: Vec<(String, Vec<u8>)>,
    ) -> Result<usize, HistoryError>;
    /// Removes the oldest runs (a prefix of the chain), leaving a checkpoint.
    fn prune(&mut self, keep: Keep, now: &str) -> Result<Pruned, HistoryError>;
    /// Takes a person's data out of every run (their findings, their snapshot record, their
    /// address wherever it appears); the runs' hashes stay, so the chain still verifies. How
    /// many runs changed.
    fn forget(&mut self, email: &str, now: &str) -> Result<usize, HistoryError>;
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
    Intact {
        runs: usize,
        head: Option<String>,
        /// Runs whose content `history forget` changed (their hashes link the chain; their
        /// content can no longer be checked against them).
        redacted: usize,
        /// Runs removed by `prune` before the first one, behind a checkpoint.
        pruned_before: usize,
    },
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

/// The counts of a run that trends read: unwaived by severity, waived, new, resolved.
pub fn trend_point(report: &AuditReport) -> TrendPoint {
    let mut by = crate::findings::BySeverity::default();
    for f in report.findings.iter().filter(|f| !f.waived) {
        by.add(f.severity);
    }
    TrendPoint {
        run: None,
        audited_at: report.audited_at.clone(),
        unwaived_by_severity: by,
        waived: report.summary.waived,
        new: report.summary.new,
        resolved: report.summary.resolved,
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

impl std::str::FromStr for Keep {
    type Err = String;
    /// `90d` (or `90days`): the runs of the last 90 days; `12runs`: the newest 12 runs of each
    /// organization.
    fn from_str(s: &str) -> Result<Keep, String> {
        let s = s.trim();
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (n, unit) = s.split_at(digits);
        let bad = || format!("`{s}`: expected a number of days (`90d`) or of runs (`12runs`)");
        let n: u32 = n.parse().map_err(|_| bad())?;
        match unit {
            "d" | "day" | "days" => Ok(Keep::Days(n)),
            "r" | "run" | "runs" if n > 0 => Ok(Keep::Runs(n as usize)),
            "r" | "run" | "runs" => Err(format!("`{s}`: keep at least one run")),
            _ => Err(bad()),
        }
    }
}

/// How long a rule's findings stayed open before they were resolved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleResolution {
    pub rule: String,
    /// Findings that were resolved (gone from a later run).
    pub resolved: usize,
    /// Their mean time from first seen to the first run without them, in days.
    pub mean_days_to_resolve: f64,
    /// Findings still open in the latest run.
    pub open: usize,
}

/// What `history trend` shows: counts per run, and mean time to resolve per rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Trend {
    pub organization: String,
    pub runs: Vec<TrendPoint>,
    pub rules: Vec<RuleResolution>,
}

/// The trend of an organization over its last `runs` runs, and every rule's time to resolve
/// over the whole history.
pub fn trend(
    store: &mut dyn Store,
    organization: &str,
    runs: usize,
) -> Result<Trend, HistoryError> {
    let points = store.trend(organization, runs)?;
    let mut when: Vec<(i64, String)> = store
        .list()?
        .into_iter()
        .filter(|r| r.organization == organization)
        .map(|r| (r.id, r.audited_at))
        .collect();
    when.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    let order: HashMap<i64, usize> = when.iter().enumerate().map(|(i, r)| (r.0, i)).collect();
    // For each fingerprint, the runs (by position) that had it.
    let mut by_fp: HashMap<String, (String, Vec<usize>)> = HashMap::new();
    for (run, fp, rule) in store.fingerprints(organization)? {
        if let Some(&pos) = order.get(&run) {
            by_fp
                .entry(fp)
                .or_insert_with(|| (rule, Vec::new()))
                .1
                .push(pos);
        }
    }
    let mut per_rule: std::collections::BTreeMap<String, (usize, f64, usize)> = Default::default();
    let last = when.len().saturating_sub(1);
    for (rule, mut at) in by_fp.into_values() {
        at.sort_unstable();
        let entry = per_rule.entry(rule).or_default();
        // Each stretch of consecutive runs is one time open; a gap is a resolution.
        let mut start = at[0];
        for pair in at.windows(2) {
            if pair[1] != pair[0] + 1 {
                entry.0 += 1;
                entry.1 += days_between(&when[start].1, &when[pair[0] + 1].1) as f64;
                start = pair[1];
            }
        }
        let end = *at.last().unwrap_or(&start);
        if end == last {
            entry.2 += 1;
        } else {
            entry.0 += 1;
            entry.1 += days_between(&when[start].1, &when[end + 1].1) as f64;
        }
    }
    let rules = per_rule
        .into_iter()
        .map(|(rule, (resolved, days, open))| RuleResolution {
            rule,
            resolved,
            mean_days_to_resolve: if resolved == 0 {
                0.0
            } else {
                (days / resolved as f64 * 10.0).round() / 10.0
            },
            open,
        })
        .collect();
    Ok(Trend {
        organization: organization.to_string(),
        runs: points,
        rules,
    })
}

/// The JSON outputs named, read with the input cap, for [`Store::import`].
pub fn read_outputs(
    paths: &[PathBuf],
    max_bytes: u64,
) -> Result<Vec<(String, Vec<u8>)>, HistoryError> {
    paths
        .iter()
        .map(|p| {
            let name = p.display().to_string();
            let bad = |message: String| HistoryError::Input {
                path: name.clone(),
                message,
            };
            let f = std::fs::File::open(p).map_err(|e| bad(format!("cannot read: {e}")))?;
            let bytes =
                crate::diag::read_all_capped(f, max_bytes).map_err(|e| bad(e.to_string()))?;
            Ok((name, bytes))
        })
        .collect()
}

impl Trend {
    /// The trend as a terminal table: one line per run, then one per rule.
    pub fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let t = crate::render::safe::terminal;
        writeln!(out, "organization {}", t(&self.organization))?;
        writeln!(
            out,
            "{:>6}  {:<22}  {:>8} {:>5} {:>6} {:>4} {:>4}  {:>6}  {:>4}  {:>8}",
            "RUN",
            "AUDITED AT",
            "CRITICAL",
            "HIGH",
            "MEDIUM",
            "LOW",
            "INFO",
            "WAIVED",
            "NEW",
            "RESOLVED"
        )?;
        let opt = |n: Option<usize>| n.map_or("-".to_string(), |n| n.to_string());
        for p in &self.runs {
            let s = &p.unwaived_by_severity;
            writeln!(
                out,
                "{:>6}  {:<22}  {:>8} {:>5} {:>6} {:>4} {:>4}  {:>6}  {:>4}  {:>8}",
                p.run.map_or("-".to_string(), |r| r.to_string()),
                t(&p.audited_at),
                s.critical,
                s.high,
                s.medium,
                s.low,
                s.info,
                p.waived,
                opt(p.new),
                opt(p.resolved)
            )?;
        }
        if !self.rules.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "{:<32}  {:>8}  {:>22}  {:>5}",
                "RULE", "RESOLVED", "MEAN DAYS TO RESOLVE", "OPEN"
            )?;
            for r in &self.rules {
                writeln!(
                    out,
                    "{:<32}  {:>8}  {:>22}  {:>5}",
                    t(&r.rule),
                    r.resolved,
                    if r.resolved == 0 {
                        "-".to_string()
                    } else {
                        format!("{:.1}", r.mean_days_to_resolve)
                    },
                    r.open
                )?;
            }
        }
        Ok(())
    }
}
