//! GitHub Actions workflow commands: one `::error`, `::warning` or `::notice` line per finding,
//! so findings show up as annotations of the run. Values are escaped as the runner requires, so
//! a hostile email cannot inject a workflow command of its own.

use std::io::{self, Write};

use crate::findings::{AuditReport, BaselineStatus};
use crate::rules::Severity;

/// Escapes a command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command's property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

pub(super) fn render(
    report: &AuditReport,
    gate: Option<crate::findings::GateSpec>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let remediation: std::collections::HashMap<&str, &str> = report
        .rules
        .iter()
        .map(|r| (r.id.as_str(), r.remediation.as_str()))
        .collect();
    for f in &report.findings {
        // With a gate: what trips it is an error, what comes near it a warning, the rest a
        // notice; without one, by severity.
        let level = match (f.waived, gate) {
            (true, _) => "notice",
            (false, Some(g)) if g.trips(f) => "error",
            (false, Some(g))
                if f.severity >= g.threshold || Some(f.severity) == g.threshold.below() =>
            {
                "warning"
            }
            (false, Some(_)) => "notice",
            (false, None) => match f.severity {
                Severity::Critical | Severity::High => "error",
                Severity::Medium => "warning",
                Severity::Low | Severity::Info => "notice",
            },
        };
        let mut title = format!("{} ({}) - {}", f.rule_id, f.severity, f.title);
        if f.baseline_status == Some(BaselineStatus::New) {
            title.insert_str(0, "[new] ");
        }
        let mut message = f.message.clone();
        if let Some(org) = &f.organization {
            message = format!("[{org}] {message}");
        }
        if let Some(w) = &f.waiver {
            message.push_str(&format!(" (waived until {}: {})", w.expires, w.reason));
        }
        // What to do about it: the rule's remediation, on a line of its own.
        if let Some(fix) = remediation
            .get(f.rule_id.as_str())
            .filter(|r| !r.is_empty())
        {
            message.push_str(&format!("\nFix: {fix}"));
        }
        // Annotations are read by people: what would hide is shown.
        let (title, message) = (
            super::safe::visible(&title).into_owned(),
            super::safe::visible(&message).into_owned(),
        );
        writeln!(
            out,
            "::{level} title={}::{}",
            escape_property(&title),
            escape_data(&message)
        )?;
    }
    // The run's warnings (an expired or unused waiver, a duplicate user id in the input): the
    // people who own the waivers file see them on the run.
    for w in &report.warnings {
        writeln!(
            out,
            "::warning title={}::{}",
            escape_property(&format!("orgaudit: {}", w.code)),
            escape_data(&super::safe::visible(&w.message))
        )?;
    }
    let s = &report.summary;
    let mut summary = format!(
        "{} finding{}: {} critical, {} high, {} medium, {} low, {} info; {} waived",
        s.findings,
        if s.findings == 1 { "" } else { "s" },
        s.by_severity.critical,
        s.by_severity.high,
        s.by_severity.medium,
        s.by_severity.low,
        s.by_severity.info,
        s.waived
    );
    if let (Some(n), Some(r)) = (s.new, s.resolved) {
        summary.push_str(&format!("; {n} new, {r} resolved since the baseline"));
    }
    writeln!(out, "::notice title=orgaudit::{}", escape_data(&summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_prevents_injection() {
        assert_eq!(
            escape_data("a\n::set-env name=x::y%"),
            "a%0A::set-env name=x::y%25"
        );
        assert_eq!(escape_property("a:b,c\r"), "a%3Ab%2Cc%0D");
    }
}
