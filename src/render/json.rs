//! JSON output: the audit document as it is, pretty-printed.

use std::io::{self, Write};

use crate::findings::AuditReport;

pub(super) fn render(report: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}
