//! Findings and the audit document that carries them: what every renderer reads.
//!
//! [`AuditReport`] serializes to the JSON output format (schema version 1) as it is; the other
//! formats are views of the same data.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::{SourceInfo, Warning};
use crate::rules::{Reference, Scope, Severity};

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Subject {
    pub kind: Scope,
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

impl Subject {
    /// An attribute as messages and `expr` read it; `None` where the subject has none.
    pub fn attr(&self, a: crate::rules::registry::SubjectAttr) -> Option<&str> {
        use crate::rules::registry::SubjectAttr as A;
        match a {
            A::Kind => Some(self.kind.as_str()),
            A::Id => Some(&self.id),
            A::Email => self.email.as_deref(),
            A::Name => self.name.as_deref(),
        }
    }
}

/// Whether a finding was in the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineStatus {
    /// Not in the baseline.
    New,
    /// In the baseline too (same fingerprint).
    Unchanged,
    /// In the baseline, gone now (only in `resolved`).
    Resolved,
    /// Not in the previous run, but in an earlier one: a finding that came back (with a
    /// history).
    Reopened,
    /// Open before, and its rule did not run or was not evaluated this time: neither confirmed
    /// nor resolved (only in `not_rechecked`, with a history).
    NotRechecked,
}

/// The accepted risk that covers a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct WaiverInfo {
    /// The waiver's `rule` as written (an id or a glob).
    pub rule: String,
    /// The waiver's `subject`, or `*` for `all_subjects: true`.
    pub subject: String,
    pub reason: String,
    pub approved_by: String,
    /// `YYYY-MM-DD`; the waiver applies through that day (UTC).
    pub expires: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ticket: Option<String>,
    /// Where the waiver is written: `file:line:column`.
    pub source: String,
}

/// One rule firing for one subject, with the evidence that made it fire.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Finding {
    /// The organization's name, when several are audited together.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub organization: Option<String>,
    pub rule_id: String,
    /// The effective severity (after any override).
    pub severity: Severity,
    /// The rule file's severity, when an override changed it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub default_severity: Option<Severity>,
    pub title: String,
    pub subject: Subject,
    pub message: String,
    pub evidence: Evidence,
    pub fingerprint: String,
    pub waived: bool,
    /// Set when the audit ran against a baseline.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub baseline_status: Option<BaselineStatus>,
    /// The waiver that covers this finding, when `waived`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub waiver: Option<Box<WaiverInfo>>,
    /// With a history: the `audited_at` of the first run that had this finding.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_seen: Option<String>,
    /// With a history: whole days since `first_seen`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub age_days: Option<i64>,
    /// In `resolved`, with a history: the `audited_at` of the last run that had it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_seen: Option<String>,
    /// With a history and an SLA for its severity: the last day (UTC, `YYYY-MM-DD`) by which
    /// it should be fixed, `first_seen` plus the SLA's days.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub due: Option<String>,
    /// Past `due` and not waived.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub overdue: Option<bool>,
    /// The fix `orgaudit remediate plan` may propose for it (`remove_user`), when the rule
    /// declares one and its `fix.when` holds for the subject; absent: a person acts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fix: Option<crate::rules::FixAction>,
}

/// Unwaived findings that `orgaudit remediate plan` can fix itself (their `fix` applies): what
/// the reports count under "can be fixed".
pub fn fixable(findings: &[Finding]) -> usize {
    findings
        .iter()
        .filter(|f| !f.waived && f.fix.is_some())
        .count()
}

/// Remediation SLAs: days to fix a finding, per severity (`sla:` in the configuration).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Sla {
    pub critical: Option<u32>,
    pub high: Option<u32>,
    pub medium: Option<u32>,
    pub low: Option<u32>,
    pub info: Option<u32>,
}

impl Sla {
    /// The days allowed for a finding of `severity`, if any.
    pub fn days(&self, severity: Severity) -> Option<u32> {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }

    pub fn set(&mut self, severity: Severity, days: u32) {
        *match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Info => &mut self.info,
        } = Some(days);
    }
}

