//! `orgaudit config check`: everything an audit with this configuration would load, loaded now,
//! and every problem reported in one pass: rules that do not compile, waivers or a baseline that
//! do not parse, templates that do not compile, API-key and webhook variables that are not set,
//! output folders that cannot be written, incomplete email settings. With `connect`, the API
//! (one page of one user per organization) and the SMTP server are reached too; nothing is sent
//! and no report is fetched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Config};
use crate::plan::{Flags, Plan};
use crate::{defaults, Error};

/// What a check found.
#[derive(Debug, Default)]
pub struct Checked {
    /// The settings as `config check` prints them.
    pub settings: String,
    /// Problems with the configuration or what it names: exit 2.
    pub problems: Vec<String>,
    /// With `connect`: what was reached, one line each.
    pub reached: Vec<String>,
    /// With `connect`: what could not be reached: exit 3.
    pub unreachable: Vec<String>,
}

impl Checked {
    /// 2 with problems, else 3 when something could not be reached, else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.problems.is_empty() {
            2
        } else if !self.unreachable.is_empty() {
            3
        } else {
            0
        }
    }
}

/// Checks the configuration at `path` (`trusted`: named with `--config`, rather than found in
/// the current folder). A file that does not parse is an error (every problem of it at once);
/// anything else wrong is in [`Checked::problems`].
pub fn check(path: &Path, trusted: bool, connect: bool) -> Result<Checked, Error> {
    let cfg = config::load(path).map_err(Error::Config)?;
    let mut out = Checked {
        settings: config::describe(&cfg),
        ..Default::default()
    };
    let problems = &mut out.problems;
    if !trusted {
        let refused = config::untrusted_keys(&cfg);
        if !refused.is_empty() {
            problems.push(format!(
                "found in the current folder, so audit will not trust it with: {} (name it with --config to trust it)",
                refused.join(", ")
            ));
        }
    }

    // Rules: the built-in pack, the configuration's folders, parameters and overrides.
    let rules = crate::plan::rule_options(&Default::default(), &cfg);
    match crate::load_rules(&rules).and_then(|set| Ok(set.compile()?)) {
        Ok(_) => {}
        Err(e) => problems.extend(e.to_string().lines().map(|l| format!("rules: {l}"))),
    }

    // Waivers and the baseline, as the audit would read them today.
    let now = chrono::Utc::now();
    if let Some(w) = &cfg.waivers {
        let max = cfg.waiver_max_days.unwrap_or(defaults::WAIVER_MAX_DAYS);
        if let Err(e) = crate::waivers::load(w, now, max) {
            problems.extend(e.to_string().lines().map(|l| format!("waivers: {l}")));
        }
    }
    if let Some(b) = &cfg.baseline {
        if let Err(e) = crate::baseline::load(b) {
            problems.push(format!("baseline: {e}"));
        }
    }

    // Templates.
    if let Some(dir) = &cfg.templates {
        match crate::render::Templates::from_dir(dir) {
            Err(e) => problems.push(format!("templates: {e}")),
            Ok(t) => problems.extend(t.check().into_iter().map(|e| format!("templates: {e}"))),
        }
    }

    // API keys: each organization's variable, or the default one when fetching without any.
    let fetching = cfg.fetches();
    let key_vars: Vec<(Option<&str>, &str)> = if cfg.organizations.is_empty() {
        if fetching {
            vec![(None, defaults::API_KEY_ENV)]
        } else {
            Vec::new()
        }
    } else {
        cfg.organizations
            .iter()
            .map(|o| (Some(o.name.as_str()), o.api_key_env.as_str()))
            .collect()
    };
    for (org, var) in &key_vars {
        if std::env::var(var).map_or(true, |v| v.trim().is_empty()) {
            problems.push(format!(
                "{}its API key variable {var} is not set",
                org.map(|o| format!("organization {o}: "))
                    .unwrap_or_default()
            ));
        }
    }

    // Outputs: each folder there or creatable, and writable.
    for o in &cfg.outputs {
        if let Err(e) = writable_folder(&o.path) {
            problems.push(format!("output {}: {e}", o.path.display()));
        }
    }

    // Webhooks.
    for n in &cfg.notify {
        if let Err(e) =
            crate::notify::webhook::Webhook::from_env(n.service, &n.url_env, n.when, |v| {
                std::env::var(v).ok()
            })
        {
            problems.push(e.to_string());
        }
    }

    // Email: complete, and settings the client accepts; then everything else a run's plan
    // checks (the history's location, gates that need one).
    if let Some(e) = &cfg.email {
        if e.to.is_empty() {
            problems.push("email: no recipient (email.to)".into());
        }
        if e.from.is_none() {
            problems.push("email: no sender (email.from)".into());
        }
        if e.smtp_url.is_none() {
            problems.push("email: no server (email.smtp_url)".into());
        }
        let user = e
            .smtp_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .is_some_and(|u| !u.username().is_empty());
        let var = e
            .password_env
            .clone()
            .unwrap_or_else(|| defaults::SMTP_PASSWORD_ENV.into());
        if user && e.password_file.is_none() && std::env::var(&var).map_or(true, |v| v.is_empty()) {
            problems.push(format!(
                "email: the server URL names a user, but its password variable {var} is not set"
            ));
        }
    }
    let plan = if problems.is_empty() {
        match plan_of(path, &cfg) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        }
    } else {
        None
    };

    if connect {
        if let Some(plan) = &plan {
            reach(&cfg, &key_vars, plan, &mut out);
        }
    }
    Ok(out)
}

