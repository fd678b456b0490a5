//! What the templates see: the audit report as it is, plus views that are awkward to compute in
//! a template (findings grouped per rule, the compliance view, the chart's scale).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::findings::{AuditReport, BaselineStatus, Finding, RuleOutcome};
use crate::rules::Severity;

/// Frameworks in the order the compliance view shows them; others follow by name.
const FRAMEWORK_ORDER: &[&str] = &[
    "SOC 2",
    "ISO 27001:2022",
    "NIST SP 800-53",
    "CIS Controls v8",
    "PCI DSS v4.0",
];

#[derive(Serialize)]
pub struct SeverityCount {
    pub name: &'static str,
    pub count: usize,
    /// Of the largest count, 0 to 100, for bars.
    pub percent: f64,
}

#[derive(Serialize)]
pub struct RuleGroup<'a> {
    pub rule: &'a RuleOutcome,
    pub findings: &'a [Finding],
    /// Findings not covered by a waiver: what makes the rule fail.
    pub unwaived: usize,
    /// Findings new against the baseline.
    pub new: usize,
}

#[derive(Serialize)]
pub struct ControlRule {
    pub id: String,
    pub title: String,
    pub findings: usize,
}

#[derive(Serialize)]
pub struct Control {
    pub control: String,
    pub rules: Vec<ControlRule>,
    pub findings: usize,
}

#[derive(Serialize)]
pub struct Framework {
    pub name: String,
    pub controls: Vec<Control>,
    pub failing: usize,
}

#[derive(Serialize)]
pub struct View<'a> {
    pub report: &'a AuditReport,
    pub severities: Vec<SeverityCount>,
    /// Rules with findings, in the findings' order (severity, then rule id).
    pub groups: Vec<RuleGroup<'a>>,
    /// Rules that found nothing.
    pub clean_rules: Vec<&'a RuleOutcome>,
    pub compliance: Vec<Framework>,
    /// At most this many findings per rule in compact formats (Markdown).
    pub limit: usize,
    /// With a baseline: the resolved findings by rule id.
    pub resolved_by_rule: BTreeMap<String, Vec<&'a Finding>>,
    /// With a baseline: resolved findings of rules that this audit did not evaluate.
    pub resolved_elsewhere: Vec<&'a Finding>,
    /// Rules with unwaived findings (failing JUnit test cases).
    pub failing_rules: usize,
}

impl<'a> View<'a> {
    pub fn new(report: &'a AuditReport, limit: usize) -> Self {
        let max = Severity::ALL
            .iter()
            .map(|s| report.summary.by_severity.get(*s))
            .max()
            .unwrap_or(0)
            .max(1);
        let severities = Severity::ALL
            .iter()
            .map(|s| {
                let count = report.summary.by_severity.get(*s);
                SeverityCount {
                    name: s.as_str(),
                    count,
                    percent: (count as f64 * 100.0 / max as f64 * 10.0).round() / 10.0,
                }
            })
            .collect();
        let mut groups = Vec::new();
        for same in crate::findings::by_rule(&report.findings) {
            if let Some(rule) = report.rules.iter().find(|r| r.id == same[0].rule_id) {
                groups.push(RuleGroup {
                    rule,
                    findings: same,
                    unwaived: same.iter().filter(|f| !f.waived).count(),
                    new: same
                        .iter()
                        .filter(|f| f.baseline_status == Some(BaselineStatus::New))
                        .count(),
                });
            }
        }
        let clean_rules = report.rules.iter().filter(|r| r.findings == 0).collect();
        let mut resolved_by_rule: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
        for f in report.resolved.iter().flatten() {
            resolved_by_rule
                .entry(f.rule_id.clone())
                .or_default()
                .push(f);
        }
        let failing_rules = groups.iter().filter(|g| g.unwaived > 0).count();
        let resolved_elsewhere = report
            .resolved
            .iter()
            .flatten()
            .filter(|f| !report.rules.iter().any(|r| r.id == f.rule_id))
            .collect();
        View {
            resolved_elsewhere,
            resolved_by_rule,
            failing_rules,
            report,
            severities,
            groups,
            clean_rules,
            compliance: compliance(&report.rules),
            limit,
        }
    }
}

fn compliance(rules: &[RuleOutcome]) -> Vec<Framework> {
    let mut by: BTreeMap<String, BTreeMap<String, Vec<ControlRule>>> = BTreeMap::new();
    for r in rules {
        for reference in &r.references {
            by.entry(reference.framework.clone())
                .or_default()
                .entry(reference.control.clone())
                .or_default()
                .push(ControlRule {
                    id: r.id.clone(),
                    title: r.title.clone(),
                    findings: r.findings,
                });
        }
    }
    let mut out: Vec<Framework> = by
        .into_iter()
        .map(|(name, controls)| {
            let controls: Vec<Control> = controls
                .into_iter()
                .map(|(control, rules)| Control {
                    findings: rules.iter().map(|r| r.findings).sum(),
                    control,
                    rules,
                })
                .collect();
            Framework {
                failing: controls.iter().filter(|c| c.findings > 0).count(),
                name,
                controls,
            }
        })
        .collect();
    let rank = |n: &str| {
        FRAMEWORK_ORDER
            .iter()
            .position(|f| *f == n)
            .unwrap_or(FRAMEWORK_ORDER.len())
    };
    out.sort_by(|a, b| rank(&a.name).cmp(&rank(&b.name)).then(a.name.cmp(&b.name)));
    out
}