/// What made a finding fire: named values in the order the rule records them. Serializes as a
/// JSON object. A plain list rather than a map: a finding holds a handful of entries, and a
/// million findings each building a hash index showed up in profiles. Keys are usually static
/// names, so recording them allocates nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence(Vec<(Cow<'static, str>, Value)>);

impl Evidence {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Evidence(Vec::with_capacity(n))
    }

    /// Records `value` under `key`; a key recorded before keeps its place and takes the value.
    pub fn insert(&mut self, key: impl Into<Cow<'static, str>>, value: Value) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.0.push((key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The evidence as a JSON object (for templates and `expr`).
    pub fn to_map(&self) -> serde_json::Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

/// `evidence["key"]`: the value, or null when the key is not recorded (as JSON values index).
impl std::ops::Index<&str> for Evidence {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

impl<'a> IntoIterator for &'a Evidence {
    type Item = (&'a str, &'a Value);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a Value)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl schemars::JsonSchema for Evidence {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Evidence".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "What made the finding fire: named values (fields of the subject, days since a time, other records sharing a value, members, owners, matching users)",
            "additionalProperties": true
        })
    }
}

impl Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Evidence {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Evidence;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of evidence values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Evidence, A::Error> {
                let mut ev = Evidence::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    ev.insert(k, v);
                }
                Ok(ev)
            }
        }
        d.deserialize_map(Entries)
    }
}

/// A stable identity of a finding across runs: rule id, subject kind and subject id hashed
/// (SHA-256, first 16 bytes as hex).
pub fn fingerprint(rule_id: &str, kind: Scope, subject_id: &str) -> String {
    fingerprint_in(None, rule_id, kind, subject_id)
}

/// [`fingerprint`] within a named organization, when several are audited together.
pub fn fingerprint_in(
    organization: Option<&str>,
    rule_id: &str,
    kind: Scope,
    subject_id: &str,
) -> String {
    let mut h = Sha256::new();
    if let Some(org) = organization {
        h.update(org.as_bytes());
        h.update([0x1e]);
    }
    h.update(rule_id.as_bytes());
    h.update([0x1f]);
    h.update(kind.as_str().as_bytes());
    h.update([0x1f]);
    h.update(subject_id.as_bytes());
    let digest = h.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in &digest[..16] {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

/// The fingerprint of a finding on a user whose id another user of the report has too: the
/// normalized email is hashed in as well, so that the two are told apart (under
/// `--fail-on-new`, a new finding on the second never hides behind the first).
pub fn fingerprint_of_duplicate(
    organization: Option<&str>,
    rule_id: &str,
    subject_id: &str,
    email_normalized: &str,
) -> String {
    let with_email = format!("{subject_id}\u{1f}{email_normalized}");
    fingerprint_in(organization, rule_id, Scope::User, &with_email)
}

/// Sorts findings by severity (critical first), then rule id, then subject id (then
/// organization, when several are audited together). Stable.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule_id.cmp(&b.rule_id))
            .then_with(|| a.subject.id.cmp(&b.subject.id))
            .then_with(|| a.organization.cmp(&b.organization))
    });
}

/// Runs of consecutive findings of the same rule (in a sorted list, each rule's findings).
pub fn by_rule(findings: &[Finding]) -> impl Iterator<Item = &[Finding]> {
    findings.chunk_by(|a, b| a.rule_id == b.rule_id)
}

/// Counts per severity.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct BySeverity {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
}

impl FromIterator<Severity> for BySeverity {
    fn from_iter<I: IntoIterator<Item = Severity>>(iter: I) -> Self {
        let mut by = BySeverity::default();
        for s in iter {
            by.add(s);
        }
        by
    }
}

