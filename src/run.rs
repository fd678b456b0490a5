//! The audit run, in order: rules, load or fetch, evaluate, baseline, waivers, outputs, email,
//! gate. What the CLI's `audit` does is [`run`]; a library user gets the same run with one call.
//!
//! Problems before the outputs (bad rules, bad input, a failed fetch) end the run with an error.
//! After that, every output is written and the email is sent even when another one fails; such
//! failures are collected in [`Outcome::failures`], and [`Outcome::exit_code`] ranks them.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::config::{self, Config, FetchFlags};
use crate::findings::AuditReport;
use crate::output::{self, FileMode, OutputError, Target, Written};
use crate::plan::{ColorWhen, EmailPlan, Plan, Source};
use crate::render::{self, Format, RenderOptions, Templates, TextOptions};
use crate::rules::Severity;
use crate::source::telnyx::Fetched;
use crate::{source, Error, FetchObserver};

/// What the gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No gate was asked for.
    NoGate,
    Pass {
        threshold: Severity,
        only_new: bool,
    },
    /// `count` unwaived findings (new ones, with `only_new`) reached the threshold.
    Fail {
        count: usize,
        threshold: Severity,
        only_new: bool,
    },
}

/// What became of the email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Email {
    /// No email was asked for.
    None,
    /// `--email-when findings` and there were none.
    Skipped,
    Sent,
    /// Written to this `.eml` file (a dry run).
    Written(PathBuf),
}

/// The result of a run that got as far as its outputs.
#[derive(Debug)]
pub struct Outcome {
    pub report: AuditReport,
    pub verdict: Verdict,
    pub email: Email,
    /// Outputs or the email that failed; the others were still written or sent.
    pub failures: Vec<Error>,
    /// The organizations (history keys) the history had no previous run of: a gate on new
    /// findings then counts every finding.
    pub first_run: Vec<String>,
    /// With `--fail-on-overdue`: how many findings are past their SLA (the gate fails when
    /// any is).
    pub overdue: Option<usize>,
}

/// The exit status of several results at once: 2 (bad input, rules, usage) over 3 (network,
/// SMTP, storage) over 1 (a gate) over 0.
pub fn worst_exit(codes: impl IntoIterator<Item = u8>) -> u8 {
    let rank = |c: u8| match c {
        2 => 4,
        3 => 3,
        1 => 2,
        0 => 0,
        _ => 1,
    };
    codes.into_iter().max_by_key(|&c| rank(c)).unwrap_or(0)
}

impl Outcome {
    /// The run's exit status: the worst failure's, else 1 when the gate failed, else 0.
    pub fn exit_code(&self) -> u8 {
        // Gates combine with OR.
        let gate = match (self.verdict, self.overdue) {
            (Verdict::Fail { .. }, _) => 1,
            (_, Some(n)) if n > 0 => 1,
            (Verdict::NoGate | Verdict::Pass { .. }, _) => 0,
        };
        worst_exit(self.failures.iter().map(Error::exit_code).chain([gate]))
    }
}

/// Runs the audit the plan describes.
///
/// ```
/// use orgaudit::plan::{Flags, Plan};
///
/// let dir = tempfile::tempdir().unwrap();
/// let out = dir.path().join("findings.json");
/// let plan = Plan::resolve(Flags {
///     input: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme-users-groups.json").into()),
///     now: Some("2026-11-29T00:00:00Z".parse().unwrap()),
///     format: Some(orgaudit::render::Format::Json),
///     output: Some(out.clone()),
///     fail_on: Some(Some(orgaudit::rules::Severity::Critical)),
///     ..Default::default()
/// })
/// .unwrap();
/// let outcome = orgaudit::run(&plan).unwrap();
/// assert_eq!(outcome.report.summary.by_severity.critical, 1);
/// assert_eq!(outcome.exit_code(), 1);
/// assert!(out.is_file());
/// ```
///
/// When the audit cannot run (an error: exit status 2 or 3), the email recipients and webhooks
/// of the plan still get a short alert with the error, so that an unattended weekly review that
/// failed does not go unnoticed.
pub fn run(plan: &Plan) -> Result<Outcome, Error> {
    let result = audit(plan);
    if let Err(e) = &result {
        alert_failure(plan, e);
    }
    result
}

