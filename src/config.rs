//! The configuration file (`orgaudit.yaml`): what a scheduled run needs besides the command
//! line. Secrets are never in it: it names the environment variables that hold them. Unknown keys
//! are errors with file:line:column, so a typo never silently changes an audit.
//!
//! Longer than most files: one reader per key of the file (each with its own errors), and
//! `config check`'s description of the settings with their defaults.
//!
//! ```yaml
//! telnyx:
//!   base_url: https://api.telnyx.com/v2   # default; TELNYX_BASE_URL and --base-url override
//!   retries: 2
//!   timeout_seconds: 60
//!   max_bytes: 1073741824
//!   concurrency: 4
//! organizations:
//!   - name: acme-prod
//!     api_key_env: TELNYX_API_KEY_ACME_PROD
//!   - name: acme-staging
//!     api_key_env: TELNYX_API_KEY_ACME_STAGING
//! ```

use std::path::Path;

use crate::defaults;
use crate::diag::Reader;
use crate::render::Format;
use crate::rules::{RuleError, RuleErrors};
use crate::yaml::{self, NodeKind, Pos};

/// Settings of the Telnyx client; `None` leaves the default (or the command line's value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelnyxSettings {
    pub base_url: Option<String>,
    pub retries: Option<u32>,
    pub timeout_seconds: Option<f64>,
    pub max_bytes: Option<u64>,
    /// How many organizations are fetched at once.
    pub concurrency: Option<usize>,
}

/// An organization to fetch and audit.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    /// A name of your choosing, unique in the file; it tags the organization's findings.
    pub name: String,
    /// The environment variable that holds this organization's API key.
    pub api_key_env: String,
    /// Overrides `telnyx.base_url` for this organization.
    pub base_url: Option<String>,
    pub pos: Pos,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// The file it was read from.
    pub path: String,
    pub telnyx: TelnyxSettings,
    pub organizations: Vec<Organization>,
    /// The waivers file, relative paths taken from the configuration's folder.
    pub waivers: Option<std::path::PathBuf>,
    /// The furthest a waiver may expire, in days.
    pub waiver_max_days: Option<u32>,
    /// `waiver_warn_days`: waivers expiring within it are listed at the top of the reports.
    pub waiver_warn_days: Option<u32>,
    /// A saved report to audit instead of fetching.
    pub input: Option<String>,
    /// Fetch from the Telnyx API even without `organizations`.
    pub fetch: Option<bool>,
    pub baseline: Option<std::path::PathBuf>,
    /// `critical` ... `info`, or `none`.
    pub fail_on: Option<String>,
    pub fail_on_new: Option<bool>,
    pub rules: RuleSettings,
    /// Outputs written every run, like `--report`.
    pub outputs: Vec<crate::render::OutputSpec>,
    pub templates: Option<std::path::PathBuf>,
    pub email: Option<EmailConfig>,
    /// `limits`: what evaluating the rules may take and show.
    pub limits: crate::rules::Limits,
    /// `file_mode`: the permissions of new files orgaudit writes.
    pub file_mode: Option<crate::output::FileMode>,
    /// `allow_blanket_waivers`: accept a waiver of every rule for every subject.
    pub allow_blanket_waivers: Option<bool>,
    /// `history` (or `history.location`): where the history of runs is kept.
    pub history: Option<String>,
    /// `history.retention_days`: runs older than this are pruned at each write.
    pub history_retention_days: Option<u32>,
    /// `org_id`: the organization's key in the history (a single organization).
    pub org_id: Option<String>,
    /// `name`: the organization's display name in reports and the email subject.
    pub name: Option<String>,
    /// `sla`: days to fix a finding, per severity.
    pub sla: Option<crate::findings::Sla>,
    /// `fail_on_overdue`: fail when a finding is past its SLA.
    pub fail_on_overdue: Option<bool>,
    /// `notify`: chat and webhook messages after each run.
    pub notify: Vec<NotifyTarget>,
    /// `remediate`: the limits of `remediate apply`.
    pub remediate: RemediateSettings,
}

/// `remediate:` in the configuration; `None` where the default holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemediateSettings {
    /// `max_removals`: users one `remediate apply` may remove at most.
    pub max_removals: Option<u32>,
    /// `max_age_days`: days after which a plan is too old to apply.
    pub max_age_days: Option<u32>,
}

/// A service a summary is posted to; its URL is a secret, read from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyService {
    /// A Slack incoming webhook (Block Kit).
    Slack,
    /// A Microsoft Teams workflow webhook (an Adaptive Card).
    Teams,
    /// Any endpoint: a JSON document with the summary and counts.
    Webhook,
}