impl BySeverity {
    pub fn add(&mut self, s: Severity) {
        *self.get_mut(s) += 1;
    }
    /// Adds another set of counts to this one.
    pub fn merge(&mut self, other: &BySeverity) {
        for s in Severity::ALL {
            *self.get_mut(s) += other.get(s);
        }
    }
    /// Every severity together.
    pub fn total(&self) -> usize {
        Severity::ALL.iter().map(|s| self.get(*s)).sum()
    }
    pub fn get(&self, s: Severity) -> usize {
        match s {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }
    fn get_mut(&mut self, s: Severity) -> &mut usize {
        match s {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Info => &mut self.info,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub users: usize,
    pub groups: usize,
    pub rules_evaluated: usize,
    pub findings: usize,
    /// Every finding, waived or not.
    pub by_severity: BySeverity,
    /// Findings not covered by a waiver: what the gate and the severity bars count.
    #[serde(default)]
    pub unwaived_by_severity: BySeverity,
    /// Findings covered by a waiver (counted in `findings` too).
    pub waived: usize,
    /// With a baseline: findings not in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<usize>,
    /// With a baseline: baseline findings that are gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<usize>,
}

/// What came of a rule in an audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// It has unwaived findings.
    Failed,
    /// Evaluated for every subject, no findings.
    Passed,
    /// Not evaluated (`outcome_reason` says why): not a pass.
    NotEvaluated,
    /// It has findings, every one of them waived.
    Waived,
    /// Its evaluation failed (`outcome_reason` has the error); its findings are unknown.
    Error,
}

impl RuleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleStatus::Failed => "failed",
            RuleStatus::Passed => "passed",
            RuleStatus::NotEvaluated => "not evaluated",
            RuleStatus::Waived => "waived",
            RuleStatus::Error => "error",
        }
    }
}

/// A rule of the audit, with what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RuleOutcome {
    pub id: String,
    pub title: String,
    /// The effective severity (after any override).
    pub severity: Severity,
    /// The rule file's severity, when an override changed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_severity: Option<Severity>,
    pub scope: Scope,
    /// What the rule checks and why it matters.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub description: String,
    /// The rule's tags.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tags: Vec<String>,
    /// What fixes a finding of the rule.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub remediation: String,
    pub references: Vec<Reference>,
    /// The frameworks of its references, each once, in order.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub frameworks: Vec<String>,
    pub findings: usize,
    pub outcome: RuleStatus,
    /// Why a rule was not evaluated, or its error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome_reason: Option<String>,
    /// Users, groups or organizations it was evaluated for.
    pub evaluated_subjects: usize,
    /// Where the rule is defined, for messages and SARIF locations (not in the JSON output:
    /// a document read back has none).
    #[serde(skip)]
    pub origin: crate::rules::Origin,
}

