//! The command line: what the user typed (clap definitions), and its translation into library
//! calls. Nothing here decides audit behaviour.
//!
//! Longer than most files: it is the declaration of every command and flag with its help text
//! (what `--help` prints), and their mapping to the library's `Flags`; the work is elsewhere.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use orgaudit::config::{self, Config, FetchFlags};
use orgaudit::notify;
use orgaudit::output::FileMode;
use orgaudit::plan::{self, EmailFlags, Flags, Plan};

use crate::console::{progress, report_error};
use orgaudit::render;
use orgaudit::rules::{RuleSet, Severity};
use orgaudit::run as runs;
use orgaudit::source::telnyx::ReportFormat;
use orgaudit::{Error, RuleOptions};

/// Audit who has access to a Telnyx organization.
#[derive(Debug, Parser)]
#[command(name = "orgaudit", version = VERSION, about, long_about = None)]
#[command(after_help = EXIT_STATUS)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The largest YAML file (rules, configuration, waivers, rule tests) or template read, in
    /// bytes or with KiB, MiB, GiB [default: 16MiB].
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    pub max_text_bytes: Option<u64>,
}

/// The exit statuses, as `--help` and the man page say them (the README's table has the detail).
const EXIT_STATUS: &str = "Exit status: 0 ran (nothing reached --fail-on), 1 findings reached \
--fail-on, 2 bad usage, rules or input, 3 a network, SMTP, webhook or history step failed.";

/// `--version`: the version, the commit it was built from and the build date.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ORGAUDIT_COMMIT"),
    ", built ",
    env!("ORGAUDIT_BUILD_DATE"),
    ")"
);

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit a users groups report and report the findings.
    Audit(Box<AuditArgs>),
    /// Shell completions, e.g. `orgaudit completions bash > /etc/bash_completion.d/orgaudit`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page (roff), e.g. `orgaudit man > orgaudit.1; man ./orgaudit.1`.
    Man,
    /// Start a setup: a commented orgaudit.yaml, a waivers file and a rules folder with an
    /// example rule and its tests (nothing is overwritten).
    Init {
        /// The folder to write them in.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Fetch the users groups report from the Telnyx API and save it exactly as served.
    Fetch(FetchArgs),
    /// List, show, validate rules, or print the rule syntax reference.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Check a configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the JSON Schema of the JSON output (docs/schema/orgaudit-output.schema.json).
    Schema,
    /// The history of runs.
    #[command(subcommand)]
    History(HistoryCommand),
    /// Act on findings: plan the removals rules propose, review the plan, apply it.
    #[command(subcommand)]
    Remediate(RemediateCommand),
}

#[derive(Debug, Subcommand)]
pub enum RemediateCommand {
    /// Audit as `audit` does and write a plan: the users to remove (rules with
    /// `fix: remove_user`), the ones refused (owners), and a checklist of manual fixes; JSON for
    /// `apply`, Markdown to review. Nothing is changed.
    Plan(Box<RemediatePlanArgs>),
    /// Carry out a reviewed plan: a dry run unless --execute. Every user is read again first
    /// and skipped when anything changed since the plan. Removal is irreversible.
    Apply(Box<RemediateApplyArgs>),
}