/// The plan an audit with this configuration would make (the input a placeholder when the
/// configuration names none).
fn plan_of(path: &Path, cfg: &Config) -> Result<Plan, Error> {
    Plan::resolve(Flags {
        config: Some(path.to_path_buf()),
        input: (cfg.input.is_none() && !cfg.fetches()).then(|| "-".to_string()),
        ..Default::default()
    })
}

/// Whether a file could be written at `path`: its folder exists and takes a new file, or the
/// nearest folder that exists would take the missing ones.
fn writable_folder(path: &Path) -> Result<(), String> {
    let mut dir: PathBuf = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    while !dir.exists() {
        match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => dir = p.to_path_buf(),
            _ => {
                dir = PathBuf::from(".");
                break;
            }
        }
    }
    if !dir.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    tempfile::Builder::new()
        .prefix(".orgaudit-check")
        .tempfile_in(&dir)
        .map(drop)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))
}

/// Opens each connection the configuration would use.
fn reach(cfg: &Config, key_vars: &[(Option<&str>, &str)], plan: &Plan, out: &mut Checked) {
    let timeout = cfg
        .telnyx
        .timeout_seconds
        .map_or(defaults::API_TIMEOUT, Duration::from_secs_f64);
    for (org, var) in key_vars {
        let who = org
            .map(|o| format!("organization {o}"))
            .unwrap_or_else(|| "the API".into());
        let base = cfg
            .organizations
            .iter()
            .find(|o| Some(o.name.as_str()) == *org)
            .and_then(|o| o.base_url.clone())
            .or(cfg.telnyx.base_url.clone())
            .or_else(|| {
                std::env::var(defaults::BASE_URL_ENV)
                    .ok()
                    .filter(|s| !s.trim().is_empty())
            })
            .unwrap_or_else(|| defaults::DEFAULT_BASE_URL.to_string());
        match crate::source::telnyx::ApiKey::from_env(var) {
            Err(e) => out.unreachable.push(format!("{who}: {e}")),
            Ok(key) => match crate::source::telnyx::probe_blocking(&base, &key, timeout) {
                Ok(status) => out.reached.push(format!(
                    "{who}: {} answered {status} with this key",
                    crate::diag::redact_url(&base)
                )),
                Err(e) => out.unreachable.push(format!("{who}: {e}")),
            },
        }
    }
    if let Some(smtp) = plan.email.as_ref().and_then(|e| e.smtp.as_ref()) {
        match crate::notify::reach(smtp) {
            Ok(()) => out.reached.push(format!(
                "SMTP: {} accepted a connection (nothing was sent)",
                crate::diag::redact_url(&smtp.url)
            )),
            Err(e) => out.unreachable.push(format!("SMTP: {e}")),
        }
    }
}