impl RuleOutcome {
    /// Adds another organization's outcome of the same rule: counts summed, the first error
    /// or reason kept, an error over findings over a pass.
    pub fn merge(&mut self, other: &RuleOutcome) {
        let rank = |s: RuleStatus| match s {
            RuleStatus::Error => 4,
            RuleStatus::Failed => 3,
            RuleStatus::Waived => 2,
            RuleStatus::Passed => 1,
            RuleStatus::NotEvaluated => 0,
        };
        self.findings += other.findings;
        self.evaluated_subjects += other.evaluated_subjects;
        if rank(other.outcome) > rank(self.outcome) {
            self.outcome = other.outcome;
            self.outcome_reason = other.outcome_reason.clone();
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Tool {
    #[serde(deserialize_with = "crate::diag::interned")]
    pub name: crate::diag::StaticStr,
    #[serde(deserialize_with = "crate::diag::interned")]
    pub version: crate::diag::StaticStr,
}

impl Default for Tool {
    fn default() -> Self {
        Tool {
            name: "orgaudit",
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// The whole result of an audit: the JSON output document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditReport {
    pub schema_version: u32,
    pub tool: Tool,
    /// The audit's `now`, RFC 3339 UTC.
    pub audited_at: String,
    /// The organization's display name, when one was given (`--org-name`, `name:`);
    /// [`AuditReport::label`] says what reports call it either way.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub organization_name: Option<String>,
    pub source: SourceInfo,
    pub summary: Summary,
    pub rules: Vec<RuleOutcome>,
    pub findings: Vec<Finding>,
    /// With a baseline: the baseline's findings that are gone, as they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Vec<Finding>>,
    /// With a history: findings open before whose rule this run did not evaluate (not run,
    /// not evaluated, or failed): they stay open, neither confirmed nor resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_rechecked: Option<Vec<Finding>>,
    /// With a baseline: which one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineInfo>,
    pub warnings: Vec<Warning>,
    /// With a history: where, and the run this one is compared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryInfo>,
    /// With a history: the counts of the last runs of this organization, oldest first, this
    /// one last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend: Option<Vec<TrendPoint>>,
    /// With a history that has an earlier snapshot of this organization: what changed since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<crate::changes::Changes>,
}

/// The gate a run applies, once its first-run rule is settled: what `--fail-on` and
/// `--fail-on-new` count, and what gate-faithful formats (JUnit, GitHub) mark as failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GateSpec {
    /// Unwaived findings at or above it count.
    pub threshold: Severity,
    /// Only new and reopened findings count.
    pub only_new: bool,
}

impl GateSpec {
    /// How many of the findings trip the gate: what `--fail-on` (and `--fail-on-new`) count.
    pub fn count(&self, findings: &[Finding]) -> usize {
        findings.iter().filter(|f| self.trips(f)).count()
    }

    /// Whether this finding makes the gate fail.
    pub fn trips(&self, f: &Finding) -> bool {
        !f.waived
            && f.severity >= self.threshold
            && (!self.only_new
                || matches!(
                    f.baseline_status,
                    Some(BaselineStatus::New | BaselineStatus::Reopened)
                ))
    }
}

/// A run as the history lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunInfo {
    pub id: i64,
    pub organization: String,
    pub audited_at: String,
    pub findings: usize,
    pub unwaived: usize,
    /// Imported from an earlier JSON output (`history import`), not recorded by an audit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub imported: bool,
}

/// One run's counts in a trend: findings by severity (unwaived), waived, and, where the run
/// had something to compare with, new and resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrendPoint {
    /// The run's id in the history; absent for the run being written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<i64>,
    pub audited_at: String,
    pub unwaived_by_severity: BySeverity,
    pub waived: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<usize>,
}

/// The history block of the JSON output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistoryInfo {
    /// Where the history is (a path; never a password).
    pub location: String,
    /// The organization's key in the history.
    pub organization: String,
    /// The run this one is compared with; absent on the first run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_run: Option<RunInfo>,
    /// The hash of the history's last run before this one (the chain's head): a copy of it
    /// outside the database, for `history verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
}

/// The baseline an audit was compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BaselineInfo {
    pub path: String,
    /// The baseline audit's `audited_at`.
    pub audited_at: String,
    pub findings: usize,
}

/// The audit document with its findings list replaced by `findings`, borrowed: serializes
/// exactly as [`AuditReport`] does otherwise (a test holds the two together).
#[derive(Debug, Serialize)]
pub(crate) struct WithFindings<'a, F> {
    pub schema_version: u32,
    pub tool: &'a Tool,
    pub audited_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<&'a str>,
    pub source: &'a SourceInfo,
    pub summary: &'a Summary,
    pub rules: &'a [RuleOutcome],
    pub findings: F,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<&'a [Finding]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_rechecked: Option<&'a [Finding]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<&'a BaselineInfo>,
    pub warnings: &'a [Warning],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<&'a HistoryInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend: Option<&'a [TrendPoint]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<&'a crate::changes::Changes>,
}

/// The JSON Schema of the JSON output, generated from [`AuditReport`]: what
/// `docs/schema/orgaudit-output.schema.json` holds and `orgaudit schema` prints.
pub fn output_schema() -> serde_json::Value {
    // The schema of what is written (serialize mode): fields left out when empty are optional.
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut schema = serde_json::to_value(generator.into_root_schema_for::<AuditReport>())
        .expect("a schema is JSON");
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".into(),
            format!("urn:orgaudit:output:{}", AuditReport::SCHEMA_VERSION).into(),
        );
        obj.insert(
            "title".into(),
            format!(
                "orgaudit JSON output, schema_version {}",
                AuditReport::SCHEMA_VERSION
            )
            .into(),
        );
    }
    schema
}

impl AuditReport {
    pub const SCHEMA_VERSION: u32 = 3;

