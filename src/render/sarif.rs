//! SARIF 2.1.0, for code scanning (GitHub, GitLab, Azure DevOps): one `reportingDescriptor` per
//! rule of the audit and one `result` per finding.
//!
//! A finding is about a user or a group, not a line of code, so each result carries two
//! locations: a physical one that code scanning can show (the rule's file and line for a custom
//! rule; the configuration or input file for a built-in one, whose YAML is inside the binary)
//! and a logical one naming the subject. Paths are relative URIs from [`SarifOptions::root`]
//! (the repository's checkout, for an upload), so the same audit writes the same bytes on any
//! machine; a file outside it gets an absolute `file:` URI.
//!
//! The document is valid against the OASIS SARIF 2.1.0 schema (a test holds it there, with the
//! schema vendored under `tests/fixtures/sarif/`).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::findings::{AuditReport, BaselineStatus, Finding, RuleOutcome, RuleStatus};
use crate::rules::Severity;

use super::safe;

/// The SARIF version written, and the schema it is valid against.
pub const SARIF_VERSION: &str = "2.1.0";
const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
/// The key of the stable fingerprint in `partialFingerprints`.
const FINGERPRINT_KEY: &str = "orgauditFingerprint/v1";

/// Settings of the SARIF output.
#[derive(Debug, Clone)]
pub struct SarifOptions {
    /// Artifact paths are written relative to it (`--sarif-root`; default the current folder).
    pub root: PathBuf,
    /// Results written at most (`--sarif-max-results`); a run notification says when some
    /// were left out.
    pub max_results: usize,
    /// The configuration file, where a built-in rule's results point (else the input file).
    pub config_file: Option<PathBuf>,
}

impl Default for SarifOptions {
    fn default() -> Self {
        SarifOptions {
            root: PathBuf::from("."),
            max_results: crate::defaults::SARIF_MAX_RESULTS,
            config_file: None,
        }
    }
}

/// GitHub's `security-severity`: a CVSS-like score that code scanning maps back to a severity
/// (9.0 and above critical, 7.0 high, 4.0 medium, above 0 low).
pub fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "7.5",
        Severity::Medium => "5.0",
        Severity::Low => "2.0",
        Severity::Info => "0.0",
    }
}

/// A result's `level`.
fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

pub(super) fn render(
    report: &AuditReport,
    opts: &SarifOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let root = absolute(&opts.root);
    let rule_index: HashMap<&str, usize> = report
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    // Where a built-in rule's results point: the configuration that turned it on, else the
    // input; a live fetch without a configuration has no file to point at.
    let builtin_file = opts
        .config_file
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .or_else(|| report.source.path.clone())
        .filter(|p| p != "-");
    let builtin_location = builtin_file.as_deref().map(|p| artifact(p, &root));

    let mut notifications = Vec::new();
    for r in report
        .rules
        .iter()
        .filter(|r| r.outcome == RuleStatus::Error)
    {
        notifications.push(json!({
            "level": "error",
            "message": { "text": format!(
                "Rule {} could not be evaluated: {}",
                r.id,
                r.outcome_reason.as_deref().unwrap_or("unknown error")
            ) },
            "descriptor": { "id": r.id },
        }));
    }
    let shown = report.findings.len().min(opts.max_results);
    if shown < report.findings.len() {
        notifications.push(json!({
            "level": "warning",
            "message": { "text": format!(
                "{} of {} results written (the most severe first); --sarif-max-results {} \
                 left out the rest. The JSON output has every finding.",
                shown,
                report.findings.len(),
                opts.max_results
            ) },
        }));
    }

    // Each rule's physical location, worked out once (a path is canonicalised on disk).
    let locations: Vec<Option<Value>> = report
        .rules
        .iter()
        .map(|r| {
            if r.origin.file.is_empty() || r.origin.file.starts_with("builtin:") {
                return builtin_location
                    .clone()
                    .map(|a| json!({ "artifactLocation": a }));
            }
            let mut loc = Map::new();
            loc.insert("artifactLocation".into(), artifact(&r.origin.file, &root));
            if r.origin.pos.line > 0 {
                loc.insert(
                    "region".into(),
                    json!({ "startLine": r.origin.pos.line, "startColumn": r.origin.pos.column.max(1) }),
                );
            }
            Some(Value::Object(loc))
        })
        .collect();
    let results: Vec<Value> = report.findings[..shown]
        .iter()
        .map(|f| {
            let ri = rule_index.get(f.rule_id.as_str()).copied();
            let physical = match ri {
                Some(i) => locations[i].clone(),
                None => builtin_location
                    .clone()
                    .map(|a| json!({ "artifactLocation": a })),
            };
            result(f, ri, physical)
        })
        .collect();

    let doc = json!({
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": { "driver": {
                "name": report.tool.name,
                "version": report.tool.version,
                "semanticVersion": report.tool.version,
                "rules": report.rules.iter().map(descriptor).collect::<Vec<_>>(),
            } },
            "automationDetails": { "id": format!("orgaudit/{}/", report.label()) },
            "invocations": [{
                "executionSuccessful": !report.rules.iter().any(|r| r.outcome == RuleStatus::Error),
                "endTimeUtc": report.audited_at,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
            "columnKind": "unicodeCodePoints",
            "properties": {
                "organization": report.label(),
                "audited_at": report.audited_at,
                "summary": report.summary,
            },
        }],
    });
    let mut out = io::BufWriter::new(out);
    serde_json::to_writer_pretty(&mut out, &doc)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// A rule as code scanning lists it.
