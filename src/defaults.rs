//! Every default value and limit of a run, written once. The API client, the email sender, the
//! plan that merges flags and configuration, `config check` and the README's tables all read
//! them from here ([`TABLE`] lists them with the flag and configuration key that change each).

use std::time::Duration;

/// The Telnyx SDKs' default base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.telnyx.com/v2";
/// The environment variable the SDKs read the API key from.
pub const API_KEY_ENV: &str = "TELNYX_API_KEY";
/// The environment variable that overrides the base URL.
pub const BASE_URL_ENV: &str = "TELNYX_BASE_URL";
/// The configuration file `audit` reads from the current folder when `--config` is not given
/// (untrusted: see [`crate::config::untrusted_keys`]), and `config check` and `init` default to.
pub const CONFIG_FILE: &str = "orgaudit.yaml";
/// The environment variable naming the history's location.
pub const HISTORY_ENV: &str = "ORGAUDIT_HISTORY";
/// Waivers expiring within this many days are listed at the top of the reports.
pub const WAIVER_WARN_DAYS: u32 = 14;
/// Runs in a trend (the HTML chart, the JSON `trend` block, `history trend`).
pub const TREND_RUNS: usize = 12;
/// Days a history keeps runs (applied at each write; older runs are pruned behind a
/// checkpoint).
pub const RETENTION_DAYS: u32 = 400;
/// The largest stored record (a run's JSON output or snapshot) read back from a history.
pub const STORED_MAX_BYTES: u64 = 4 << 30;
/// Retries of an API request after the first attempt (the Telnyx SDKs' default).
pub const API_RETRIES: u32 = 2;
/// Seconds for each API attempt, from the request to the body's last byte.
pub const API_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest API response body accepted, in bytes.
pub const API_MAX_BYTES: u64 = 1 << 30;
/// The largest YAML file read (rules, configuration, waivers, rule tests) or template, in
/// bytes, unless [`set_text_max_bytes`] (`--max-text-bytes`) changed it for the process.
pub const TEXT_MAX_BYTES: u64 = 16 << 20;

static TEXT_LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(TEXT_MAX_BYTES);