#[derive(Debug, Args)]
pub struct RemediatePlanArgs {
    #[command(flatten, next_help_heading = "Input")]
    pub source: SourceArgs,
    /// The time the audit takes as now (RFC 3339); default: the current UTC time.
    #[arg(help_heading = "Input", long, value_name = "RFC3339")]
    pub now: Option<String>,
    #[command(flatten, next_help_heading = "Rules and waivers")]
    pub rules: RuleArgs,
    #[command(flatten, next_help_heading = "Rules and waivers")]
    pub waiver: WaiverArgs,
    #[command(flatten, next_help_heading = "Baseline and history")]
    pub baseline_history: HistoryArgs,
    /// The organization's key (in the history and the plan) [default: org_id in the
    /// configuration, or default].
    #[arg(help_heading = "Baseline and history", long, value_name = "ID")]
    pub org_id: Option<String>,
    /// Write the plan (JSON, what `apply` reads) here.
    #[arg(help_heading = "Outputs", long, short = 'o', value_name = "PATH", default_value = orgaudit::defaults::PLAN_FILE)]
    pub output: PathBuf,
    /// Write the plan's Markdown view here [default: the plan's path with .md].
    #[arg(help_heading = "Outputs", long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    /// The organization's name in the plan [default: as `audit` names it].
    #[arg(help_heading = "Outputs", long, value_name = "NAME")]
    pub org_name: Option<String>,
    /// Permissions of new files (octal) [default: 600].
    #[arg(help_heading = "Outputs", long, value_name = "MODE", value_parser = parse_mode)]
    pub file_mode: Option<FileMode>,
    #[command(flatten, next_help_heading = "Configuration and network")]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct RemediateApplyArgs {
    /// The plan `remediate plan` wrote.
    pub plan: PathBuf,
    /// Remove users (irreversible). Without it: a dry run that reads each user and says what
    /// would happen.
    #[arg(long)]
    pub execute: bool,
    /// With --execute: do not ask for confirmation (needed without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Remove at most N users; a plan that would remove more is refused before any call
    /// [default: remediate.max_removals, or 5].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max: Option<u32>,
    /// Refuse a plan older than this: days (7, 7d), hours (12h), minutes (30m), seconds (45s)
    /// [default: remediate.max_age_days, or 7d].
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub max_age: Option<chrono::Duration>,
    /// Apply only these users of the plan (ids); repeatable.
    #[arg(long, value_name = "USER_ID", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Leave these users of the plan alone (ids); repeatable.
    #[arg(long, value_name = "USER_ID", value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Who approved the plan, recorded in the journal.
    #[arg(long, value_name = "NAME")]
    pub approved_by: Option<String>,
    /// The journal (JSON Lines, mode 600) [default: PLAN.journal.jsonl].
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Also keep the journal in this history [default: ORGAUDIT_HISTORY, or history: in the
    /// configuration].
    #[arg(long, value_name = "LOCATION", conflicts_with = "no_history")]
    pub history: Option<String>,
    /// Keep the journal in no history.
    #[arg(long)]
    pub no_history: bool,
    /// The summary's format.
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: ListFormat,
    /// The time taken as now for the plan's age (RFC 3339); default: the current UTC time.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    #[command(flatten, next_help_heading = "Configuration and network")]
    pub api: ApiArgs,
}

fn parse_age(s: &str) -> Result<chrono::Duration, String> {
    orgaudit::remediate::apply::parse_age(s)
        .ok_or_else(|| "expected an age such as 7 (days), 7d, 12h, 30m or 45s".to_string())
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file; print the settings it gives (secrets masked) and every
    /// default with the flag or key that changes it.
    Check {
        /// The configuration file [default: ./orgaudit.yaml, checked as audit reads it from the
        /// current folder: untrusted].
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Also open the connections it names: one API request for one user per organization,
        /// and the SMTP server (nothing is sent).
        #[arg(long)]
        connect: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Recompute the chain of runs: exit 1 naming the first run whose content was changed or
    /// whose predecessor is missing.
    Verify {
        /// The history [default: ORGAUDIT_HISTORY].
        #[arg(long, value_name = "LOCATION")]
        history: Option<String>,
    },
    /// The report a stored run audited (every user with status, flags, times and groups), as
    /// JSON in the API's shape or as CSV.
    Snapshot {
        /// A run id, `latest`, `previous`, or a date (the last run at or before it).
        run: String,
        /// The history [default: ORGAUDIT_HISTORY].
        #[arg(long, value_name = "LOCATION")]
        history: Option<String>,
        /// json or csv.
        #[arg(long, short = 'f', value_enum, default_value = "json")]
        format: FetchFormat,
    },
    /// A stored run re-rendered: as JSON, byte for byte what the run wrote; in another format,
    /// as that run's report would have been.
    Show {
        /// A run id, `latest`, `previous`, or a date (RFC 3339 or YYYY-MM-DD: the last run at or
        /// before it).
        run: String,
        /// The history [default: ORGAUDIT_HISTORY].
        #[arg(long, value_name = "LOCATION")]
        history: Option<String>,
        /// Output format.
        #[arg(long, short = 'f', value_name = "FORMAT", default_value = "json", value_parser = parse_format)]
        format: render::Format,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o', value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Findings by severity over the last runs, new and resolved per run, and each rule's mean
    /// time to resolve.
    Trend {
        /// The history [default: ORGAUDIT_HISTORY].
        #[arg(long, value_name = "LOCATION")]
        history: Option<String>,
        /// The organization's key [default: default].
        #[arg(long, value_name = "ID", default_value = "default")]
        org_id: String,
        /// How many runs.
        #[arg(long, value_name = "N", default_value_t = orgaudit::defaults::TREND_RUNS)]
        runs: usize,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value = "text")]
        format: ListFormat,
    },
    /// Remove the oldest runs, leaving a checkpoint that `verify` accepts.
    Prune {
        /// `90d`: keep the runs of the last 90 days; `12runs`: the newest 12 of each
        /// organization.
        #[arg(long, value_name = "DAYS|RUNS")]
        keep: orgaudit::history::Keep,
        /// The history [default: ORGAUDIT_HISTORY].
        #[arg(long, value_name = "LOCATION")]
        history: Option<String>,
    },
    /// Start a history from JSON outputs people already kept (only into an empty history; the
    /// runs are marked imported).
    Import {
        /// JSON outputs of earlier audits (`-f json`), in any order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The organization's key [default: default].
        #[arg(long, value_name = "ID", default_value = "default")]
        org_id: String,
        /// The history [default: ORGAUDIT_HISTORY].
        #[arg(long, value_name = "LOCATION")]
        history: Option<String>,
    },
    /// Remove a person's data (their findings, their record in snapshots, their address
    /// anywhere in stored outputs); `verify` still passes.
    Forget {
        /// The person's email address.
        #[arg(long, value_name = "EMAIL")]
        user: String,
        /// The history [default: ORGAUDIT_HISTORY].
        #[arg(long, value_name = "LOCATION")]
        history: Option<String>,
    },
    /// The runs, newest first, with their finding counts.
    List {
        /// The history [default: ORGAUDIT_HISTORY].
        #[arg(long, value_name = "LOCATION")]
        history: Option<String>,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value = "text")]
        format: ListFormat,
    },
}

/// `rules list` output.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

/// An output format by name, from the renderers' own list.
fn parse_format(s: &str) -> Result<render::Format, String> {
    render::Format::parse(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = render::Format::ALL.iter().map(|f| f.as_str()).collect();
        format!("unknown format `{s}`; expected one of {}", names.join(", "))
    })
}

/// The output formats' names, for help texts.
fn format_names() -> String {
    let names: Vec<&str> = render::Format::ALL.iter().map(|f| f.as_str()).collect();
    names.join(", ")
}

/// `--smtp-timeout`: seconds, from 1 to an hour.
fn parse_smtp_timeout(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|t| (1.0..=3600.0).contains(t))
        .ok_or_else(|| format!("expected seconds from 1 to 3600, found `{s}`"))
}

/// A `--notify` service by name.
fn parse_notify(s: &str) -> Result<orgaudit::config::NotifyService, String> {
    orgaudit::config::NotifyService::parse(s)
        .ok_or_else(|| format!("unknown service `{s}`; expected one of {}", notify_names()))
}

fn notify_names() -> String {
    let names: Vec<&str> = orgaudit::config::NotifyService::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    names.join(", ")
}

fn notify_envs() -> String {
    let names: Vec<String> = orgaudit::config::NotifyService::ALL
        .iter()
        .map(|s| format!("{}: {}", s.as_str(), s.default_env()))
        .collect();
    names.join(", ")
}

