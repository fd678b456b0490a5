//! What the templates see: the audit report as it is, plus views that are awkward to compute in
//! a template (findings grouped per rule, the compliance view, the chart's scale).

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object};
use minijinja::Value;
use serde::Serialize;

use crate::findings::{
    AuditReport, BaselineStatus, Finding, RuleOutcome, RuleStatus, WithFindings,
};
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
    /// The rule's findings: the same template values as in `report.findings`.
    pub findings: Value,
    /// Findings not covered by a waiver: what makes the rule fail.
    pub unwaived: usize,
    /// Findings new against the baseline.
    pub new: usize,
    /// Findings that trip the run's gate (with a gate; else the unwaived ones).
    pub gating: usize,
}

#[derive(Serialize)]
pub struct ControlRule {
    pub id: String,
    pub title: String,
    pub findings: usize,
    pub outcome: RuleStatus,
}

/// What a control's rules came to, worst first: a control is never a pass while one of its
/// rules was not evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    Fail,
    Error,
    NotEvaluated,
    Waived,
    Pass,
}

impl ControlStatus {
    fn of(outcome: RuleStatus) -> ControlStatus {
        match outcome {
            RuleStatus::Failed => ControlStatus::Fail,
            RuleStatus::Error => ControlStatus::Error,
            RuleStatus::NotEvaluated => ControlStatus::NotEvaluated,
            RuleStatus::Waived => ControlStatus::Waived,
            RuleStatus::Passed => ControlStatus::Pass,
        }
    }
}

#[derive(Serialize)]
pub struct Control {
    pub control: String,
    pub rules: Vec<ControlRule>,
    pub findings: usize,
    pub status: ControlStatus,
}

#[derive(Serialize)]
pub struct Framework {
    pub name: String,
    pub controls: Vec<Control>,
    pub failing: usize,
}

/// One severity's part of a run's bar in the trend chart.
#[derive(Serialize)]
pub struct TrendSegment {
    pub severity: &'static str,
    pub count: usize,
    pub y: f64,
    pub height: f64,
}

/// One run in the trend chart: where its bar goes, and what it counts.
#[derive(Serialize)]
pub struct TrendBar {
    /// The run's day (YYYY-MM-DD).
    pub day: String,
    pub x: f64,
    pub total: usize,
    pub new: Option<usize>,
    pub resolved: Option<usize>,
    /// From the bottom: critical first.
    pub segments: Vec<TrendSegment>,
    /// The top of the bar.
    pub top: f64,
}

/// The trend chart's geometry, computed here so that the templates only draw it (an inline
/// SVG: unwaived findings by severity over the last runs, new and resolved per run).
#[derive(Serialize)]
pub struct TrendChart {
    pub width: f64,
    pub height: f64,
    pub bar_width: f64,
    /// Where the bars stand.
    pub base: f64,
    /// The largest total, the scale's top.
    pub max: usize,
    pub bars: Vec<TrendBar>,
}

impl TrendChart {
    const WIDTH: f64 = 520.0;
    const HEIGHT: f64 = 190.0;
    const TOP: f64 = 28.0;
    const BASE: f64 = 160.0;

    fn of(points: &[crate::findings::TrendPoint]) -> Option<TrendChart> {
        if points.is_empty() {
            return None;
        }
        let max = points
            .iter()
            .map(|p| p.unwaived_by_severity.total())
            .max()
            .unwrap_or(0)
            .max(1);
        let slot = (Self::WIDTH - 20.0) / points.len() as f64;
        let bar_width = (slot * 0.6).min(36.0);
        let scale = (Self::BASE - Self::TOP) / max as f64;
        let bars = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let x = 10.0 + slot * i as f64 + (slot - bar_width) / 2.0;
                let mut y = Self::BASE;
                let mut segments = Vec::new();
                for sev in Severity::ALL.iter() {
                    let count = p.unwaived_by_severity.get(*sev);
                    if count == 0 {
                        continue;
                    }
                    let height = (count as f64 * scale * 10.0).round() / 10.0;
                    y -= height;
                    segments.push(TrendSegment {
                        severity: sev.as_str(),
                        count,
                        y: (y * 10.0).round() / 10.0,
                        height,
                    });
                }
                TrendBar {
                    day: p.audited_at.get(..10).unwrap_or(&p.audited_at).to_string(),
                    x: (x * 10.0).round() / 10.0,
                    total: p.unwaived_by_severity.total(),
                    new: p.new,
                    resolved: p.resolved,
                    segments,
                    top: (y * 10.0).round() / 10.0,
                }
            })
            .collect();
        Some(TrendChart {
            width: Self::WIDTH,
            height: Self::HEIGHT,
            bar_width: (bar_width * 10.0).round() / 10.0,
            base: Self::BASE,
            max,
            bars,
        })
    }
}