/// The largest YAML file or template read now.
pub fn text_max_bytes() -> u64 {
    TEXT_LIMIT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets the largest YAML file or template read, for the whole process (it bounds the reading
/// of the configuration file itself, so it is set before anything is read).
pub fn set_text_max_bytes(n: u64) {
    TEXT_LIMIT.store(n, std::sync::atomic::Ordering::Relaxed);
}
/// The permissions of a new file orgaudit writes (reports hold every user's email).
pub const FILE_MODE: u32 = 0o600;
/// Organizations fetched at once.
pub const FETCH_CONCURRENCY: usize = 4;
/// The environment variable holding the SMTP password.
pub const SMTP_PASSWORD_ENV: &str = "ORGAUDIT_SMTP_PASSWORD";
/// The environment variables webhook URLs are read from (`--notify`; a URL is a secret, never
/// a flag).
pub const SLACK_WEBHOOK_ENV: &str = "ORGAUDIT_SLACK_WEBHOOK_URL";
pub const TEAMS_WEBHOOK_ENV: &str = "ORGAUDIT_TEAMS_WEBHOOK_URL";
pub const WEBHOOK_ENV: &str = "ORGAUDIT_WEBHOOK_URL";
/// The largest webhook reply read (only its status matters; a short excerpt goes in errors).
pub const WEBHOOK_REPLY_MAX_BYTES: usize = 4096;
/// Retries of an SMTP delivery on 4xx replies and connection errors.
pub const SMTP_RETRIES: u32 = 2;
/// Seconds the SMTP client waits on the server.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(60);
/// The furthest a waiver may expire, in days from now.
pub const WAIVER_MAX_DAYS: u32 = 365;
/// Email attachments larger than this are sent gzip-compressed.
pub const EMAIL_ATTACHMENT_MAX_BYTES: usize = 5 << 20;
/// Findings listed per rule in the email body.
pub const EMAIL_TOP_PER_RULE: usize = 5;
/// Results written to a SARIF file at most (GitHub code scanning accepts 25,000 per run).
pub const SARIF_MAX_RESULTS: usize = 5000;
/// Findings listed per rule in the Markdown report.
pub const MARKDOWN_PER_RULE: usize = 20;
/// Members or owners listed in a finding's evidence (the count is always complete).
pub const EVIDENCE_LIST_LIMIT: usize = 100;
/// Instructions one message template or `expr` may run (minijinja's fuel): far more than any
/// message needs, far less than a loop that would run for hours.
pub const TEMPLATE_FUEL: u64 = 200_000;
/// The longest message a finding may have, in bytes.
pub const MESSAGE_MAX_BYTES: usize = 64 << 10;
/// Matching users listed in the evidence of a `count` condition (`matching_count` is complete).
pub const MATCHING_SUBJECTS: usize = 50;
/// Users one `remediate apply` may remove at most; above it the run is refused before any call.
pub const REMEDIATE_MAX_REMOVALS: u32 = 5;
/// Days after which a remediation plan is too old to apply.
pub const REMEDIATE_MAX_AGE_DAYS: u32 = 7;
/// Planned users the pre-check may find missing before `remediate apply` stops (more is the
/// sign of a plan applied to the wrong organization).
pub const REMEDIATE_MAX_ABSENT: usize = 3;
/// The environment variable holding the key that signs remediation plans (HMAC-SHA256).
pub const PLAN_KEY_ENV: &str = "ORGAUDIT_PLAN_KEY";
/// What `remediate apply` adds to the plan's path to name its journal when `--journal` is not
/// given.
pub const JOURNAL_SUFFIX: &str = ".journal.jsonl";
/// The plan file `remediate plan` writes when `-o` is not given.
pub const PLAN_FILE: &str = "orgaudit-plan.json";
/// Manual findings listed per rule in a remediation plan's Markdown view (the JSON has all).
pub const PLAN_MANUAL_LISTED: usize = 50;
/// The largest remediation plan or journal read, in bytes.
pub const PLAN_MAX_BYTES: u64 = 256 << 20;
/// The longest journal record read back from a history (one user's record with its groups is
/// a few KiB).
pub const JOURNAL_RECORD_MAX_BYTES: usize = 1 << 20;
/// The largest reply to a user lookup or removal read, in bytes (one user's record).
pub const USER_REPLY_MAX_BYTES: usize = 1 << 20;

/// One default as people see it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    /// The flag that changes it, if any.
    pub flag: Option<&'static str>,
    /// The configuration key that changes it, if any.
    pub key: Option<&'static str>,
    pub value: fn() -> String,
}

/// The defaults that a flag or the configuration can change, as `config check` prints them
/// (after the settings of the configuration).
pub static TABLE: &[Setting] = &[
    Setting {
        name: "API retries",
        flag: Some("--retries"),
        key: Some("telnyx.retries"),
        value: || API_RETRIES.to_string(),
    },
    Setting {
        name: "API timeout (seconds)",
        flag: Some("--timeout"),
        key: Some("telnyx.timeout_seconds"),
        value: || API_TIMEOUT.as_secs().to_string(),
    },
    Setting {
        name: "API body cap (bytes)",
        flag: Some("--max-bytes"),
        key: Some("telnyx.max_bytes"),
        value: || API_MAX_BYTES.to_string(),
    },
    Setting {
        name: "organizations fetched at once",
        flag: None,
        key: Some("telnyx.concurrency"),
        value: || FETCH_CONCURRENCY.to_string(),
    },
    Setting {
        name: "SMTP password variable",
        flag: None,
        key: Some("email.password_env"),
        value: || SMTP_PASSWORD_ENV.to_string(),
    },
    Setting {
        name: "SMTP retries",
        flag: Some("--smtp-retries"),
        key: Some("email.retries"),
        value: || SMTP_RETRIES.to_string(),
    },
    Setting {
        name: "SMTP timeout (seconds)",
        flag: Some("--smtp-timeout"),
        key: Some("email.timeout_seconds"),
        value: || SMTP_TIMEOUT.as_secs().to_string(),
    },
    Setting {
        name: "matching users listed by a `count` condition",
        flag: None,
        key: Some("limits.matching_subjects"),
        value: || MATCHING_SUBJECTS.to_string(),
    },
    Setting {
        name: "instructions a message or expr may run",
        flag: None,
        key: Some("limits.template_fuel"),
        value: || TEMPLATE_FUEL.to_string(),
    },
    Setting {
        name: "longest message (bytes)",
        flag: None,
        key: Some("limits.message_bytes"),
        value: || MESSAGE_MAX_BYTES.to_string(),
    },
    Setting {
        name: "history retention (days)",
        flag: None,
        key: Some("history.retention_days"),
        value: || RETENTION_DAYS.to_string(),
    },
    Setting {
        name: "waivers listed as expiring soon (days)",
        flag: Some("--waiver-warn-days"),
        key: Some("waiver_warn_days"),
        value: || WAIVER_WARN_DAYS.to_string(),
    },
    Setting {
        name: "SARIF results at most",
        flag: Some("--sarif-max-results"),
        key: None,
        value: || SARIF_MAX_RESULTS.to_string(),
    },
    Setting {
        name: "users removed by one remediate apply at most",
        flag: Some("--max"),
        key: Some("remediate.max_removals"),
        value: || REMEDIATE_MAX_REMOVALS.to_string(),
    },
    Setting {
        name: "remediation plan maximum age (days)",
        flag: Some("--max-age"),
        key: Some("remediate.max_age_days"),
        value: || REMEDIATE_MAX_AGE_DAYS.to_string(),
    },
    Setting {
        name: "waiver maximum (days)",
        flag: Some("--waiver-max-days"),
        key: Some("waiver_max_days"),
        value: || WAIVER_MAX_DAYS.to_string(),
    },
];
