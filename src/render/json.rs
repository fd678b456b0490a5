//! JSON output: the audit document as it is, pretty-printed.
//!
//! Large documents are mostly findings: those are serialized in chunks on every core and
//! written in order, byte for byte what `serde_json::to_writer_pretty` writes for the whole
//! document (a test holds the two together).

use std::io::{self, BufWriter, Write};
use std::sync::mpsc;

use serde::{Serialize, Serializer};

use crate::findings::{AuditReport, Finding};

/// Findings per chunk: large enough to keep both cores busy, small enough to bound memory.
const CHUNK: usize = 4096;

/// The indentation of a finding inside the document's `findings` list.
const ELEMENT_INDENT: &[u8] = b"    ";

pub(super) fn render(report: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    // serde_json makes many small writes; a buffer of a concrete type takes them without a
    // dynamic call each.
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if report.findings.len() < 2 * CHUNK || threads < 2 {
        serde_json::to_writer_pretty(&mut out, report)?;
    } else {
        write_chunked(report, threads, &mut out)?;
    }
    out.write_all(b"\n")?;
    out.flush()
}

/// Serializes as an empty list: the place in the document where the findings go.
struct Slot;

impl Serialize for Slot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(std::iter::empty::<()>())
    }
}

fn write_chunked(report: &AuditReport, threads: usize, out: &mut impl Write) -> io::Result<()> {
    let frame = serde_json::to_vec_pretty(&report.with_findings(Slot))?;
    let slot = b"\n  \"findings\": []";
    let at = frame
        .windows(slot.len())
        .position(|w| w == slot)
        .expect("the document has a top-level findings list")
        + slot.len()
        - 1;
    out.write_all(&frame[..at])?;
    let chunks: Vec<&[Finding]> = report.findings.chunks(CHUNK).collect();
    std::thread::scope(|scope| -> io::Result<()> {
        // Worker t serializes chunks t, t + threads, ... and hands them over in that order;
        // the bounded channels keep at most a few chunks in memory per worker.
        let receivers: Vec<mpsc::Receiver<io::Result<Vec<u8>>>> = (0..threads)
            .map(|t| {
                let (tx, rx) = mpsc::sync_channel(2);
                let mine: Vec<(usize, &[Finding])> = chunks
                    .iter()
                    .copied()
                    .enumerate()
                    .skip(t)
                    .step_by(threads)
                    .collect();
                scope.spawn(move || {
                    for (i, chunk) in mine {
                        if tx.send(serialize_chunk(chunk, i == 0)).is_err() {
                            return; // the writer stopped on an error
                        }
                    }
                });
                rx
            })
            .collect();
        for i in 0..chunks.len() {
            let buf = receivers[i % threads]
                .recv()
                .expect("a worker sends every chunk it was given")?;
            out.write_all(&buf)?;
        }
        Ok(())
    })?;
    out.write_all(b"\n  ")?;
    out.write_all(&frame[at..])
}

/// A run of list elements as the pretty printer writes them at depth two: each on a new line,
/// indented, separated by commas (`first`: no comma before the first).
fn serialize_chunk(chunk: &[Finding], first: bool) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(chunk.len() * 700);
    let mut one = Vec::with_capacity(1024);
    for (j, f) in chunk.iter().enumerate() {
        if j > 0 || !first {
            buf.push(b',');
        }
        buf.push(b'\n');
        buf.extend_from_slice(ELEMENT_INDENT);
        one.clear();
        serde_json::to_writer_pretty(&mut one, f)?;
        // Strings hold no raw newlines (JSON escapes them), so every newline is indentation.
        let mut rest = &one[..];
        while let Some(n) = rest.iter().position(|&b| b == b'\n') {
            buf.extend_from_slice(&rest[..=n]);
            buf.extend_from_slice(ELEMENT_INDENT);
            rest = &rest[n + 1..];
        }
        buf.extend_from_slice(rest);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::render::example_audit as example;

    #[test]
    fn chunked_output_is_what_serde_json_writes() {
        let mut report = example();
        // Not a multiple of the chunk size, with waivers and a baseline around the list.
        let one = std::mem::take(&mut report.findings);
        report.findings = one.iter().cycle().take(3 * CHUNK + 17).cloned().collect();
        report.findings[5].subject.email = Some("new\nline \"quoted\"".into());
        report.resolved = Some(one[..2].to_vec());
        for threads in [2, 3] {
            let mut chunked = Vec::new();
            write_chunked(&report, threads, &mut chunked).unwrap();
            let whole = serde_json::to_vec_pretty(&report).unwrap();
            assert!(chunked == whole, "{threads} threads");
        }
    }

    /// `history show` reads a stored output back into the document: every field round-trips,
    /// so re-rendering gives the bytes the run wrote.
    #[test]
    fn the_document_reads_back_as_written() {
        let mut report = example();
        report.resolved = Some(report.findings[..2].to_vec());
        report.not_rechecked = Some(report.findings[2..3].to_vec());
        report.trend = Some(vec![Default::default()]);
        report.changes = Some(crate::changes::Changes {
            since: "2026-11-01T00:00:00Z".into(),
            ..Default::default()
        });
        report.findings[0].first_seen = Some("2026-11-01T00:00:00Z".into());
        report.findings[0].age_days = Some(3);
        report.findings[0].due = Some("2026-11-08".into());
        report.findings[0].overdue = Some(false);
        let mut written = Vec::new();
        render(&report, &mut written).unwrap();
        let back: AuditReport = serde_json::from_slice(&written).unwrap();
        let mut again = Vec::new();
        render(&back, &mut again).unwrap();
        assert!(again == written);
    }
}
