//! Describing rules to people: the `rules list` table and `rules show` details.

use std::io::{self, Write};

use crate::rules::{Cond, Operand, Rule};

/// One line per rule: id, severity, scope, enabled, title.
pub fn rules_table(rules: &[Rule], out: &mut dyn Write) -> io::Result<()> {
    let w = rules.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    writeln!(
        out,
        "{:<w$}  {:<8}  {:<12}  {:<7}  TITLE",
        "ID", "SEVERITY", "SCOPE", "ENABLED"
    )?;
    for r in rules {
        writeln!(
            out,
            "{:<w$}  {:<8}  {:<12}  {:<7}  {}",
            r.id,
            r.severity.as_str(),
            r.scope.as_str(),
            if r.enabled { "yes" } else { "no" },
            r.title
        )?;
    }
    Ok(())
}

/// Everything about one rule, with its parameters' current values.
pub fn rule_details(rule: &Rule, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}: {}", rule.id, rule.title)?;
    match rule.overridden_severity() {
        Some(default) => writeln!(out, "  severity:    {} (default: {default})", rule.severity)?,
        None => writeln!(out, "  severity:    {}", rule.severity)?,
    }
    writeln!(out, "  scope:       {}", rule.scope.as_str())?;
    writeln!(
        out,
        "  enabled:     {}",
        if rule.enabled { "yes" } else { "no" }
    )?;
    writeln!(out, "  defined at:  {}", rule.origin)?;
    if !rule.tags.is_empty() {
        writeln!(out, "  tags:        {}", rule.tags.join(", "))?;
    }
    if !rule.description.is_empty() {
        writeln!(out, "\ndescription:\n  {}", rule.description.trim())?;
    }
    if !rule.remediation.is_empty() {
        writeln!(out, "\nremediation:\n  {}", rule.remediation.trim())?;
    }
    if !rule.references.is_empty() {
        writeln!(out, "\nreferences:")?;
        for r in &rule.references {
            writeln!(out, "  - {} {}", r.framework, r.control)?;
        }
    }
    if !rule.params.is_empty() {
        writeln!(out, "\nparams:")?;
        for p in &rule.params {
            let note = if p.value == p.default {
                "(default)".to_string()
            } else {
                format!("(default: {})", p.default)
            };
            writeln!(out, "  {} = {} {note}", p.name, p.value)?;
        }
    }
    writeln!(out, "\nwhen:")?;
    write_cond(&rule.when, 1, out)?;
    writeln!(out, "\nmessage:\n  {}", rule.message)?;
    match (rule.fix.action, &rule.fix.when) {
        (crate::rules::FixAction::Manual, _) => {
            writeln!(out, "\nfix:\n  manual (a person acts; see the remediation)")
        }
        (action @ crate::rules::FixAction::RemoveUser, when) => {
            writeln!(
                out,
                "\nfix:\n  {} (`orgaudit remediate plan` proposes it; owners are never removed){}",
                action.as_str(),
                if when.is_some() { ", when:" } else { "" }
            )?;
            match when {
                Some(c) => write_cond(c, 2, out),
                None => Ok(()),
            }
        }
    }
}

fn write_cond(c: &Cond, depth: usize, out: &mut dyn Write) -> io::Result<()> {
    let pad = "  ".repeat(depth);
    match c {
        Cond::All(items) | Cond::Any(items) => {
            writeln!(
                out,
                "{pad}{}:",
                if matches!(c, Cond::All(_)) {
                    "all"
                } else {
                    "any"
                }
            )?;
            for i in items {
                write_cond(i, depth + 1, out)?;
            }
            Ok(())
        }
        Cond::Not(inner) => {
            writeln!(out, "{pad}not:")?;
            write_cond(inner, depth + 1, out)
        }
        Cond::Count {
            inner, cmp, value, ..
        } => {
            let v = match value {
                Operand::Value(n) => n.to_json().to_string(),
                Operand::Param { name, .. } => format!("{{param: {name}}}"),
            };
            writeln!(out, "{pad}count of the users {cmp:?} {v}:")?;
            write_cond(inner, depth + 1, out)
        }
        Cond::Quant { q, inner, .. } => {
            writeln!(out, "{pad}{q:?} of the users:")?;
            write_cond(inner, depth + 1, out)
        }
        Cond::ParamEmpty { name, empty, .. } => {
            writeln!(
                out,
                "{pad}param {name} is {}empty",
                if *empty { "" } else { "not " }
            )
        }
        Cond::Expr { source, .. } => writeln!(out, "{pad}expr: {source}"),
        Cond::Field {
            field, op, operand, ..
        } => {
            let v = match operand {
                Operand::Value(n) => n.to_json().to_string(),
                Operand::Param { name, .. } => format!("{{param: {name}}}"),
            };
            writeln!(out, "{pad}{} {} {v}", field.name, op.name)
        }
    }
}
