//! JSON output: the audit document as it is, pretty-printed.

use std::io::{self, BufWriter, Write};

use crate::findings::AuditReport;

pub(super) fn render(report: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    // serde_json makes many small writes; a buffer of a concrete type takes them without a
    // dynamic call each.
    let mut buffered = BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer_pretty(&mut buffered, report)?;
    buffered.write_all(b"\n")?;
    buffered.flush()
}
