//! A run's plan. What the command line typed ([`Flags`], every field `None` or empty where
//! nothing was given) and the configuration file are merged once, here, into checked settings
//! ([`Plan`]): flags win over the file, the file over [`crate::defaults`]. The CLI only fills
//! `Flags`; a library user can fill them too, or build a `Plan` directly, and [`crate::run()`] it.

use std::path::{Path, PathBuf};

use crate::config::{self, Config, FetchFlags};
use crate::model::Timestamp;
use crate::notify;
use crate::render::Format;
use crate::rules::Severity;
use crate::source::Input;
use crate::{defaults, Error, FetchObserver, RuleOptions};

/// When text output is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    Always,
    Never,
}

/// Email settings as typed; `None` or empty where not given.
#[derive(Debug, Clone, Default)]
pub struct EmailFlags {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub smtp_url: Option<String>,
    pub smtp_password_file: Option<PathBuf>,
    pub smtp_ca_file: Option<PathBuf>,
    pub smtp_insecure: bool,
    pub smtp_retries: Option<u32>,
    /// `--smtp-timeout SECONDS`.
    pub smtp_timeout: Option<f64>,
    pub when: Option<notify::SendWhen>,
    pub attach: Vec<notify::Attach>,
    pub report_url: Option<String>,
    pub dry_run: Option<PathBuf>,
}

/// What the command line of `audit` gave.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--config`: a configuration file the operator names (trusted).
    pub config: Option<PathBuf>,
    /// `--no-config`: read no configuration, not even `./orgaudit.yaml`.
    pub no_config: bool,
    /// A path, or `-` for standard input.
    pub input: Option<String>,
    pub fetch: bool,
    /// The API and how to reach it.
    pub api: FetchFlags,
    pub save_report: Option<PathBuf>,
    pub now: Option<Timestamp>,
    pub format: Option<Format>,
    pub output: Option<PathBuf>,
    pub reports: Vec<crate::render::OutputSpec>,
    pub templates: Option<PathBuf>,
    /// `Some(None)`: `--fail-on none`.
    pub fail_on: Option<Option<Severity>>,
    pub fail_on_new: bool,
    pub baseline: Option<PathBuf>,
    pub waivers: Option<PathBuf>,
    pub waiver_max_days: Option<u32>,
    pub email: EmailFlags,
    pub rules: RuleOptions,
    pub color: ColorWhen,
    /// The mode of new files written (`--file-mode`).
    pub file_mode: Option<crate::output::FileMode>,
    /// Accept a waiver of every rule for every subject.
    pub allow_blanket_waivers: bool,
    /// `--history LOCATION` (`Some`), `--no-history` (`no_history`).
    pub history: Option<String>,
    pub no_history: bool,
    /// Fail the run (exit 3, no outputs) when the history cannot be opened or written.
    pub history_required: bool,
    /// `--org-id`: the organization's key in the history.
    pub org_id: Option<String>,
    /// `--fail-on-overdue`: fail when a finding is past its SLA.
    pub fail_on_overdue: bool,
    /// `-v`: the text report shows each rule's remediation and references.
    pub verbose: bool,
    /// `--org-name`: the organization's display name.
    pub org_name: Option<String>,
    /// `--waiver-warn-days`.
    pub waiver_warn_days: Option<u32>,
    /// `--notify`: services to post a summary to, their URLs from the environment.
    pub notify: Vec<crate::config::NotifyService>,
    /// `--sarif-root`.
    pub sarif_root: Option<PathBuf>,
    /// `--sarif-max-results`.
    pub sarif_max_results: Option<usize>,
}

/// Where the report comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Input(Input),
    /// From the Telnyx API: the targets are worked out (and their keys looked up) when the run
    /// fetches, after the rules are known to be valid.
    Fetch {
        api: FetchFlags,
        /// The raw bodies are kept here too (a folder with several organizations).
        save: Option<PathBuf>,
    },
}

/// What fails a run (exit status 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Gate {
    /// Unwaived findings at or above this severity fail; `None`: no severity gate.
    pub fail_on: Option<Severity>,
    /// Only findings new against the baseline count.
    pub only_new: bool,
}

impl Gate {
    /// The threshold findings are counted at, or `None` when there is no gate.
    pub fn threshold(&self) -> Option<Severity> {
        match (self.fail_on, self.only_new) {
            (Some(s), _) => Some(s),
            (None, true) => Some(Severity::Info),
            (None, false) => None,
        }
    }
}