/// The alert of a run that could not run, to every email recipient and webhook of the plan;
/// what became of each is told to `plan.on_notice`.
fn alert_failure(plan: &Plan, error: &Error) {
    let notice = |line: String| {
        if let Some(n) = &plan.on_notice {
            n(&line);
        }
    };
    let organization = plan.org_name.clone().unwrap_or_else(|| match &plan.source {
        Source::Input(source::Input::Path(p)) => p.file_name().map_or_else(
            || p.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        ),
        Source::Input(source::Input::Stdin) => "the report on standard input".to_string(),
        Source::Fetch { .. } => "the Telnyx organization".to_string(),
    });
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = error.to_string();
    let code = error.exit_code();
    if let Some(e) = &plan.email {
        let sent = crate::notify::failure_message(&e.settings, &organization, &text, code, &at)
            .map_err(Error::from)
            .and_then(|message| match (&e.dry_run, &e.smtp) {
                (Some(path), _) => write(Target::File(path), plan.file_mode, |out| {
                    Ok(out.write_all(&message.formatted())?)
                })
                .map(|_| format!("failure alert written to {}", path.display())),
                (None, Some(smtp)) => crate::notify::send(&message, smtp)
                    .map(|()| format!("failure alert emailed to {}", e.settings.to.join(", ")))
                    .map_err(Error::from),
                (None, None) => Ok(String::new()),
            });
        match sent {
            Ok(line) if line.is_empty() => {}
            Ok(line) => notice(line),
            Err(err) => notice(format!("could not send the failure alert by email: {err}")),
        }
    }
    let alert = crate::notify::webhook::Alert::Failure(crate::notify::webhook::Failure {
        tool: "orgaudit",
        version: env!("CARGO_PKG_VERSION"),
        organization,
        at,
        exit_code: code,
        error: text,
        report_url: plan.post.report_url.clone(),
    });
    for hook in &plan.webhooks {
        match crate::notify::webhook::post(hook, &alert, &plan.post) {
            Ok(()) => notice(format!("failure alert posted to {}", hook.name())),
            Err(err) => notice(format!("could not post the failure alert: {err}")),
        }
    }
}

/// What an audit found before anything is written: the report (baseline and waivers applied),
/// what it was made from, and the history opened for it. [`run`] writes the outputs from it;
/// `orgaudit remediate plan` plans from it and writes nothing else.
pub struct Assessment {
    pub report: AuditReport,
    /// The rules that ran.
    pub rules: Vec<crate::rules::CompiledRule>,
    /// Each organization audited: its key in the history and its report as loaded.
    pub units: Vec<(String, source::Loaded)>,
    /// One organization (its report is `report`), not several merged.
    pub single: bool,
    /// Each organization's own report, with several.
    parts: Vec<AuditReport>,
    /// The history, when it opened and the run may be recorded in it.
    store: Option<Box<dyn crate::history::Store>>,
    /// Failures that do not stop the run (a rule that failed, a history that could not open).
    pub failures: Vec<Error>,
    /// The organizations the history had no earlier run of.
    pub first_run: Vec<String>,
}

