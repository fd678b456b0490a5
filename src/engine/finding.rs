//! Building a finding for a subject a rule fired for: its subject, its evidence (the values
//! that made it fire), its fingerprint and its message.

use serde_json::{json, Value as J};

use super::access::*;
use super::index::index_of;
use super::message::Messages;
use super::{Ctx, EngineError, EVIDENCE_LIST_LIMIT};
use crate::findings::{fingerprint, fingerprint_of_duplicate, Evidence, Finding, Subject};
use crate::model::Warning;
use crate::rules::{CompiledRule, EvidenceItem, Scope};

impl<'a> Ctx<'a> {
    pub(super) fn users_brief(&self, ids: &[u32]) -> J {
        J::Array(
            ids.iter()
                .take(EVIDENCE_LIST_LIMIT)
                .map(|&i| user_brief(&self.report.users[i as usize]))
                .collect(),
        )
    }

    pub(super) fn subject(&self, kind: Scope, s: Subj<'_>) -> Subject {
        match s {
            Subj::User(u) => Subject {
                kind,
                id: u.id.to_string(),
                email: Some(u.email.to_string()),
                name: None,
            },
            Subj::Group(g) => Subject {
                kind,
                id: self.report.groups.id(g.ix).to_string(),
                email: None,
                name: Some(self.report.groups.name(g.ix).to_string()),
            },
            Subj::Org(_) => Subject {
                kind,
                id: "organization".to_string(),
                email: None,
                name: None,
            },
        }
    }

    pub(super) fn evidence(&self, rule: &CompiledRule, s: Subj<'a>) -> Evidence {
        let report = self.report;
        // Exactly what is recorded: a million findings' spare entries add up.
        let extra = if matches!(s, Subj::User(_)) { 0 } else { 2 };
        let mut ev = Evidence::with_capacity(rule.evidence.len() + extra);
        for item in &rule.evidence {
            let value = match *item {
                EvidenceItem::Field(f) => field_json(report, s, f),
                EvidenceItem::DaysSince(f) => {
                    time_of(s, f).map_or(J::Null, |t| json!((self.now - t).num_days()))
                }
                EvidenceItem::SharedWith(f) => {
                    let me = s.user();
                    let others: Vec<J> = self
                        .shared_with(f, me)
                        .unwrap_or(&[])
                        .iter()
                        .map(|&i| &report.users[i as usize])
                        .filter(|u| !std::ptr::eq(*u, me))
                        .map(|u| json!({ "id": &*u.id, "email": &*u.email }))
                        .collect();
                    J::Array(others)
                }
                EvidenceItem::MatchingCount(i) => {
                    let inner = &rule.counts[i];
                    json!(self
                        .population(s)
                        .filter(|(_, u)| self.eval(inner, Subj::User(u)))
                        .count())
                }
                EvidenceItem::Matching(i) => {
                    let inner = &rule.counts[i];
                    J::Array(
                        self.population(s)
                            .filter(|(_, u)| self.eval(inner, Subj::User(u)))
                            .map(|(_, u)| user_brief(u))
                            .take(rule.matching_limit)
                            .collect(),
                    )
                }
            };
            ev.insert(item.key(), value);
        }
        match s {
            Subj::Group(g) => {
                ev.insert("member_count", json!(g.members.len()));
                ev.insert("members", self.users_brief(&g.members));
            }
            Subj::Org(o) => {
                ev.insert("user_count", json!(o.user_count));
                let owners: Vec<u32> = (0..report.users.len() as u32)
                    .filter(|&i| report.users[i as usize].is_owner())
                    .collect();
                ev.insert("owners", self.users_brief(&owners));
            }
            Subj::User(_) => {}
        }
        ev
    }

    pub(super) fn finding(
        &self,
        rule: &CompiledRule,
        s: Subj<'a>,
        messages: &Messages,
        warnings: &mut Vec<Warning>,
    ) -> Result<Finding, EngineError> {
        let r = &rule.rule;
        let subject = self.subject(r.scope, s);
        let evidence = self.evidence(rule, s);
        let message = self.message(rule, s, &subject, &evidence, messages, warnings)?;
        // The fix condition, for the subjects the rule fired for only.
        let fix = match (s, &rule.fix) {
            (Subj::User(_), Some(p)) => {
                let holds = self.eval(p, s);
                if let Some(message) = self.expr_error.borrow_mut().take() {
                    return Err(EngineError {
                        rule: r.id.clone(),
                        origin: r.origin.to_string(),
                        what: "`fix.when`",
                        subject: format!("user {}", subject.id),
                        message,
                    });
                }
                holds.then_some(r.fix.action)
            }
            _ => None,
        };
        Ok(Finding {
            fix,
            organization: None,
            fingerprint: match s {
                // Two users with one id: the email tells them apart (unique ids keep the
                // fingerprints they always had).
                Subj::User(u) if self.duplicated[index_of(self.report, u)] => {
                    fingerprint_of_duplicate(None, &r.id, &subject.id, &u.email_normalized())
                }
                Subj::User(_) | Subj::Group(_) | Subj::Org(_) => {
                    fingerprint(&r.id, r.scope, &subject.id)
                }
            },
            rule_id: r.id.clone(),
            severity: r.severity,
            default_severity: r.overridden_severity(),
            title: r.title.clone(),
            subject,
            message,
            evidence,
            waived: false,
            baseline_status: None,
            waiver: None,
            first_seen: None,
            age_days: None,
            last_seen: None,
            due: None,
            overdue: None,
        })
    }
}
