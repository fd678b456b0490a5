//! The command line: what the user typed (clap definitions), and its translation into library
//! calls. Nothing here decides audit behaviour.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use orgaudit::findings::AuditReport;
use orgaudit::render::{self, TextOptions};
use orgaudit::rules::{RuleSet, Severity};
use orgaudit::source::{self, Input};
use orgaudit::{Error, RuleOptions};

/// Audit who has access to a Telnyx organization.
#[derive(Debug, Parser)]
#[command(name = "orgaudit", version, about, long_about = None)]
#[command(
    after_help = "Exit status: 0 ran (nothing reached --fail-on), 1 findings reached --fail-on, \
2 bad usage, rules or input, 3 a network step failed."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit a users groups report and report the findings.
    Audit(AuditArgs),
    /// List, show, validate rules, or print the rule syntax reference.
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    Info,
    /// Never fail on findings (the default).
    None,
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
        }
    }
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The report: a JSON or CSV file, or `-` for standard input. The format is detected from
    /// the content.
    #[arg(long, short = 'i', value_name = "PATH")]
    pub input: String,
    /// The time the audit takes as now (RFC 3339); default: the current UTC time.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Write the output to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Exit with status 1 when an unwaived finding is at or above this severity.
    #[arg(long, value_enum, default_value = "none", value_name = "SEVERITY")]
    pub fail_on: FailOn,
    /// Colour in text output.
    #[arg(long, value_enum, default_value = "auto", value_name = "WHEN")]
    pub color: ColorWhen,
    /// Do not print warnings on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub rules: RuleArgs,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// One line per rule: id, severity, scope, enabled, title.
    List {
        #[command(flatten)]
        rules: RuleArgs,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value = "text")]
        format: OutputFormat,
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
    },
    /// Print the rule syntax reference (fields, operators, condition forms) as Markdown.
    Reference,
}

/// What a command ended with.
pub enum Outcome {
    Ok,
    PolicyFailed,
}

pub fn run(cli: Cli) -> Result<Outcome, Error> {
    match cli.command {
        Command::Audit(args) => audit(args),
        Command::Rules(cmd) => rules(cmd),
    }
}

fn parse_now(now: Option<&str>) -> Result<orgaudit::model::Timestamp, Error> {
    match now {
        None => Ok(chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0)),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| {
                Error::Usage(format!(
                    "--now {s:?} is not an RFC 3339 time; expected e.g. 2026-01-31T00:00:00Z"
                ))
            }),
    }
}

fn audit(args: AuditArgs) -> Result<Outcome, Error> {
    let now = parse_now(args.now.as_deref())?;
    let rules = orgaudit::load_rules(&args.rules.options())?;
    let loaded = source::load(&Input::from_arg(&args.input))?;
    let report = orgaudit::audit(&loaded, &rules, now)?;
    if !args.quiet {
        let mut err = std::io::stderr().lock();
        for w in &report.warnings {
            let _ = writeln!(err, "{w}");
        }
    }
    let format = match args.format {
        OutputFormat::Text => render::Format::Text,
        OutputFormat::Json => render::Format::Json,
    };
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let color = match args.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none(),
    };
    // Warnings went to stderr; a text report written to a file keeps them too.
    let text = TextOptions {
        color,
        warnings: args.output.is_some(),
    };
    write_output(args.output.as_ref(), |out| {
        render::render(&report, format, &text, out)
    })?;
    Ok(gate(&report, args.fail_on))
}

fn gate(report: &AuditReport, fail_on: FailOn) -> Outcome {
    let threshold = match fail_on {
        FailOn::Critical => Severity::Critical,
        FailOn::High => Severity::High,
        FailOn::Medium => Severity::Medium,
        FailOn::Low => Severity::Low,
        FailOn::Info => Severity::Info,
        FailOn::None => return Outcome::Ok,
    };
    let n = report.count_reaching(threshold);
    if n == 0 {
        return Outcome::Ok;
    }
    eprintln!(
        "orgaudit: {n} finding{} at or above {threshold} (--fail-on {threshold})",
        if n == 1 { "" } else { "s" }
    );
    Outcome::PolicyFailed
}

/// Writes to a file (created next to its destination, then renamed into place, so a failed run
/// never leaves half a report) or to standard output.
fn write_output(
    path: Option<&PathBuf>,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let out_err = |p: &PathBuf, source| Error::Output {
        path: p.display().to_string(),
        source,
    };
    match path {
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match f(&mut out).and_then(|()| out.flush()) {
                Ok(()) => Ok(()),
                // A closed pipe (`| head`) is not an error of ours.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(Error::Output {
                    path: "<stdout>".into(),
                    source: e,
                }),
            }
        }
        Some(p) => {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut builder = tempfile::Builder::new();
            // A report is an ordinary file: the umask decides, as for any file the user creates.
            #[cfg(unix)]
            builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
            let mut tmp = builder.tempfile_in(dir).map_err(|e| out_err(p, e))?;
            {
                let mut out = std::io::BufWriter::new(tmp.as_file_mut());
                f(&mut out)
                    .and_then(|()| out.flush())
                    .map_err(|e| out_err(p, e))?;
            }
            tmp.persist(p).map_err(|e| out_err(p, e.error))?;
            Ok(())
        }
    }
}

fn rules(cmd: RulesCommand) -> Result<Outcome, Error> {
    match cmd {
        RulesCommand::List { rules, format } => {
            let set = orgaudit::load_rules(&rules.options())?;
            write_output(None, |out| match format {
                OutputFormat::Text => render::rules_table(set.rules(), out),
                OutputFormat::Json => {
                    let list: Vec<_> = set
                        .rules()
                        .iter()
                        .map(|r| {
                            serde_json::json!({
                                "id": r.id, "title": r.title, "severity": r.severity,
                                "scope": r.scope, "enabled": r.enabled, "tags": r.tags,
                                "references": r.references, "params": r.params_json(),
                                "origin": r.origin.to_string(),
                            })
                        })
                        .collect();
                    serde_json::to_writer_pretty(&mut *out, &list)?;
                    out.write_all(b"\n")
                }
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
            write_output(None, |out| render::rule_details(rule, out))?;
        }
        RulesCommand::Validate { paths } => {
            let mut set = RuleSet::new();
            set.add_paths(&paths)?;
            let n = set.rules().len();
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
        RulesCommand::Reference => {
            print!("{}", orgaudit::rules::registry::reference_markdown());
        }
    }
    Ok(Outcome::Ok)
}
