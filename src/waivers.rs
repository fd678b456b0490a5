//! Waivers: accepted risks, each with a reason, an approver and an expiry. A waived finding stays
//! in every output, marked waived, and does not count toward `--fail-on`. Expired waivers stop
//! applying, and waivers that match nothing are reported, so exceptions do not outlive their need.
//!
//! ```yaml
//! waivers:
//!   - rule: sso-bypass                 # a rule id, or a glob such as "stale-*"
//!     subject: breakglass@acme.example # user id or email, group id or name
//!     reason: Break-glass account; the password is in the vault
//!     approved_by: ciso@acme.example
//!     expires: 2027-03-31              # applies through that day (UTC)
//!     ticket: https://tracker.example/SEC-42
//!   - rule: ungrouped-user
//!     all_subjects: true               # every subject, only when said explicitly
//!     reason: Groups are being introduced this quarter
//!     approved_by: security@acme.example
//!     expires: 2027-01-15
//! ```

use std::path::Path;

use chrono::NaiveDate;

use crate::diag::Reader;
use crate::findings::{AuditReport, Finding, WaiverInfo};
use crate::model::{normalize_email, Timestamp, Warning};
use crate::rules::{RuleError, RuleErrors, Scope};
use crate::yaml::{self, NodeKind, Pos, Scalar};

/// How far out a waiver may expire, unless configured otherwise.
pub const DEFAULT_MAX_DAYS: u32 = crate::defaults::WAIVER_MAX_DAYS;

const KEYS: &[&str] = &[
    "rule",
    "subject",
    "all_subjects",
    "reason",
    "approved_by",
    "expires",
    "ticket",
];

/// One accepted risk.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiver {
    /// A rule id or a glob (`*`, `?`).
    pub rule: String,
    /// `None`: every subject (`all_subjects: true`).
    pub subject: Option<String>,
    pub reason: String,
    pub approved_by: String,
    /// The last day it applies (UTC).
    pub expires: NaiveDate,
    pub ticket: Option<String>,
    pub file: String,
    pub pos: Pos,
}

impl Waiver {
    fn source(&self) -> String {
        format!("{}:{}", self.file, self.pos)
    }

    /// Whether it still applies at `now`: through the whole of its expiry day, UTC.
    pub fn active(&self, now: Timestamp) -> bool {
        now.date_naive() <= self.expires
    }

    /// Whether it covers a finding (regardless of expiry).
    pub fn covers(&self, f: &Finding) -> bool {
        if !glob_match(&self.rule, &f.rule_id) {
            return false;
        }
        let Some(want) = &self.subject else {
            return true;
        };
        let s = &f.subject;
        match s.kind {
            Scope::User => {
                s.id == *want
                    || s.email
                        .as_deref()
                        .is_some_and(|e| normalize_email(e) == normalize_email(want))
            }
            Scope::Group => s.id == *want || s.name.as_deref() == Some(want.as_str()),
            Scope::Organization => s.id == *want,
        }
    }

    fn info(&self) -> WaiverInfo {
        WaiverInfo {
            rule: self.rule.clone(),
            subject: self.subject.clone().unwrap_or_else(|| "*".into()),
            reason: self.reason.clone(),
            approved_by: self.approved_by.clone(),
            expires: self.expires.to_string(),
            ticket: self.ticket.clone(),
            source: self.source(),
        }
    }
}

pub use crate::glob::glob_match;

/// Reads a waivers file. Every problem is reported with file:line:column; waivers expiring more
/// than `max_days` after `now` are rejected.
pub fn load(path: &Path, now: Timestamp, max_days: u32) -> Result<Vec<Waiver>, RuleErrors> {
    let (name, text) = crate::diag::read_source(path, "the waivers")?;
    parse(&name, &text, now, max_days)
}