impl NotifyService {
    pub const ALL: [NotifyService; 3] = [
        NotifyService::Slack,
        NotifyService::Teams,
        NotifyService::Webhook,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyService::Slack => "slack",
            NotifyService::Teams => "teams",
            NotifyService::Webhook => "webhook",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str().eq_ignore_ascii_case(s.trim()))
    }
    /// The environment variable its URL is read from unless `url_env` names another.
    pub fn default_env(self) -> &'static str {
        match self {
            NotifyService::Slack => crate::defaults::SLACK_WEBHOOK_ENV,
            NotifyService::Teams => crate::defaults::TEAMS_WEBHOOK_ENV,
            NotifyService::Webhook => crate::defaults::WEBHOOK_ENV,
        }
    }
}

/// When a summary is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotifyWhen {
    /// Every run.
    #[default]
    Always,
    /// Only when there are unwaived findings.
    Findings,
}

impl NotifyWhen {
    pub const ALL: [NotifyWhen; 2] = [NotifyWhen::Always, NotifyWhen::Findings];
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyWhen::Always => "always",
            NotifyWhen::Findings => "findings",
        }
    }
}

/// One entry of `notify:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    pub service: NotifyService,
    /// The environment variable holding the URL (never the URL itself).
    pub url_env: String,
    pub when: NotifyWhen,
}

impl Config {
    /// Whether it has the report fetched from the API (`fetch: true`, or `organizations`)
    /// rather than read from a file.
    pub fn fetches(&self) -> bool {
        self.fetch == Some(true) || !self.organizations.is_empty()
    }
}

/// The settings a configuration file found in the current folder (not named with `--config`)
/// may not make: it may come from the repository under review, and each of these would send
/// the API key, the SMTP password or the report somewhere else. Each is named as written.
pub fn untrusted_keys(cfg: &Config) -> Vec<String> {
    let mut keys = Vec::new();
    if cfg.telnyx.base_url.is_some() {
        keys.push("telnyx.base_url".to_string());
    }
    for o in &cfg.organizations {
        keys.push(format!(
            "organizations[{}].api_key_env (line {})",
            o.name, o.pos.line
        ));
        if o.base_url.is_some() {
            keys.push(format!("organizations[{}].base_url", o.name));
        }
    }
    if let Some(e) = &cfg.email {
        for (set, key) in [
            (e.smtp_url.is_some(), "email.smtp_url"),
            (!e.to.is_empty(), "email.to"),
            (!e.cc.is_empty(), "email.cc"),
            (e.password_env.is_some(), "email.password_env"),
            (e.password_file.is_some(), "email.password_file"),
            (e.ca_file.is_some(), "email.ca_file"),
        ] {
            if set {
                keys.push(key.to_string());
            }
        }
    }
    if cfg.history.is_some() {
        keys.push("history".to_string());
    }
    if cfg.remediate.max_removals.is_some() {
        keys.push("remediate.max_removals".to_string());
    }
    // Outputs stay in the file's folder: a report written over a shell profile or a hook
    // elsewhere on the runner would run what a rule's message says.
    let base = std::path::Path::new(&cfg.path)
        .parent()
        .unwrap_or(std::path::Path::new(""));
    for o in &cfg.outputs {
        let inside = o.path.strip_prefix(base).is_ok_and(|rel| {
            rel.components().all(|c| {
                matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            })
        });
        if !inside {
            keys.push(format!(
                "outputs ({} is outside the file's folder)",
                o.path.display()
            ));
        }
    }
    for n in &cfg.notify {
        keys.push(format!("notify ({}, {})", n.service.as_str(), n.url_env));
    }
    keys
}

/// The `rules` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleSettings {
    pub builtin: Option<bool>,
    pub paths: Vec<std::path::PathBuf>,
    pub disable: Vec<String>,
    pub enable: Vec<String>,
    /// `RULE_ID.PARAM` and a value.
    pub params: Vec<(String, serde_json::Value)>,
}

/// The `email` section. The SMTP password is never here: `password_env` names the
/// environment variable that holds it (default `ORGAUDIT_SMTP_PASSWORD`), or `password_file`
/// a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmailConfig {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub smtp_url: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<std::path::PathBuf>,
    pub ca_file: Option<std::path::PathBuf>,
    pub insecure: Option<bool>,
    /// `always` or `findings`.
    pub when: Option<String>,
    /// `html`, `json`.
    pub attach: Vec<String>,
    pub report_url: Option<String>,
    pub retries: Option<u32>,
    /// `timeout_seconds`: how long the SMTP client waits on the server.
    pub timeout_seconds: Option<f64>,
}