/// A struct as a template value: its fields converted once, looked up by name, listed in
/// declaration order. Cheaper to build and to read than a general map, which hashes every key.
#[derive(Debug)]
struct Record {
    keys: &'static [&'static str],
    /// One per key; `None` for a field the JSON output leaves out.
    values: Vec<Option<Value>>,
}

impl Object for Record {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let i = self.keys.iter().position(|k| *k == key)?;
        self.values[i].clone()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        if self.values.iter().all(Option::is_some) {
            return Enumerator::Str(self.keys);
        }
        let present = self.keys.iter().zip(&self.values);
        Enumerator::Values(
            present
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| Value::from(*k))
                .collect(),
        )
    }
}

/// Evidence as a template value: a map with its keys in sorted order (as a map converted by
/// serde lists them), its values converted once.
#[derive(Debug)]
struct EvidenceValue(Vec<(Value, Value)>);

impl Object for EvidenceValue {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.iter().map(|(k, _)| k.clone()).collect())
    }
}

fn text(s: &str) -> Option<Value> {
    Some(Value::from(s))
}

fn serde<T: Serialize>(v: &T) -> Option<Value> {
    Some(Value::from(minijinja::value::Serde(v)))
}

/// The template values of a rule's id and title, shared by its findings (which come together).
#[derive(Default)]
struct RuleTexts {
    last: Option<(Value, Value)>,
}

impl RuleTexts {
    fn of(&mut self, f: &Finding) -> (Value, Value) {
        match &self.last {
            Some((id, title))
                if id.as_str() == Some(&f.rule_id) && title.as_str() == Some(&f.title) =>
            {
                (id.clone(), title.clone())
            }
            _ => {
                let pair = (
                    Value::from(f.rule_id.as_str()),
                    Value::from(f.title.as_str()),
                );
                self.last = Some(pair.clone());
                pair
            }
        }
    }
}

/// A finding as templates see it: what the JSON output holds, field for field (a test holds the
/// two together).
fn finding_value(f: &Finding, rules: &mut RuleTexts) -> Value {
    let (rule_id, title) = rules.of(f);
    // Keys in sorted order, as a converted map lists them.
    let mut entries: Vec<(Value, Value)> = f
        .evidence
        .iter()
        .map(|(k, v)| (Value::from(k), Value::from(minijinja::value::Serde(v))))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let evidence = EvidenceValue(entries);
    let subject = &f.subject;
    let subject = Record {
        keys: &["kind", "id", "email", "name"],
        values: vec![
            serde(&subject.kind),
            text(&subject.id),
            Some(
                subject
                    .email
                    .as_deref()
                    .map_or(Value::from(()), Value::from),
            ),
            Some(subject.name.as_deref().map_or(Value::from(()), Value::from)),
        ],
    };
    Value::from_object(Record {
        keys: &[
            "organization",
            "rule_id",
            "severity",
            "default_severity",
            "title",
            "subject",
            "message",
            "evidence",
            "fingerprint",
            "waived",
            "baseline_status",
            "waiver",
            "first_seen",
            "age_days",
            "last_seen",
            "due",
            "overdue",
            "fix",
        ],
        values: vec![
            f.organization.as_deref().and_then(text),
            Some(rule_id),
            serde(&f.severity),
            f.default_severity.as_ref().and_then(serde),
            Some(title),
            Some(Value::from_object(subject)),
            text(&f.message),
            Some(Value::from_object(evidence)),
            text(&f.fingerprint),
            Some(Value::from(f.waived)),
            f.baseline_status.as_ref().and_then(serde),
            f.waiver.as_ref().and_then(serde),
            f.first_seen.as_deref().and_then(text),
            f.age_days.map(Value::from),
            f.last_seen.as_deref().and_then(text),
            f.due.as_deref().and_then(text),
            f.overdue.map(Value::from),
            f.fix.as_ref().and_then(serde),
        ],
    })
}

