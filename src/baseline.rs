//! Baselines: an earlier JSON output of orgaudit. Each finding is marked `new` or `unchanged`
//! (by fingerprint), and the baseline's findings that are gone are listed as `resolved`.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::findings::{AuditReport, BaselineInfo, BaselineStatus, Finding};

/// An earlier audit's findings.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub path: String,
    pub audited_at: String,
    pub findings: Vec<Finding>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct BaselineError {
    pub path: String,
    pub message: String,
}

/// Reads a baseline: the JSON output of `orgaudit audit --format json`, schema version 1.
pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
    load_capped(path, crate::defaults::API_MAX_BYTES)
}

/// [`load`], reading at most `max_bytes`.
pub fn load_capped(path: &Path, max_bytes: u64) -> Result<Baseline, BaselineError> {
    let name = path.display().to_string();
    let bytes = crate::diag::read_capped(path, max_bytes).map_err(|e| BaselineError {
        path: name.clone(),
        message: format!("cannot read the baseline: {e}"),
    })?;
    parse(&bytes, &name)
}

/// Parses a baseline held in memory; `name` identifies it in errors.
pub fn parse(bytes: &[u8], name: &str) -> Result<Baseline, BaselineError> {
    let fail = |message: String| BaselineError {
        path: name.to_string(),
        message,
    };
    let not_ours = "expected the JSON output of `orgaudit audit --format json`";
    #[derive(Deserialize)]
    struct Version {
        schema_version: Option<serde_json::Value>,
    }
    let version: Version = serde_json::from_slice(bytes).map_err(|e| {
        if e.line() > 0 {
            fail(format!(
                "line {}, column {}: not valid JSON ({}); {not_ours}",
                e.line(),
                e.column(),
                strip_position(&e)
            ))
        } else {
            fail(format!("not valid JSON ({e}); {not_ours}"))
        }
    })?;
    match version.schema_version {
        None => return Err(fail(format!("no `schema_version`; {not_ours}"))),
        // Versions 2 and 3 only added fields and values: every output is read the same way.
        Some(v)
            if !v
                .as_u64()
                .is_some_and(|v| (1..=u64::from(AuditReport::SCHEMA_VERSION)).contains(&v)) =>
        {
            return Err(fail(format!(
                "schema_version {v}, but this orgaudit reads baselines of schema versions 1 to {}; run the audit again with this version to make a new baseline",
                AuditReport::SCHEMA_VERSION
            )))
        }
        Some(_) => {}
    }
    #[derive(Deserialize)]
    struct Doc {
        audited_at: String,
        findings: Vec<Finding>,
    }
    let doc: Doc = serde_json::from_slice(bytes).map_err(|e| {
        fail(format!(
            "line {}, column {}: {}; {not_ours}",
            e.line(),
            e.column(),
            strip_position(&e)
        ))
    })?;
    Ok(Baseline {
        path: name.to_string(),
        audited_at: doc.audited_at,
        findings: doc.findings,
    })
}

fn strip_position(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_string()
}

/// Marks each finding `new` or `unchanged` and lists the resolved ones.
pub fn apply(report: &mut AuditReport, baseline: &Baseline) {
    let before: HashSet<&str> = baseline
        .findings
        .iter()
        .map(|f| f.fingerprint.as_str())
        .collect();
    let now: HashSet<String> = report
        .findings
        .iter()
        .map(|f| f.fingerprint.clone())
        .collect();
    let mut new = 0;
    for f in &mut report.findings {
        let status = if before.contains(f.fingerprint.as_str()) {
            BaselineStatus::Unchanged
        } else {
            new += 1;
            BaselineStatus::New
        };
        f.baseline_status = Some(status);
    }
    let mut resolved: Vec<Finding> = baseline
        .findings
        .iter()
        .filter(|f| !now.contains(&f.fingerprint))
        .cloned()
        .map(|mut f| {
            f.baseline_status = Some(BaselineStatus::Resolved);
            f
        })
        .collect();
    crate::findings::sort(&mut resolved);
    report.summary.new = Some(new);
    report.summary.resolved = Some(resolved.len());
    report.resolved = Some(resolved);
    report.baseline = Some(BaselineInfo {
        path: baseline.path.clone(),
        audited_at: baseline.audited_at.clone(),
        findings: baseline.findings.len(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_and_foreign_baselines_are_clear_errors() {
        let e = parse(b"{\"schema_version\": 1, \"findings\": [", "b.json").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("b.json: line 1, column 35: not valid JSON"),
            "{e}"
        );
        let e = parse(b"{\"data\": []}", "b.json").unwrap_err();
        assert_eq!(e.to_string(), "b.json: no `schema_version`; expected the JSON output of `orgaudit audit --format json`");
        let e = parse(b"{\"schema_version\": 4, \"findings\": []}", "b.json").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "b.json: schema_version 4, but this orgaudit reads baselines of schema versions 1 to 3"
            ),
            "{e}"
        );
        let e = parse(
            b"{\"schema_version\": 1, \"audited_at\": \"x\", \"findings\": [{\"rule_id\": 3}]}",
            "b.json",
        )
        .unwrap_err();
        assert!(e.to_string().contains("invalid type: integer `3`"), "{e}");
    }
}
