//! Rules: YAML rule files turned into a checked rule set, then compiled into typed predicates.
//!
//! Three stages, each with its own errors: [`RuleSet::add_source`] reads and validates rule files
//! (every error with file:line:column), [`RuleSet::set_param`] and friends apply overrides, and
//! [`RuleSet::compile`] binds parameters, compiles regexes and yields [`CompiledRule`]s, which
//! the engine evaluates without any type check left to do.

mod builtin;
mod compile;
mod parse;
pub mod registry;
mod template;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::diag::{RuleError, RuleErrors};
pub use compile::CompiledRule;
pub(crate) use compile::{EvidenceItem, ListTest, Pred, StrTest, TimeTest};
pub(crate) use parse::{Cond, Operand};
pub use registry::FixAction;
pub(crate) use registry::Quantifier;

use crate::yaml::Pos;

/// How serious a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    schemars::JsonSchema,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// From most to least severe.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
    /// The next severity down (`None` below info).
    pub fn below(self) -> Option<Severity> {
        match self {
            Severity::Critical => Some(Severity::High),
            Severity::High => Some(Severity::Medium),
            Severity::Medium => Some(Severity::Low),
            Severity::Low => Some(Severity::Info),
            Severity::Info => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule's findings are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    User,
    Group,
    Organization,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::User, Scope::Group, Scope::Organization];
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Group => "group",
            Scope::Organization => "organization",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A control of a compliance framework that a rule helps to meet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Reference {
    pub framework: String,
    pub control: String,
    /// Where the control is described (`https://` or `http://` only), shown as a link.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
}

/// A rule parameter: its default and its current value (after overrides).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    pub name: String,
    pub default: serde_json::Value,
    pub value: serde_json::Value,
    #[serde(skip)]
    pub pos: Pos,
}

/// Where a rule was defined.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// A path, or `builtin:NAME.yaml` for the built-in pack.
    pub file: String,
    pub pos: Pos,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// A validated rule, before compilation.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    /// The effective severity: the rule file's, or an override's.
    pub severity: Severity,
    /// The severity the rule file gives.
    pub default_severity: Severity,
    pub scope: Scope,
    pub description: String,
    pub remediation: String,
    pub references: Vec<Reference>,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub params: Vec<Param>,
    /// Parameters that must not be empty for the rule to be evaluated (`requires:`).
    pub requires: Vec<String>,
    /// The condition, checked.
    pub(crate) when: Cond,
    /// A minijinja template; defaults to the title.
    pub message: String,
    pub message_pos: Pos,
    pub origin: Origin,
    pub builtin: bool,
    /// What may be done about its findings (`fix:`; default manual).
    pub fix: Fix,
    /// The sha256 of the rule as written: its YAML mapping as canonical JSON (keys sorted).
    pub definition_sha256: String,
}

/// A rule's fix: the action and, for an automatic one, the user condition it needs besides the
/// rule's own (`fix: {action: remove_user, when: CONDITION}`).
#[derive(Debug, Clone, Default)]
pub struct Fix {
    pub action: FixAction,
    pub(crate) when: Option<Cond>,
}

impl Rule {
    /// The rule's version as a remediation plan records it: the sha256 of its definition, the
    /// parameter values and the severity it ran with (an override changes it).
    pub fn version(&self) -> String {
        let canonical = serde_json::json!({
            "definition_sha256": self.definition_sha256,
            "params": self.params_json(),
            "severity": self.severity.as_str(),
        });
        crate::source::sha256_hex(crate::source::canonical_json(&canonical).as_bytes())
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// An attribute of the rule as messages and `expr` read it.
    pub fn attr(&self, a: registry::RuleAttr) -> &str {
        match a {
            registry::RuleAttr::Id => &self.id,
            registry::RuleAttr::Title => &self.title,
            registry::RuleAttr::Severity => self.severity.as_str(),
        }
    }

    /// The severity the rule file gives, when an override changed it.
    pub fn overridden_severity(&self) -> Option<Severity> {
        (self.severity != self.default_severity).then_some(self.default_severity)
    }

    /// The current parameter values as a JSON object.
    pub fn params_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect()
    }
}

/// A rule setting that `--set RULE_ID.NAME=VALUE` and the configuration override like a
/// parameter; their names are reserved, so no rule may declare a parameter of that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSetting {
    Severity,
    Enabled,
}