/// Findings as template values, converted on both cores when there are many: converting is
/// most of the cost of a large HTML report.
fn template_values(findings: &[Finding]) -> Vec<Value> {
    let convert = |part: &[Finding]| -> Vec<Value> {
        let mut rules = RuleTexts::default();
        part.iter().map(|f| finding_value(f, &mut rules)).collect()
    };
    let threads = if findings.len() < 20_000 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    };
    if threads == 1 {
        return convert(findings);
    }
    let chunk = findings.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = findings
            .chunks(chunk)
            .map(|part| scope.spawn(move || convert(part)))
            .collect();
        let mut all = Vec::with_capacity(findings.len());
        for p in parts {
            all.extend(p.join().expect("converting findings does not panic"));
        }
        all
    })
}

#[derive(Serialize)]
pub struct View<'a> {
    /// The audit document, its findings converted to template values once (`groups` shares
    /// them).
    pub report: WithFindings<'a, Value>,
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
    /// With a history: the trend chart.
    pub trend_chart: Option<TrendChart>,
    /// Findings past their SLA, most overdue first: shown before everything else.
    pub overdue: Vec<&'a Finding>,
    /// The `audited_at` of what new and resolved are counted against: the baseline, or the
    /// history's previous run.
    pub compared_with: Option<&'a str>,
    /// With a previous snapshot: the kinds of change since, each with its first `limit` items.
    pub changes: Vec<crate::changes::ChangeList>,
    /// What the audited organization is called ([`AuditReport::label`]).
    pub label: String,
    /// How many rules came to each outcome.
    pub coverage: Coverage,
    /// The run's gate, when one was asked for.
    pub gate: Option<crate::findings::GateSpec>,
    /// The findings themselves (the templates see `report.findings`).
    #[serde(skip)]
    findings: &'a [Finding],
    /// With a gate: what it decided, and the counts that decided it.
    pub verdict: Option<VerdictView>,
    /// The (at most) three rules with the most unwaived findings.
    pub top_rules: Vec<TopRule>,
    /// Unwaived findings `orgaudit remediate plan` can fix ([`crate::findings::fixable`]).
    pub fixable: usize,
    /// Waivers in use that expire soon (`--waiver-warn-days`), soonest first.
    pub expiring_waivers: Vec<ExpiringWaiver>,
    /// Every rule, most severe first, then by id (the HTML rules table).
    pub rules_by_severity: Vec<&'a RuleOutcome>,
}

/// The three rules with the most unwaived findings (then the most severe, then by id).
pub fn top_rules(findings: &[Finding]) -> Vec<TopRule> {
    let mut top: Vec<TopRule> = crate::findings::by_rule(findings)
        .filter_map(|same| {
            let n = same.iter().filter(|f| !f.waived).count();
            (n > 0).then(|| TopRule {
                id: same[0].rule_id.clone(),
                title: same[0].title.clone(),
                severity: same[0].severity,
                findings: n,
            })
        })
        .collect();
    top.sort_by(|a, b| {
        b.findings
            .cmp(&a.findings)
            .then(b.severity.cmp(&a.severity))
            .then(a.id.cmp(&b.id))
    });
    top.truncate(3);
    top
}

/// The waivers in use that expire within `days` of `audited_at`, soonest first.
pub fn expiring_waivers(findings: &[Finding], audited_at: &str, days: u32) -> Vec<ExpiringWaiver> {
    let Ok(now) = chrono::DateTime::parse_from_rfc3339(audited_at) else {
        return Vec::new();
    };
    let today = now.date_naive();
    let mut by: BTreeMap<(String, String, String), ExpiringWaiver> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.waived) {
        let Some(w) = &f.waiver else { continue };
        let Ok(expires) = chrono::NaiveDate::parse_from_str(&w.expires, "%Y-%m-%d") else {
            continue;
        };
        let left = (expires - today).num_days();
        if left < 0 || left > i64::from(days) {
            continue;
        }
        let key = (w.expires.clone(), w.rule.clone(), w.subject.clone());
        by.entry(key)
            .or_insert_with(|| ExpiringWaiver {
                expires: w.expires.clone(),
                days: left,
                rule: w.rule.clone(),
                subject: w.subject.clone(),
                approved_by: w.approved_by.clone(),
                findings: 0,
            })
            .findings += 1;
    }
    by.into_values().collect()
}

/// The gate's verdict as the executive summary states it.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictView {
    pub passed: bool,
    pub threshold: Severity,
    pub only_new: bool,
    /// Findings that trip the gate.
    pub count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopRule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub findings: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ExpiringWaiver {
    pub expires: String,
    /// Days left from the audit.
    pub days: i64,
    pub rule: String,
    pub subject: String,
    pub approved_by: String,
    pub findings: usize,
}

