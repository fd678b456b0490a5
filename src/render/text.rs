//! Text output for people: findings grouped by severity, then rule, each with its evidence, and
//! a summary line. Colour only when asked (the CLI asks on a terminal, unless NO_COLOR is set).

use std::io::{self, Write};

use serde_json::Value as J;

use crate::findings::{AuditReport, Finding};
use crate::rules::Severity;

#[derive(Debug, Clone)]
pub struct TextOptions {
    /// ANSI colours.
    pub color: bool,
    /// List the warnings (the CLI prints them on stderr and sets this only for files).
    pub warnings: bool,
    /// Under each rule, what fixes its findings and its references (`-v`).
    pub remediation: bool,
    /// The run's gate, for the verdict at the top.
    pub gate: Option<crate::findings::GateSpec>,
    /// Waivers expiring within this many days are listed at the top.
    pub waiver_warn_days: u32,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            color: false,
            warnings: false,
            remediation: false,
            gate: None,
            waiver_warn_days: crate::defaults::WAIVER_WARN_DAYS,
        }
    }
}

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn severity(&self, sev: Severity, s: &str) -> String {
        let code = match sev {
            Severity::Critical => "1;97;41",
            Severity::High => "1;31",
            Severity::Medium => "1;33",
            Severity::Low => "1;36",
            Severity::Info => "1;2",
        };
        self.paint(code, s)
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(super) fn render(
    report: &AuditReport,
    opts: &TextOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let st = Style { on: opts.color };
    let src = &report.source;
    let what = if !src.organizations.is_empty() {
        let names: Vec<&str> = src
            .organizations
            .iter()
            .filter_map(|o| o.organization.as_deref())
            .collect();
        format!("{} organizations: {}", names.len(), names.join(", "))
    } else {
        src.path
            .clone()
            .or_else(|| {
                src.base_url
                    .as_ref()
                    .map(|u| format!("{} at {u}", src.kind))
            })
            .unwrap_or_else(|| src.kind.to_string())
    };
    // A display name leads; without one, what was audited names itself.
    let what = match &report.organization_name {
        Some(name) => format!("{name}: {what}"),
        None => what,
    };
    writeln!(
        out,
        "{} {} audit of {} ({}, {}, sha256 {}) at {}",
        report.tool.name,
        report.tool.version,
        clean(&what),
        src.format,
        plural(src.records, "record", "records"),
        &src.sha256[..src.sha256.len().min(12)],
        report.audited_at
    )?;
    // The executive summary: the gate's verdict, the rules with most findings, waivers that
    // expire soon.
    if let Some(g) = opts.gate {
        let count = g.count(&report.findings);
        writeln!(
            out,
            "{}: {count} unwaived{} finding{} at or above {}",
            if count == 0 {
                st.paint("1;32", "GATE PASSED")
            } else {
                st.paint("1;31", "GATE FAILED")
            },
            if g.only_new { " new" } else { "" },
            if count == 1 { "" } else { "s" },
            g.threshold
        )?;
    }
    let top = super::view::top_rules(&report.findings);
    if !top.is_empty() {
        let list: Vec<String> = top
            .iter()
            .map(|t| format!("{} ({})", t.id, t.findings))
            .collect();
        writeln!(out, "most findings: {}", clean(&list.join(", ")))?;
    }
    for w in
        super::view::expiring_waivers(&report.findings, &report.audited_at, opts.waiver_warn_days)
    {
        writeln!(
            out,
            "{} {} for {} expires {} (in {} days, approved by {})",
            st.paint("33", "waiver"),
            clean(&w.rule),
            clean(&w.subject),
            w.expires,
            w.days,
            clean(&w.approved_by)
        )?;
    }
    // Findings past their SLA come first, most overdue first.
    let mut overdue: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.overdue == Some(true))
        .collect();
    if !overdue.is_empty() {
        overdue.sort_by(|a, b| a.due.cmp(&b.due).then(a.severity.cmp(&b.severity)));
        writeln!(out)?;
        writeln!(
            out,
            "{} {} past their SLA",
            st.paint("1;31", "OVERDUE"),
            plural(overdue.len(), "finding", "findings")
        )?;
        for f in overdue {
            writeln!(
                out,
                "  - due {} ({}, open {} days) {}: {}",
                f.due.as_deref().unwrap_or("?"),
                st.severity(f.severity, f.severity.as_str()),
                f.age_days.unwrap_or(0),
                clean(&f.rule_id),
                clean(&f.message)
            )?;
        }
    }
    // Findings are sorted by severity, then rule: each severity is one run, each rule within it.
    for group in report.findings.chunk_by(|a, b| a.severity == b.severity) {
        let sev = group[0].severity;
        writeln!(out)?;
        writeln!(
            out,
            "{} {}",
            st.severity(sev, &sev.as_str().to_uppercase()),
            plural(group.len(), "finding", "findings")
        )?;
        for same in crate::findings::by_rule(group) {
            let first = &same[0];
            let n = same.len();
            writeln!(
                out,
                "  {}  {} ({n})",
                st.paint("1", &clean(&first.rule_id)),
                clean(&first.title)
            )?;
            if let Some(rule) = opts
                .remediation
                .then(|| report.rules.iter().find(|r| r.id == first.rule_id))
                .flatten()
            {
                if !rule.remediation.is_empty() {
                    writeln!(out, "    fix: {}", clean(&rule.remediation))?;
                }
                let refs: Vec<String> = rule
                    .references
                    .iter()
                    .map(|r| match &r.url {
                        Some(u) => format!("{} {} <{u}>", r.framework, r.control),
                        None => format!("{} {}", r.framework, r.control),
                    })
                    .collect();
                if !refs.is_empty() {
                    writeln!(out, "    see: {}", clean(&refs.join("; ")))?;
                }
            }
            for f in same {
                writeln!(out, "    - {}{}", tags(f, &st), clean(&f.message))?;
                let org = f
                    .organization
                    .as_ref()
                    .map(|o| format!("[{o}] "))
                    .unwrap_or_default();
                let mut line = format!("{org}{} {}", f.subject.kind.as_str(), f.subject.id);
                for (k, v) in &f.evidence {
                    line.push_str(&format!("  {k}={}", brief(v)));
                }
                if let Some(age) = f.age_days.filter(|&a| a > 0) {
                    line.push_str(&format!("  open {age} days"));
                }
                writeln!(out, "      {}", st.paint("2", &clean(&line)))?;
            }
        }
    }
    let since = if report.baseline.is_some() {
        "the baseline"
    } else {
        "the last run"
    };
    if let Some(resolved) = report.resolved.as_ref().filter(|r| !r.is_empty()) {
        writeln!(out)?;
        writeln!(
            out,
            "{} {} since {}",
            st.paint("1;32", "RESOLVED"),
            plural(resolved.len(), "finding", "findings"),
            since
        )?;
        for f in resolved {
            writeln!(
                out,
                "  - {} {}: {}",
                clean(&f.rule_id),
                clean(f.subject.email.as_deref().unwrap_or(&f.subject.id)),
                clean(&f.message)
            )?;
        }
    }
    if let Some(changes) = &report.changes {
        writeln!(out)?;
        writeln!(
            out,
            "{} since the last run ({})",
            st.paint("1", "CHANGES"),
            clean(&changes.since)
        )?;
        let lists = changes.lists(crate::defaults::MARKDOWN_PER_RULE);
        if lists.is_empty() {
            writeln!(
                out,
                "  none: no users added or removed, no status, group, SSO-bypass or owner changes"
            )?;
        }
        for c in lists {
            let more = c.count - c.items.len();
            let more = if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            };
            writeln!(
                out,
                "  {} ({}): {}{more}",
                c.label,
                c.count,
                clean(&c.items.join("; "))
            )?;
        }
    }
    if let Some(trend) = report.trend.as_ref().filter(|t| t.len() > 1) {
        writeln!(out)?;
        let totals: Vec<String> = trend
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    &p.audited_at[..p.audited_at.len().min(10)],
                    p.unwaived_by_severity.total()
                )
            })
            .collect();
        writeln!(
            out,
            "{} unwaived findings over the last {} runs: {}",
            st.paint("1", "TREND"),
            trend.len(),
            clean(&totals.join(", "))
        )?;
    }
    if let Some(h) = &report.history {
        writeln!(out)?;
        writeln!(
            out,
            "{} {} (organization {}){}",
            st.paint("1", "HISTORY"),
            clean(&h.location),
            clean(&h.organization),
            h.head
                .as_deref()
                .map(|head| format!(", chain head before this run {head}"))
                .unwrap_or_else(|| ", its first run".to_string())
        )?;
    }
    if opts.warnings && !report.warnings.is_empty() {
        writeln!(out)?;
        for w in &report.warnings {
            writeln!(out, "{}", st.paint("33", &clean(&w.to_string())))?;
        }
    }
    // Coverage: a rule that was not evaluated (or failed) is never shown as a pass.
    let unchecked: Vec<&crate::findings::RuleOutcome> = report
        .rules
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                crate::findings::RuleStatus::NotEvaluated | crate::findings::RuleStatus::Error
            )
        })
        .collect();
    if !unchecked.is_empty() {
        writeln!(out)?;
        for r in unchecked {
            let what = match r.outcome {
                crate::findings::RuleStatus::Error => st.paint("1;31", "RULE ERROR"),
                _ => st.paint("2", "NOT EVALUATED"),
            };
            writeln!(
                out,
                "{what} {}: {}",
                clean(&r.id),
                clean(r.outcome_reason.as_deref().unwrap_or(""))
            )?;
        }
    }
    writeln!(out)?;
    // What orgaudit can do about them itself, after a review.
    let fixable = crate::findings::fixable(&report.findings);
    if fixable > 0 {
        writeln!(
            out,
            "{} can be fixed by removing the user, after a review: orgaudit remediate plan (docs/remediation.md)\n",
            plural(fixable, "finding", "findings")
        )?;
    }
    let s = &report.summary;
    let counts: Vec<String> = Severity::ALL
        .iter()
        .filter(|sev| s.by_severity.get(**sev) > 0)
        .map(|sev| format!("{} {}", s.by_severity.get(*sev), sev.as_str()))
        .collect();
    let head = if s.findings == 0 {
        st.paint("1;32", "No findings")
    } else {
        st.paint(
            "1",
            &format!(
                "{}: {}",
                plural(s.findings, "finding", "findings"),
                counts.join(", ")
            ),
        )
    };
    let mut tail = String::new();
    if s.waived > 0 {
        tail.push_str(&format!(" | {} waived", s.waived));
    }
    if let (Some(new), Some(resolved)) = (s.new, s.resolved) {
        tail.push_str(&format!(" | {new} new, {resolved} resolved since {since}"));
    }
    writeln!(
        out,
        "{head}{tail} | {} ({}) over {} and {}",
        plural(s.rules_evaluated, "rule", "rules"),
        super::view::Coverage::of(&report.rules).describe(),
        plural(s.users, "user", "users"),
        plural(s.groups, "group", "groups")
    )
}

