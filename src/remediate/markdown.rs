//! The plan as a person reviews it: Markdown, every value from the report escaped.

use std::fmt::Write;

use super::{Plan, UserRecord};
use crate::safe::{markdown as md, markdown_code as code};

/// The plan's readable view. The JSON file is what `apply` reads; this is what a reviewer
/// reads and signs off.
pub fn render(plan: &Plan, plan_file: &str) -> String {
    let mut out = String::new();
    let o = &plan.organization;
    let _ = writeln!(out, "# Remediation plan: {}\n", md(&o.label));
    let _ = writeln!(
        out,
        "Organization key {}, audited at {}, planned at {} by orgaudit {}. Report sha256 {}.\n",
        code(&o.key),
        md(&plan.audited_at),
        md(&plan.created_at),
        md(&plan.tool.version),
        code(&plan.report_sha256)
    );
    let _ = writeln!(
        out,
        "Plan {} signed with {}: {}.\n",
        code(plan_file),
        plan.signature.algorithm.as_str(),
        code(&plan.signature.value)
    );
    let n = plan.actions.len();
    let _ = writeln!(
        out,
        "**Removing a user from the organization is irreversible**: no API call adds them back; they would have to be invited again, by hand. {} user{} to remove, {} refused, {} manual item{}, {} waived finding{} left out.\n",
        n,
        if n == 1 { "" } else { "s" },
        plan.refused.len(),
        plan.manual.len(),
        if plan.manual.len() == 1 { "" } else { "s" },
        plan.waived,
        if plan.waived == 1 { "" } else { "s" },
    );
    out.push_str("## Users to remove\n\n");
    if plan.actions.is_empty() {
        out.push_str("None.\n\n");
    } else {
        out.push_str(
            "| user | id | status | last sign-in | groups | why |\n|---|---|---|---|---|---|\n",
        );
        for a in &plan.actions {
            let why: Vec<String> = a
                .findings
                .iter()
                .map(|f| format!("{}: {}", code(&f.rule_id), md(&f.message)))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                md(&a.user.email),
                code(&a.user.id),
                md(&a.user.user_status),
                md(a.user.last_sign_in_at.as_deref().unwrap_or("never")),
                groups(&a.user),
                why.join("<br>")
            );
        }
        out.push('\n');
    }
    out.push_str("## Refused\n\n");
    if plan.refused.is_empty() {
        out.push_str("None.\n\n");
    } else {
        for r in &plan.refused {
            let rules: Vec<String> = r.findings.iter().map(|f| code(&f.rule_id)).collect();
            let _ = writeln!(
                out,
                "- {} ({}), proposed by {}: **refused**: {}",
                md(&r.user.email),
                code(&r.user.id),
                rules.join(", "),
                md(&r.reason)
            );
        }
        out.push('\n');
    }
    out.push_str("## Manual checklist\n\n");
    if plan.manual.is_empty() {
        out.push_str("None.\n\n");
    } else {
        for m in &plan.manual {
            let subject = m
                .subject
                .email
                .as_deref()
                .or(m.subject.name.as_deref())
                .unwrap_or(&m.subject.id);
            let _ = writeln!(
                out,
                "- [ ] **{}** {} ({}): {}",
                m.severity,
                md(&m.title),
                md(subject),
                md(&m.message)
            );
            for (i, step) in m.steps.iter().enumerate() {
                let _ = writeln!(out, "  {}. {}", i + 1, md(step));
            }
        }
        out.push('\n');
    }
    out.push_str("## Applying it\n\n");
    let _ = writeln!(
        out,
        "1. Review this plan. To leave a user out, apply with `--exclude ID`; to apply part of it, `--only ID`.\n\
         2. Dry run (reads each user again, changes nothing): {}.\n\
         3. Apply: {}. Each user is read again first and skipped when anything changed since this plan; every step goes to the journal.",
        code(&format!("orgaudit remediate apply {plan_file}")),
        code(&format!(
            "orgaudit remediate apply {plan_file} --execute --approved-by \"NAME\""
        ))
    );
    out
}

fn groups(u: &UserRecord) -> String {
    if u.groups.is_empty() {
        return "none".to_string();
    }
    let names: Vec<String> = u.groups.iter().map(|g| md(&g.name)).collect();
    names.join(", ")
}
