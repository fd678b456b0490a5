//! Renderers: each output format writes an [`AuditReport`] to any `Write`. Text, JSON and CSV
//! are written in code; HTML, Markdown and JUnit come from minijinja templates (`templates/`,
//! embedded, replaceable with `--templates DIR`).

mod csv;
mod github;
mod json;
mod ocsf;
mod rules;
mod sarif;
mod templates;

/// Making strings from outside safe per sink (in the crate root, since sources write too).
pub use crate::safe;
mod text;
mod view;

use std::io::{self, Write};

use crate::findings::AuditReport;

pub use csv::COLUMNS as CSV_COLUMNS;
pub use ocsf::OCSF_VERSION;
pub use rules::{rule_details, rules_table};
pub use sarif::{security_severity, SarifOptions, SARIF_VERSION};
pub use templates::{TemplateError, Templates};
pub use text::TextOptions;
#[cfg(all(feature = "email", feature = "network"))]
pub(crate) use view::top_rules;
pub(crate) use view::View;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// For people at a terminal: grouped by severity, evidence inline, a summary line.
    Text,
    /// For machines: the [`AuditReport`] document (schema version 1).
    Json,
    /// One self-contained page: summary chart, rules, filterable findings, compliance view.
    Html,
    /// A compact summary with per-rule tables, for `$GITHUB_STEP_SUMMARY` or a PR comment.
    Markdown,
    /// One row per finding, for spreadsheets.
    Csv,
    /// JUnit XML: one test case per rule, for CI test reporters.
    Junit,
    /// GitHub Actions workflow commands: an annotation per finding.
    Github,
    /// SARIF 2.1.0, for code scanning: a descriptor per rule, a result per finding.
    Sarif,
    /// OCSF Compliance Findings (class 2003) as JSON Lines, for a SIEM or data lake.
    Ocsf,
}

impl Format {
    pub const ALL: [Format; 9] = [
        Format::Text,
        Format::Json,
        Format::Html,
        Format::Markdown,
        Format::Csv,
        Format::Junit,
        Format::Github,
        Format::Sarif,
        Format::Ocsf,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Html => "html",
            Format::Markdown => "markdown",
            Format::Csv => "csv",
            Format::Junit => "junit",
            Format::Github => "github",
            Format::Sarif => "sarif",
            Format::Ocsf => "ocsf",
        }
    }
    /// A format by name, in any case (`json`, `JSON`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
    }
    /// The file extensions that mean this format, for `-o` and `--report PATH` without a
    /// format.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::Text => &["txt"],
            Format::Json => &["json"],
            Format::Html => &["html", "htm"],
            Format::Markdown => &["md", "markdown"],
            Format::Csv => &["csv"],
            Format::Junit => &["xml"],
            Format::Github => &[],
            Format::Sarif => &["sarif"],
            Format::Ocsf => &["jsonl", "ocsf"],
        }
    }
    /// The format a file name's extension means, if any (in any case).
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?;
        Self::ALL
            .into_iter()
            .find(|f| f.extensions().iter().any(|e| e.eq_ignore_ascii_case(ext)))
    }
    /// The template a format is rendered from, if any.
    pub fn template(self) -> Option<&'static str> {
        match self {
            Format::Html => Some("report.html"),
            Format::Markdown => Some("report.md"),
            Format::Junit => Some("junit.xml"),
            Format::Text
            | Format::Json
            | Format::Csv
            | Format::Github
            | Format::Sarif
            | Format::Ocsf => None,
        }
    }
}

/// One output of a run besides the main one: a format to a file (`--report`, `outputs:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub format: Format,
    pub path: std::path::PathBuf,
    /// Added to the file instead of replacing it (`FORMAT+=PATH`, `append: true`, and always
    /// for `$GITHUB_STEP_SUMMARY`).
    pub append: bool,
}

/// Settings of the renderers.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub text: TextOptions,
    pub templates: Templates,
    /// Findings listed per rule in Markdown before "and N more".
    pub markdown_limit: usize,
    /// The run's gate: JUnit fails, and GitHub marks as errors, only what trips it.
    pub gate: Option<crate::findings::GateSpec>,
    /// Waivers expiring within this many days are listed at the top.
    pub waiver_warn_days: u32,
    pub sarif: SarifOptions,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            text: TextOptions::default(),
            templates: Templates::embedded(),
            markdown_limit: crate::defaults::MARKDOWN_PER_RULE,
            gate: None,
            waiver_warn_days: crate::defaults::WAIVER_WARN_DAYS,
            sarif: SarifOptions::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Writes `report` in `format`.
///
/// ```
/// use orgaudit::render::{render, Format, RenderOptions};
///
/// let loaded = orgaudit::source::from_bytes(
///     &std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme-users-groups.json")).unwrap(),
///     "acme.json",
/// )
/// .unwrap();
/// let now = "2026-11-29T00:00:00Z".parse().unwrap();
/// let report = orgaudit::audit(&loaded, &orgaudit::rules::RuleSet::builtin(), now).unwrap();
/// let mut out = Vec::new();
/// render(&report, Format::Csv, &RenderOptions::default(), &mut out).unwrap();
/// assert!(out.starts_with(b"rule_id,severity,title,"));
/// ```
pub fn render(
    report: &AuditReport,
    format: Format,
    opts: &RenderOptions,
    out: &mut dyn Write,
) -> Result<(), RenderError> {
    match format {
        Format::Text => text::render(report, &opts.text, out)?,
        Format::Json => json::render(report, out)?,
        Format::Csv => csv::render(report, out)?,
        Format::Github => github::render(report, opts.gate, out)?,
        Format::Sarif => sarif::render(report, &opts.sarif, out)?,
        Format::Ocsf => ocsf::render(report, out)?,
        Format::Html | Format::Markdown | Format::Junit => {
            let view = View::new(report, opts.markdown_limit)
                .with_gate(opts.gate)
                .with_waiver_warning(opts.waiver_warn_days);
            let ctx = minijinja::Value::from(minijinja::value::Serde(&view));
            let name = format.template().expect("template formats have one");
            opts.templates.render_to(name, ctx, out)?;
            view.drop_in_background();
        }
    }
    Ok(())
}

/// The bundled example audited with the built-in pack, for the renderers' unit tests.
#[cfg(test)]
pub(crate) fn example_audit() -> AuditReport {
    let bytes = include_bytes!("../../examples/acme-users-groups.json");
    let loaded = crate::source::from_bytes(bytes, "acme.json").unwrap();
    let now = "2026-11-29T00:00:00Z".parse().unwrap();
    crate::audit(&loaded, &crate::rules::RuleSet::builtin(), now).unwrap()
}