/// `[new]` and `[waived until ...: reason]` before a finding's message.
fn tags(f: &Finding, st: &Style) -> String {
    let mut t = String::new();
    match f.baseline_status {
        Some(crate::findings::BaselineStatus::New) => {
            t.push_str(&st.paint("1;35", "[new]"));
            t.push(' ');
        }
        Some(crate::findings::BaselineStatus::Reopened) => {
            t.push_str(&st.paint("1;35", "[reopened]"));
            t.push(' ');
        }
        Some(
            crate::findings::BaselineStatus::Unchanged
            | crate::findings::BaselineStatus::Resolved
            | crate::findings::BaselineStatus::NotRechecked,
        )
        | None => {}
    }
    if let (Some(true), Some(due)) = (f.overdue, &f.due) {
        t.push_str(&st.paint("1;31", &format!("[overdue since {due}]")));
        t.push(' ');
    }
    if let Some(w) = &f.waiver {
        t.push_str(&st.paint(
            "2",
            &format!("[waived until {}: {}]", w.expires, clean(&w.reason)),
        ));
        t.push(' ');
    }
    t
}

use super::safe::terminal as clean;

/// A value in a few words: strings bare, lists shortened, users by email.
pub(crate) fn brief(v: &J) -> String {
    match v {
        J::String(s) => s.clone(),
        J::Array(items) => {
            const SHOW: usize = 5;
            let mut parts: Vec<String> = items.iter().take(SHOW).map(brief).collect();
            if items.len() > SHOW {
                parts.push(format!("+{} more", items.len() - SHOW));
            }
            format!("[{}]", parts.join(", "))
        }
        J::Object(o) => o
            .get("email")
            .or_else(|| o.get("id"))
            .map_or_else(|| v.to_string(), brief),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brief_values() {
        assert_eq!(brief(&serde_json::json!("x")), "x");
        assert_eq!(
            brief(&serde_json::json!([{"id": "1", "email": "a@b"}, {"id": "2"}])),
            "[a@b, 2]"
        );
        assert_eq!(
            brief(&serde_json::json!([1, 2, 3, 4, 5, 6, 7])),
            "[1, 2, 3, 4, 5, +2 more]"
        );
        assert_eq!(brief(&serde_json::json!(null)), "null");
    }
}