/// The audit up to its outputs: rules, load or fetch, evaluate, history, baseline, waivers.
/// Nothing is written and nothing is sent.
pub fn assess(plan: &Plan) -> Result<Assessment, Error> {
    // Rules first: a broken rule file is reported before any request is sent.
    let rules = crate::load_rules(&plan.rules)?.compile()?;
    let now = plan.now;
    // The organizations audited, each with its key in the history: one (`--org-id`), or the
    // configuration's `organizations` by name.
    let mut single = true;
    let mut units: Vec<(String, source::Loaded)> = Vec::new();
    match &plan.source {
        Source::Input(input) => units.push((
            plan.org_id.clone(),
            source::load_capped(input, plan.max_bytes)?,
        )),
        Source::Fetch { api, save } => {
            let observer = plan
                .on_fetch
                .clone()
                .unwrap_or_else(|| std::sync::Arc::new(|_, _| {}));
            let fetched = fetch_reports(api, plan.config.as_ref(), observer)?;
            if save.is_some() {
                save_fetched(save.as_deref(), &fetched, plan.file_mode)?;
            }
            // Without `organizations` in the configuration, one unnamed organization.
            single = matches!(fetched.as_slice(), [(None, _)]);
            for (org, f) in &fetched {
                let key = org.clone().unwrap_or_else(|| plan.org_id.clone());
                units.push((key, source::from_fetched(f)?));
            }
        }
    }
    // The history, before the audit: the previous run's snapshot is what change detection
    // compares with. A history that cannot be read is a failure of the run (exit 3), after the
    // outputs, unless --history-required.
    let mut failures: Vec<Error> = Vec::new();
    let mut history = None;
    if let Some(location) = &plan.history {
        let keys: Vec<&str> = units.iter().map(|(k, _)| k.as_str()).collect();
        match crate::history::open_for(location, &keys) {
            Ok(h) => history = Some(h),
            Err(e) if plan.history_required => return Err(e.into()),
            Err(e) => failures.push(e.into()),
        }
    }
    let mut changes: Vec<Option<crate::changes::Changes>> = units.iter().map(|_| None).collect();
    if let Some(h) = history.as_mut() {
        for ((key, loaded), (org, changed)) in units
            .iter_mut()
            .zip(h.orgs.iter_mut().zip(changes.iter_mut()))
        {
            let Some(prev) = org.previous.as_mut() else {
                continue;
            };
            if let Some(snapshot) = prev.snapshot.take() {
                let c = crate::changes::compare(&mut loaded.report, snapshot, &prev.run.audited_at);
                *changed = Some(if single { c } else { c.of_organization(key) });
            }
        }
    }
    // Each organization's report; one organization's is the run's.
    let mut parts = if single {
        vec![crate::audit_compiled(&units[0].1, &rules, now)]
    } else {
        crate::audit_each_organization(&units, &rules, now)
    };
    for (part, c) in parts.iter_mut().zip(changes) {
        part.changes = c;
        if history.is_some() && part.changes.is_none() {
            let organization = if single {
                None
            } else {
                part.source.organization.clone()
            };
            no_previous_snapshot(part, organization);
        }
    }
    let waivers = match &plan.waivers {
        Some((path, max_days)) => {
            Some(crate::waivers::load(path, now, *max_days).map_err(Error::Config)?)
        }
        None => None,
    };
    // The history, organization by organization: the previous run is the baseline (unless
    // --baseline decides), every finding gets its first_seen and age (waivers first: a waived
    // finding is never overdue).
    let mut store = None;
    let mut first_run = Vec::new();
    if let (Some(h), Some(location)) = (history, &plan.history) {
        let mut ok = true;
        for (part, org) in parts.iter_mut().zip(h.orgs) {
            if let Some(list) = &waivers {
                crate::waivers::mark(part, list, now);
            }
            if org.previous.is_none() {
                first_run.push(org.key.clone());
            }
            let previous = org.previous.as_ref().map(|p| p.run.clone());
            let info = crate::history::HistoryInfo {
                location: location.to_string(),
                organization: org.key.clone(),
                previous_run: previous.clone(),
                head: h.head.clone(),
            };
            let applied = crate::history::apply(
                part,
                previous.as_ref(),
                org.previous_findings,
                &org.state,
                info,
                plan.baseline.is_some(),
                plan.sla.as_ref(),
            );
            match applied {
                Ok(()) => {
                    let mut trend = org.trend;
                    trend.push(crate::history::trend_point(part));
                    part.trend = Some(trend);
                }
                Err(e) if plan.history_required => return Err(e.into()),
                Err(e) => {
                    failures.push(e.into());
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            store = Some(h.store);
        }
    }
    let mut report = if single {
        parts.pop().expect("one organization")
    } else {
        let mut merged = crate::merge_organizations(parts.clone())?;
        if let (Some(location), Some(_)) = (&plan.history, &store) {
            merged.history = Some(crate::history::HistoryInfo {
                location: location.to_string(),
                organization: units
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                previous_run: None,
                head: parts.first().and_then(|p| p.history.as_ref()?.head.clone()),
            });
        }
        merged
    };
    report.organization_name = plan.org_name.clone();
    if let Some(path) = &plan.baseline {
        let b = crate::baseline::load_capped(path, plan.max_bytes)?;
        crate::baseline::apply(&mut report, &b);
    }
    if let Some(list) = &waivers {
        let broad = crate::waivers::check_scope(list, &report, plan.allow_blanket_waivers)
            .map_err(Error::Config)?;
        crate::waivers::apply(&mut report, list, now);
        report.warnings.extend(broad);
    }
    // A rule that failed is an error of the run, after the outputs that show it.
    failures.extend(
        report
            .rules
            .iter()
            .filter(|r| r.outcome == crate::findings::RuleStatus::Error)
            .map(|r| {
                Error::RuleFailed(format!(
                    "rule `{}` ({}): {}",
                    r.id,
                    r.origin,
                    r.outcome_reason.as_deref().unwrap_or("evaluation failed")
                ))
            }),
    );
    Ok(Assessment {
        report,
        rules,
        units,
        single,
        parts,
        store,
        failures,
        first_run,
    })
}

/// The audit itself: [`run`] without the failure alerts.
fn audit(plan: &Plan) -> Result<Outcome, Error> {
    let Assessment {
        report,
        units,
        single,
        parts,
        store,
        mut failures,
        first_run,
        ..
    } = assess(plan)?;
    let templates = match &plan.templates {
        Some(dir) => Templates::from_dir(dir)?,
        None => Templates::embedded(),
    };
    let color = |to_terminal: bool| match plan.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none(),
    };
    // The gate, settled before the outputs that follow it (JUnit, GitHub): the first run of a
    // history has nothing to be new against, so it gates on every finding.
    let gate = plan
        .gate
        .threshold()
        .map(|threshold| crate::findings::GateSpec {
            threshold,
            only_new: plan.gate.only_new && (first_run.is_empty() || plan.baseline.is_some()),
        });
    // Warnings go to stderr (the CLI prints them); a text report written to a file keeps them.
    let options = |to_file: bool| RenderOptions {
        gate,
        waiver_warn_days: plan.waiver_warn_days,
        text: TextOptions {
            color: color(!to_file && std::io::stdout().is_terminal()),
            warnings: to_file,
            remediation: plan.verbose,
            gate,
            waiver_warn_days: plan.waiver_warn_days,
        },
        templates: templates.clone(),
        sarif: plan.sarif.clone(),
        ..Default::default()
    };
    // With a history, the JSON output is rendered once: the history keeps it, and the JSON
    // outputs are written from it.
    let json = match &store {
        Some(_) => match crate::history::render_json(&report) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                failures.push(render_error(e, "the history's copy of the JSON output"));
                None
            }
        },
        None => None,
    };
    let outputs = plan
        .reports
        .iter()
        .map(|o| (o.format, Some(o.path.as_path()), o.append))
        .chain([(plan.format, plan.output.as_deref(), plan.output_append)]);
    for (format, path, append) in outputs {
        let target = match path {
            None => Target::Stdout,
            Some(p) if append => Target::Append(p),
            Some(p) => Target::File(p),
        };
        let written = match (&json, format) {
            (Some(bytes), Format::Json) => {
                write(target, plan.file_mode, |out| Ok(out.write_all(bytes)?))
            }
            _ => write(target, plan.file_mode, |out| {
                render::render(&report, format, &options(path.is_some()), out)
            }),
        };
        if let Err(e) = written {
            failures.push(e);
        }
    }
    let email = match &plan.email {
        None => Email::None,
        Some(e) => match deliver(
            &report,
            &EmailPlan {
                settings: crate::notify::EmailSettings {
                    gate,
                    waiver_warn_days: plan.waiver_warn_days,
                    ..e.settings.clone()
                },
                ..e.clone()
            },
            &templates,
            plan.file_mode,
            &|line: String| {
                if let Some(n) = &plan.on_notice {
                    n(&line);
                }
            },
        ) {
            Ok(done) => done,
            Err(err) => {
                failures.push(err);
                Email::None
            }
        },
    };
    // Summaries to chat and webhooks; one that fails is a delivery failure (exit 3) that leaves
    // the others alone.
    if !plan.webhooks.is_empty() {
        let settings = crate::notify::webhook::PostSettings {
            gate,
            ..plan.post.clone()
        };
        let alert = crate::notify::webhook::Alert::Audit(crate::notify::webhook::Summary::of(
            &report, &settings,
        ));
        for hook in &plan.webhooks {
            if !crate::notify::webhook::should_post(hook, &report) {
                continue;
            }
            match crate::notify::webhook::post(hook, &alert, &settings) {
                Ok(()) => {
                    if let Some(n) = &plan.on_notice {
                        n(&format!("summary posted to {}", hook.name()));
                    }
                }
                Err(e) => failures.push(e.into()),
            }
        }
    }
    let verdict = verdict(&report, gate);
    let overdue = plan.fail_on_overdue.then(|| {
        report
            .findings
            .iter()
            .filter(|f| f.overdue == Some(true))
            .count()
    });
    if let Some(mut s) = store {
        // Each organization is a run of its own, with its snapshot; one organization's run is
        // the report written (its JSON output already rendered).
        let keep = crate::history::Keep::Days(plan.history_retention_days);
        let recorded = (|| {
            if single {
                s.record(
                    &units[0].0,
                    &report,
                    json.as_deref(),
                    Some(&units[0].1.report),
                )?;
            } else {
                for (part, (key, loaded)) in parts.iter().zip(&units) {
                    s.record(key, part, None, Some(&loaded.report))?;
                }
            }
            // Retention: runs past `history.retention_days` go at each write, behind a
            // checkpoint.
            s.prune(keep, &report.audited_at)
        })();
        if let Err(e) = recorded {
            if plan.history_required {
                return Err(e.into());
            }
            failures.push(e.into());
        }
    }
    Ok(Outcome {
        report,
        verdict,
        email,
        failures,
        first_run,
        overdue,
    })
}

