//! Renderers: each output format writes an [`AuditReport`] to any `Write`.

mod json;
mod rules;
mod text;

use std::io::{self, Write};

use crate::findings::AuditReport;

pub use rules::{rule_details, rules_table};
pub use text::TextOptions;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people: grouped by severity, evidence inline, a summary line.
    Text,
    /// For machines: the [`AuditReport`] document (schema version 1).
    Json,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::Text, Format::Json];
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// Writes `report` in `format`.
pub fn render(
    report: &AuditReport,
    format: Format,
    text: &TextOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Text => text::render(report, text, out),
        Format::Json => json::render(report, out),
    }
}