/// `--report`: `FORMAT=PATH` (replaced), `FORMAT+=PATH` (appended to), or `PATH` (the format
/// from its extension).
fn parse_report(s: &str) -> Result<render::OutputSpec, String> {
    let spec = match s.split_once('=') {
        Some((f, p)) => {
            let (f, append) = match f.strip_suffix('+') {
                Some(f) => (f, true),
                None => (f, false),
            };
            if p.trim().is_empty() {
                return Err("expected FORMAT=PATH with a path after `=`".into());
            }
            render::OutputSpec {
                format: parse_format(f)?,
                path: PathBuf::from(p),
                append,
            }
        }
        None => {
            let path = PathBuf::from(s);
            let format = render::Format::from_path(&path).ok_or_else(|| {
                format!(
                    "cannot tell the format of `{s}` from its extension; give FORMAT=PATH (FORMAT one of {})",
                    format_names()
                )
            })?;
            render::OutputSpec {
                format,
                path,
                append: false,
            }
        }
    };
    Ok(spec)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// `--fail-on`: a severity, or `none` (never fail on findings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailOn(Option<Severity>);

impl FailOn {
    fn parse(s: &str) -> Result<FailOn, String> {
        match s {
            "none" => Ok(FailOn(None)),
            other => Severity::parse(other).map(|v| FailOn(Some(v))).ok_or_else(|| {
                format!("unknown severity `{other}`; expected critical, high, medium, low, info or none")
            }),
        }
    }
}

/// Which rules run.
#[derive(Debug, Clone, Args)]
pub struct RuleArgs {
    /// A rule file or a folder of them (`*.yaml`, `*.yml`); repeatable.
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Leave out the built-in rule pack.
    #[arg(long)]
    pub no_builtin: bool,
    /// Override a rule parameter; VALUE is YAML (e.g. `stale-sign-in.stale_after_days=60`,
    /// `external-email-domain.allowed_domains=[example.com]`); repeatable.
    #[arg(long = "set", value_name = "RULE_ID.PARAM=VALUE")]
    pub sets: Vec<String>,
    /// Do not run this rule; repeatable.
    #[arg(long, value_name = "RULE_ID")]
    pub disable: Vec<String>,
    /// Run this rule even if its file says `enabled: false`; repeatable.
    #[arg(long, value_name = "RULE_ID")]
    pub enable: Vec<String>,
}

impl RuleArgs {
    fn options(&self) -> RuleOptions {
        RuleOptions {
            no_builtin: self.no_builtin,
            paths: self.rules.clone(),
            sets: self.sets.clone(),
            disable: self.disable.clone(),
            enable: self.enable.clone(),
            limits: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FetchFormat {
    Json,
    Csv,
}

impl From<FetchFormat> for ReportFormat {
    fn from(f: FetchFormat) -> Self {
        match f {
            FetchFormat::Json => ReportFormat::Json,
            FetchFormat::Csv => ReportFormat::Csv,
        }
    }
}

/// How to reach the Telnyx API. The key comes from TELNYX_API_KEY (or each organization's
/// `api_key_env` in the configuration), never from the command line.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// The configuration file (orgaudit.yaml): source, organizations, rules, outputs, gates,
    /// waivers, email. Command-line flags override it.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Read the API key from this file (its first line) instead of TELNYX_API_KEY.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
    /// The API's base URL, including /v2 [default: TELNYX_BASE_URL, or https://api.telnyx.com/v2].
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Retries on connection errors, 408, 409, 429 and 5xx [default: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=10))]
    pub retries: Option<u32>,
    /// Seconds for each attempt, from request to the body's last byte [default: 60].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// The largest report accepted, fetched or read from a file (and the largest baseline), in
    /// bytes or with KiB, MiB, GiB [default: 1GiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_bytes: Option<u64>,
    /// Say what each request does on standard error; in the text report, each rule's
    /// remediation and references.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86400.0 => Ok(v),
        _ => Err("expected a number of seconds greater than 0, at most 86400".into()),
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        _ => return Err("expected bytes, e.g. 1048576, 512MiB or 2GiB".into()),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| "expected bytes, e.g. 1048576, 512MiB or 2GiB".into())
}