/// One warning for the rules that wait for a previous snapshot, never one per user.
fn no_previous_snapshot(report: &mut AuditReport, organization: Option<String>) {
    let waiting: Vec<String> = report
        .rules
        .iter()
        .filter(|r| r.outcome_reason.as_deref() == Some(crate::engine::NO_PREVIOUS))
        .map(|r| format!("`{}`", r.id))
        .collect();
    if !waiting.is_empty() {
        report.warnings.push(crate::model::Warning {
            code: "no-previous-snapshot",
            message: format!(
                "{}{} not evaluated: change detection compares with the previous run's snapshot of this organization, and the history has none yet",
                organization.map(|o| format!("organization {o}: ")).unwrap_or_default(),
                waiting.join(", ")
            ),
        });
    }
}

fn render_error(e: render::RenderError, what: &str) -> Error {
    match e {
        render::RenderError::Template(t) => Error::Template(t),
        render::RenderError::Io(source) => Error::Output {
            path: what.to_string(),
            source,
        },
    }
}

/// Writes to a file or standard output ([`crate::output`]), with the errors of a run.
fn write(
    target: Target<'_>,
    mode: FileMode,
    f: impl FnOnce(&mut dyn Write) -> Result<(), render::RenderError>,
) -> Result<Written, Error> {
    output::write(target, mode, f).map_err(|e| match e {
        OutputError::Io { path, source } => Error::Output { path, source },
        OutputError::Produce(render::RenderError::Template(t)) => Error::Template(t),
        OutputError::Produce(render::RenderError::Io(source)) => Error::Output {
            path: target.name(),
            source,
        },
    })
}

