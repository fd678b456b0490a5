//! `remediate plan`: an audit's findings to a [`Plan`].

use std::collections::HashMap;

use super::{
    time_text, Action, GroupRef, Justification, ManualFinding, ManualItem, Plan, PlanKey,
    PlanOrganization, PlanTool, Refusal, Signature, SignatureAlgorithm, UserRecord, PLAN_FORMAT,
    PLAN_KIND,
};
use crate::findings::Finding;
use crate::model::{Report, Timestamp, User};
use crate::rules::{FixAction, Rule, Scope};
use crate::run::Assessment;
use crate::Error;

/// Builds the plan of an assessed audit of one organization, signed with `key` (or a sha256).
/// `org_key` is the organization's key (`--org-id`); `created_at` the plan's time.
pub fn build(
    assessed: &Assessment,
    org_key: &str,
    created_at: Timestamp,
    key: Option<&PlanKey>,
) -> Result<Plan, Error> {
    let [(_, loaded)] = assessed.units.as_slice() else {
        return Err(Error::Usage(format!(
            "a remediation plan is for one organization; this run audits {} (give --input, or a configuration without `organizations`)",
            assessed.units.len()
        )));
    };
    let report = &loaded.report;
    let rules: HashMap<&str, &Rule> = assessed
        .rules
        .iter()
        .map(|r| (r.rule().id.as_str(), r.rule()))
        .collect();
    let mut by_id: HashMap<&str, Vec<&User>> = HashMap::new();
    for u in &report.users {
        by_id.entry(&u.id).or_default().push(u);
    }
    let mut owner_ids: Vec<String> = Vec::new();
    for u in report.users.iter().filter(|u| u.is_owner()) {
        if !owner_ids.iter().any(|o| **o == *u.id) {
            owner_ids.push(u.id.to_string());
        }
    }
    let justify = |f: &Finding| Justification {
        rule_id: f.rule_id.clone(),
        rule_version: rules
            .get(f.rule_id.as_str())
            .map_or_else(String::new, |r| r.version()),
        severity: f.severity,
        title: f.title.clone(),
        message: f.message.clone(),
        fingerprint: f.fingerprint.clone(),
    };
    // The findings that propose a removal, by user, in report order; the rest are manual.
    let mut removals: Vec<(&str, Vec<Justification>)> = Vec::new();
    let mut removal_of: HashMap<&str, usize> = HashMap::new();
    let mut manual: Vec<ManualItem> = Vec::new();
    let mut manual_of: HashMap<&str, usize> = HashMap::new();
    let mut waived = 0;
    for f in &assessed.report.findings {
        if f.waived {
            waived += 1;
            continue;
        }
        match f.fix {
            Some(FixAction::RemoveUser) if f.subject.kind == Scope::User => {
                match removal_of.get(f.subject.id.as_str()) {
                    Some(&i) => removals[i].1.push(justify(f)),
                    None => {
                        removal_of.insert(&f.subject.id, removals.len());
                        removals.push((&f.subject.id, vec![justify(f)]));
                    }
                }
            }
            Some(FixAction::RemoveUser) | Some(FixAction::Manual) | None => {
                let i = *manual_of.entry(f.rule_id.as_str()).or_insert_with(|| {
                    let remediation = rules
                        .get(f.rule_id.as_str())
                        .map_or("", |r| r.remediation.as_str());
                    manual.push(ManualItem {
                        rule_id: f.rule_id.clone(),
                        severity: f.severity,
                        title: f.title.clone(),
                        steps: steps(f.subject.kind, remediation),
                        findings: Vec::new(),
                    });
                    manual.len() - 1
                });
                manual[i].findings.push(ManualFinding {
                    subject: f.subject.clone(),
                    message: f.message.clone(),
                    fingerprint: f.fingerprint.clone(),
                });
            }
        }
    }
    let position: HashMap<&str, usize> = report
        .users
        .iter()
        .enumerate()
        .rev()
        .map(|(i, u)| (&*u.id, i))
        .collect();
    removals.sort_by_key(|(id, _)| position.get(id).copied().unwrap_or(usize::MAX));
    let mut actions = Vec::new();
    let mut refused = Vec::new();
    for (id, findings) in removals {
        let records = by_id.get(id).map_or(&[][..], |v| v.as_slice());
        let Some(first) = records.first() else {
            continue;
        };
        let user = record(report, first);
        let reason = if records.len() > 1 {
            Some(format!(
                "{} user records share this id: remove the right one by hand",
                records.len()
            ))
        } else if first.is_owner() && owner_ids.len() == 1 {
            Some("the organization's last owner: owners are never removed".to_string())
        } else if first.is_owner() {
            Some(
                "an organization owner: owners are never removed (change the role in the portal first if the removal is meant)"
                    .to_string(),
            )
        } else {
            None
        };
        match reason {
            Some(reason) => refused.push(Refusal {
                user,
                reason,
                findings,
            }),
            None => actions.push(Action {
                action: FixAction::RemoveUser,
                state_digest: user.digest(),
                user,
                findings,
            }),
        }
    }
    let mut plan = Plan {
        kind: PLAN_KIND.to_string(),
        format: PLAN_FORMAT,
        tool: PlanTool {
            name: "orgaudit".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        organization: PlanOrganization {
            key: org_key.to_string(),
            label: assessed.report.label(),
            owner_ids,
        },
        created_at: time_text(&created_at),
        audited_at: assessed.report.audited_at.clone(),
        report_sha256: loaded.source.sha256.clone(),
        actions,
        refused,
        manual,
        waived,
        signature: Signature {
            algorithm: SignatureAlgorithm::Sha256,
            value: String::new(),
        },
    };
    plan.sign(key);
    Ok(plan)
}

/// A user of the report as a plan records it.
pub(crate) fn record(report: &Report, u: &User) -> UserRecord {
    UserRecord {
        id: u.id.to_string(),
        email: u.email.to_string(),
        record_type: u.record_type.as_str().to_string(),
        user_status: u.user_status.as_str().to_string(),
        created_at: time_text(&u.created_at),
        last_sign_in_at: u.last_sign_in_at.as_ref().map(time_text),
        groups: u
            .groups
            .iter()
            .map(|&g| GroupRef {
                id: report.groups.id(g).to_string(),
                name: report.groups.name(g).to_string(),
            })
            .collect(),
    }
}

/// The checklist steps of a rule's manual findings: where to go, what the rule says, how to
/// confirm.
fn steps(scope: Scope, remediation: &str) -> Vec<String> {
    let find = match scope {
        Scope::User => "In the Telnyx portal (https://portal.telnyx.com), signed in as an owner or admin of the organization, open its users and find each user listed below.",
        Scope::Group => "In the Telnyx portal (https://portal.telnyx.com), signed in as an owner or admin of the organization, open its groups and find each group listed below.",
        Scope::Organization => "In the Telnyx portal (https://portal.telnyx.com), signed in as an owner or admin, open the organization's users.",
    };
    let mut out = vec![find.to_string()];
    if !remediation.trim().is_empty() {
        out.push(remediation.trim().to_string());
    }
    out.push(
        "Run the audit again: each finding should be gone (or waive it, with a reason and an expiry)."
            .to_string(),
    );
    out
}