/// What to send, where and when, checked before the audit runs.
#[derive(Debug, Clone)]
pub struct EmailPlan {
    pub settings: notify::EmailSettings,
    /// `None` with a dry run and no server.
    pub smtp: Option<notify::SmtpSettings>,
    pub when: notify::SendWhen,
    /// Write the message here instead of sending it.
    pub dry_run: Option<PathBuf>,
}

/// A checked plan of an audit run.
#[derive(Clone)]
pub struct Plan {
    pub now: Timestamp,
    pub source: Source,
    /// The configuration file, when one was given (fetch targets come from it).
    pub config: Option<Config>,
    pub rules: RuleOptions,
    pub baseline: Option<PathBuf>,
    /// The waivers file and the furthest a waiver may expire, in days.
    pub waivers: Option<(PathBuf, u32)>,
    pub gate: Gate,
    /// The main output: its format and file (`None`: standard output).
    pub format: Format,
    pub output: Option<PathBuf>,
    /// `--output` is `$GITHUB_STEP_SUMMARY`: appended to, never replaced.
    pub output_append: bool,
    /// Things worth saying about the plan before it runs (a format that disagrees with the
    /// output's extension), for standard error.
    pub notes: Vec<String>,
    /// More outputs, each written whole (or appended).
    pub reports: Vec<crate::render::OutputSpec>,
    pub templates: Option<PathBuf>,
    pub email: Option<EmailPlan>,
    pub color: ColorWhen,
    /// The largest report read, from a file or the API, in bytes.
    pub max_bytes: u64,
    /// The permissions of new files (an existing file keeps its own).
    pub file_mode: crate::output::FileMode,
    /// Accept a waiver of every rule for every subject (`--allow-blanket-waiver`).
    pub allow_blanket_waivers: bool,
    /// The history of runs: where, and the organization's key in it.
    pub history: Option<crate::history::Location>,
    /// `-v`: the text report shows each rule's remediation and references.
    pub verbose: bool,
    /// Runs older than this many days are pruned at each write (`history.retention_days`).
    pub history_retention_days: u32,
    pub org_id: String,
    /// The organization's display name (`--org-name`, `name:`), presentation only: never in a
    /// fingerprint or the history's key.
    pub org_name: Option<String>,
    /// Waivers expiring within this many days are listed at the top of the reports.
    pub waiver_warn_days: u32,
    /// The SARIF output's root folder, result cap and configuration file.
    pub sarif: crate::render::SarifOptions,
    /// Where summaries (and failure alerts) are posted, URLs read from the environment.
    pub webhooks: Vec<notify::webhook::Webhook>,
    /// How they are posted (the report link, retries; the gate is set by the run).
    pub post: notify::webhook::PostSettings,
    /// Hears what the run sends (one line per email or webhook message), for the CLI's stderr.
    pub on_notice: Option<NoticeObserver>,
    pub history_required: bool,
    /// Remediation SLAs (`sla:` in the configuration).
    pub sla: Option<crate::findings::Sla>,
    /// Fail the run when a finding is past its SLA.
    pub fail_on_overdue: bool,
    /// Hears the fetch's progress.
    pub on_fetch: Option<FetchObserver>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("now", &self.now)
            .field("source", &self.source)
            .field("rules", &self.rules)
            .field("gate", &self.gate)
            .field("format", &self.format)
            .field("output", &self.output)
            .field("reports", &self.reports)
            .finish_non_exhaustive()
    }
}

/// Where the history is: `--history`, then `ORGAUDIT_HISTORY`, then the configuration's
/// `history`; with `--no-history`, nowhere.
pub fn history_location(
    no_history: bool,
    flag: Option<String>,
    configured: Option<String>,
) -> Result<Option<crate::history::Location>, Error> {
    let history = match (no_history, flag) {
        (true, _) => None,
        (false, Some(h)) => Some(h),
        (false, None) => std::env::var(crate::defaults::HISTORY_ENV)
            .ok()
            .filter(|h| !h.trim().is_empty())
            .or(configured),
    };
    Ok(history
        .map(|h| crate::history::Location::parse(&h))
        .transpose()?)
}

/// The current time, whole seconds, UTC.
pub fn now() -> Timestamp {
    chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0)
}

