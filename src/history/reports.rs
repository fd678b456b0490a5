//! What the history commands show: a stored run re-rendered, the trend with each rule's time
//! to resolve, the files `import` reads.

use std::path::PathBuf;

use super::{find_run, HistoryError, Store, TrendPoint};
use crate::findings::AuditReport;

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
