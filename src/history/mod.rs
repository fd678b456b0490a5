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
mod state;
mod store;

pub use state::{Entry, Resolved, State};

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

/// The previous run of an organization: its id and time, and the report it audited.
#[derive(Debug, Clone)]
pub struct Previous {
    pub run: RunInfo,
    /// The report it audited, when it kept one (a run of several organizations keeps none).
    pub snapshot: Option<crate::model::Report>,
}

/// Bytes to produce later, on any thread.
pub type Deferred = Box<dyn FnOnce() -> std::io::Result<Vec<u8>> + Send>;

/// The findings a run wrote (its `findings` and `not_rechecked` lists), indexed by
/// fingerprint on a thread of its own while the audit runs: resolved findings are reported as
/// that run wrote them.
pub struct PreviousFindings {
    run: i64,
    index: std::thread::JoinHandle<Result<OutputIndex, String>>,
}

struct OutputIndex {
    bytes: Vec<u8>,
    at: HashMap<Box<str>, std::ops::Range<usize>>,
}

impl PreviousFindings {
    /// Starts reading `output` (run `run`'s JSON output) in the background.
    pub fn start(run: i64, output: Deferred) -> PreviousFindings {
        PreviousFindings {
            run,
            index: std::thread::spawn(move || {
                let bytes = output().map_err(|e| e.to_string())?;
                OutputIndex::of(bytes)
            }),
        }
    }

    /// The findings whose fingerprints are `wanted`, as the run wrote them.
    pub fn take(self, wanted: &std::collections::HashSet<String>) -> Result<Vec<Finding>, String> {
        let run = self.run;
        let index = self
            .index
            .join()
            .map_err(|_| format!("run {run}: reading its output failed"))?
            .map_err(|e| format!("run {run}: its stored output: {e}"))?;
        let mut out = Vec::new();
        for fp in wanted {
            if let Some(range) = index.at.get(fp.as_str()) {
                let f: Finding = serde_json::from_slice(&index.bytes[range.clone()])
                    .map_err(|e| format!("run {run}: its stored output: {e}"))?;
                out.push(f);
            }
        }
        Ok(out)
    }
}

impl OutputIndex {
    fn of(bytes: Vec<u8>) -> Result<OutputIndex, String> {
        #[derive(serde::Deserialize)]
        struct Doc<'a> {
            #[serde(borrow)]
            findings: Vec<&'a serde_json::value::RawValue>,
            #[serde(borrow, default)]
            not_rechecked: Vec<&'a serde_json::value::RawValue>,
        }
        let doc: Doc<'_> = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        let key = memchr::memmem::Finder::new(b"\"fingerprint\"");
        let base = bytes.as_ptr() as usize;
        let mut at = HashMap::with_capacity(doc.findings.len());
        for raw in doc.findings.iter().chain(&doc.not_rechecked) {
            // The fingerprint is found in the element's text; the element is read whole (and
            // checked) only when it is wanted.
            let text = raw.get().as_bytes();
            let fp = key.find(text).and_then(|k| {
                let rest = &text[k + 13..];
                let open = memchr::memchr(b'"', rest)?;
                let close = memchr::memchr(b'"', &rest[open + 1..])?;
                std::str::from_utf8(&rest[open + 1..open + 1 + close]).ok()
            });
            if let Some(fp) = fp {
                let start = text.as_ptr() as usize - base;
                at.insert(fp.into(), start..start + text.len());
            }
        }
        drop(doc);
        Ok(OutputIndex { bytes, at })
    }
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
    /// What the history knows of `organization`'s findings: every fingerprint ever seen, open
    /// or resolved, and each rule's resolved findings.
    fn state(&mut self, organization: &str) -> Result<State, HistoryError>;
    /// A run's JSON output to unpack later (on another thread): the packed bytes are read now.
    fn output_later(&mut self, run: i64) -> Result<Option<Deferred>, HistoryError>;
    /// Records a run whole (its JSON output, `output` when already rendered, a snapshot of the
    /// report it audited) and advances the organization's findings state, or nothing: one
    /// transaction.
    fn record(
        &mut self,
        organization: &str,
        report: &AuditReport,
        output: Option<&[u8]>,
        snapshot: Option<&crate::model::Report>,
    ) -> Result<i64, HistoryError>;
    /// The report a run audited; `None` if it kept none.
    fn snapshot(&mut self, run: i64) -> Result<Option<crate::model::Report>, HistoryError>;
    /// Every run, newest first.
    fn list(&mut self) -> Result<Vec<RunInfo>, HistoryError>;
    /// The counts of the last `runs` runs of `organization`, oldest first.
    fn trend(&mut self, organization: &str, runs: usize) -> Result<Vec<TrendPoint>, HistoryError>;
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
    TrendPoint {
        run: None,
        audited_at: report.audited_at.clone(),
        unwaived_by_severity: report.summary.unwaived_by_severity,
        waived: report.summary.waived,
        new: report.summary.new,
        resolved: report.summary.resolved,
    }
}

