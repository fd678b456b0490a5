//! CSV output: one row per finding with stable columns. Cells a spreadsheet would run as a
//! formula are neutralised with a leading `'`.

use std::io::{self, Write};

use crate::findings::AuditReport;

/// The columns, in order. New columns are only ever added at the end.
pub const COLUMNS: &[&str] = &[
    "rule_id",
    "severity",
    "title",
    "subject_kind",
    "subject_id",
    "subject_email",
    "subject_name",
    "message",
    "fingerprint",
    "waived",
    "evidence",
    "organization",
    "fix",
];

pub(super) fn render(report: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(COLUMNS)?;
    for f in &report.findings {
        let evidence = serde_json::to_string(&f.evidence)?;
        let row = [
            f.rule_id.as_str(),
            f.severity.as_str(),
            &f.title,
            f.subject.kind.as_str(),
            &f.subject.id,
            f.subject.email.as_deref().unwrap_or(""),
            f.subject.name.as_deref().unwrap_or(""),
            &f.message,
            &f.fingerprint,
            if f.waived { "true" } else { "false" },
            &evidence,
            f.organization.as_deref().unwrap_or(""),
            f.fix.map_or("", |a| a.as_str()),
        ];
        w.write_record(row.iter().map(|c| super::safe::csv_cell(c).into_owned()))?;
    }
    w.flush()
}