impl Plan {
    /// Merges the flags with the configuration file they name (flags win), checks the result,
    /// and fills in the defaults. Nothing is read but the configuration file (and an SMTP
    /// password file); nothing is sent.
    pub fn resolve(flags: Flags) -> Result<Plan, Error> {
        // `--config` names a file the operator trusts; without it, `./orgaudit.yaml` is read when
        // present, as a file from the repository under review: it may not redirect secrets or
        // the report.
        let mut notes = Vec::new();
        let (config_path, trusted) = match (&flags.config, flags.no_config) {
            (Some(p), _) => (Some(p.clone()), true),
            (None, true) => (None, true),
            (None, false) => {
                let found = Path::new(defaults::CONFIG_FILE);
                (found.is_file().then(|| found.to_path_buf()), false)
            }
        };
        let cfg = config_path
            .as_deref()
            .map(|p| config::load(p).map_err(Error::Config))
            .transpose()?;
        if let (Some(c), false) = (&cfg, trusted) {
            let refused = config::untrusted_keys(c);
            if !refused.is_empty() {
                return Err(Error::Usage(format!(
                    "{}: found in the current folder, so it is not trusted (it may come from the repository under review) and may not set {}; name it with --config to trust it, or skip it with --no-config",
                    c.path,
                    refused.join(", ")
                )));
            }
            notes.push(format!(
                "using {} from the current folder (--no-config skips it)",
                c.path
            ));
        }
        let file = cfg.clone().unwrap_or_default();
        let input = flags.input.clone().or(file.input.clone());
        let fetching = flags.fetch || (flags.input.is_none() && file.fetches());
        let source = match (input, fetching) {
            (Some(_), true) => {
                return Err(Error::Usage(
                    "--input and fetching (--fetch, or `organizations` in --config) exclude each other".into(),
                ))
            }
            (None, false) => {
                return Err(Error::Usage(
                    "nothing to audit: give --input PATH (a file, or - for standard input), or --fetch to fetch the report from the Telnyx API".into(),
                ))
            }
            (Some(input), false) => {
                if flags.save_report.is_some() {
                    return Err(Error::Usage("--save-report goes with --fetch".into()));
                }
                Source::Input(Input::from_arg(&input))
            }
            (None, true) => Source::Fetch {
                api: flags.api.clone(),
                save: flags.save_report.clone(),
            },
        };
        let baseline = flags.baseline.clone().or(file.baseline.clone());
        let history = history_location(
            flags.no_history,
            flags.history.clone(),
            file.history.clone(),
        )?;
        let only_new = flags.fail_on_new || file.fail_on_new == Some(true);
        if (flags.fail_on_overdue || file.fail_on_overdue == Some(true))
            && (history.is_none() || file.sla.is_none())
        {
            return Err(Error::Usage(
                "--fail-on-overdue needs a history (--history PATH) and SLAs (sla: in the configuration)".into(),
            ));
        }
        if only_new && baseline.is_none() && history.is_none() {
            return Err(Error::Usage(
                "--fail-on-new needs a baseline or a history: give --history PATH (or --baseline PATH, an earlier JSON output)"
                    .into(),
            ));
        }
        let fail_on = flags
            .fail_on
            .unwrap_or_else(|| file.fail_on.as_deref().and_then(Severity::parse));
        let rules = rule_options(&flags.rules, &file);
        let waivers = flags.waivers.clone().or(file.waivers.clone()).map(|p| {
            let max = flags
                .waiver_max_days
                .or(file.waiver_max_days)
                .unwrap_or(defaults::WAIVER_MAX_DAYS);
            (p, max)
        });
        let email = email_plan(&flags.email, file.email.as_ref())?;
        Ok(Plan {
            now: flags.now.unwrap_or_else(now),
            source,
            rules,
            baseline,
            waivers,
            gate: Gate { fail_on, only_new },
            // `-f`, else what `-o`'s extension names, else text.
            format: flags
                .format
                .or_else(|| flags.output.as_deref().and_then(Format::from_path))
                .unwrap_or(Format::Text),
            output: flags.output.clone(),
            reports: file
                .outputs
                .iter()
                .chain(&flags.reports)
                .map(|o| crate::render::OutputSpec {
                    append: o.append || is_step_summary(&o.path),
                    ..o.clone()
                })
                .collect(),
            output_append: flags.output.as_deref().is_some_and(is_step_summary),
            notes: notes
                .into_iter()
                .chain(format_notes(flags.format, flags.output.as_deref()))
                .collect(),
            templates: flags.templates.clone().or(file.templates.clone()),
            email,
            color: flags.color,
            max_bytes: flags
                .api
                .max_bytes
                .or(file.telnyx.max_bytes)
                .unwrap_or(defaults::API_MAX_BYTES),
            on_fetch: None,
            file_mode: flags.file_mode.or(file.file_mode).unwrap_or_default(),
            allow_blanket_waivers: flags.allow_blanket_waivers
                || file.allow_blanket_waivers == Some(true),
            history,
            verbose: flags.verbose,
            history_retention_days: file
                .history_retention_days
                .unwrap_or(crate::defaults::RETENTION_DAYS),
            org_id: flags
                .org_id
                .clone()
                .or(file.org_id.clone())
                .unwrap_or_else(|| "default".into()),
            org_name: flags.org_name.clone().or(file.name.clone()),
            waiver_warn_days: flags
                .waiver_warn_days
                .or(file.waiver_warn_days)
                .unwrap_or(crate::defaults::WAIVER_WARN_DAYS),
            webhooks: webhooks(&flags.notify, &file.notify, |v| std::env::var(v).ok())?,
            post: notify::webhook::PostSettings {
                report_url: flags
                    .email
                    .report_url
                    .clone()
                    .or(file.email.as_ref().and_then(|e| e.report_url.clone())),
                ..Default::default()
            },
            on_notice: None,
            sarif: crate::render::SarifOptions {
                root: flags
                    .sarif_root
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(".")),
                max_results: flags
                    .sarif_max_results
                    .unwrap_or(crate::defaults::SARIF_MAX_RESULTS),
                config_file: config_path.clone(),
            },
            history_required: flags.history_required,
            sla: file.sla,
            fail_on_overdue: flags.fail_on_overdue || file.fail_on_overdue == Some(true),
            config: cfg,
        })
    }
}