/// Gives every finding its lifecycle from the organization's findings state: `first_seen`,
/// `age_days`, `due` and `overdue`; and, unless an explicit baseline decided it
/// (`baseline_decides`), `baseline_status` (new, unchanged: open before, or reopened: seen
/// before and resolved since), the findings the run resolved as `resolved` (as the previous run
/// wrote them, with their `last_seen`), and the open findings of rules this run did not
/// evaluate as `not_rechecked` (neither confirmed nor resolved). The details of resolved and
/// not rechecked findings come from the previous run's stored output.
pub fn apply(
    report: &mut AuditReport,
    previous: Option<&RunInfo>,
    previous_findings: Option<PreviousFindings>,
    state: &State,
    info: HistoryInfo,
    baseline_decides: bool,
    sla: Option<&crate::findings::Sla>,
) -> Result<(), HistoryError> {
    use crate::findings::RuleStatus as S;
    let now = report.audited_at.clone();
    let today = DateTime::parse_from_rfc3339(&now)
        .map(|t| t.with_timezone(&Utc).date_naive())
        .ok();
    let mut new = 0;
    // A run has a few distinct first-seen times (one per earlier run): each is parsed once.
    let at = DateTime::parse_from_rfc3339(&now).ok();
    let mut times: HashMap<&str, Option<DateTime<chrono::FixedOffset>>> = HashMap::new();
    for f in &mut report.findings {
        let entry = state.entries.get(f.fingerprint.as_str());
        let first = entry.map_or(now.as_str(), |e| state.text(e.first_seen));
        let first_at = *times
            .entry(first)
            .or_insert_with(|| DateTime::parse_from_rfc3339(first).ok());
        let age = match (first_at, at) {
            (Some(a), Some(b)) => (b - a).num_days().max(0),
            _ => 0,
        };
        f.age_days = Some(age);
        f.first_seen = Some(first.to_string());
        // The SLA of its effective severity, in UTC days from the day it was first seen; a
        // waived finding is never overdue.
        let due = sla.and_then(|s| s.days(f.severity)).and_then(|days| {
            first_at?
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
        let status = match entry {
            Some(e) if e.open => BaselineStatus::Unchanged,
            Some(_) => BaselineStatus::Reopened,
            None => BaselineStatus::New,
        };
        if status != BaselineStatus::Unchanged {
            new += 1;
        }
        f.baseline_status = Some(status);
    }
    if let (false, Some(_)) = (baseline_decides, previous) {
        let present: std::collections::HashSet<&str> = report
            .findings
            .iter()
            .map(|f| f.fingerprint.as_str())
            .collect();
        let evaluated: std::collections::HashSet<&str> = report
            .rules
            .iter()
            .filter(|r| matches!(r.outcome, S::Failed | S::Passed | S::Waived))
            .map(|r| r.id.as_str())
            .collect();
        let gone: std::collections::HashSet<String> = state
            .entries
            .iter()
            .filter(|(fp, e)| e.open && !present.contains(&***fp))
            .map(|(fp, _)| fp.to_string())
            .collect();
        let mut resolved = Vec::new();
        let mut kept = Vec::new();
        let found = match (gone.is_empty(), previous_findings) {
            (false, Some(p)) => p.take(&gone).map_err(|message| HistoryError::Storage {
                location: info.location.clone(),
                message,
            })?,
            _ => Vec::new(),
        };
        for mut f in found {
            let Some(&e) = state.entries.get(f.fingerprint.as_str()) else {
                continue;
            };
            f.last_seen = Some(state.text(e.last_seen).to_string());
            f.first_seen = Some(state.text(e.first_seen).to_string());
            if evaluated.contains(state.text(e.rule)) {
                f.baseline_status = Some(BaselineStatus::Resolved);
                f.due = None;
                f.overdue = None;
                resolved.push(f);
            } else {
                f.baseline_status = Some(BaselineStatus::NotRechecked);
                kept.push(f);
            }
        }
        crate::findings::sort(&mut resolved);
        crate::findings::sort(&mut kept);
        report.summary.new = Some(new);
        report.summary.resolved = Some(resolved.len());
        report.resolved = Some(resolved);
        report.not_rechecked = (!kept.is_empty()).then_some(kept);
    }
    report.history = Some(info);
    Ok(())
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
/// over its whole history (the findings state keeps it, pruned runs included).
pub fn trend(
    store: &mut dyn Store,
    organization: &str,
    runs: usize,
) -> Result<Trend, HistoryError> {
    let points = store.trend(organization, runs)?;
    let state = store.state(organization)?;
    let open = state.open_by_rule();
    let mut rules: std::collections::BTreeSet<&str> = open.keys().copied().collect();
    rules.extend(state.resolved.keys().map(String::as_str));
    let rules = rules
        .into_iter()
        .map(|rule| {
            let r = state.resolved.get(rule).copied().unwrap_or_default();
            RuleResolution {
                rule: rule.to_string(),
                resolved: r.count as usize,
                mean_days_to_resolve: if r.count == 0 {
                    0.0
                } else {
                    (r.days / r.count as f64 * 10.0).round() / 10.0
                },
                open: open.get(rule).copied().unwrap_or(0),
            }
        })
        .collect();
    Ok(Trend {
        organization: organization.to_string(),
        runs: points,
        rules,
    })
}

/// A stored run (`which`: see [`find_run`]) in `format`: its JSON output byte for byte, or
/// that output read back and rendered (with the embedded templates) as the run would have.
pub fn show(
    store: &mut dyn Store,
    which: &str,
    format: crate::render::Format,
) -> Result<Vec<u8>, crate::Error> {
    let runs = store.list()?;
    let id = find_run(&runs, which)?;
    let bytes = store
        .output(id)?
        .ok_or_else(|| crate::Error::Usage(format!("no run {id} in the history")))?;
    if format == crate::render::Format::Json {
        return Ok(bytes);
    }
    let report: AuditReport =
        serde_json::from_slice(&bytes).map_err(|e| HistoryError::Storage {
            location: format!("run {id}"),
            message: format!("its stored output cannot be read back: {e}"),
        })?;
    let mut out = Vec::new();
    crate::render::render(&report, format, &Default::default(), &mut out).map_err(|e| match e {
        crate::render::RenderError::Template(t) => crate::Error::Template(t),
        crate::render::RenderError::Io(e) => crate::Error::Usage(e.to_string()),
    })?;
    Ok(out)
}

/// A run's JSON output, exactly as `-f json` writes it.
pub fn render_json(report: &AuditReport) -> Result<Vec<u8>, crate::render::RenderError> {
    let mut out = Vec::new();
    crate::render::render(
        report,
        crate::render::Format::Json,
        &Default::default(),
        &mut out,
    )?;
    Ok(out)
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