    /// This document with `findings` in place of its findings (templates get them converted
    /// once; the JSON writer writes them in parallel chunks).
    pub(crate) fn with_findings<F>(&self, findings: F) -> WithFindings<'_, F> {
        WithFindings {
            schema_version: self.schema_version,
            tool: &self.tool,
            audited_at: &self.audited_at,
            organization_name: self.organization_name.as_deref(),
            source: &self.source,
            summary: &self.summary,
            rules: &self.rules,
            findings,
            resolved: self.resolved.as_deref(),
            not_rechecked: self.not_rechecked.as_deref(),
            baseline: self.baseline.as_ref(),
            warnings: &self.warnings,
            history: self.history.as_ref(),
            trend: self.trend.as_deref(),
            changes: self.changes.as_ref(),
        }
    }

    /// What reports call the audited organization: its display name; else the organizations'
    /// names, the file's name or the API's host.
    pub fn label(&self) -> String {
        if let Some(name) = &self.organization_name {
            return name.clone();
        }
        let src = &self.source;
        if !src.organizations.is_empty() {
            return src
                .organizations
                .iter()
                .filter_map(|o| o.organization.clone())
                .collect::<Vec<_>>()
                .join(", ");
        }
        if let Some(p) = &src.path {
            return std::path::Path::new(p)
                .file_name()
                .map_or_else(|| p.clone(), |f| f.to_string_lossy().into_owned());
        }
        if let Some(u) = &src.base_url {
            return url::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| u.clone());
        }
        "the Telnyx organization".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &str, sev: Severity, id: &str) -> Finding {
        Finding {
            organization: None,
            rule_id: rule.into(),
            severity: sev,
            default_severity: None,
            title: String::new(),
            subject: Subject {
                kind: Scope::User,
                id: id.into(),
                email: None,
                name: None,
            },
            message: String::new(),
            evidence: Default::default(),
            fingerprint: fingerprint(rule, Scope::User, id),
            waived: false,
            baseline_status: None,
            waiver: None,
            first_seen: None,
            age_days: None,
            last_seen: None,
            due: None,
            overdue: None,
            fix: None,
        }
    }

    #[test]
    fn evidence_keeps_its_order_and_reads_like_a_json_object() {
        let mut ev = Evidence::new();
        ev.insert("b", serde_json::json!(1));
        ev.insert(String::from("a"), serde_json::json!("x"));
        ev.insert("b", serde_json::json!(2));
        assert_eq!(ev.len(), 2);
        assert_eq!(ev["b"], 2);
        assert_eq!(ev["missing"], Value::Null);
        let text = serde_json::to_string(&ev).unwrap();
        assert_eq!(text, r#"{"b":2,"a":"x"}"#);
        let back: Evidence = serde_json::from_str(r#"{"z": [1], "a": null, "z": true}"#).unwrap();
        let keys: Vec<&str> = back.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["z", "a"]);
        assert_eq!(back["z"], true);
        assert_eq!(serde_json::from_str::<Evidence>(&text).unwrap(), ev);
        assert!(serde_json::from_str::<Evidence>("[1]").is_err());
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        assert_eq!(
            fingerprint("sso-bypass", Scope::User, "u1"),
            fingerprint("sso-bypass", Scope::User, "u1")
        );
        assert_ne!(
            fingerprint("sso-bypass", Scope::User, "u1"),
            fingerprint("sso-bypass", Scope::Group, "u1")
        );
        // Pinned: a change here breaks every stored baseline.
        assert_eq!(
            fingerprint("sso-bypass", Scope::User, "u1"),
            "8e0b2e321f05017eba6f8efd27d03d7b"
        );
    }

    #[test]
    fn sort_order() {
        let mut v = vec![
            finding("b", Severity::Low, "2"),
            finding("a", Severity::Low, "9"),
            finding("z", Severity::Critical, "1"),
            finding("a", Severity::Low, "1"),
        ];
        sort(&mut v);
        let got: Vec<(&str, &str)> = v
            .iter()
            .map(|f| (f.rule_id.as_str(), f.subject.id.as_str()))
            .collect();
        assert_eq!(got, [("z", "1"), ("a", "1"), ("a", "9"), ("b", "2")]);
    }
}