fn parse_mode(s: &str) -> Result<FileMode, String> {
    FileMode::parse(s).ok_or_else(|| "expected octal permissions such as 600 or 0640".into())
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The body to ask for.
    #[arg(long, short = 'f', value_enum, default_value = "json")]
    pub format: FetchFormat,
    /// Save to this file (a folder, with several organizations) instead of standard output.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Permissions of new files (octal); an existing file keeps its own [default: 600].
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub file_mode: Option<FileMode>,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmailWhen {
    Always,
    Findings,
    Changed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmailAttach {
    Html,
    Json,
}

/// Sending the findings by email. The SMTP password comes from ORGAUDIT_SMTP_PASSWORD or
/// --smtp-password-file, never from a plain argument.
#[derive(Debug, Clone, Args)]
pub struct EmailArgs {
    /// Send the findings to this address; repeatable.
    #[arg(long, value_name = "ADDR")]
    pub email_to: Vec<String>,
    /// Copy to this address; repeatable.
    #[arg(long, value_name = "ADDR")]
    pub email_cc: Vec<String>,
    /// The sender, e.g. "orgaudit <orgaudit@acme.example>".
    #[arg(long, value_name = "ADDR")]
    pub email_from: Option<String>,
    /// The subject, a minijinja template [default: orgaudit: N findings (...) in ORG].
    #[arg(long, value_name = "TEMPLATE")]
    pub email_subject: Option<String>,
    /// The SMTP server: smtp://host[:port] (STARTTLS when offered; ?tls=required to insist) or
    /// smtps://host[:465], with an optional user@.
    #[arg(long, value_name = "URL")]
    pub smtp_url: Option<String>,
    /// Read the SMTP password from this file instead of ORGAUDIT_SMTP_PASSWORD.
    #[arg(long, value_name = "PATH")]
    pub smtp_password_file: Option<PathBuf>,
    /// Trust this CA certificate (PEM) for the SMTP server's TLS, besides the system's.
    #[arg(long, value_name = "PATH")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Allow the password over a connection that may stay unencrypted to a non-loopback host.
    #[arg(long)]
    pub smtp_insecure: bool,
    /// Retries on 4xx replies and connection errors [default: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=10))]
    pub smtp_retries: Option<u32>,
    /// Seconds the SMTP client waits on the server, per step [default: 60].
    #[arg(long, value_name = "SECONDS", value_parser = parse_smtp_timeout)]
    pub smtp_timeout: Option<f64>,
    /// When to send [default: always: "nothing found" is evidence too].
    #[arg(long, value_enum, value_name = "WHEN")]
    pub email_when: Option<EmailWhen>,
    /// Also attach these (the CSV of findings is always attached); comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "html,json")]
    pub email_attach: Vec<EmailAttach>,
    /// A link to the full report (e.g. the CI run's artifact) shown in the email.
    #[arg(long, value_name = "URL")]
    pub report_url: Option<String>,
    /// Write the exact message to this .eml file instead of sending it.
    #[arg(long, value_name = "PATH")]
    pub email_dry_run: Option<PathBuf>,
}

/// Where the report comes from: `audit` and `remediate plan`.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Read no configuration file, not even ./orgaudit.yaml (which is otherwise read when it
    /// is there, as an untrusted file).
    #[arg(long, conflicts_with = "config")]
    pub no_config: bool,
    /// The report: a JSON or CSV file, or `-` for standard input. The format is detected from
    /// the content.
    #[arg(long, short = 'i', value_name = "PATH", conflicts_with = "fetch")]
    pub input: Option<String>,
    /// Fetch the report from the Telnyx API instead (implied by `organizations` in --config).
    #[arg(long)]
    pub fetch: bool,
}

/// Accepted risks: `audit` and `remediate plan`.
#[derive(Debug, Clone, Args)]
pub struct WaiverArgs {
    /// Accepted risks (a YAML file of `waivers:`); a waived finding is shown but not gated on,
    /// and never planned for remediation.
    #[arg(long, value_name = "PATH")]
    pub waivers: Option<PathBuf>,
    /// Accept a waiver with `all_subjects: true` whose rule pattern covers every rule (it
    /// silences the whole gate; refused otherwise).
    #[arg(long)]
    pub allow_blanket_waiver: bool,
    /// The furthest a waiver may expire, in days from now [default: 365].
    #[arg(long, value_name = "DAYS")]
    pub waiver_max_days: Option<u32>,
}

/// The baseline and the history read: `audit` and `remediate plan`.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// An earlier JSON output of orgaudit: mark findings new or unchanged, and list the resolved.
    #[arg(long, value_name = "PATH")]
    pub baseline: Option<PathBuf>,
    /// Keep a history of runs here (a file path or sqlite:PATH; created on first use): findings
    /// get first_seen and age_days, and the previous run is the baseline [default:
    /// ORGAUDIT_HISTORY, or history: in the configuration].
    #[arg(long, value_name = "LOCATION", conflicts_with = "no_history")]
    pub history: Option<String>,
    /// Keep no history, whatever ORGAUDIT_HISTORY or the configuration say.
    #[arg(long)]
    pub no_history: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten, next_help_heading = "Input")]
    pub source: SourceArgs,
    /// With --fetch: the body to ask the API for.
    #[arg(help_heading = "Input", long, value_enum, default_value = "json")]
    pub fetch_format: FetchFormat,
    /// With --fetch: also save the raw body here (a folder, with several organizations).
    #[arg(help_heading = "Input", long, value_name = "PATH")]
    pub save_report: Option<PathBuf>,
    /// The time the audit takes as now (RFC 3339); default: the current UTC time.
    #[arg(help_heading = "Input", long, value_name = "RFC3339")]
    pub now: Option<String>,
    #[command(flatten, next_help_heading = "Rules and waivers")]
    pub rules: RuleArgs,
    #[command(flatten, next_help_heading = "Rules and waivers")]
    pub waiver: WaiverArgs,
    /// List the waivers that expire within this many days at the top of the reports
    /// [default: 14].
    #[arg(help_heading = "Rules and waivers", long, value_name = "DAYS")]
    pub waiver_warn_days: Option<u32>,
    /// Exit with status 1 when an unwaived finding is at or above this severity: critical, high,
    /// medium, low, info, or none [default: none].
    #[arg(help_heading = "Gate, baseline and history", long, value_name = "SEVERITY", value_parser = FailOn::parse)]
    pub fail_on: Option<FailOn>,
    /// Gate only on findings that are new against --baseline (at or above --fail-on, or any
    /// severity without it).
    #[arg(help_heading = "Gate, baseline and history", long)]
    pub fail_on_new: bool,
    /// Exit 1 when an unwaived finding is past its SLA (`sla:` in the configuration; needs a
    /// history); combines with --fail-on by OR.
    #[arg(help_heading = "Gate, baseline and history", long)]
    pub fail_on_overdue: bool,
    #[command(flatten, next_help_heading = "Gate, baseline and history")]
    pub baseline_history: HistoryArgs,
    /// Fail (exit 3, no outputs) when the history cannot be opened or written; by default the
    /// outputs are written and the run exits 3.
    #[arg(help_heading = "Gate, baseline and history", long)]
    pub history_required: bool,
    /// The organization's key in the history [default: org_id in the configuration, or default].
    #[arg(help_heading = "Gate, baseline and history", long, value_name = "ID")]
    pub org_id: Option<String>,
    #[arg(help_heading = "Outputs", long, short = 'f', value_name = "FORMAT", value_parser = parse_format,
          help = format!("Output format: {} (any case) [default: from -o's extension, else \
                          text]", format_names()))]
    pub format: Option<render::Format>,
    /// Write the output to this file instead of standard output (replaced whole; a link,
    /// device or FIFO is written where it is).
    #[arg(help_heading = "Outputs", long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    #[arg(help_heading = "Outputs", long = "report", value_name = "FORMAT=PATH", value_parser = parse_report,
          help = format!("Also write FORMAT to PATH ({}); repeatable. `FORMAT+=PATH` appends \
                          (as does $GITHUB_STEP_SUMMARY always); a PATH alone takes the format \
                          of its extension. The audit runs once and every output shows the \
                          same findings", format_names()))]
    pub reports: Vec<render::OutputSpec>,
    /// Permissions of new files written (octal): reports, saved reports, the `.eml`; an
    /// existing file keeps its own [default: 600].
    #[arg(help_heading = "Outputs", long, value_name = "MODE", value_parser = parse_mode)]
    pub file_mode: Option<FileMode>,
    /// SARIF: artifact paths are written relative to this folder (the repository's checkout,
    /// for an upload to code scanning) [default: the current folder].
    #[arg(help_heading = "Outputs", long, value_name = "DIR")]
    pub sarif_root: Option<PathBuf>,
    /// SARIF: write at most this many results, the most severe first (GitHub accepts 25,000
    /// per run) [default: 5000].
    #[arg(help_heading = "Outputs", long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub sarif_max_results: Option<u64>,
    /// Use the templates in this folder (report.html, report.md, junit.xml, email.txt,
    /// email.html) instead of the built-in ones; a name it lacks falls back to the built-in one.
    #[arg(help_heading = "Outputs", long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// The organization's name in every header and the email subject (presentation only)
    /// [default: name in the configuration, the organizations' names, the file name or the API
    /// host].
    #[arg(help_heading = "Outputs", long, value_name = "NAME")]
    pub org_name: Option<String>,
    /// Colour in text output.
    #[arg(
        help_heading = "Outputs",
        long,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: ColorWhen,
    /// Do not print warnings on standard error.
    #[arg(help_heading = "Outputs", long, short = 'q')]
    pub quiet: bool,
    #[command(flatten, next_help_heading = "Email and notifications")]
    pub email: EmailArgs,
    #[arg(help_heading = "Email and notifications", long, value_name = "SERVICE", value_delimiter = ',', value_parser = parse_notify,
          help = format!("Post a summary after the run, and an alert when it cannot run, to \
                          these services ({}); each URL is read from its environment variable \
                          ({}), never given on the command line", notify_names(), notify_envs()))]
    pub notify: Vec<orgaudit::config::NotifyService>,
    #[command(flatten, next_help_heading = "Configuration and network")]
    pub api: ApiArgs,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// One line per rule: id, severity, scope, enabled, title.
    List {
        #[command(flatten)]
        rules: RuleArgs,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value = "text")]
        format: ListFormat,
    },
    /// Everything about one rule, with its parameters' current values.
    Show {
        /// The rule id.
        id: String,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Check rule files and report every problem with file:line:column.
    Validate {
        /// Rule files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Check as an audit with --no-builtin would: the built-in rules' ids are free to use.
        #[arg(long)]
        no_builtin: bool,
    },
    /// Run rule tests (`*.test.yaml` next to the rules) and report like a test runner.
    Test {
        /// Test files, or folders to search for `*.test.yaml`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the rule syntax reference (fields, operators, condition forms) as Markdown.
    Reference,
}

/// Runs a command; `Ok` holds its exit status.
pub fn run(cli: Cli) -> Result<u8, Error> {
    if let Some(n) = cli.max_text_bytes {
        orgaudit::defaults::set_text_max_bytes(n);
    }
    match cli.command {
        Command::Audit(args) => audit(*args),
        Command::Fetch(args) => fetch(args),
        Command::Remediate(RemediateCommand::Plan(args)) => remediate_plan(*args),
        Command::Remediate(RemediateCommand::Apply(args)) => remediate_apply(*args),
        Command::Rules(cmd) => rules(cmd),
        Command::History(HistoryCommand::Verify { history }) => {
            let mut store = orgaudit::history::open_named(history, false)?;
            match store.verify()? {
                orgaudit::history::Verified::Intact {
                    runs,
                    head,
                    redacted,
                    pruned_before,
                } => {
                    println!(
                        "history intact: {runs} run{}, head {}",
                        if runs == 1 { "" } else { "s" },
                        head.as_deref().unwrap_or("(empty)")
                    );
                    if pruned_before > 0 {
                        println!("  {pruned_before} earlier run(s) pruned behind a checkpoint");
                    }
                    if redacted > 0 {
                        println!(
                            "  {redacted} run(s) redacted by `history forget`: linked by their recorded hashes, content not checkable"
                        );
                    }
                    Ok(0)
                }
                orgaudit::history::Verified::Broken { run, why } => {
                    println!("history broken at run {run}: {why}");
                    Ok(1)
                }
            }
        }
        Command::History(HistoryCommand::Snapshot {
            run,
            history,
            format,
        }) => {
            let mut store = orgaudit::history::open_named(history, false)?;
            let runs = store.list()?;
            let id = orgaudit::history::find_run(&runs, &run)?;
            let report = store.snapshot(id)?.ok_or_else(|| {
                Error::Usage(format!(
                    "run {id} kept no snapshot (a run of several organizations, or an imported one, keeps none)"
                ))
            })?;
            write_output(None, |out| match format {
                FetchFormat::Json => Ok(orgaudit::source::write_json(&report, out)?),
                FetchFormat::Csv => Ok(orgaudit::source::write_csv(&report, out)?),
            })?;
            Ok(0)
        }
        Command::History(HistoryCommand::Show {
            run,
            history,
            format,
            output,
        }) => {
            let mut store = orgaudit::history::open_named(history, false)?;
            let shown = orgaudit::history::show(&mut *store, &run, format)?;
            write_output(output.as_ref(), |out| Ok(out.write_all(&shown)?))?;
            Ok(0)
        }
        Command::History(HistoryCommand::Trend {
            history,
            org_id,
            runs,
            format,
        }) => {
            let mut store = orgaudit::history::open_named(history, false)?;
            let trend = orgaudit::history::trend(&mut *store, &org_id, runs)?;
            write_output(None, |out| match format {
                ListFormat::Json => {
                    serde_json::to_writer_pretty(&mut *out, &trend)
                        .map_err(std::io::Error::from)?;
                    Ok(out.write_all(b"\n")?)
                }
                ListFormat::Text => Ok(trend.write_text(out)?),
            })?;
            Ok(0)
        }
        Command::History(HistoryCommand::Prune { keep, history }) => {
            let mut store = orgaudit::history::open_named(history, false)?;
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let pruned = store.prune(keep, &now)?;
            println!("pruned {} run(s)", pruned.removed);
            if let Some(cp) = &pruned.checkpoint {
                println!(
                    "checkpoint: through run {}, head {}",
                    cp.through_run, cp.head
                );
            }
            if pruned.kept_for_chain > 0 {
                println!(
                    "{} old run(s) kept: newer runs before them in the chain are kept",
                    pruned.kept_for_chain
                );
            }
            Ok(0)
        }
        Command::History(HistoryCommand::Import {
            files,
            org_id,
            history,
        }) => {
            let outputs =
                orgaudit::history::read_outputs(&files, orgaudit::defaults::API_MAX_BYTES)?;
            let mut store = orgaudit::history::open_named(history, true)?;
            let n = store.import(&org_id, outputs)?;
            println!(
                "imported {n} run(s) of `{}`",
                render::safe::terminal(&org_id)
            );
            Ok(0)
        }
        Command::History(HistoryCommand::Forget { user, history }) => {
            let mut store = orgaudit::history::open_named(history, false)?;
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let n = store.forget(&user, &now)?;
            println!("removed the person's data from {n} run(s)");
            Ok(0)
        }
        Command::History(HistoryCommand::List { history, format }) => {
            let runs = orgaudit::history::open_named(history, false)?.list()?;
            write_output(None, |out| match format {
                ListFormat::Json => {
                    serde_json::to_writer_pretty(&mut *out, &runs).map_err(std::io::Error::from)?;
                    Ok(out.write_all(b"\n")?)
                }
                ListFormat::Text => {
                    writeln!(
                        out,
                        "{:>6}  {:<20}  {:<22}  {:>8}  {:>8}",
                        "RUN", "ORGANIZATION", "AUDITED AT", "FINDINGS", "UNWAIVED"
                    )?;
                    for r in &runs {
                        writeln!(
                            out,
                            "{:>6}  {:<20}  {:<22}  {:>8}  {:>8}",
                            r.id,
                            render::safe::terminal(&r.organization),
                            r.audited_at,
                            r.findings,
                            r.unwaived
                        )?;
                    }
                    Ok(())
                }
            })?;
            Ok(0)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "orgaudit", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => {
            let mut out = Vec::new();
            man_page(&mut out).map_err(|source| Error::Output {
                path: "<stdout>".into(),
                source,
            })?;
            write_output(None, |w| Ok(w.write_all(&out)?))?;
            Ok(0)
        }
        Command::Init { dir } => {
            let written = orgaudit::init::scaffold(&dir).map_err(|e| match e {
                orgaudit::init::InitError::Exists(_) => Error::Usage(e.to_string()),
                orgaudit::init::InitError::Io { path, source } => Error::Output { path, source },
            })?;
            for p in &written {
                println!("wrote {}", render::safe::terminal(&p.display().to_string()));
            }
            println!(
                "next: orgaudit config check, then orgaudit audit --input REPORT (or --fetch); orgaudit rules test {} runs the example rule's tests",
                dir.join("rules").display()
            );
            Ok(0)
        }
        Command::Schema => {
            let schema = orgaudit::findings::output_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("a schema serializes")
            );
            Ok(0)
        }
        Command::Config(ConfigCommand::Check { config, connect }) => {
            let trusted = config.is_some();
            let path = config.unwrap_or_else(|| PathBuf::from(orgaudit::defaults::CONFIG_FILE));
            let checked = orgaudit::check::check(&path, trusted, connect)?;
            print!("{}", checked.settings);
            for line in &checked.reached {
                println!("reached: {}", render::safe::terminal(line));
            }
            for p in checked.problems.iter().chain(&checked.unreachable) {
                eprintln!("error: {}", render::safe::terminal(p));
            }
            let n = checked.problems.len() + checked.unreachable.len();
            if n == 0 {
                println!(
                    "ok: everything it names loads{}",
                    if connect {
                        ", and every connection opens"
                    } else {
                        ""
                    }
                );
            } else {
                eprintln!(
                    "orgaudit: {n} problem{} in {}",
                    if n == 1 { "" } else { "s" },
                    path.display()
                );
            }
            Ok(checked.exit_code())
        }
    }
}

/// The manual page: the top-level page, then one section per command with its options, from
/// the same definitions as `--help` (the version without the commit, so that the committed
/// `docs/orgaudit.1` only changes with the version).
pub fn man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command().version(env!("CARGO_PKG_VERSION"));
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        writeln!(out, ".SH \"ORGAUDIT {}\"", sub.get_name().to_uppercase())?;
        let sub_man =
            clap_mangen::Man::new(sub.clone().bin_name(format!("orgaudit {}", sub.get_name())));
        sub_man.render_synopsis_section(out)?;
        sub_man.render_description_section(out)?;
        sub_man.render_options_section(out)?;
        if sub.has_subcommands() {
            sub_man.render_subcommands_section(out)?;
        }
    }
    writeln!(
        out,
        ".SH \"EXIT STATUS\"\n{}",
        EXIT_STATUS.replace('-', "\\-")
    )?;
    man.render_version_section(out)?;
    Ok(())
}

