//! orgaudit: audit who has access to a Telnyx organization.
//!
//! Data flows one way: [`source`] loads a report into the typed [`model`], [`rules`] reads and
//! compiles rule files, [`engine`] evaluates them into [`findings`], and [`render`] writes them.
//! The functions at the top level tie these together; everything the CLI does goes through them.
//!
//! ```
//! use orgaudit::{audit, rules::RuleSet, source};
//!
//! let report = br#"{"data": [{"id": "u1", "record_type": "organization_owner",
//!   "email": "owner@example.com", "user_status": "enabled",
//!   "organization_user_bypasses_sso": true, "created_at": "2024-01-01T00:00:00Z",
//!   "last_sign_in_at": "2024-06-01T00:00:00Z", "groups": []}]}"#;
//! let loaded = source::from_bytes(report, "example.json").unwrap();
//! let now = "2024-06-02T00:00:00Z".parse().unwrap();
//! let result = audit(&loaded, &RuleSet::builtin(), now).unwrap();
//! assert_eq!(result.findings[0].rule_id, "owner-sso-bypass");
//! ```

pub mod engine;
pub mod findings;
pub mod model;
pub mod render;
pub mod rules;
pub mod source;
pub mod yaml;

use std::path::PathBuf;

use chrono::SecondsFormat;

use findings::{AuditReport, BySeverity, RuleOutcome, Summary, Tool};
use model::Timestamp;
use rules::RuleSet;

/// Every error orgaudit reports, each with its exit status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error(transparent)]
    Rules(#[from] rules::RuleErrors),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error("{path}: cannot write: {source}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The exit status: 2 for bad usage, rules or input. (3 is kept for network failures.)
    pub fn exit_code(&self) -> u8 {
        2
    }
}

/// What decides which rules run, as the command line gives it.
#[derive(Debug, Clone, Default)]
pub struct RuleOptions {
    /// Leave out the built-in pack.
    pub no_builtin: bool,
    /// Rule files or folders to add.
    pub paths: Vec<PathBuf>,
    /// `RULE_ID.PARAM=VALUE` overrides (VALUE is YAML).
    pub sets: Vec<String>,
    pub disable: Vec<String>,
    pub enable: Vec<String>,
}

/// Builds the rule set: built-in pack, added files, overrides. All rule errors are collected.
pub fn load_rules(opts: &RuleOptions) -> Result<RuleSet, Error> {
    let mut set = if opts.no_builtin {
        RuleSet::new()
    } else {
        RuleSet::builtin()
    };
    set.add_paths(&opts.paths)?;
    let mut errors = Vec::new();
    for spec in &opts.sets {
        if let Err(e) = set.apply_set(spec) {
            errors.extend(e.0);
        }
    }
    for (ids, enabled) in [(&opts.disable, false), (&opts.enable, true)] {
        for id in ids {
            if let Err(e) = set.set_enabled(id, enabled) {
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(rules::RuleErrors(errors).into())
    }
}

/// Audits a loaded report with the enabled rules of `rules` at time `now`.
pub fn audit(
    loaded: &source::Loaded,
    rules: &RuleSet,
    now: Timestamp,
) -> Result<AuditReport, Error> {
    let compiled = rules.compile()?;
    let eval = engine::evaluate(&loaded.report, &compiled, now)?;
    let mut findings = eval.findings;
    findings::sort(&mut findings);
    let mut by_severity = BySeverity::default();
    for f in &findings {
        by_severity.add(f.severity);
    }
    let outcomes = compiled
        .iter()
        .zip(&eval.counts)
        .map(|(c, &n)| RuleOutcome {
            id: c.rule.id.clone(),
            title: c.rule.title.clone(),
            severity: c.rule.severity,
            scope: c.rule.scope,
            references: c.rule.references.clone(),
            findings: n,
        })
        .collect();
    let mut warnings = loaded.warnings.clone();
    warnings.extend(eval.warnings);
    Ok(AuditReport {
        schema_version: AuditReport::SCHEMA_VERSION,
        tool: Tool::default(),
        audited_at: now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        source: loaded.source.clone(),
        summary: Summary {
            users: loaded.report.users.len(),
            groups: loaded.report.groups.len(),
            rules_evaluated: compiled.len(),
            findings: findings.len(),
            by_severity,
        },
        rules: outcomes,
        findings,
        warnings,
    })
}
