//! Lifecycles: what a run's findings are against the organization's findings state and the
//! previous run (new, unchanged, reopened, resolved, not rechecked; first seen, age, SLA), and
//! the counts a run adds to the trend.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Deferred, HistoryError, RunInfo, State};
use crate::findings::{AuditReport, BaselineStatus, Finding, HistoryInfo, TrendPoint};

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

/// What a run reads of its history before the audit ([`open_for`]).
pub struct Opened {
    pub store: Box<dyn super::Store>,
    pub head: Option<String>,
    /// One per organization audited, in order.
    pub orgs: Vec<OrgHistory>,
}

/// What the history knows of one organization.
pub struct OrgHistory {
    pub key: String,
    pub previous: Option<super::Previous>,
    pub state: super::State,
    pub trend: Vec<crate::findings::TrendPoint>,
    pub previous_findings: Option<super::PreviousFindings>,
}

/// Opens the history and reads, for each organization key, its previous run (with its
/// snapshot), its findings state and trend, and starts reading the previous run's findings.
pub fn open_for(location: &super::Location, keys: &[&str]) -> Result<Opened, super::HistoryError> {
    let mut store = location.open()?;
    let mut orgs = Vec::new();
    for key in keys {
        let previous = store.previous(key)?;
        let state = store.state(key)?;
        // The previous run's findings are read in the background while the audit runs: only
        // those it resolves are needed, and only when some finding was open.
        let previous_findings = match &previous {
            Some(p) if state.entries.values().any(|e| e.open) => store
                .output_later(p.run.id)?
                .map(|later| super::PreviousFindings::start(p.run.id, later)),
            _ => None,
        };
        orgs.push(OrgHistory {
            key: key.to_string(),
            trend: store.trend(key, crate::defaults::TREND_RUNS - 1)?,
            previous,
            state,
            previous_findings,
        });
    }
    Ok(Opened {
        head: store.head()?,
        store,
        orgs,
    })
}