fn parse_now(s: &str) -> Result<orgaudit::model::Timestamp, Error> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            Error::Usage(format!(
                "--now {s:?} is not an RFC 3339 time; expected e.g. 2026-01-31T00:00:00Z"
            ))
        })
}

fn load_config(api: &ApiArgs) -> Result<Option<Config>, Error> {
    api.config
        .as_deref()
        .map(|p| config::load(p).map_err(Error::Config))
        .transpose()
}

fn fetch_flags(api: &ApiArgs, format: FetchFormat) -> FetchFlags {
    FetchFlags {
        api_key_file: api.api_key_file.clone(),
        base_url: api.base_url.clone(),
        retries: api.retries,
        timeout_seconds: api.timeout,
        max_bytes: api.max_bytes,
        format: Some(format.into()),
    }
}

fn fetch(args: FetchArgs) -> Result<u8, Error> {
    let cfg = load_config(&args.api)?;
    let fetched = runs::fetch_reports(
        &fetch_flags(&args.api, args.format),
        cfg.as_ref(),
        progress(args.api.verbose),
    )?;
    let mode = args
        .file_mode
        .or(cfg.as_ref().and_then(|c| c.file_mode))
        .unwrap_or_default();
    runs::save_fetched(args.output.as_deref(), &fetched, mode)?;
    Ok(0)
}