fn verdict(report: &AuditReport, gate: Option<crate::findings::GateSpec>) -> Verdict {
    let Some(gate) = gate else {
        return Verdict::NoGate;
    };
    let (threshold, only_new) = (gate.threshold, gate.only_new);
    match gate.count(&report.findings) {
        0 => Verdict::Pass {
            threshold,
            only_new,
        },
        count => Verdict::Fail {
            count,
            threshold,
            only_new,
        },
    }
}

fn deliver(
    report: &AuditReport,
    plan: &EmailPlan,
    templates: &Templates,
    mode: FileMode,
    notice: &dyn Fn(String),
) -> Result<Email, Error> {
    if !crate::notify::should_send(report, plan.when) {
        return Ok(Email::Skipped);
    }
    let message = crate::notify::build(report, &plan.settings, templates)?;
    let bytes = message.formatted();
    // One line per message: to whom, what, how big.
    let describe = |what: &str| {
        let subject = message
            .headers()
            .get_raw("Subject")
            .map(|s| s.to_string())
            .unwrap_or_default();
        let mut to = plan.settings.to.clone();
        to.extend(plan.settings.cc.iter().cloned());
        format!(
            "{what} to {}: \"{subject}\" ({} bytes)",
            to.join(", "),
            bytes.len()
        )
    };
    match (&plan.dry_run, &plan.smtp) {
        (Some(path), _) => {
            write(Target::File(path), mode, |out| Ok(out.write_all(&bytes)?))?;
            notice(describe(&format!(
                "email written to {} (dry run), addressed",
                path.display()
            )));
            Ok(Email::Written(path.clone()))
        }
        (None, Some(smtp)) => {
            crate::notify::send(&message, smtp)?;
            notice(describe("email sent"));
            Ok(Email::Sent)
        }
        (None, None) => Ok(Email::None),
    }
}