/// The rule options of a run: the configuration's, then the flags' (which win).
pub(crate) fn rule_options(flags: &RuleOptions, file: &Config) -> RuleOptions {
    let mut rules = flags.clone();
    rules.no_builtin |= file.rules.builtin == Some(false);
    rules.paths = file
        .rules
        .paths
        .iter()
        .cloned()
        .chain(rules.paths)
        .collect();
    rules.sets = file
        .rules
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(rules.sets)
        .collect();
    rules.disable.extend(file.rules.disable.iter().cloned());
    rules.limits = file.limits;
    rules.enable.extend(file.rules.enable.iter().cloned());
    rules
}

/// Whether `path` is the file GitHub Actions shows as the step's summary: appended to, since
/// other steps write there too.
fn is_step_summary(path: &Path) -> bool {
    std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|v| !v.is_empty())
        .is_some_and(|v| Path::new(&v) == path)
}

/// A warning when `-f` and `-o`'s extension disagree (`-f json -o out.html`).
fn format_notes(format: Option<Format>, output: Option<&Path>) -> Vec<String> {
    match (
        format,
        output.and_then(|o| Format::from_path(o).map(|f| (o, f))),
    ) {
        (Some(given), Some((path, implied))) if given != implied => vec![format!(
            "warning: writing {} to {}, whose extension means {}",
            given.as_str(),
            path.display(),
            implied.as_str()
        )],
        _ => Vec::new(),
    }
}