impl AuditArgs {
    /// What was typed, for the library's plan.
    fn flags(&self) -> Result<Flags, Error> {
        let e = &self.email;
        Ok(Flags {
            config: self.api.config.clone(),
            no_config: self.source.no_config,
            input: self.source.input.clone(),
            fetch: self.source.fetch,
            api: fetch_flags(&self.api, self.fetch_format),
            save_report: self.save_report.clone(),
            now: self.now.as_deref().map(parse_now).transpose()?,
            format: self.format,
            output: self.output.clone(),
            reports: self.reports.clone(),
            templates: self.templates.clone(),
            fail_on: self.fail_on.map(|f| f.0),
            fail_on_new: self.fail_on_new,
            baseline: self.baseline_history.baseline.clone(),
            waivers: self.waiver.waivers.clone(),
            waiver_max_days: self.waiver.waiver_max_days,
            waiver_warn_days: self.waiver_warn_days,
            notify: self.notify.clone(),
            sarif_root: self.sarif_root.clone(),
            sarif_max_results: self.sarif_max_results.map(|n| n as usize),
            email: EmailFlags {
                to: e.email_to.clone(),
                cc: e.email_cc.clone(),
                from: e.email_from.clone(),
                subject: e.email_subject.clone(),
                smtp_url: e.smtp_url.clone(),
                smtp_password_file: e.smtp_password_file.clone(),
                smtp_ca_file: e.smtp_ca_file.clone(),
                smtp_insecure: e.smtp_insecure,
                smtp_retries: e.smtp_retries,
                smtp_timeout: e.smtp_timeout,
                when: e.email_when.map(|w| match w {
                    EmailWhen::Always => notify::SendWhen::Always,
                    EmailWhen::Findings => notify::SendWhen::Findings,
                    EmailWhen::Changed => notify::SendWhen::Changed,
                }),
                attach: e
                    .email_attach
                    .iter()
                    .map(|a| match a {
                        EmailAttach::Html => notify::Attach::Html,
                        EmailAttach::Json => notify::Attach::Json,
                    })
                    .collect(),
                report_url: e.report_url.clone(),
                dry_run: e.email_dry_run.clone(),
            },
            rules: self.rules.options(),
            file_mode: self.file_mode,
            allow_blanket_waivers: self.waiver.allow_blanket_waiver,
            history: self.baseline_history.history.clone(),
            no_history: self.baseline_history.no_history,
            history_required: self.history_required,
            org_id: self.org_id.clone(),
            org_name: self.org_name.clone(),
            fail_on_overdue: self.fail_on_overdue,
            verbose: self.api.verbose,
            color: match self.color {
                ColorWhen::Auto => plan::ColorWhen::Auto,
                ColorWhen::Always => plan::ColorWhen::Always,
                ColorWhen::Never => plan::ColorWhen::Never,
            },
        })
    }
}