/// The top-level keys of the configuration file (the README lists each; a test holds it to this).
pub const TOP_KEYS: &[&str] = &[
    "input",
    "fetch",
    "telnyx",
    "organizations",
    "rules",
    "waivers",
    "waiver_max_days",
    "waiver_warn_days",
    "baseline",
    "fail_on",
    "fail_on_new",
    "outputs",
    "templates",
    "email",
    "limits",
    "file_mode",
    "allow_blanket_waivers",
    "history",
    "org_id",
    "name",
    "sla",
    "fail_on_overdue",
    "notify",
    "remediate",
];
const REMEDIATE_KEYS: &[&str] = &["max_removals", "max_age_days"];
const NOTIFY_KEYS: &[&str] = &["service", "url_env", "when"];
const HISTORY_KEYS: &[&str] = &["location", "retention_days"];
const LIMITS_KEYS: &[&str] = &["matching_subjects", "template_fuel", "message_bytes"];
const RULES_KEYS: &[&str] = &[
    "builtin", "paths", "disable", "enable", "params", "severity",
];
const OUTPUT_KEYS: &[&str] = &["format", "path", "append"];
const EMAIL_KEYS: &[&str] = &[
    "to",
    "cc",
    "from",
    "subject",
    "smtp_url",
    "password_env",
    "password_file",
    "ca_file",
    "insecure",
    "when",
    "attach",
    "report_url",
    "retries",
    "timeout_seconds",
];
const SEVERITIES: &[&str] = &["critical", "high", "medium", "low", "info", "none"];
const TELNYX_KEYS: &[&str] = &[
    "base_url",
    "retries",
    "timeout_seconds",
    "max_bytes",
    "concurrency",
];
const ORG_KEYS: &[&str] = &["name", "api_key_env", "base_url"];

/// Reads and checks a configuration file. Every problem is reported, with file:line:column.
pub fn load(path: &Path) -> Result<Config, RuleErrors> {
    let (name, text) = crate::diag::read_source(path, "the configuration")?;
    parse(&name, &text)
}