/// Checks waivers held in memory; `name` identifies them in errors.
pub fn parse(
    name: &str,
    text: &str,
    now: Timestamp,
    max_days: u32,
) -> Result<Vec<Waiver>, RuleErrors> {
    let docs = yaml::parse(text).map_err(|e| RuleErrors::from(RuleError::yaml_syntax(name, &e)))?;
    let mut r = Reader::new(name);
    let mut out = Vec::new();
    let Some(doc) = docs.first() else {
        return Ok(out);
    };
    let list = match &doc.kind {
        NodeKind::Map(entries) => {
            for (k, _) in entries.iter().filter(|(k, _)| k.name != "waivers") {
                r.err(
                    k.pos,
                    format!(
                        "unknown key `{}`; a waivers file has one key, `waivers`",
                        k.name
                    ),
                );
            }
            match entries.iter().find(|(k, _)| k.name == "waivers") {
                Some((_, v)) => v,
                None => {
                    r.err(doc.pos, "expected `waivers:` with a list of waivers");
                    return Err(RuleErrors(r.errors));
                }
            }
        }
        _ => {
            r.err(
                doc.pos,
                format!(
                    "expected `waivers:` with a list of waivers; found {}",
                    doc.describe()
                ),
            );
            return Err(RuleErrors(r.errors));
        }
    };
    let items = match &list.kind {
        NodeKind::Seq(items) => items.as_slice(),
        _ if list.is_null() => &[],
        _ => {
            r.err(
                list.pos,
                format!("`waivers` must be a list; found {}", list.describe()),
            );
            return Err(RuleErrors(r.errors));
        }
    };
    // A limit past the calendar's end means no limit, never an overflow.
    let latest = now
        .date_naive()
        .checked_add_days(chrono::Days::new(max_days.into()))
        .unwrap_or(NaiveDate::MAX);
    for item in items {
        let NodeKind::Map(entries) = &item.kind else {
            r.err(
                item.pos,
                format!("a waiver is a mapping; found {}", item.describe()),
            );
            continue;
        };
        let before = r.errors.len();
        r.keys(entries, KEYS, "a waiver");
        let get = |k: &str| {
            entries
                .iter()
                .find(|(key, _)| key.name == k)
                .map(|(_, v)| v)
        };
        let text_of = |r: &mut Reader, key: &str, why: &str| -> Option<String> {
            match get(key) {
                None => {
                    r.err(item.pos, format!("a waiver needs `{key}` ({why})"));
                    None
                }
                Some(v) => match v.scalar() {
                    Some(Scalar::Str(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                    _ => {
                        r.err(v.pos, format!("`{key}` must be a non-empty text ({why})"));
                        None
                    }
                },
            }
        };
        let rule = text_of(&mut r, "rule", "a rule id or a glob such as \"stale-*\"");
        let reason = text_of(&mut r, "reason", "why the risk is accepted");
        let approved_by = text_of(&mut r, "approved_by", "who accepted the risk");
        let expires = match get("expires") {
            None => {
                r.err(
                    item.pos,
                    "a waiver needs `expires` (YYYY-MM-DD, the last day it applies)",
                );
                None
            }
            Some(v) => match v
                .text()
                .and_then(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok())
            {
                None => {
                    r.err(
                        v.pos,
                        format!(
                            "`expires` must be a date as YYYY-MM-DD; found {}",
                            v.text().map_or_else(|| v.describe(), |t| format!("{t:?}"))
                        ),
                    );
                    None
                }
                Some(d) if d > latest => {
                    let days = (d - now.date_naive()).num_days();
                    r.errors.push(
                        RuleError::new(name, v.pos, format!("`expires` {d} is {days} days away; a waiver may last at most {max_days} days"))
                            .with_help("choose an earlier date and review the risk again then (the limit is set with --waiver-max-days)"),
                    );
                    None
                }
                Some(d) => Some(d),
            },
        };
        let all = match get("all_subjects") {
            None => false,
            Some(v) => match v.scalar() {
                Some(Scalar::Bool(b)) => b,
                _ => {
                    r.err(
                        v.pos,
                        format!(
                            "`all_subjects` must be true or false; found {}",
                            v.describe()
                        ),
                    );
                    false
                }
            },
        };
        let subject = match (get("subject"), all) {
            (Some(v), false) => match v.text() {
                Some(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
                _ => {
                    r.err(
                        v.pos,
                        "`subject` must be a user id or email, or a group id or name",
                    );
                    None
                }
            },
            (Some(v), true) => {
                r.err(
                    v.pos,
                    "give either `subject` or `all_subjects: true`, not both",
                );
                None
            }
            (None, true) => None,
            (None, false) => {
                r.errors.push(
                    RuleError::new(
                        name,
                        item.pos,
                        "a waiver needs `subject` (a user id or email, a group id or name)",
                    )
                    .with_help("to waive a rule for every subject, say `all_subjects: true`"),
                );
                None
            }
        };
        let ticket = get("ticket").and_then(|v| v.text()).map(str::to_string);
        if r.errors.len() > before {
            continue;
        }
        if let (Some(rule), Some(reason), Some(approved_by), Some(expires)) =
            (rule, reason, approved_by, expires)
        {
            out.push(Waiver {
                rule,
                subject,
                reason,
                approved_by,
                expires,
                ticket,
                file: name.to_string(),
                pos: item.pos,
            });
        }
    }
    if r.errors.is_empty() {
        Ok(out)
    } else {
        Err(RuleErrors(r.errors))
    }
}

/// Checks waivers over every subject against the rules that ran: a waiver whose rule pattern
/// matches every rule, for every subject, silences the whole audit and is refused unless
/// `allow_blanket`; any glob over every subject is a warning with what it covers.
pub fn check_scope(
    waivers: &[Waiver],
    report: &AuditReport,
    allow_blanket: bool,
) -> Result<Vec<Warning>, RuleErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let ids: Vec<&str> = report.rules.iter().map(|r| r.id.as_str()).collect();
    for w in waivers.iter().filter(|w| w.subject.is_none()) {
        let covered: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| glob_match(&w.rule, id))
            .collect();
        if !covered.is_empty() && covered.len() == ids.len() && !allow_blanket {
            errors.push(
                RuleError::new(
                    &w.file,
                    w.pos,
                    format!(
                        "the waiver `{}` with all_subjects: true covers every rule of the audit ({}): it would silence the whole gate",
                        w.rule,
                        ids.len()
                    ),
                )
                .with_help("name the rules it is meant for, or pass --allow-blanket-waiver (allow_blanket_waivers: true in the configuration) if that is really intended"),
            );
        } else if w.rule.contains(['*', '?']) && !covered.is_empty() {
            let findings = report
                .findings
                .iter()
                .filter(|f| covered.contains(&f.rule_id.as_str()))
                .count();
            warnings.push(Warning {
                code: "broad-waiver",
                message: format!(
                    "waiver at {} (rule {}) covers every subject of {} rule(s) ({findings} finding(s)): {}",
                    w.source(),
                    w.rule,
                    covered.len(),
                    covered.join(", ")
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(RuleErrors(errors))
    }
}

/// Marks the findings that an active waiver covers, and warns about expired waivers and about
/// waivers that matched nothing.
pub fn apply(report: &mut AuditReport, waivers: &[Waiver], now: Timestamp) {
    let used = mark(report, waivers, now);
    for (w, used) in waivers.iter().zip(used) {
        let what = format!(
            "waiver at {} (rule {}, subject {})",
            w.source(),
            w.rule,
            w.subject.as_deref().unwrap_or("*")
        );
        if !w.active(now) {
            report.warnings.push(Warning {
                code: "expired-waiver",
                message: format!(
                    "{what} expired on {}; it no longer applies: renew it or remove it",
                    w.expires
                ),
            });
        } else if !used {
            // A rule id that names no rule of the run is most likely a typo: say which rule it
            // was probably meant for.
            let is_glob = w.rule.contains(['*', '?']);
            let known = report.rules.iter().any(|r| r.id == w.rule);
            let message = match (is_glob, known) {
                (false, false) => {
                    let hint = crate::diag::did_you_mean(
                        &w.rule,
                        report.rules.iter().map(|r| r.id.as_str()),
                    )
                    .map(|m| format!("; did you mean `{m}`?"))
                    .unwrap_or_else(|| "; `orgaudit rules list` shows the ids".into());
                    format!("{what} names no rule of this audit{hint}")
                }
                _ => format!("{what} matched no finding; remove it if the risk is gone"),
            };
            report.warnings.push(Warning {
                code: "unused-waiver",
                message,
            });
        }
    }
}

/// Marks the findings the waivers cover (and rules whose every finding is waived), without
/// warnings: one organization of a run over several, before its history. Which waivers were
/// used.
pub fn mark(report: &mut AuditReport, waivers: &[Waiver], now: Timestamp) -> Vec<bool> {
    let mut used = vec![false; waivers.len()];
    for f in &mut report.findings {
        for (i, w) in waivers.iter().enumerate() {
            if w.active(now) && w.covers(f) {
                used[i] = true;
                f.waived = true;
                f.waiver = Some(Box::new(w.info()));
                break;
            }
        }
    }
    report.summary.waived = report.findings.iter().filter(|f| f.waived).count();
    report.summary.unwaived_by_severity = report
        .findings
        .iter()
        .filter(|f| !f.waived)
        .map(|f| f.severity)
        .collect();
    // A rule whose every finding is waived is `waived`, not `failed`.
    for rule in &mut report.rules {
        if rule.outcome == crate::findings::RuleStatus::Failed {
            let mut of_rule = report.findings.iter().filter(|f| f.rule_id == rule.id);
            if of_rule.all(|f| f.waived) {
                rule.outcome = crate::findings::RuleStatus::Waived;
            }
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("stale-*", "stale-sign-in"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("sso-bypass", "sso-bypass"));
        assert!(glob_match("*-sso-*", "owner-sso-bypass"));
        assert!(glob_match("s?o-bypass", "sso-bypass"));
        assert!(!glob_match("sso-*", "owner-sso-bypass"));
        assert!(!glob_match("sso", "sso-bypass"));
    }

    #[test]
    fn validation_errors_have_positions() {
        let now: Timestamp = "2026-11-29T00:00:00Z".parse().unwrap();
        let text = "waivers:\n  - rule: sso-bypass\n    subject: a@b.c\n    approved_by: me\n    expires: 2026-12-31\n  - rule: x\n    subject: y\n    reason: r\n    approved_by: me\n    expires: 2028-01-01\n  - rule: x\n    reason: r\n    approvd_by: me\n    expires: 31/12/2026\n";
        let e = parse("w.yaml", text, now, 365).unwrap_err().to_string();
        assert_eq!(
            e,
            "w.yaml:2:5: a waiver needs `reason` (why the risk is accepted)\n\
             w.yaml:10:14: `expires` 2028-01-01 is 398 days away; a waiver may last at most 365 days\n  help: choose an earlier date and review the risk again then (the limit is set with --waiver-max-days)\n\
             w.yaml:13:5: unknown key `approvd_by` in a waiver\n  help: did you mean `approved_by`? valid keys: rule, subject, all_subjects, reason, approved_by, expires, ticket\n\
             w.yaml:11:5: a waiver needs `approved_by` (who accepted the risk)\n\
             w.yaml:14:14: `expires` must be a date as YYYY-MM-DD; found \"31/12/2026\"\n\
             w.yaml:11:5: a waiver needs `subject` (a user id or email, a group id or name)\n  help: to waive a rule for every subject, say `all_subjects: true`"
        );
    }

    #[test]
    fn a_waiver_applies_through_its_expiry_day() {
        let now: Timestamp = "2026-11-29T00:00:00Z".parse().unwrap();
        let w = &parse("w", "waivers:\n  - {rule: x, all_subjects: true, reason: r, approved_by: a, expires: 2026-12-31}\n", now, 365).unwrap()[0];
        assert!(w.active("2026-12-31T23:59:59Z".parse().unwrap()));
        assert!(!w.active("2027-01-01T00:00:00Z".parse().unwrap()));
    }
}
