//! orgaudit: audit who has access to a Telnyx organization.
//!
//! Data flows one way: [`source`] loads a report into the typed [`model`], [`rules`] reads and
//! compiles rule files, the engine evaluates them into [`findings`], and [`render`] writes them;
//! [`notify`] sends them. The entry points:
//!
//! - [`run()`]: a whole audit run as the CLI's `audit` does it, from a [`plan::Plan`] (flags and
//!   configuration merged by [`plan::Plan::resolve`]): load or fetch, evaluate, baseline,
//!   waivers, every output, email, and the gate's verdict;
//! - [`audit`] / [`audit_compiled`] / [`audit_organizations`]: evaluate rules over loaded reports
//!   into the JSON document ([`findings::AuditReport`]);
//! - [`load_rules`] or [`rules::RuleSet`]: the rules; [`source::load`], [`source::from_bytes`]:
//!   a report; [`render::render`]: any format to any `io::Write`.
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

pub mod baseline;
pub mod changes;
#[cfg(all(feature = "network", feature = "email", feature = "history"))]
pub mod check;
pub mod config;
pub mod defaults;
pub mod diag;
pub(crate) mod engine;
pub mod findings;
pub mod glob;
#[cfg(feature = "history")]
pub mod history;
pub mod init;
pub mod model;
#[cfg(feature = "email")]
pub mod notify;
pub mod output;
#[cfg(all(feature = "network", feature = "email", feature = "history"))]
pub mod plan;
#[cfg(all(feature = "network", feature = "email", feature = "history"))]
pub mod remediate;
pub mod render;
pub mod rules;
pub mod ruletest;
#[cfg(all(feature = "network", feature = "email", feature = "history"))]
pub mod run;
pub mod safe;
pub mod source;
pub mod waivers;
pub(crate) mod yaml;

use std::path::PathBuf;
#[cfg(feature = "network")]
use std::sync::Arc;

use chrono::SecondsFormat;

#[cfg(all(feature = "network", feature = "email", feature = "history"))]
pub use run::run;

/// Rule evaluation alone, for the benchmarks: no stability promised.
#[cfg(feature = "unstable-bench")]
pub use engine::UserEvaluator;

use findings::{AuditReport, BySeverity, RuleOutcome, RuleStatus, Summary, Tool};
use model::Timestamp;
use rules::RuleSet;

