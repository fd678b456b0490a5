//! The plan as a person reviews it: Markdown, every value from the report escaped. Every removal
//! and refusal is listed; manual findings up to [`crate::defaults::PLAN_MANUAL_LISTED`] per rule
//! (the JSON plan has them all).

use std::io::{self, Write};

use super::{Plan, UserRecord};
use crate::safe::{markdown as md, markdown_code as code};

/// Writes the plan's readable view. The JSON file is what `apply` reads; this is what a reviewer
/// reads and signs off.
pub fn write(plan: &Plan, plan_file: &str, out: &mut dyn Write) -> io::Result<()> {
    let o = &plan.organization;
    writeln!(out, "# Remediation plan: {}\n", md(&o.label))?;
    writeln!(
        out,
        "Organization key {}, audited at {}, planned at {} by orgaudit {}. Report sha256 {}.\n",
        code(&o.key),
        md(&plan.audited_at),
        md(&plan.created_at),
        md(&plan.tool.version),
        code(&plan.report_sha256)
    )?;
    writeln!(
        out,
        "Plan {} signed with {}: {}.\n",
        code(plan_file),
        plan.signature.algorithm.as_str(),
        code(&plan.signature.value)
    )?;
    let n = plan.actions.len();
    let manual: usize = plan.manual.iter().map(|m| m.findings.len()).sum();
    writeln!(
        out,
        "**Removing a user from the organization is irreversible**: no API call adds them back; they would have to be invited again, by hand. {} user{} to remove, {} refused, {} finding{} to fix by hand, {} waived finding{} left out.\n",
        n,
        plural(n),
        plan.refused.len(),
        manual,
        plural(manual),
        plan.waived,
        plural(plan.waived),
    )?;
    out.write_all(b"## Users to remove\n\n")?;
    if plan.actions.is_empty() {
        out.write_all(b"None.\n\n")?;
    } else {
        out.write_all(
            b"| user | id | status | last sign-in | groups | why |\n|---|---|---|---|---|---|\n",
        )?;
        for a in &plan.actions {
            let why: Vec<String> = a
                .findings
                .iter()
                .map(|f| format!("{}: {}", code(&f.rule_id), md(&f.message)))
                .collect();
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                md(&a.user.email),
                code(&a.user.id),
                md(&a.user.user_status),
                md(a.user.last_sign_in_at.as_deref().unwrap_or("never")),
                groups(&a.user),
                why.join("<br>")
            )?;
        }
        out.write_all(b"\n")?;
    }
    out.write_all(b"## Refused\n\n")?;
    if plan.refused.is_empty() {
        out.write_all(b"None.\n\n")?;
    } else {
        for r in &plan.refused {
            let rules: Vec<String> = r.findings.iter().map(|f| code(&f.rule_id)).collect();
            writeln!(
                out,
                "- {} ({}), proposed by {}: **refused**: {}",
                md(&r.user.email),
                code(&r.user.id),
                rules.join(", "),
                md(&r.reason)
            )?;
        }
        out.write_all(b"\n")?;
    }
    out.write_all(b"## Manual checklist\n\n")?;
    if plan.manual.is_empty() {
        out.write_all(b"None.\n\n")?;
    }
    let listed = crate::defaults::PLAN_MANUAL_LISTED;
    for m in &plan.manual {
        let k = m.findings.len();
        writeln!(
            out,
            "### {} {} ({}), {k} finding{}\n",
            m.severity.as_str().to_uppercase(),
            md(&m.title),
            code(&m.rule_id),
            plural(k)
        )?;
        for (i, step) in m.steps.iter().enumerate() {
            writeln!(out, "{}. {}", i + 1, md(step))?;
        }
        out.write_all(b"\n")?;
        for f in m.findings.iter().take(listed) {
            let s = &f.subject;
            let who = s.email.as_deref().or(s.name.as_deref()).unwrap_or(&s.id);
            writeln!(
                out,
                "- [ ] {} ({}): {}",
                md(who),
                code(&s.id),
                md(&f.message)
            )?;
        }
        if k > listed {
            writeln!(
                out,
                "- and {} more: every one is in {}",
                k - listed,
                code(plan_file)
            )?;
        }
        out.write_all(b"\n")?;
    }
    out.write_all(b"## Applying it\n\n")?;
    writeln!(
        out,
        "1. Review this plan. To leave a user out, apply with `--exclude ID`; to apply part of it, `--only ID`.\n\
         2. Dry run (reads each user again, changes nothing): {}.\n\
         3. Apply: {}. Each user is read again first and skipped when anything changed since this plan; every step goes to the journal.",
        code(&format!("orgaudit remediate apply {plan_file}")),
        code(&format!(
            "orgaudit remediate apply {plan_file} --execute --approved-by \"NAME\""
        ))
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn groups(u: &UserRecord) -> String {
    if u.groups.is_empty() {
        return "none".to_string();
    }
    let names: Vec<String> = u.groups.iter().map(|g| md(&g.name)).collect();
    names.join(", ")
}