fn audit(args: AuditArgs) -> Result<u8, Error> {
    let mut plan = Plan::resolve(args.flags()?)?;
    for note in &plan.notes {
        eprintln!("orgaudit: {}", render::safe::terminal(note));
    }
    plan.on_fetch = Some(progress(args.api.verbose));
    plan.on_notice = Some(std::sync::Arc::new(|line: &str| {
        eprintln!("orgaudit: {}", render::safe::terminal(line));
    }));
    let outcome = orgaudit::run(&plan)?;
    let mut err = std::io::stderr().lock();
    if !args.quiet {
        for w in &outcome.report.warnings {
            let _ = writeln!(err, "{}", render::safe::terminal(&w.to_string()));
        }
    }
    if !outcome.first_run.is_empty() && args.fail_on_new {
        let _ = writeln!(err, "orgaudit: no previous run: gating on all findings");
    }
    if outcome.email == runs::Email::Skipped {
        let _ = writeln!(
            err,
            "orgaudit: nothing to report, so no email (--email-when)"
        );
    }
    drop(err);
    for e in &outcome.failures {
        report_error(e);
    }
    let mut err = std::io::stderr().lock();
    if let runs::Verdict::Fail {
        count,
        threshold,
        only_new,
    } = outcome.verdict
    {
        let waived = outcome.report.summary.waived;
        let _ = writeln!(
            err,
            "orgaudit: {count} unwaived{} finding{} at or above {threshold} (--fail-on {threshold}{}){}",
            if only_new { " new" } else { "" },
            if count == 1 { "" } else { "s" },
            if only_new { " --fail-on-new" } else { "" },
            if waived > 0 { format!("; {waived} waived") } else { String::new() }
        );
    }
    if let Some(n) = outcome.overdue.filter(|n| *n > 0) {
        let _ = writeln!(
            err,
            "orgaudit: {n} finding{} past {} SLA (--fail-on-overdue)",
            if n == 1 { "" } else { "s" },
            if n == 1 { "its" } else { "their" }
        );
    }
    let code = outcome.exit_code();
    // A million findings are a million small allocations: the process ends now, so let the
    // operating system take them back at once instead of freeing them one by one.
    std::mem::forget(outcome);
    Ok(code)
}

fn remediate_plan(args: RemediatePlanArgs) -> Result<u8, Error> {
    let flags = Flags {
        config: args.api.config.clone(),
        no_config: args.source.no_config,
        input: args.source.input.clone(),
        fetch: args.source.fetch,
        api: fetch_flags(&args.api, FetchFormat::Json),
        now: args.now.as_deref().map(parse_now).transpose()?,
        baseline: args.baseline_history.baseline.clone(),
        waivers: args.waiver.waivers.clone(),
        waiver_max_days: args.waiver.waiver_max_days,
        rules: args.rules.options(),
        file_mode: args.file_mode,
        allow_blanket_waivers: args.waiver.allow_blanket_waiver,
        history: args.baseline_history.history.clone(),
        no_history: args.baseline_history.no_history,
        org_id: args.org_id.clone(),
        org_name: args.org_name.clone(),
        verbose: args.api.verbose,
        ..Flags::default()
    };
    let mut plan = Plan::resolve(flags)?;
    plan.on_fetch = Some(progress(args.api.verbose));
    let key = orgaudit::remediate::PlanKey::from_env();
    let planned = orgaudit::remediate::write_plan(
        &plan,
        &args.output,
        args.markdown.as_deref(),
        key.as_ref(),
    )?;
    let summary = planned.summary();
    write_output(None, |out| Ok(out.write_all(summary.as_bytes())?))?;
    for e in &planned.failures {
        report_error(e);
    }
    Ok(runs::worst_exit(
        planned.failures.iter().map(|e| e.exit_code()),
    ))
}