/// How many rules came to each outcome: what the reports' coverage lines count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    pub failed: usize,
    pub passed: usize,
    pub not_evaluated: usize,
    pub waived: usize,
    pub error: usize,
}

impl Coverage {
    pub fn of(rules: &[RuleOutcome]) -> Coverage {
        let mut c = Coverage::default();
        for r in rules {
            *match r.outcome {
                RuleStatus::Failed => &mut c.failed,
                RuleStatus::Passed => &mut c.passed,
                RuleStatus::NotEvaluated => &mut c.not_evaluated,
                RuleStatus::Waived => &mut c.waived,
                RuleStatus::Error => &mut c.error,
            } += 1;
        }
        c
    }

    /// `8 failed, 3 passed, 3 not evaluated`: the outcomes that happened.
    pub fn describe(&self) -> String {
        [
            (self.failed, "failed"),
            (self.passed, "passed"),
            (self.not_evaluated, "not evaluated"),
            (self.waived, "waived"),
            (self.error, "in error"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

impl View<'_> {
    /// The view of a run with this gate: a rule fails (JUnit) only for findings that trip it.
    pub fn with_gate(mut self, gate: Option<crate::findings::GateSpec>) -> Self {
        if let Some(g) = gate {
            for group in &mut self.groups {
                group.gating = self
                    .findings
                    .iter()
                    .filter(|f| f.rule_id == group.rule.id && g.trips(f))
                    .count();
            }
            self.failing_rules = self.groups.iter().filter(|g| g.gating > 0).count();
            let count = g.count(self.findings);
            self.verdict = Some(VerdictView {
                passed: count == 0,
                threshold: g.threshold,
                only_new: g.only_new,
                count,
            });
        }
        self.gate = gate;
        self
    }

    /// Lists the waivers in use that expire within `days` of the audit.
    pub fn with_waiver_warning(mut self, days: u32) -> Self {
        self.expiring_waivers = expiring_waivers(self.findings, self.report.audited_at, days);
        self
    }

    /// Lets the template values go on another thread: freeing a million findings' values is a
    /// long walk, and nothing waits for it.
    pub fn drop_in_background(self) {
        let mut values = vec![self.report.findings];
        values.extend(self.groups.into_iter().map(|g| g.findings));
        if values.iter().map(|v| v.len().unwrap_or(0)).sum::<usize>() < 20_000 {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("drop-template-values".into())
            .spawn(move || drop(values));
        // Without a thread, they are freed here: slower, never wrong.
        drop(spawned);
    }
}

impl<'a> View<'a> {
    pub fn new(report: &'a AuditReport, limit: usize) -> Self {
        let max = Severity::ALL
            .iter()
            .map(|s| report.summary.unwaived_by_severity.get(*s))
            .max()
            .unwrap_or(0)
            .max(1);
        let severities = Severity::ALL
            .iter()
            .map(|s| {
                // Unwaived: waived findings are counted apart.
                let count = report.summary.unwaived_by_severity.get(*s);
                SeverityCount {
                    name: s.as_str(),
                    count,
                    percent: (count as f64 * 100.0 / max as f64 * 10.0).round() / 10.0,
                }
            })
            .collect();
        let values = template_values(&report.findings);
        let mut groups = Vec::new();
        let mut start = 0;
        for same in crate::findings::by_rule(&report.findings) {
            let end = start + same.len();
            if let Some(rule) = report.rules.iter().find(|r| r.id == same[0].rule_id) {
                groups.push(RuleGroup {
                    rule,
                    findings: Value::from(&values[start..end]),
                    unwaived: same.iter().filter(|f| !f.waived).count(),
                    new: same
                        .iter()
                        .filter(|f| f.baseline_status == Some(BaselineStatus::New))
                        .count(),
                    gating: same.iter().filter(|f| !f.waived).count(),
                });
            }
            start = end;
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
        let mut overdue: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.overdue == Some(true))
            .collect();
        overdue.sort_by(|a, b| a.due.cmp(&b.due).then(a.severity.cmp(&b.severity)));
        let compared_with = report
            .baseline
            .as_ref()
            .map(|b| b.audited_at.as_str())
            .or_else(|| {
                let h = report.history.as_ref()?;
                Some(h.previous_run.as_ref()?.audited_at.as_str())
            });
        let top_rules = top_rules(&report.findings);
        let mut rules_by_severity: Vec<&RuleOutcome> = report.rules.iter().collect();
        rules_by_severity.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
        View {
            rules_by_severity,
            verdict: None,
            top_rules,
            fixable: crate::findings::fixable(&report.findings),
            expiring_waivers: Vec::new(),
            findings: &report.findings,
            gate: None,
            coverage: Coverage::of(&report.rules),
            label: report.label(),
            trend_chart: report.trend.as_deref().and_then(TrendChart::of),
            changes: report
                .changes
                .as_ref()
                .map(|c| c.lists(limit.max(1)))
                .unwrap_or_default(),
            overdue,
            compared_with,
            resolved_elsewhere,
            resolved_by_rule,
            failing_rules,
            report: report.with_findings(Value::from_iter(values)),
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
                    outcome: r.outcome,
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
                    status: rules
                        .iter()
                        .map(|r| ControlStatus::of(r.outcome))
                        .min()
                        .unwrap_or(ControlStatus::Pass),
                    control,
                    rules,
                })
                .collect();
            Framework {
                failing: controls
                    .iter()
                    .filter(|c| c.status == ControlStatus::Fail)
                    .count(),
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::findings::BaselineInfo;

    use crate::render::example_audit as example;

    /// Templates see the document as the JSON output writes it, whatever fields it grows.
    #[test]
    fn the_report_templates_see_is_the_json_document() {
        let mut report = example();
        for baseline in [false, true] {
            if baseline {
                report.resolved = Some(vec![report.findings[0].clone()]);
                report.baseline = Some(BaselineInfo {
                    path: "old.json".into(),
                    audited_at: "2026-11-01T00:00:00Z".into(),
                    findings: 3,
                });
            }
            let view = View::new(&report, 20);
            let seen = Value::from(minijinja::value::Serde(&view.report));
            assert_eq!(
                serde_json::to_value(&seen).unwrap(),
                serde_json::to_value(&report).unwrap(),
                "baseline: {baseline}"
            );
            let grouped: usize = view.groups.iter().map(|g| g.findings.len().unwrap()).sum();
            assert_eq!(grouped, report.findings.len());
        }
    }

    #[test]
    fn a_finding_as_templates_see_it_is_its_json() {
        let mut report = example();
        // A finding whose evidence is not recorded in sorted order.
        let f = report
            .findings
            .iter_mut()
            .find(|f| {
                let keys: Vec<&str> = f.evidence.iter().map(|(k, _)| k).collect();
                !keys.is_sorted()
            })
            .unwrap();
        let plain = f.clone();
        f.organization = Some("org-a".into());
        f.baseline_status = Some(BaselineStatus::New);
        f.waived = true;
        f.waiver = Some(Box::new(crate::findings::WaiverInfo {
            rule: "stale-*".into(),
            subject: "*".into(),
            reason: "migration".into(),
            approved_by: "ciso@acme.example".into(),
            expires: "2027-01-01".into(),
            ticket: None,
            source: "w.yaml:3:5".into(),
        }));
        f.subject.name = Some("n".into());
        let full = f.clone();
        for f in [plain, full] {
            let v = finding_value(&f, &mut RuleTexts::default());
            assert_eq!(
                serde_json::to_value(&v).unwrap(),
                serde_json::to_value(&f).unwrap()
            );
            // Templates read both the same way.
            let probe = "{{ f.subject.email or f.subject.id }}|{% if f.organization is defined %}y{% endif %}|{{ f | length }}|{% for k in f %}{{ k }},{% endfor %}|{% for k, v in f.evidence | items %}{{ k }}={{ v }};{% endfor %}{{ f.evidence | length }}|{% if f.waiver %}{{ f.waiver.reason }}{% endif %}|{{ f.subject }}|{{ f.evidence.nothing is defined }}";
            let env = minijinja::Environment::new();
            let ours = env
                .render_str(probe, minijinja::context! { f => v })
                .unwrap();
            let serde = env
                .render_str(
                    probe,
                    minijinja::context! { f => Value::from(minijinja::value::Serde(&f)) },
                )
                .unwrap();
            assert_eq!(ours, serde);
            assert!(ours.contains("stale") || ours.contains('='), "{ours}");
        }
    }

    #[test]
    fn many_findings_are_converted_in_order() {
        let one = example().findings;
        let many: Vec<Finding> = one.iter().cycle().take(25_000).cloned().collect();
        let values = template_values(&many);
        assert_eq!(values.len(), many.len());
        for (i, v) in values.iter().enumerate().step_by(997) {
            assert_eq!(
                v.get_attr("fingerprint").unwrap().as_str(),
                Some(many[i].fingerprint.as_str())
            );
        }
    }
}