/// A line about something the run sent (an email, a webhook message, a failure alert).
pub type NoticeObserver = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// The webhooks of `--notify` (each service's default variable, every run) and `notify:`, each
/// (service, variable) once; a variable that is unset or holds no usable URL is an error naming
/// it.
fn webhooks(
    flags: &[crate::config::NotifyService],
    file: &[crate::config::NotifyTarget],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<notify::webhook::Webhook>, Error> {
    use crate::config::{NotifyTarget, NotifyWhen};
    let mut targets: Vec<NotifyTarget> = Vec::new();
    let from_flags = flags.iter().map(|&service| NotifyTarget {
        service,
        url_env: service.default_env().to_string(),
        when: NotifyWhen::Always,
    });
    for t in file.iter().cloned().chain(from_flags) {
        if !targets
            .iter()
            .any(|x| x.service == t.service && x.url_env == t.url_env)
        {
            targets.push(t);
        }
    }
    targets
        .iter()
        .map(|t| {
            notify::webhook::Webhook::from_env(t.service, &t.url_env, t.when, &env)
                .map_err(|e| Error::Usage(e.to_string()))
        })
        .collect()
}

fn email_plan(
    flags: &EmailFlags,
    file: Option<&config::EmailConfig>,
) -> Result<Option<EmailPlan>, Error> {
    let f = file.cloned().unwrap_or_default();
    let pick = |cli: &Vec<String>, conf: &Vec<String>| {
        if cli.is_empty() {
            conf.clone()
        } else {
            cli.clone()
        }
    };
    let to = pick(&flags.to, &f.to);
    let other_flags = flags.from.is_some()
        || flags.smtp_url.is_some()
        || flags.subject.is_some()
        || !flags.cc.is_empty()
        || !flags.attach.is_empty();
    if to.is_empty() {
        if other_flags || flags.dry_run.is_some() {
            return Err(Error::Usage(
                "email settings without a recipient: give --email-to ADDR (or email.to in the configuration)".into(),
            ));
        }
        return Ok(None);
    }
    let from = flags.from.clone().or(f.from.clone()).ok_or_else(|| {
        Error::Usage(
            "--email-to needs --email-from ADDR (or email.from in the configuration)".into(),
        )
    })?;
    let attach: Vec<notify::Attach> = if flags.attach.is_empty() {
        f.attach
            .iter()
            .map(|a| {
                if a == "html" {
                    notify::Attach::Html
                } else {
                    notify::Attach::Json
                }
            })
            .collect()
    } else {
        flags.attach.clone()
    };
    let when = match (flags.when, f.when.as_deref()) {
        (Some(w), _) => w,
        (None, Some("findings")) => notify::SendWhen::Findings,
        (None, Some("changed")) => notify::SendWhen::Changed,
        (None, _) => notify::SendWhen::Always,
    };
    let settings = notify::EmailSettings {
        to,
        cc: pick(&flags.cc, &f.cc),
        from,
        subject: flags.subject.clone().or(f.subject.clone()),
        attach,
        report_url: flags.report_url.clone().or(f.report_url.clone()),
        ..Default::default()
    };
    let smtp = match flags.smtp_url.clone().or(f.smtp_url.clone()) {
        None if flags.dry_run.is_some() => None,
        None => {
            return Err(Error::Usage(
                "--email-to needs --smtp-url URL (or email.smtp_url in the configuration), or --email-dry-run PATH".into(),
            ))
        }
        Some(url) => {
            if flags.smtp_url.is_some()
                && url::Url::parse(&url).is_ok_and(|u| u.password().is_some())
            {
                return Err(Error::Usage(format!(
                    "--smtp-url {} holds a password, which every process list shows: give it in {} (or --smtp-password-file PATH) instead",
                    notify::redact_url(&url),
                    defaults::SMTP_PASSWORD_ENV
                )));
            }
            let password = match flags.smtp_password_file.as_ref().or(f.password_file.as_ref()) {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|e| {
                            Error::Usage(format!(
                                "{}: cannot read the SMTP password: {e}",
                                p.display()
                            ))
                        })?
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                ),
                None => std::env::var(
                    f.password_env
                        .as_deref()
                        .unwrap_or(defaults::SMTP_PASSWORD_ENV),
                )
                .ok()
                .filter(|p| !p.is_empty()),
            };
            let smtp = notify::SmtpSettings {
                url,
                password,
                insecure: flags.smtp_insecure || f.insecure == Some(true),
                ca_file: flags.smtp_ca_file.clone().or(f.ca_file.clone()),
                retries: flags
                    .smtp_retries
                    .or(f.retries)
                    .unwrap_or(defaults::SMTP_RETRIES),
                timeout: flags
                    .smtp_timeout
                    .or(f.timeout_seconds)
                    .map(std::time::Duration::from_secs_f64)
                    .unwrap_or(defaults::SMTP_TIMEOUT),
            };
            // Refuse bad or unsafe settings now, before the audit runs.
            notify::transport(&smtp)?;
            Some(smtp)
        }
    };
    Ok(Some(EmailPlan {
        settings,
        smtp,
        when,
        dry_run: flags.dry_run.clone(),
    }))
}
