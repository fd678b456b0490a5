//! The configuration file (`orgaudit.yaml`): what a scheduled run needs besides the command
//! line. Secrets are never in it: it names the environment variables that hold them. Unknown keys
//! are errors with file:line:column, so a typo never silently changes an audit.
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

use crate::rules::error::did_you_mean;
use crate::rules::{RuleError, RuleErrors};
use crate::yaml::{self, Key, Node, NodeKind, Pos, Scalar};

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
}

const TOP_KEYS: &[&str] = &["telnyx", "organizations", "waivers", "waiver_max_days"];
const TELNYX_KEYS: &[&str] = &[
    "base_url",
    "retries",
    "timeout_seconds",
    "max_bytes",
    "concurrency",
];
const ORG_KEYS: &[&str] = &["name", "api_key_env", "base_url"];

struct Reader<'a> {
    file: &'a str,
    errors: Vec<RuleError>,
}

impl Reader<'_> {
    fn err(&mut self, pos: Pos, message: String) {
        self.errors.push(RuleError::new(self.file, pos, message));
    }

    fn map<'n>(&mut self, node: &'n Node, what: &str, valid: &[&str]) -> &'n [(Key, Node)] {
        let NodeKind::Map(entries) = &node.kind else {
            self.err(
                node.pos,
                format!("{what} must be a mapping; found {}", node.describe()),
            );
            return &[];
        };
        for (k, _) in entries {
            if !valid.contains(&k.name.as_str()) {
                let help = match did_you_mean(&k.name, valid.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? valid keys: {}", valid.join(", ")),
                    None => format!("valid keys: {}", valid.join(", ")),
                };
                self.errors.push(
                    RuleError::new(
                        self.file,
                        k.pos,
                        format!("unknown key `{}` in {what}", k.name),
                    )
                    .with_help(help),
                );
            }
        }
        entries
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.scalar() {
            Some(Scalar::Str(s)) if !s.trim().is_empty() => Some(s.to_string()),
            _ => {
                self.err(
                    node.pos,
                    format!(
                        "`{what}` must be a non-empty string; found {}",
                        node.describe()
                    ),
                );
                None
            }
        }
    }

    fn number(&mut self, node: &Node, what: &str, min: f64, max: f64) -> Option<f64> {
        let v = match node.scalar() {
            Some(Scalar::Int(i)) => i as f64,
            Some(Scalar::Float(f)) => f,
            _ => f64::NAN,
        };
        if v.is_nan() || v < min || v > max {
            self.err(
                node.pos,
                format!(
                    "`{what}` must be a number from {min} to {max}; found {}",
                    node.text().unwrap_or("a non-scalar")
                ),
            );
            return None;
        }
        Some(v)
    }
}

/// Reads and checks a configuration file. Every problem is reported, with file:line:column.
pub fn load(path: &Path) -> Result<Config, RuleErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        RuleErrors::from(RuleError::file(
            &name,
            format!("cannot read the configuration: {e}"),
        ))
    })?;
    parse(&name, &text)
}

/// Checks a configuration held in memory; `name` identifies it in errors.
pub fn parse(name: &str, text: &str) -> Result<Config, RuleErrors> {
    let docs = yaml::parse(text).map_err(|e| {
        RuleErrors::from(RuleError::new(
            name,
            e.pos,
            format!("invalid YAML: {}", e.message),
        ))
    })?;
    let mut r = Reader {
        file: name,
        errors: Vec::new(),
    };
    let mut cfg = Config {
        path: name.to_string(),
        ..Default::default()
    };
    let Some(doc) = docs.first() else {
        return Ok(cfg);
    };
    if docs.len() > 1 {
        r.err(docs[1].pos, "a configuration is one YAML document".into());
    }
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
            "waivers" => {
                if let Some(p) = r.string(v, "waivers") {
                    let base = Path::new(name).parent().unwrap_or(Path::new(""));
                    cfg.waivers = Some(base.join(p));
                }
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
                        r.err(item.pos, "an organization needs `name` and `api_key_env` (the environment variable holding its API key)".into());
                        continue;
                    };
                    let name = r.string(n, "name");
                    let env = r.string(e, "api_key_env");
                    let base_url = get("base_url").and_then(|b| r.string(b, "base_url"));
                    if let Some(env) = &env {
                        if !env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                            // The value is not echoed: it may be a key pasted by mistake.
                            r.err(e.pos, "`api_key_env` must name an environment variable (letters, digits and `_`), not hold the key itself".into());
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
#[derive(Debug, Clone, Default)]
pub struct FetchFlags {
    pub api_key_file: Option<std::path::PathBuf>,
    pub base_url: Option<String>,
    pub retries: Option<u32>,
    pub timeout_seconds: Option<f64>,
    pub max_bytes: Option<u64>,
    pub format: Option<crate::source::telnyx::ReportFormat>,
}

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
    let concurrency = settings.concurrency.unwrap_or(4);
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