fn descriptor(r: &RuleOutcome) -> Value {
    let mut tags = vec!["security".to_string(), "access-review".to_string()];
    for t in r.frameworks.iter().chain(&r.tags) {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let full = if r.description.is_empty() {
        &r.title
    } else {
        &r.description
    };
    let mut d = json!({
        "id": r.id,
        "name": r.id,
        "shortDescription": { "text": r.title },
        "fullDescription": { "text": full },
        "help": help(r),
        "defaultConfiguration": { "level": level(r.severity) },
        "properties": {
            "security-severity": security_severity(r.severity),
            "severity": r.severity.as_str(),
            "precision": "very-high",
            "problem.severity": match r.severity {
                Severity::Critical | Severity::High => "error",
                Severity::Medium => "warning",
                Severity::Low | Severity::Info => "recommendation",
            },
            "tags": tags,
            "outcome": r.outcome,
            "evaluated_subjects": r.evaluated_subjects,
        },
    });
    if let Some(url) = r.references.iter().find_map(|x| x.url.as_deref()) {
        d["helpUri"] = url.into();
    }
    d
}

/// A rule's help: its remediation, then its references (as links in Markdown).
fn help(r: &RuleOutcome) -> Value {
    let mut text = String::new();
    let mut md = String::new();
    if !r.remediation.is_empty() {
        text.push_str(&format!("Fix: {}", r.remediation));
        md.push_str(&format!("**Fix:** {}", safe::markdown(&r.remediation)));
    }
    if !r.references.is_empty() {
        text.push_str("\n\nReferences:");
        md.push_str("\n\n**References:**\n");
        for x in &r.references {
            text.push_str(&format!("\n- {} {}", x.framework, x.control));
            let label = safe::markdown(&format!("{} {}", x.framework, x.control));
            match &x.url {
                Some(u) => {
                    text.push_str(&format!(" <{u}>"));
                    md.push_str(&format!("\n- [{label}]({})", safe::markdown_link(u)));
                }
                None => md.push_str(&format!("\n- {label}")),
            }
        }
    }
    if text.is_empty() {
        text = r.title.clone();
        md = safe::markdown(&r.title);
    }
    json!({ "text": text, "markdown": md })
}

fn result(f: &Finding, rule_index: Option<usize>, physical: Option<Value>) -> Value {
    let subject = &f.subject;
    let mut qualified = format!("{}/{}", subject.kind.as_str(), subject.id);
    if let Some(org) = &f.organization {
        qualified = format!("organization/{org}/{qualified}");
    }
    let mut logical = json!({
        "name": subject.email.as_deref().or(subject.name.as_deref()).unwrap_or(&subject.id),
        "fullyQualifiedName": qualified,
        "kind": subject.kind.as_str(),
    });
    if let Some(org) = &f.organization {
        logical["properties"] = json!({ "organization": org });
    }
    let mut location = json!({ "logicalLocations": [logical] });
    if let Some(p) = physical {
        location["physicalLocation"] = p;
    }
    let mut message = safe::visible(&f.message).into_owned();
    if let Some(org) = &f.organization {
        message = format!("[{}] {message}", safe::visible(org));
    }
    let mut r = json!({
        "ruleId": f.rule_id,
        "level": level(f.severity),
        "kind": "fail",
        "message": { "text": message },
        "locations": [location],
        "partialFingerprints": { FINGERPRINT_KEY: f.fingerprint },
        "properties": {
            "severity": f.severity.as_str(),
            "security-severity": security_severity(f.severity),
            "subject": subject,
            "evidence": f.evidence,
        },
    });
    if let Some(i) = rule_index {
        r["ruleIndex"] = i.into();
    }
    if let Some(status) = f.baseline_status {
        r["baselineState"] = match status {
            BaselineStatus::New | BaselineStatus::Reopened => "new",
            BaselineStatus::Unchanged | BaselineStatus::NotRechecked => "unchanged",
            BaselineStatus::Resolved => "absent",
        }
        .into();
    }
    let props = r["properties"].as_object_mut().expect("an object");
    for (key, value) in [
        ("first_seen", f.first_seen.clone().map(Value::from)),
        ("age_days", f.age_days.map(Value::from)),
        ("due", f.due.clone().map(Value::from)),
        ("overdue", f.overdue.map(Value::from)),
        ("organization", f.organization.clone().map(Value::from)),
    ] {
        if let Some(v) = value {
            props.insert(key.into(), v);
        }
    }
    if let Some(w) = f.waiver.as_deref().filter(|_| f.waived) {
        let mut props = json!({
            "approved_by": w.approved_by,
            "expires": w.expires,
            "waiver": w.source,
        });
        if let Some(t) = &w.ticket {
            props["ticket"] = t.as_str().into();
        }
        r["suppressions"] = json!([{
            "kind": "external",
            "status": "accepted",
            "justification": w.reason,
            "properties": props,
        }]);
    }
    r
}

/// An artifact location: a relative URI from `root` when the file is inside it, else an
/// absolute `file:` URI.
fn artifact(path: &str, root: &Path) -> Value {
    let abs = absolute(Path::new(path));
    match abs.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => {
            let uri = rel
                .components()
                .map(|c| encode_segment(&c.as_os_str().to_string_lossy()))
                .collect::<Vec<_>>()
                .join("/");
            json!({ "uri": uri })
        }
        _ => match url::Url::from_file_path(&abs) {
            Ok(u) => json!({ "uri": u.as_str() }),
            Err(()) => json!({ "uri": encode_segment(path) }),
        },
    }
}

/// A path made absolute (against the current folder) and, where it exists, canonical; lexical
/// otherwise, so a missing file still gets a stable path.
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// A path segment percent-encoded as RFC 3986 requires (unreserved and sub-delimiters kept).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => out.push(b as char),
            b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+'
            | b',' | b';' | b'=' | b':' | b'@' => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_relative_to_the_root() {
        let root = absolute(Path::new("/srv/repo"));
        assert_eq!(
            artifact("/srv/repo/rules/my rule#1.yaml", &root),
            json!({ "uri": "rules/my%20rule%231.yaml" })
        );
        assert_eq!(
            artifact("/elsewhere/x.yaml", &root),
            json!({ "uri": "file:///elsewhere/x.yaml" })
        );
    }

    #[test]
    fn levels_and_scores_follow_the_severity() {
        assert_eq!(security_severity(Severity::Critical), "9.5");
        assert_eq!(level(Severity::Medium), "warning");
        assert_eq!(level(Severity::Info), "note");
    }
}
