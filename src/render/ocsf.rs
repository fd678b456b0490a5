//! OCSF Compliance Findings (class 2003), one JSON object per line, for a SIEM or a data lake.
//!
//! The pinned schema version is [`OCSF_VERSION`]; a test checks every event against the
//! attributes that version requires (`tests/fixtures/ocsf/`). Each finding of the audit is an
//! event: `finding_info.uid` is its fingerprint, `compliance` names the rule's standards and
//! controls, `resources` the user or group, and a waived finding has `status_id` 3
//! (Suppressed). With a baseline or a history, findings that are gone are written too, as
//! Close activities with `status_id` 4 (Resolved), so the SIEM can close them.

use std::io::{self, BufWriter, Write};

use chrono::DateTime;
use serde_json::{json, Value};

use crate::findings::{AuditReport, BaselineStatus, Finding, RuleOutcome};
use crate::rules::{Scope, Severity};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.3.0";
/// The Findings category.
const CATEGORY_UID: u32 = 2;
/// The Compliance Finding class.
const CLASS_UID: u32 = 2003;

/// A finding's activity: created (first seen now), updated (seen before) or closed (resolved).
#[derive(Clone, Copy)]
enum Activity {
    Create,
    Update,
    Close,
}

impl Activity {
    fn id(self) -> u32 {
        match self {
            Activity::Create => 1,
            Activity::Update => 2,
            Activity::Close => 3,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Activity::Create => "Create",
            Activity::Update => "Update",
            Activity::Close => "Close",
        }
    }
}

/// OCSF's `severity_id` and its caption.
pub fn severity(s: Severity) -> (u32, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

fn resource_type(kind: Scope) -> &'static str {
    match kind {
        Scope::User => "User",
        Scope::Group => "Group",
        Scope::Organization => "Organization",
    }
}

/// Milliseconds since the epoch, OCSF's `timestamp_t`; `None` for an unreadable time.
fn millis(rfc3339: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp_millis())
}

pub(super) fn render(report: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let time = millis(&report.audited_at).unwrap_or(0);
    let product = json!({
        "name": report.tool.name,
        "vendor_name": report.tool.name,
        "version": report.tool.version,
    });
    let rules: std::collections::HashMap<&str, &RuleOutcome> =
        report.rules.iter().map(|r| (r.id.as_str(), r)).collect();
    let label = report.label();
    let open = report.findings.iter().map(|f| {
        let activity = match f.baseline_status {
            Some(BaselineStatus::Unchanged | BaselineStatus::NotRechecked) => Activity::Update,
            // Resolved findings are listed apart (Close), never among the open ones.
            Some(BaselineStatus::New | BaselineStatus::Reopened | BaselineStatus::Resolved)
            | None => Activity::Create,
        };
        (f, activity)
    });
    let closed = report
        .resolved
        .iter()
        .flatten()
        .map(|f| (f, Activity::Close));
    for (f, activity) in open.chain(closed) {
        let rule = rules.get(f.rule_id.as_str()).copied();
        let event = event(f, rule, activity, time, &product, &label);
        serde_json::to_writer(&mut out, &event)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn event(
    f: &Finding,
    rule: Option<&RuleOutcome>,
    activity: Activity,
    time: i64,
    product: &Value,
    label: &str,
) -> Value {
    let (severity_id, severity_name) = severity(f.severity);
    let (status_id, status) = match activity {
        Activity::Close => (4, "Resolved"),
        _ if f.waived => (3, "Suppressed"),
        _ => (1, "New"),
    };
    let references = rule.map_or(&[][..], |r| &r.references[..]);
    let mut standards: Vec<&str> = Vec::new();
    for r in references {
        if !standards.contains(&r.framework.as_str()) {
            standards.push(&r.framework);
        }
    }
    if standards.is_empty() {
        // `standards` is required: a rule that cites none is checked against orgaudit's own.
        standards.push("orgaudit rules");
    }
    let control = if references.is_empty() {
        f.rule_id.clone()
    } else {
        references
            .iter()
            .map(|r| format!("{} {}", r.framework, r.control))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut compliance = json!({
        "standards": standards,
        "control": control,
        "requirements": references.iter().map(|r| r.control.as_str()).collect::<Vec<_>>(),
        // The check itself failed for this subject, whether or not the risk is accepted.
        "status_id": if matches!(activity, Activity::Close) { 1 } else { 3 },
        "status": if matches!(activity, Activity::Close) { "Pass" } else { "Fail" },
    });
    if references.is_empty() {
        compliance["requirements"] = json!([f.rule_id]);
    }

    let mut finding_info = json!({
        "uid": f.fingerprint,
        "title": f.title,
        "desc": f.message,
        "types": ["Access Review"],
        "analytic": {
            "uid": f.rule_id,
            "name": f.rule_id,
            "type_id": 1,
            "type": "Rule",
        },
    });
    if let Some(t) = f.first_seen.as_deref().and_then(millis) {
        finding_info["first_seen_time"] = t.into();
    }
    if let Some(t) = f.last_seen.as_deref().and_then(millis) {
        finding_info["last_seen_time"] = t.into();
    }

    let subject = &f.subject;
    let mut resource = json!({
        "uid": subject.id,
        "type": resource_type(subject.kind),
        "data": { "evidence": f.evidence },
    });
    if let Some(name) = subject.email.as_deref().or(subject.name.as_deref()) {
        resource["name"] = name.into();
    }
    if let Some(org) = &f.organization {
        resource["group"] = json!({ "name": org });
    }

    let mut unmapped = json!({
        "rule_id": f.rule_id,
        "organization": f.organization.as_deref().unwrap_or(label),
    });
    for (key, value) in [
        ("baseline_status", f.baseline_status.map(|b| json!(b))),
        ("age_days", f.age_days.map(Value::from)),
        ("due", f.due.clone().map(Value::from)),
        ("overdue", f.overdue.map(Value::from)),
        ("waiver", f.waiver.as_ref().map(|w| json!(w))),
    ] {
        if let Some(v) = value {
            unmapped[key] = v;
        }
    }

    let mut e = json!({
        "activity_id": activity.id(),
        "activity_name": activity.name(),
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "type_uid": CLASS_UID * 100 + activity.id(),
        "type_name": format!("Compliance Finding: {}", activity.name()),
        "time": time,
        "severity_id": severity_id,
        "severity": severity_name,
        "status_id": status_id,
        "status": status,
        "message": f.message,
        "metadata": {
            "version": OCSF_VERSION,
            "product": product,
            "log_name": "orgaudit",
        },
        "finding_info": finding_info,
        "compliance": compliance,
        "resources": [resource],
        "unmapped": unmapped,
    });
    if let Some(w) = f.waiver.as_deref().filter(|_| f.waived) {
        e["status_detail"] = format!(
            "Waived until {} by {}: {}",
            w.expires, w.approved_by, w.reason
        )
        .into();
    }
    if let Some(r) = rule.filter(|r| !r.remediation.is_empty()) {
        let mut remediation = json!({ "desc": r.remediation });
        let urls: Vec<&str> = r
            .references
            .iter()
            .filter_map(|x| x.url.as_deref())
            .collect();
        if !urls.is_empty() {
            remediation["references"] = json!(urls);
        }
        e["remediation"] = remediation;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_finding_each_a_line() {
        let report = crate::render::example_audit();
        let mut out = Vec::new();
        render(&report, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), report.findings.len());
        for line in text.lines() {
            let e: Value = serde_json::from_str(line).unwrap();
            assert_eq!(e["class_uid"], 2003);
            assert_eq!(e["type_uid"], 200301);
        }
    }
}
