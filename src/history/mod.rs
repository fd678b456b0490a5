//! The history of audits: every run recorded (its findings, the JSON output), so that the next
//! run of the same organization knows what is new, what is unchanged, what came back, what was
//! resolved, and how long each finding has been open.
//!
//! [`Store`] is what a history does, written once (`store.rs`) over two drivers: SQLite (a path
//! or `sqlite:PATH`, the default) and PostgreSQL (`postgres://...`). The history reads and
//! writes its own records only; it never changes a finding's fingerprint, which is what ties
//! runs together.

mod forget;
mod lifecycle;
mod postgres;
mod reports;
mod sqlite;
mod state;
mod store;

pub use lifecycle::{apply, open_for, trend_point, Opened, OrgHistory, PreviousFindings};
pub use reports::{read_outputs, show, trend, RuleResolution, Trend};
pub use state::{Entry, Resolved, State};

use std::path::PathBuf;

use chrono::DateTime;

use crate::findings::AuditReport;
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
    /// Appends a record of `remediate apply` (JSON) to the remediation journal.
    fn journal_append(
        &mut self,
        organization: &str,
        plan_sha256: &str,
        at: &str,
        record: &str,
    ) -> Result<(), HistoryError>;
    /// The journal's records of one plan, in the order they were written.
    fn journal(&mut self, plan_sha256: &str) -> Result<Vec<String>, HistoryError>;
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
///
/// `create`: a SQLite file that is not there is created (`history import`); otherwise a
/// command that reads or trims a history refuses a missing file rather than leave an empty one.
pub fn open_named(location: Option<String>, create: bool) -> Result<Box<dyn Store>, crate::Error> {
    let location = location
        .or_else(|| std::env::var(crate::defaults::HISTORY_ENV).ok())
        .ok_or_else(|| {
            crate::Error::Usage(format!(
                "give --history LOCATION (or set {})",
                crate::defaults::HISTORY_ENV
            ))
        })?;
    let location = Location::parse(&location)?;
    if let Location::Sqlite(path) = &location {
        if !create && !path.exists() {
            return Err(crate::Error::Usage(format!(
                "{}: no history there (an audit with --history creates it, or history import)",
                path.display()
            )));
        }
    }
    Ok(location.open()?)
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