/// Every error orgaudit reports, each with its exit status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error(transparent)]
    Rules(#[from] rules::RuleErrors),
    /// A rule whose evaluation failed (its outcome is `error`).
    #[error("{0}")]
    RuleFailed(String),
    /// Configuration or waiver file problems, with file:line:column.
    #[error("{0}")]
    Config(rules::RuleErrors),
    #[error(transparent)]
    Baseline(#[from] baseline::BaselineError),
    #[cfg(feature = "email")]
    #[error(transparent)]
    Notify(#[from] notify::NotifyError),
    /// Fetch failures, one per organization that failed (`None`: the only one).
    #[cfg(feature = "network")]
    #[error("{}", fetch_errors(.0))]
    Fetch(Vec<(Option<String>, source::telnyx::FetchError)>),
    #[error(transparent)]
    Template(#[from] render::TemplateError),
    #[error("{path}: cannot write: {source}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[cfg(feature = "history")]
    #[error(transparent)]
    History(#[from] history::HistoryError),
    /// A call to the Telnyx API that `remediate apply` needed failed before any removal (the
    /// organization check): unreachable, 401/403, or an error after the retries.
    #[cfg(feature = "network")]
    #[error("{0}")]
    Api(String),
}

#[cfg(feature = "network")]
fn fetch_errors(errors: &[(Option<String>, source::telnyx::FetchError)]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|(org, e)| match org {
            Some(o) => format!("organization {o}: {e}"),
            None => e.to_string(),
        })
        .collect();
    lines.join("\n")
}

impl Error {
    /// The exit status: 3 when a network step failed, 2 for bad usage, rules or input.
    pub fn exit_code(&self) -> u8 {
        match self {
            #[cfg(feature = "network")]
            Error::Fetch(errors) => errors.iter().map(|(_, e)| e.exit_code()).min().unwrap_or(3),
            #[cfg(feature = "email")]
            Error::Notify(e) => e.exit_code(),
            #[cfg(feature = "history")]
            Error::History(e) => e.exit_code(),
            #[cfg(feature = "network")]
            Error::Api(_) => 3,
            Error::Source(_)
            | Error::Rules(_)
            | Error::RuleFailed(_)
            | Error::Config(_)
            | Error::Baseline(_)
            | Error::Template(_)
            | Error::Output { .. }
            | Error::Usage(_) => 2,
        }
    }
}

/// Hears what fetches do: the organization's name (when several are fetched) and the event.
#[cfg(feature = "network")]
pub type FetchObserver = Arc<dyn Fn(Option<&str>, source::telnyx::FetchEvent) + Send + Sync>;

/// One report to fetch: an organization's name (when several are fetched) and how.
#[cfg(feature = "network")]
#[derive(Debug, Clone)]
pub struct FetchTarget {
    pub organization: Option<String>,
    pub options: source::telnyx::FetchOptions,
}

#[cfg(feature = "network")]
/// Fetches every target, at most `concurrency` at once. All failures are collected; any
/// failure fails the whole fetch, so that an audit never silently misses an organization.
pub async fn fetch_all(
    targets: &[FetchTarget],
    concurrency: usize,
    on_event: FetchObserver,
) -> Result<Vec<(Option<String>, source::telnyx::Fetched)>, Error> {
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().cloned().enumerate() {
        let gate = gate.clone();
        let on_event = on_event.clone();
        tasks.spawn(async move {
            let _permit = gate
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let org = t.organization.clone();
            let report = |e| on_event(org.as_deref(), e);
            (
                i,
                t.organization,
                source::telnyx::fetch(&t.options, &report).await,
            )
        });
    }
    let mut done = Vec::new();
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, org, result) = joined.expect("a fetch task does not panic");
        match result {
            Ok(f) => done.push((i, org, f)),
            Err(e) => failed.push((i, org, e)),
        }
    }
    if !failed.is_empty() {
        failed.sort_by_key(|(i, _, _)| *i);
        return Err(Error::Fetch(
            failed.into_iter().map(|(_, o, e)| (o, e)).collect(),
        ));
    }
    done.sort_by_key(|(i, _, _)| *i);
    Ok(done.into_iter().map(|(_, o, f)| (o, f)).collect())
}

/// [`fetch_all`] on a runtime of its own, for callers that are not async.
#[cfg(feature = "network")]
pub fn fetch_all_blocking(
    targets: &[FetchTarget],
    concurrency: usize,
    on_event: FetchObserver,
) -> Result<Vec<(Option<String>, source::telnyx::Fetched)>, Error> {
    let threads = concurrency.clamp(1, 2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?
        .block_on(fetch_all(targets, concurrency, on_event))
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
    /// What evaluating the rules may take and show (`limits:` in the configuration).
    pub limits: rules::Limits,
}

/// Builds the rule set: built-in pack, added files, overrides. All rule errors are collected.
///
/// ```
/// let rules = orgaudit::load_rules(&orgaudit::RuleOptions {
///     sets: vec!["stale-sign-in.stale_after_days=30".into(), "sso-bypass.severity=critical".into()],
///     disable: vec!["ungrouped-user".into()],
///     ..Default::default()
/// })
/// .unwrap();
/// assert!(!rules.get("ungrouped-user").unwrap().enabled);
/// assert_eq!(rules.get("sso-bypass").unwrap().severity, orgaudit::rules::Severity::Critical);
/// let bad = orgaudit::load_rules(&orgaudit::RuleOptions {
///     sets: vec!["stale-sign-in.stale_after_dayz=30".into()],
///     ..Default::default()
/// });
/// assert!(bad.unwrap_err().to_string().contains("has no parameter `stale_after_dayz`"));
/// ```
pub fn load_rules(opts: &RuleOptions) -> Result<RuleSet, Error> {
    let mut set = if opts.no_builtin {
        RuleSet::new()
    } else {
        RuleSet::builtin()
    };
    set.set_limits(opts.limits);
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
    Ok(audit_compiled(loaded, &rules.compile()?, now))
}

/// [`audit`] with rules compiled once ([`RuleSet::compile`]), for runs that audit several
/// reports. A rule whose evaluation fails has the outcome `error` and no findings; the other
/// rules keep theirs.
///
/// ```
/// use orgaudit::findings::RuleStatus;
///
/// let compiled = orgaudit::rules::RuleSet::builtin().compile().unwrap();
/// let loaded = orgaudit::source::load(&orgaudit::source::Input::Path(
///     concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme-users-groups.json").into(),
/// ))
/// .unwrap();
/// let report = orgaudit::audit_compiled(&loaded, &compiled, "2026-11-29T00:00:00Z".parse().unwrap());
/// let outcome = |id: &str| report.rules.iter().find(|r| r.id == id).unwrap().outcome;
/// assert_eq!(outcome("sso-bypass"), RuleStatus::Failed);
/// assert_eq!(outcome("external-email-domain"), RuleStatus::NotEvaluated);
/// ```
pub fn audit_compiled(
    loaded: &source::Loaded,
    compiled: &[rules::CompiledRule],
    now: Timestamp,
) -> AuditReport {
    let eval = engine::evaluate(&loaded.report, compiled, now);
    let mut findings = eval.findings;
    findings::sort(&mut findings);
    let mut by_severity = BySeverity::default();
    for f in &findings {
        by_severity.add(f.severity);
    }
    let outcomes = compiled
        .iter()
        .zip(eval.runs)
        .map(|(c, run)| {
            let (outcome, reason) = match run.ran {
                engine::Ran::Evaluated if run.findings > 0 => (RuleStatus::Failed, None),
                engine::Ran::Evaluated => (RuleStatus::Passed, None),
                engine::Ran::NotEvaluated(why) => (RuleStatus::NotEvaluated, Some(why)),
                engine::Ran::Error(e) => (
                    RuleStatus::Error,
                    Some(format!(
                        "{} failed for {}: {}",
                        e.what, e.subject, e.message
                    )),
                ),
            };
            RuleOutcome {
                id: c.rule.id.clone(),
                title: c.rule.title.clone(),
                severity: c.rule.severity,
                default_severity: c.rule.overridden_severity(),
                scope: c.rule.scope,
                description: c.rule.description.trim().to_string(),
                tags: c.rule.tags.clone(),
                remediation: c
                    .rule
                    .remediation
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                references: c.rule.references.clone(),
                frameworks: c.rule.references.iter().fold(Vec::new(), |mut all, r| {
                    if !all.contains(&r.framework) {
                        all.push(r.framework.clone());
                    }
                    all
                }),
                findings: run.findings,
                outcome,
                outcome_reason: reason,
                evaluated_subjects: run.subjects,
                origin: c.rule.origin.clone(),
            }
        })
        .collect();
    let mut warnings = loaded.warnings.clone();
    warnings.extend(eval.warnings);
    AuditReport {
        schema_version: AuditReport::SCHEMA_VERSION,
        tool: Tool::default(),
        audited_at: now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        organization_name: None,
        source: loaded.source.clone(),
        summary: Summary {
            users: loaded.report.users.len(),
            groups: loaded.report.groups.len(),
            rules_evaluated: compiled.len(),
            findings: findings.len(),
            unwaived_by_severity: by_severity,
            by_severity,
            waived: 0,
            new: None,
            resolved: None,
        },
        rules: outcomes,
        findings,
        resolved: None,
        baseline: None,
        warnings,
        history: None,
        not_rechecked: None,
        trend: None,
        changes: None,
    }
}

/// Audits several organizations' reports with the same rules, as one report: every finding is
/// tagged with its organization, counts are summed, and `source.organizations` lists each
/// organization's source.
pub fn audit_organizations(
    reports: &[(String, source::Loaded)],
    rules: &RuleSet,
    now: Timestamp,
) -> Result<AuditReport, Error> {
    let compiled = rules.compile()?;
    audit_organizations_compiled(reports, &compiled, now)
}

/// [`audit_organizations`] with rules compiled once.
pub fn audit_organizations_compiled(
    reports: &[(String, source::Loaded)],
    compiled: &[rules::CompiledRule],
    now: Timestamp,
) -> Result<AuditReport, Error> {
    merge_organizations(audit_each_organization(reports, compiled, now))
}

/// Each organization audited on its own: its findings carry its name (and fingerprints that
/// include it), its warnings say which it is. What [`merge_organizations`] joins, and what a
/// history records per organization.
pub fn audit_each_organization(
    reports: &[(String, source::Loaded)],
    compiled: &[rules::CompiledRule],
    now: Timestamp,
) -> Vec<AuditReport> {
    reports
        .iter()
        .map(|(name, loaded)| {
            let mut one = audit_compiled(loaded, compiled, now);
            for f in &mut one.findings {
                if f.subject.kind == rules::Scope::Organization {
                    f.subject.id = name.clone();
                    f.subject.name = Some(name.clone());
                }
                let plain = findings::fingerprint(&f.rule_id, f.subject.kind, &f.subject.id);
                f.fingerprint = match (&f.subject.email, f.fingerprint == plain) {
                    (Some(email), false) => findings::fingerprint_of_duplicate(
                        Some(name),
                        &f.rule_id,
                        &f.subject.id,
                        &model::normalize_email(email),
                    ),
                    _ => findings::fingerprint_in(
                        Some(name),
                        &f.rule_id,
                        f.subject.kind,
                        &f.subject.id,
                    ),
                };
                f.organization = Some(name.clone());
            }
            for w in &mut one.warnings {
                w.message = format!("organization {name}: {}", w.message);
            }
            one.source.organization = Some(name.clone());
            one
        })
        .collect()
}

/// Organizations audited on their own ([`audit_each_organization`]) as one document: counts
/// added, rules' outcomes merged, findings sorted together, each source listed.
pub fn merge_organizations(parts: Vec<AuditReport>) -> Result<AuditReport, Error> {
    let mut merged: Option<AuditReport> = None;
    let mut sources = Vec::new();
    let add = |a: Option<usize>, b: Option<usize>| match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    };
    for one in parts {
        sources.push(one.source.clone());
        merged = Some(match merged {
            None => one,
            Some(mut m) => {
                m.summary.users += one.summary.users;
                m.summary.groups += one.summary.groups;
                m.summary.findings += one.summary.findings;
                m.summary.waived += one.summary.waived;
                m.summary.new = add(m.summary.new, one.summary.new);
                m.summary.resolved = add(m.summary.resolved, one.summary.resolved);
                m.summary.by_severity.merge(&one.summary.by_severity);
                m.summary
                    .unwaived_by_severity
                    .merge(&one.summary.unwaived_by_severity);
                for (a, b) in m.rules.iter_mut().zip(&one.rules) {
                    a.merge(b);
                }
                m.findings.extend(one.findings);
                m.warnings.extend(one.warnings);
                for (list, more) in [
                    (&mut m.resolved, one.resolved),
                    (&mut m.not_rechecked, one.not_rechecked),
                ] {
                    if let Some(more) = more {
                        list.get_or_insert_with(Vec::new).extend(more);
                    }
                }
                m.changes = match (m.changes.take(), one.changes) {
                    (Some(mut a), Some(b)) => {
                        a.extend(b);
                        Some(a)
                    }
                    (a, b) => a.or(b),
                };
                m
            }
        });
    }
    let mut report = merged.ok_or_else(|| Error::Usage("no organizations to audit".into()))?;
    findings::sort(&mut report.findings);
    for list in [&mut report.resolved, &mut report.not_rechecked]
        .into_iter()
        .flatten()
    {
        findings::sort(list);
    }
    // A trend is one organization's.
    report.trend = None;
    let lines: String = sources
        .iter()
        .map(|s| format!("{}:{}\n", s.organization.as_deref().unwrap_or(""), s.sha256))
        .collect();
    report.source = model::SourceInfo {
        kind: sources[0].kind,
        path: None,
        organization: None,
        base_url: None,
        fetched_at: None,
        format: sources[0].format,
        sha256: source::sha256_hex(lines.as_bytes()),
        records: sources.iter().map(|s| s.records).sum(),
        organizations: sources,
    };
    Ok(report)
}