/// Checks a configuration held in memory; `name` identifies it in errors.
pub fn parse(name: &str, text: &str) -> Result<Config, RuleErrors> {
    let docs = yaml::parse(text).map_err(|e| RuleErrors::from(RuleError::yaml_syntax(name, &e)))?;
    let mut r = Reader::new(name);
    let mut cfg = Config {
        path: name.to_string(),
        ..Default::default()
    };
    let Some(doc) = docs.first() else {
        return Ok(cfg);
    };
    if docs.len() > 1 {
        r.err(docs[1].pos, "a configuration is one YAML document");
    }
    let base = Path::new(name)
        .parent()
        .unwrap_or(Path::new(""))
        .to_path_buf();
    for (k, v) in r.map(doc, "the configuration", TOP_KEYS) {
        match k.name.as_str() {
            "telnyx" => {
                for (k, v) in r.map(v, "`telnyx`", TELNYX_KEYS) {
                    let t = &mut cfg.telnyx;
                    match k.name.as_str() {
                        "base_url" => t.base_url = r.string(v, "base_url"),
                        "retries" => {
                            t.retries = r.number(v, "retries", 0.0, 10.0).map(|n| n as u32)
                        }
                        "timeout_seconds" => {
                            t.timeout_seconds = r.number(v, "timeout_seconds", 0.1, 86400.0)
                        }
                        "max_bytes" => {
                            t.max_bytes = r.number(v, "max_bytes", 1.0, 1e15).map(|n| n as u64)
                        }
                        "concurrency" => {
                            t.concurrency =
                                r.number(v, "concurrency", 1.0, 64.0).map(|n| n as usize)
                        }
                        _ => {}
                    }
                }
            }
            "waivers" => cfg.waivers = r.string(v, "waivers").map(|p| base.join(p)),
            "baseline" => cfg.baseline = r.string(v, "baseline").map(|p| base.join(p)),
            "templates" => cfg.templates = r.string(v, "templates").map(|p| base.join(p)),
            "input" => {
                cfg.input = r.string(v, "input").map(|p| {
                    if p == "-" {
                        p
                    } else {
                        base.join(p).display().to_string()
                    }
                })
            }
            "fetch" => cfg.fetch = r.boolean(v, "fetch"),
            "fail_on" => cfg.fail_on = r.one_of(v, "fail_on", SEVERITIES),
            "fail_on_new" => cfg.fail_on_new = r.boolean(v, "fail_on_new"),
            "rules" => {
                for (k, v) in r.map(v, "`rules`", RULES_KEYS) {
                    let rs = &mut cfg.rules;
                    match k.name.as_str() {
                        "builtin" => rs.builtin = r.boolean(v, "rules.builtin"),
                        "paths" => {
                            rs.paths = r
                                .strings(v, "rules.paths")
                                .into_iter()
                                .map(|p| base.join(p))
                                .collect()
                        }
                        "severity" => match &v.kind {
                            NodeKind::Map(entries) => {
                                for (id, sev) in entries {
                                    if let Some(s) = r.one_of(sev, "rules.severity", &SEVERITIES[..5]) {
                                        rs.params.push((
                                            format!("{}.severity", id.name),
                                            serde_json::Value::String(s),
                                        ));
                                    }
                                }
                            }
                            _ => r.err(
                                v.pos,
                                "`rules.severity` must be a mapping of rule ids to severities, e.g. `sso-bypass: critical`",
                            ),
                        },
                        "disable" => rs.disable = r.strings(v, "rules.disable"),
                        "enable" => rs.enable = r.strings(v, "rules.enable"),
                        "params" => match &v.kind {
                            NodeKind::Map(entries) => {
                                for (pk, pv) in entries {
                                    if pk.name.split_once('.').is_none() {
                                        r.err(
                                            pk.pos,
                                            format!(
                                                "`{}`: parameters are named RULE_ID.PARAM",
                                                pk.name
                                            ),
                                        );
                                    } else {
                                        rs.params.push((pk.name.clone(), pv.to_json()));
                                    }
                                }
                            }
                            _ => r.err(
                                v.pos,
                                "`rules.params` must be a mapping of RULE_ID.PARAM to values",
                            ),
                        },
                        _ => {}
                    }
                }
            }
            "outputs" => match &v.kind {
                NodeKind::Seq(items) => {
                    for item in items {
                        let entries = r.map(item, "an output", OUTPUT_KEYS);
                        let get =
                            |key: &str| entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v);
                        let Some(path) = get("path").and_then(|p| r.string(p, "path")) else {
                            if get("path").is_none() {
                                r.err(item.pos, "an output needs a `path`");
                            }
                            continue;
                        };
                        let path = base.join(path);
                        let format = match get("format") {
                            Some(f) => {
                                let formats: Vec<&str> =
                                    Format::ALL.iter().map(|f| f.as_str()).collect();
                                let Some(f) = r
                                    .one_of(f, "format", &formats)
                                    .and_then(|f| Format::parse(&f))
                                else {
                                    continue;
                                };
                                f
                            }
                            None => match Format::from_path(&path) {
                                Some(f) => f,
                                None => {
                                    r.err(item.pos, format!("an output needs a `format`: the extension of {} names none", path.display()));
                                    continue;
                                }
                            },
                        };
                        let append = get("append")
                            .and_then(|a| r.boolean(a, "append"))
                            .unwrap_or(false);
                        cfg.outputs.push(crate::render::OutputSpec {
                            format,
                            path,
                            append,
                        });
                    }
                }
                _ => r.err(
                    v.pos,
                    format!(
                        "`outputs` must be a list of {{format, path}}; found {}",
                        v.describe()
                    ),
                ),
            },
            "email" => {
                let mut e = EmailConfig::default();
                for (k, v) in r.map(v, "`email`", EMAIL_KEYS) {
                    match k.name.as_str() {
                        "to" => e.to = r.strings(v, "email.to"),
                        "cc" => e.cc = r.strings(v, "email.cc"),
                        "from" => e.from = r.string(v, "email.from"),
                        "subject" => e.subject = r.string(v, "email.subject"),
                        "smtp_url" => {
                            e.smtp_url = r.string(v, "email.smtp_url");
                            if e.smtp_url
                                .as_deref()
                                .and_then(|u| url::Url::parse(u).ok())
                                .is_some_and(|u| u.password().is_some())
                            {
                                r.err(v.pos, "`email.smtp_url` holds a password; keep secrets out of this file: name the variable that holds it with `password_env`");
                            }
                        }
                        "password_env" => e.password_env = r.string(v, "email.password_env"),
                        "password_file" => {
                            e.password_file =
                                r.string(v, "email.password_file").map(|p| base.join(p))
                        }
                        "ca_file" => e.ca_file = r.string(v, "email.ca_file").map(|p| base.join(p)),
                        "insecure" => e.insecure = r.boolean(v, "email.insecure"),
                        "when" => {
                            e.when = r.one_of(v, "email.when", &["always", "findings", "changed"])
                        }
                        "attach" => {
                            e.attach = r.strings(v, "email.attach");
                            for a in &e.attach {
                                if a != "html" && a != "json" {
                                    r.err(v.pos, format!("`email.attach` takes html and json (the CSV is always attached); found {a:?}"));
                                }
                            }
                        }
                        "report_url" => e.report_url = r.string(v, "email.report_url"),
                        "retries" => {
                            e.retries = r.number(v, "email.retries", 0.0, 10.0).map(|n| n as u32)
                        }
                        "timeout_seconds" => {
                            e.timeout_seconds = r.number(v, "email.timeout_seconds", 1.0, 3600.0)
                        }
                        _ => {}
                    }
                }
                cfg.email = Some(e);
            }
            "notify" => match &v.kind {
                NodeKind::Seq(items) => {
                    for item in items {
                        let entries = r.map(item, "a `notify` entry", NOTIFY_KEYS);
                        let get =
                            |key: &str| entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v);
                        let services: Vec<&str> =
                            NotifyService::ALL.iter().map(|x| x.as_str()).collect();
                        let Some(service) = get("service")
                            .and_then(|n| r.one_of(n, "notify.service", &services))
                            .and_then(|x| NotifyService::parse(&x))
                        else {
                            if get("service").is_none() {
                                r.err(
                                    item.pos,
                                    format!(
                                        "a `notify` entry needs `service` ({})",
                                        services.join(", ")
                                    ),
                                );
                            }
                            continue;
                        };
                        if let Some(n) = get("url") {
                            r.err(n.pos, "a webhook URL is a secret: keep it out of this file and name the environment variable that holds it with `url_env`");
                        }
                        let url_env = match get("url_env") {
                            Some(n) => match r.string(n, "notify.url_env") {
                                Some(var) => var,
                                None => continue,
                            },
                            None => service.default_env().to_string(),
                        };
                        let whens: Vec<&str> = NotifyWhen::ALL.iter().map(|x| x.as_str()).collect();
                        let when = match get("when") {
                            Some(n) => match r.one_of(n, "notify.when", &whens) {
                                Some(w) => NotifyWhen::ALL
                                    .into_iter()
                                    .find(|x| x.as_str() == w)
                                    .unwrap_or_default(),
                                None => continue,
                            },
                            None => NotifyWhen::Always,
                        };
                        cfg.notify.push(NotifyTarget {
                            service,
                            url_env,
                            when,
                        });
                    }
                }
                _ => r.err(
                    v.pos,
                    format!(
                        "`notify` must be a list of {{service, url_env, when}}; found {}",
                        v.describe()
                    ),
                ),
            },
            "history" => {
                // `history: LOCATION`, or a section with `location` and `retention_days`.
                let location = match &v.kind {
                    crate::yaml::NodeKind::Map(_) => {
                        let mut location = None;
                        for (k, v) in r.map(v, "`history`", HISTORY_KEYS) {
                            match k.name.as_str() {
                                "location" => location = r.string(v, "history.location"),
                                "retention_days" => {
                                    cfg.history_retention_days = r
                                        .number(v, "history.retention_days", 1.0, 36500.0)
                                        .map(|n| n as u32)
                                }
                                _ => {}
                            }
                        }
                        location
                    }
                    _ => r.string(v, "history"),
                };
                if location
                    .as_deref()
                    .is_some_and(crate::diag::url_has_password)
                {
                    r.err(
                        v.pos,
                        "a password in the history URL is refused: set PGPASSWORD or use a password file (PGPASSFILE, ~/.pgpass)",
                    );
                }
                // A relative path is the configuration's folder's.
                cfg.history = location.map(|h| {
                    if h.contains("://") || std::path::Path::new(&h).is_absolute() {
                        h
                    } else if let Some(p) = h.strip_prefix("sqlite:") {
                        format!("sqlite:{}", base.join(p).display())
                    } else {
                        base.join(&h).display().to_string()
                    }
                })
            }
            "org_id" => cfg.org_id = r.string(v, "org_id"),
            "name" => cfg.name = r.string(v, "name"),
            "fail_on_overdue" => cfg.fail_on_overdue = r.boolean(v, "fail_on_overdue"),
            "remediate" => {
                for (k, v) in r.map(v, "`remediate`", REMEDIATE_KEYS) {
                    match k.name.as_str() {
                        "max_removals" => {
                            cfg.remediate.max_removals = r
                                .number(v, "remediate.max_removals", 1.0, 100_000.0)
                                .map(|n| n as u32)
                        }
                        "max_age_days" => {
                            cfg.remediate.max_age_days = r
                                .number(v, "remediate.max_age_days", 1.0, 365.0)
                                .map(|n| n as u32)
                        }
                        _ => {}
                    }
                }
            }
            "sla" => {
                let mut sla = crate::findings::Sla::default();
                for (k, v) in r.map(v, "`sla`", &SEVERITIES[..5]) {
                    if let (Some(sev), Some(days)) = (
                        crate::rules::Severity::parse(&k.name),
                        r.number(v, "sla days", 0.0, 36_500.0),
                    ) {
                        sla.set(sev, days as u32);
                    }
                }
                cfg.sla = Some(sla);
            }
            "allow_blanket_waivers" => {
                cfg.allow_blanket_waivers = r.boolean(v, "allow_blanket_waivers")
            }
            "file_mode" => {
                // Octal, as chmod takes it; a YAML number like 0640 reads as decimal, so the
                // text is taken as written.
                cfg.file_mode = v.text().and_then(crate::output::FileMode::parse);
                if cfg.file_mode.is_none() {
                    r.err(
                        v.pos,
                        format!(
                            "`file_mode` must be octal permissions such as \"0600\" or \"0640\"; found {}",
                            v.describe()
                        ),
                    );
                }
            }
            "limits" => {
                for (k, v) in r.map(v, "`limits`", LIMITS_KEYS) {
                    let l = &mut cfg.limits;
                    // Unknown keys were reported by `map`.
                    match k.name.as_str() {
                        "matching_subjects" => {
                            if let Some(n) = r.number(v, "limits.matching_subjects", 0.0, 1e5) {
                                l.matching_subjects = n as usize;
                            }
                        }
                        "template_fuel" => {
                            if let Some(n) = r.number(v, "limits.template_fuel", 100.0, 1e12) {
                                l.template_fuel = n as u64;
                            }
                        }
                        "message_bytes" => {
                            if let Some(n) = r.number(v, "limits.message_bytes", 64.0, 1e9) {
                                l.message_bytes = n as usize;
                            }
                        }
                        _ => {}
                    }
                }
            }
            "waiver_warn_days" => {
                cfg.waiver_warn_days = r
                    .number(v, "waiver_warn_days", 0.0, 3650.0)
                    .map(|n| n as u32)
            }
            "waiver_max_days" => {
                cfg.waiver_max_days = r
                    .number(v, "waiver_max_days", 1.0, 3650.0)
                    .map(|n| n as u32)
            }
            "organizations" => {
                let NodeKind::Seq(items) = &v.kind else {
                    r.err(
                        v.pos,
                        format!("`organizations` must be a list; found {}", v.describe()),
                    );
                    continue;
                };
                for item in items {
                    let entries = r.map(item, "an organization", ORG_KEYS);
                    let get =
                        |key: &str| entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v);
                    let (Some(n), Some(e)) = (get("name"), get("api_key_env")) else {
                        r.err(item.pos, "an organization needs `name` and `api_key_env` (the environment variable holding its API key)");
                        continue;
                    };
                    let name = r.string(n, "name");
                    let env = r.string(e, "api_key_env");
                    let base_url = get("base_url").and_then(|b| r.string(b, "base_url"));
                    if let Some(env) = &env {
                        if !env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                            // The value is not echoed: it may be a key pasted by mistake.
                            r.err(e.pos, "`api_key_env` must name an environment variable (letters, digits and `_`), not hold the key itself");
                        }
                    }
                    if let (Some(name), Some(env)) = (name, env) {
                        if let Some(first) = cfg.organizations.iter().find(|o| o.name == name) {
                            r.err(
                                n.pos,
                                format!("duplicate organization `{name}` (first at {})", first.pos),
                            );
                            continue;
                        }
                        cfg.organizations.push(Organization {
                            name,
                            api_key_env: env,
                            base_url,
                            pos: item.pos,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    if r.errors.is_empty() {
        Ok(cfg)
    } else {
        Err(RuleErrors(r.errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_configuration() {
        let cfg = parse(
            "o.yaml",
            "telnyx:\n  retries: 3\n  timeout_seconds: 2.5\norganizations:\n  - {name: prod, api_key_env: KEY_PROD}\n  - {name: dev, api_key_env: KEY_DEV, base_url: 'http://127.0.0.1:9/v2'}\n",
        )
        .unwrap();
        assert_eq!(cfg.telnyx.retries, Some(3));
        assert_eq!(cfg.telnyx.timeout_seconds, Some(2.5));
        assert_eq!(cfg.organizations.len(), 2);
        assert_eq!(
            cfg.organizations[1].base_url.as_deref(),
            Some("http://127.0.0.1:9/v2")
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_have_positions() {
        let e = parse(
            "o.yaml",
            "telnyx:\n  retires: 3\norganizations:\n  - {name: a, api_key_env: 'KEY123-abc secret'}\n  - {name: a, api_key_env: B}\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "o.yaml:2:3: unknown key `retires` in `telnyx`\n  help: did you mean `retries`? valid keys: base_url, retries, timeout_seconds, max_bytes, concurrency\n\
             o.yaml:4:28: `api_key_env` must name an environment variable (letters, digits and `_`), not hold the key itself\n\
             o.yaml:5:12: duplicate organization `a` (first at 4:5)"
        );
    }
}

/// Fetch settings from the command line; `None` where a flag was not given.
#[cfg(feature = "network")]
#[derive(Debug, Clone, Default)]
pub struct FetchFlags {
    pub api_key_file: Option<std::path::PathBuf>,
    pub base_url: Option<String>,
    pub retries: Option<u32>,
    pub timeout_seconds: Option<f64>,
    pub max_bytes: Option<u64>,
    pub format: Option<crate::source::telnyx::ReportFormat>,
}

#[cfg(feature = "network")]
/// The reports to fetch and how many at once, from flags, the configuration and the
/// environment, in that order of precedence (then the SDKs' defaults). Every API key is looked
/// up here, before any request is sent.
pub fn fetch_targets(
    flags: &FetchFlags,
    cfg: Option<&Config>,
) -> Result<(Vec<crate::FetchTarget>, usize), crate::Error> {
    use crate::source::telnyx::{ApiKey, FetchOptions, API_KEY_ENV};
    use crate::Error;
    let settings = cfg.map(|c| c.telnyx.clone()).unwrap_or_default();
    let orgs = cfg.map_or(&[][..], |c| &c.organizations[..]);
    let options = |key: ApiKey, org_url: Option<&String>| {
        let mut o = FetchOptions::new(key);
        if let Some(url) = flags
            .base_url
            .as_ref()
            .or(org_url)
            .or(settings.base_url.as_ref())
        {
            o.base_url = url.clone();
        }
        if let Some(r) = flags.retries.or(settings.retries) {
            o.retries = r;
        }
        if let Some(t) = flags.timeout_seconds.or(settings.timeout_seconds) {
            o.timeout = std::time::Duration::from_secs_f64(t);
        }
        if let Some(m) = flags.max_bytes.or(settings.max_bytes) {
            o.max_bytes = m;
        }
        if let Some(f) = flags.format {
            o.format = f;
        }
        o
    };
    let concurrency = settings
        .concurrency
        .unwrap_or(crate::defaults::FETCH_CONCURRENCY);
    if orgs.is_empty() {
        let key = match &flags.api_key_file {
            Some(path) => ApiKey::from_file(path),
            None => ApiKey::from_env(API_KEY_ENV),
        }
        .map_err(|e| Error::Fetch(vec![(None, e)]))?;
        let target = crate::FetchTarget {
            organization: None,
            options: options(key, None),
        };
        return Ok((vec![target], 1));
    }
    if flags.api_key_file.is_some() {
        return Err(Error::Usage(
            "--api-key-file names one key; with `organizations` in the configuration each organization's `api_key_env` names its key".into(),
        ));
    }
    let mut targets = Vec::new();
    let mut missing = Vec::new();
    for org in orgs {
        match ApiKey::from_env(&org.api_key_env) {
            Ok(key) => targets.push(crate::FetchTarget {
                organization: Some(org.name.clone()),
                options: options(key, org.base_url.as_ref()),
            }),
            Err(e) => missing.push((Some(org.name.clone()), e)),
        }
    }
    if !missing.is_empty() {
        return Err(Error::Fetch(missing));
    }
    Ok((targets, concurrency))
}

/// The settings a configuration gives, defaults filled in, secrets masked: what
/// `orgaudit config check` prints. Environment variables are named with whether they are set,
/// never with their values.
pub fn describe(cfg: &Config) -> String {
    use std::fmt::Write as _;
    let set = |var: &str| {
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            "set"
        } else {
            "NOT SET"
        }
    };
    let mut o = String::new();
    let _ = writeln!(o, "configuration: {} (read)", cfg.path);
    let source = if let Some(i) = &cfg.input {
        format!("file {i}")
    } else if !cfg.organizations.is_empty() {
        format!("Telnyx API, {} organizations", cfg.organizations.len())
    } else if cfg.fetch == Some(true) {
        format!(
            "Telnyx API (key in {}: {})",
            defaults::API_KEY_ENV,
            set(defaults::API_KEY_ENV)
        )
    } else {
        "not set (give --input or --fetch)".into()
    };
    let _ = writeln!(o, "source: {source}");
    let t = &cfg.telnyx;
    let base = t
        .base_url
        .clone()
        .or_else(|| std::env::var(defaults::BASE_URL_ENV).ok())
        .unwrap_or_else(|| defaults::DEFAULT_BASE_URL.into());
    let _ = writeln!(
        o,
        "telnyx: base_url {}, retries {}, timeout {} s, max_bytes {}, concurrency {}",
        crate::diag::redact_url(&base),
        t.retries.unwrap_or(defaults::API_RETRIES),
        t.timeout_seconds
            .unwrap_or(defaults::API_TIMEOUT.as_secs_f64()),
        t.max_bytes.unwrap_or(defaults::API_MAX_BYTES),
        t.concurrency.unwrap_or(defaults::FETCH_CONCURRENCY)
    );
    for org in &cfg.organizations {
        let _ = writeln!(
            o,
            "  organization {}: key in {} ({}){}",
            org.name,
            org.api_key_env,
            set(&org.api_key_env),
            org.base_url
                .as_ref()
                .map(|u| format!(", base_url {}", crate::diag::redact_url(u)))
                .unwrap_or_default()
        );
    }
    let r = &cfg.rules;
    let _ = writeln!(
        o,
        "rules: built-in pack {}, {} extra path(s){}",
        if r.builtin == Some(false) {
            "off"
        } else {
            "on"
        },
        r.paths.len(),
        r.paths
            .iter()
            .map(|p| format!(" {}", p.display()))
            .collect::<String>()
    );
    if !r.disable.is_empty() {
        let _ = writeln!(o, "  disabled: {}", r.disable.join(", "));
    }
    if !r.enable.is_empty() {
        let _ = writeln!(o, "  enabled: {}", r.enable.join(", "));
    }
    for (k, v) in &r.params {
        let _ = writeln!(o, "  param {k} = {v}");
    }
    let _ = writeln!(
        o,
        "fail_on: {}{}",
        cfg.fail_on.as_deref().unwrap_or("none"),
        if cfg.fail_on_new == Some(true) {
            " (new findings only)"
        } else {
            ""
        }
    );
    if let Some(b) = &cfg.baseline {
        let _ = writeln!(o, "baseline: {}", b.display());
    }
    if let Some(w) = &cfg.waivers {
        let _ = writeln!(
            o,
            "waivers: {} (at most {} days)",
            w.display(),
            cfg.waiver_max_days
                .unwrap_or(crate::waivers::DEFAULT_MAX_DAYS)
        );
    }
    if let Some(h) = &cfg.history {
        let _ = writeln!(
            o,
            "history: {} (retention {} days{}){}",
            crate::diag::redact_url(h),
            cfg.history_retention_days
                .unwrap_or(defaults::RETENTION_DAYS),
            if h.contains("://") {
                format!(", password in PGPASSWORD: {}", set("PGPASSWORD"))
            } else {
                String::new()
            },
            if std::env::var_os(defaults::HISTORY_ENV).is_some() {
                format!(" ({} overrides it)", defaults::HISTORY_ENV)
            } else {
                String::new()
            }
        );
    }
    if let Some(sla) = &cfg.sla {
        let days: Vec<String> = crate::rules::Severity::ALL
            .iter()
            .filter_map(|s| sla.days(*s).map(|d| format!("{} {d}", s.as_str())))
            .collect();
        let _ = writeln!(
            o,
            "sla: {} days{}",
            days.join(", "),
            if cfg.fail_on_overdue == Some(true) {
                " (fail on overdue)"
            } else {
                ""
            }
        );
    }
    if cfg.remediate != RemediateSettings::default() {
        let _ = writeln!(
            o,
            "remediate: at most {} removals per apply, plans at most {} days old",
            cfg.remediate
                .max_removals
                .unwrap_or(crate::defaults::REMEDIATE_MAX_REMOVALS),
            cfg.remediate
                .max_age_days
                .unwrap_or(crate::defaults::REMEDIATE_MAX_AGE_DAYS)
        );
    }
    for out in &cfg.outputs {
        let _ = writeln!(
            o,
            "output: {} {} {}",
            out.format.as_str(),
            if out.append { "+>" } else { "->" },
            out.path.display()
        );
    }
    if let Some(t) = &cfg.templates {
        let _ = writeln!(o, "templates: {}", t.display());
    }
    for n in &cfg.notify {
        // The variable's name and whether it is set; never its value.
        let set = std::env::var_os(&n.url_env).is_some_and(|v| !v.is_empty());
        let _ = writeln!(
            o,
            "notify: {} (URL in {}: {}), when {}",
            n.service.as_str(),
            n.url_env,
            if set { "set" } else { "NOT SET" },
            n.when.as_str()
        );
    }
    match &cfg.email {
        None => {
            let _ = writeln!(o, "email: off");
        }
        Some(e) => {
            let pw = e
                .password_env
                .clone()
                .unwrap_or_else(|| defaults::SMTP_PASSWORD_ENV.into());
            let _ = writeln!(
                o,
                "email: to {}{}, from {}",
                e.to.join(", "),
                if e.cc.is_empty() {
                    String::new()
                } else {
                    format!(", cc {}", e.cc.join(", "))
                },
                e.from.as_deref().unwrap_or("NOT SET")
            );
            let _ = writeln!(
                o,
                "  smtp: {}, password {}",
                e.smtp_url
                    .as_deref()
                    .map(crate::diag::redact_url)
                    .unwrap_or_else(|| "NOT SET".into()),
                match &e.password_file {
                    Some(p) => format!("from file {}", p.display()),
                    None => format!("in {pw} ({})", set(&pw)),
                }
            );
            let _ = writeln!(
                o,
                "  when: {}, attach: csv{}{}",
                e.when.as_deref().unwrap_or("always"),
                e.attach
                    .iter()
                    .map(|a| format!(", {a}"))
                    .collect::<String>(),
                e.report_url
                    .as_ref()
                    .map(|u| format!(", report_url {u}"))
                    .unwrap_or_default()
            );
        }
    }
    // The defaults where neither the file nor a flag says otherwise, each with what changes it.
    let _ = writeln!(
        o,
        "defaults (where nothing above or on the command line sets them):"
    );
    for d in defaults::TABLE {
        let by: Vec<&str> = [d.flag, d.key].into_iter().flatten().collect();
        let _ = writeln!(o, "  {}: {} ({})", d.name, (d.value)(), by.join(", "));
    }
    o
}