fn remediate_apply(args: RemediateApplyArgs) -> Result<u8, Error> {
    use std::io::IsTerminal;
    // A confirmation is asked on a terminal; elsewhere --yes must say it, before anything.
    if args.execute && !args.yes && !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "--execute without a terminal to confirm on: add --yes (after reviewing the plan)"
                .to_string(),
        ));
    }
    let cfg = load_config(&args.api)?;
    let verbose = args.api.verbose;
    let on_event: std::sync::Arc<dyn Fn(&str) + Send + Sync> =
        std::sync::Arc::new(move |line: &str| {
            // Retries only with -v; each user's outcome always.
            if verbose || !line.contains("trying again") {
                eprintln!("orgaudit: {}", render::safe::terminal(line));
            }
        });
    let confirm: Option<orgaudit::remediate::apply::Confirm> =
        (args.execute && !args.yes).then(|| {
            Box::new(|p: &orgaudit::remediate::apply::Preview| {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(
                    err,
                    "About to remove {} user{} from {}. Removal is irreversible: no API call adds a user back.",
                    p.removals,
                    if p.removals == 1 { "" } else { "s" },
                    render::safe::terminal(&p.organization)
                );
                for (id, email) in &p.users {
                    let _ = writeln!(
                        err,
                        "  {} ({})",
                        render::safe::terminal(email),
                        render::safe::terminal(id)
                    );
                }
                let _ = write!(err, "Type yes to go on: ");
                let _ = err.flush();
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == "yes"
            }) as orgaudit::remediate::apply::Confirm
        });
    let outcome = orgaudit::remediate::apply(orgaudit::remediate::ApplyOptions {
        plan: args.plan.clone(),
        execute: args.execute,
        max_removals: args.max,
        max_age: args.max_age,
        only: args.only.clone(),
        exclude: args.exclude.clone(),
        approved_by: args.approved_by.clone(),
        journal: args.journal.clone(),
        history: args.history.clone(),
        no_history: args.no_history,
        config: cfg,
        api: fetch_flags(&args.api, FetchFormat::Json),
        now: match args.now.as_deref() {
            Some(s) => parse_now(s)?,
            None => plan::now(),
        },
        key: orgaudit::remediate::PlanKey::from_env(),
        confirm,
        on_event,
    })?;
    write_output(None, |out| match args.format {
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &outcome.to_json())
                .map_err(std::io::Error::from)?;
            Ok(out.write_all(b"\n")?)
        }
        ListFormat::Text => Ok(out.write_all(outcome.summary_table().as_bytes())?),
    })?;
    Ok(outcome.exit_code)
}

/// Writes an output to a file or standard output ([`orgaudit::output`]).
fn write_output(
    path: Option<&PathBuf>,
    f: impl FnOnce(&mut dyn Write) -> Result<(), render::RenderError>,
) -> Result<(), Error> {
    use orgaudit::output::{self, OutputError, Target};
    let target = path.map_or(Target::Stdout, |p| Target::File(p));
    match output::write(target, FileMode::default(), f) {
        Ok(_) => Ok(()),
        Err(OutputError::Io { path, source }) => Err(Error::Output { path, source }),
        Err(OutputError::Produce(render::RenderError::Template(t))) => Err(Error::Template(t)),
        Err(OutputError::Produce(render::RenderError::Io(source))) => Err(Error::Output {
            path: target.name(),
            source,
        }),
    }
}

fn rules(cmd: RulesCommand) -> Result<u8, Error> {
    match cmd {
        RulesCommand::List { rules, format } => {
            let set = orgaudit::load_rules(&rules.options())?;
            write_output(None, |out| match format {
                ListFormat::Json => {
                    let list: Vec<_> = set
                        .rules()
                        .iter()
                        .map(|r| {
                            serde_json::json!({
                                "id": r.id, "title": r.title, "severity": r.severity,
                                "default_severity": r.default_severity,
                                "scope": r.scope, "enabled": r.enabled, "tags": r.tags,
                                "references": r.references, "params": r.params_json(),
                                "fix": r.fix.action, "origin": r.origin.to_string(),
                            })
                        })
                        .collect();
                    serde_json::to_writer_pretty(&mut *out, &list).map_err(std::io::Error::from)?;
                    Ok(out.write_all(b"\n")?)
                }
                _ => Ok(render::rules_table(set.rules(), out)?),
            })?;
        }
        RulesCommand::Show { id, rules } => {
            let set = orgaudit::load_rules(&rules.options())?;
            let rule = set.get(&id).ok_or_else(|| {
                let ids: Vec<&str> = set.rules().iter().map(|r| r.id.as_str()).collect();
                Error::Usage(format!(
                    "unknown rule `{id}`; known rules: {}",
                    ids.join(", ")
                ))
            })?;
            write_output(None, |out| Ok(render::rule_details(rule, out)?))?;
        }
        RulesCommand::Validate { paths, no_builtin } => {
            // Checked against the built-in pack, as an audit would load them together.
            let mut set = if no_builtin {
                RuleSet::new()
            } else {
                RuleSet::builtin()
            };
            set.add_paths(&paths)?;
            let n = set.rules().iter().filter(|r| !r.builtin).count();
            println!(
                "{n} rule{} valid in {}",
                if n == 1 { "" } else { "s" },
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        RulesCommand::Test { paths } => {
            let files = orgaudit::ruletest::find(&paths).map_err(Error::Rules)?;
            if files.is_empty() {
                return Err(Error::Usage(
                    "no rule tests found (files named *.test.yaml)".into(),
                ));
            }
            let mut results = Vec::new();
            let mut errors = Vec::new();
            for f in &files {
                match orgaudit::ruletest::load(f).and_then(|t| orgaudit::ruletest::run(&t)) {
                    Ok(r) => results.push((f.display().to_string(), r)),
                    Err(e) => errors.extend(e.0),
                }
            }
            if !errors.is_empty() {
                return Err(Error::Rules(orgaudit::rules::RuleErrors(errors)));
            }
            let mut failed = 0;
            write_output(None, |out| {
                failed = orgaudit::ruletest::report(&results, out)?.1;
                Ok(())
            })?;
            if failed > 0 {
                return Ok(1);
            }
        }
        RulesCommand::Reference => {
            print!("{}", orgaudit::rules::registry::reference_markdown());
        }
    }
    Ok(0)
}