/// Fetches every report the flags and configuration name, at most the configured number at
/// once.
pub fn fetch_reports(
    api: &FetchFlags,
    cfg: Option<&Config>,
    on_event: FetchObserver,
) -> Result<Vec<(Option<String>, Fetched)>, Error> {
    let (targets, concurrency) = config::fetch_targets(api, cfg)?;
    crate::fetch_all_blocking(&targets, concurrency, on_event)
}

/// The file names of several organizations' reports: each name with anything unusual
/// replaced; names that come out the same (`acme/prod` and `acme:prod`) get a short hash of the
/// organization's name, so that no report overwrites another.
fn org_files(dir: &Path, fetched: &[(Option<String>, Fetched)]) -> Vec<PathBuf> {
    let clean = |org: Option<&str>| -> String {
        org.unwrap_or("report")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let names: Vec<String> = fetched.iter().map(|(o, _)| clean(o.as_deref())).collect();
    names
        .iter()
        .zip(fetched)
        .map(|(name, (org, f))| {
            let shared = names.iter().filter(|n| *n == name).count() > 1;
            let name = if shared {
                let hash = source::sha256_hex(org.as_deref().unwrap_or("").as_bytes());
                format!("{name}-{}", &hash[..8])
            } else {
                name.clone()
            };
            dir.join(format!("{name}.{}", f.format.extension()))
        })
        .collect()
}

/// Saves fetched bodies exactly as served: to `path` (standard output when `None`), or into the
/// folder `path` when there are several organizations (files orgaudit names itself, never
/// written through a link). New files get `mode`.
pub fn save_fetched(
    path: Option<&Path>,
    fetched: &[(Option<String>, Fetched)],
    mode: FileMode,
) -> Result<(), Error> {
    match fetched {
        [(None, one)] => {
            let target = path.map_or(Target::Stdout, Target::File);
            write(target, mode, |out| Ok(out.write_all(&one.body)?)).map(|_| ())
        }
        many => {
            let dir = path.ok_or_else(|| {
                Error::Usage("with several organizations, give a folder to save the reports in (--output DIR or --save-report DIR)".into())
            })?;
            std::fs::create_dir_all(dir).map_err(|e| Error::Output {
                path: dir.display().to_string(),
                source: e,
            })?;
            for ((_, f), file) in many.iter().zip(org_files(dir, many)) {
                write(Target::Own(&file), mode, |out| Ok(out.write_all(&f.body)?))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::worst_exit;

    #[test]
    fn exit_statuses_rank_input_over_network_over_the_gate() {
        assert_eq!(worst_exit([]), 0);
        assert_eq!(worst_exit([0, 1]), 1);
        assert_eq!(worst_exit([1, 3]), 3);
        assert_eq!(worst_exit([3, 2, 1]), 2);
        assert_eq!(worst_exit([2, 3]), 2);
    }
}