impl RuleSetting {
    pub const ALL: [RuleSetting; 2] = [RuleSetting::Severity, RuleSetting::Enabled];

    pub fn name(self) -> &'static str {
        match self {
            RuleSetting::Severity => "severity",
            RuleSetting::Enabled => "enabled",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    fn apply(self, rule: &mut Rule, value: &serde_json::Value) -> Result<(), RuleError> {
        let bad = |expected: &str| {
            RuleError::plain(format!(
                "`{}.{}` must be {expected}; found {value}",
                rule.id,
                self.name()
            ))
        };
        match self {
            RuleSetting::Severity => {
                let sev = value
                    .as_str()
                    .and_then(Severity::parse)
                    .ok_or_else(|| bad("one of critical, high, medium, low, info"))?;
                rule.severity = sev;
            }
            RuleSetting::Enabled => {
                rule.enabled = value.as_bool().ok_or_else(|| bad("true or false"))?;
            }
        }
        Ok(())
    }
}

/// What evaluating a rule may take, and show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Matching users a `count` condition's evidence lists.
    pub matching_subjects: usize,
    /// Instructions a message template or `expr` may run.
    pub template_fuel: u64,
    /// The longest message, in bytes.
    pub message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            matching_subjects: crate::defaults::MATCHING_SUBJECTS,
            template_fuel: crate::defaults::TEMPLATE_FUEL,
            message_bytes: crate::defaults::MESSAGE_MAX_BYTES,
        }
    }
}

/// A set of rules with unique ids, in load order.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    limits: Limits,
}

impl RuleSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in pack (embedded in the binary).
    pub fn builtin() -> Self {
        let mut set = Self::new();
        for (name, text) in builtin::FILES {
            set.add_source_inner(&format!("builtin:{name}"), text, true)
                .unwrap_or_else(|e| panic!("the built-in rule pack is invalid: {e}"));
        }
        set
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Reads rules from YAML text. `name` identifies the text in errors. Every problem in the text
    /// is reported, not just the first; on error nothing is added.
    pub fn add_source(&mut self, name: &str, text: &str) -> Result<(), RuleErrors> {
        self.add_source_inner(name, text, false)
    }

    fn add_source_inner(
        &mut self,
        name: &str,
        text: &str,
        builtin: bool,
    ) -> Result<(), RuleErrors> {
        let mut errors = Vec::new();
        let mut rules = parse::parse_file(name, text, builtin, &mut errors);
        self.check_unique(&rules, &mut errors);
        for rule in &mut rules {
            if let Err(e) = compile::compile(rule, self.limits) {
                errors.extend(e.0);
            }
        }
        if errors.is_empty() {
            self.rules.extend(rules);
            Ok(())
        } else {
            Err(RuleErrors(errors))
        }
    }

    /// Reports ids that an earlier rule (already in the set, or earlier in `batch`) has.
    /// Hashed: a set of 100,000 rules loads in linear time.
    fn check_unique(&self, batch: &[Rule], errors: &mut Vec<RuleError>) {
        let mut first: std::collections::HashMap<&str, &Rule> =
            self.rules.iter().map(|r| (r.id.as_str(), r)).collect();
        for rule in batch {
            let Some(earlier) = first.get(rule.id.as_str()) else {
                first.insert(&rule.id, rule);
                continue;
            };
            let help = if earlier.builtin {
                "built-in rule ids are reserved; give your rule another id, or run with --no-builtin".to_string()
            } else {
                "rule ids must be unique across all rule files".to_string()
            };
            errors.push(
                RuleError::new(
                    &rule.origin.file,
                    rule.origin.pos,
                    format!(
                        "duplicate rule id `{}` (first defined at {})",
                        rule.id, earlier.origin
                    ),
                )
                .with_help(help),
            );
        }
    }

    /// Reads rule files and folders (`*.yaml` / `*.yml`, recursively, in name order; files named
    /// `*.test.yaml` hold rule tests and are skipped). Errors of all files are collected.
    pub fn add_paths(&mut self, paths: &[PathBuf]) -> Result<(), RuleErrors> {
        let mut errors = Vec::new();
        for path in paths {
            let files = match rule_files(path) {
                Ok(f) => f,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for file in files {
                let name = file.display().to_string();
                match crate::diag::read_source(&file, "the rule file") {
                    Ok((_, text)) => {
                        if let Err(e) = self.add_source(&name, &text) {
                            errors.extend(e.0);
                        }
                    }
                    Err(e) => errors.extend(e.0),
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RuleErrors(errors))
        }
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut Rule, RuleError> {
        if self.get(id).is_none() {
            return Err(self.unknown_rule(id));
        }
        Ok(self.rules.iter_mut().find(|r| r.id == id).expect("checked"))
    }

    fn unknown_rule(&self, id: &str) -> RuleError {
        let ids: Vec<&str> = self.rules.iter().map(|r| r.id.as_str()).collect();
        let mut e = RuleError::plain(format!("unknown rule `{id}`"));
        e.help = Some(match crate::diag::did_you_mean(id, ids.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? (`orgaudit rules list` shows every rule)"),
            None => "`orgaudit rules list` shows every rule".into(),
        });
        e
    }

    /// What evaluating the rules may take and show.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Enables or disables a rule by id.
    pub fn set_enabled(&mut self, id: &str, enabled: bool) -> Result<(), RuleError> {
        self.get_mut(id)?.enabled = enabled;
        Ok(())
    }

    /// Overrides a parameter with a JSON value; the rule is re-checked with it.
    pub fn set_param(
        &mut self,
        id: &str,
        param: &str,
        value: serde_json::Value,
    ) -> Result<(), RuleErrors> {
        let limit = self.limits;
        let rule = self.get_mut(id).map_err(RuleErrors::from)?;
        if let Some(setting) = RuleSetting::parse(param) {
            return setting.apply(rule, &value).map_err(RuleErrors::from);
        }
        let Some(p) = rule.params.iter_mut().find(|p| p.name == param) else {
            let names: Vec<&str> = rule.params.iter().map(|p| p.name.as_str()).collect();
            let settings: Vec<&str> = RuleSetting::ALL.iter().map(|s| s.name()).collect();
            let help = if names.is_empty() {
                format!(
                    "rule `{id}` has no parameters; every rule has the settings {}",
                    settings.join(", ")
                )
            } else {
                format!(
                    "rule `{id}` has the parameters: {}; every rule has the settings {}",
                    names.join(", "),
                    settings.join(", ")
                )
            };
            return Err(
                RuleError::plain(format!("rule `{id}` has no parameter `{param}`"))
                    .with_help(help)
                    .into(),
            );
        };
        let old = std::mem::replace(&mut p.value, value);
        if let Err(e) = compile::compile(rule, limit) {
            let p = rule
                .params
                .iter_mut()
                .find(|p| p.name == param)
                .expect("found");
            p.value = old;
            return Err(e);
        }
        Ok(())
    }

    /// Parses `RULE_ID.PARAM=VALUE` (VALUE is YAML) and applies it.
    pub fn apply_set(&mut self, spec: &str) -> Result<(), RuleErrors> {
        let bad = || {
            RuleErrors::from(
                RuleError::plain(format!("invalid --set `{spec}`")).with_help(
                    "expected RULE_ID.PARAM=VALUE, e.g. stale-sign-in.stale_after_days=60",
                ),
            )
        };
        let (target, value) = spec.split_once('=').ok_or_else(bad)?;
        let (id, param) = target.split_once('.').ok_or_else(bad)?;
        let value = parse::yaml_value(value).map_err(|m| {
            RuleErrors::from(RuleError::plain(format!("invalid --set `{spec}`: {m}")))
        })?;
        self.set_param(id.trim(), param.trim(), value)
    }

    /// Compiles every enabled rule: parameters bound, regexes compiled, fields resolved.
    pub fn compile(&self) -> Result<Vec<CompiledRule>, RuleErrors> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for rule in self.rules.iter().filter(|r| r.enabled) {
            match compile::compile(rule, self.limits) {
                Ok(c) => out.push(c),
                Err(e) => errors.extend(e.0),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(RuleErrors(errors))
        }
    }
}

fn rule_files(path: &Path) -> Result<Vec<PathBuf>, RuleError> {
    let name = path.display().to_string();
    let meta =
        std::fs::metadata(path).map_err(|e| RuleError::file(&name, format!("cannot read: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            RuleError::file(
                &dir.display().to_string(),
                format!("cannot read folder: {e}"),
            )
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| RuleError::file(&name, format!("cannot read: {e}")))?;
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if is_rule_file(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn is_rule_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (name.ends_with(".yaml") || name.ends_with(".yml"))
        && !name.ends_with(".test.yaml")
        && !name.ends_with(".test.yml")
}
