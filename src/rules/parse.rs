//! Reading rule files: the YAML tree to [`Rule`]s with conditions as a checked syntax tree.
//! Names (keys, fields, operators, params) are resolved here; values are typed in `compile`.
//!
//! Longer than most files: one reader per form of the rule syntax, each with the errors (and
//! did-you-means) of its own mistakes, dispatched from one exhaustive match on the form kind.

use super::registry::{self, FieldDef, FormKind, OpDef, Quantifier, FIELDS, FORMS, OPERATORS};
use super::template::{check_template, Names};
use super::{FixAction, Origin, Param, Reference, Rule, Scope, Severity};
use crate::diag::{did_you_mean, RuleError};
use crate::yaml::{self, Node, NodeKind, Pos, Scalar};

/// A condition as written, with names resolved and positions kept.
#[derive(Debug, Clone)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Field {
        field: &'static FieldDef,
        op: &'static OpDef,
        operand: Operand,
    },
    /// How many members or users satisfy `inner`, compared with `value`.
    Count {
        inner: Box<Cond>,
        cmp: registry::Cmp,
        value: Operand,
    },
    /// Over a group's members or the organization's users; the inner condition is a user one.
    Quant {
        q: Quantifier,
        inner: Box<Cond>,
    },
    ParamEmpty {
        name: String,
        empty: bool,
        pos: Pos,
    },
    Expr {
        source: String,
        pos: Pos,
    },
}

/// An operator's value: written in place, or a reference `{param: NAME}`.
#[derive(Debug, Clone)]
pub enum Operand {
    Value(Node),
    Param { name: String, pos: Pos },
}

const RULE_KEYS: &[&str] = &[
    "id",
    "title",
    "severity",
    "scope",
    "description",
    "remediation",
    "references",
    "tags",
    "enabled",
    "params",
    "requires",
    "when",
    "message",
    "fix",
];

/// The rule reader: the shared diagnostics reader, and what only rules need.
struct Reader<'a> {
    d: crate::diag::Reader<'a>,
}

impl<'a> std::ops::Deref for Reader<'a> {
    type Target = crate::diag::Reader<'a>;
    fn deref(&self) -> &Self::Target {
        &self.d
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.d
    }
}

/// Parses one rule file. A document is one rule, a list of rules, or `rules: [...]`.
pub(super) fn parse_file(
    file: &str,
    text: &str,
    builtin: bool,
    errors: &mut Vec<RuleError>,
) -> Vec<Rule> {
    let docs = match yaml::parse(text) {
        Ok(d) => d,
        Err(e) => {
            errors.push(RuleError::yaml_syntax(file, &e));
            return Vec::new();
        }
    };
    let mut r = Reader {
        d: crate::diag::Reader::new(file),
    };
    let mut out = Vec::new();
    if docs.is_empty() {
        r.errors
            .push(RuleError::file(file, "no rules in this file"));
    }
    for doc in &docs {
        let items: Vec<&Node> = match &doc.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            NodeKind::Map(entries) if entries.iter().any(|(k, _)| k.name == "rules") => {
                if entries.len() > 1 {
                    let extra = entries
                        .iter()
                        .find(|(k, _)| k.name != "rules")
                        .expect("len > 1");
                    r.err(
                        extra.0.pos,
                        format!("unknown key `{}` beside `rules`", extra.0.name),
                    );
                }
                match &entries
                    .iter()
                    .find(|(k, _)| k.name == "rules")
                    .expect("any")
                    .1
                    .kind
                {
                    NodeKind::Seq(items) => items.iter().collect(),
                    _ => {
                        r.err(doc.pos, "`rules` must be a list of rules".to_string());
                        continue;
                    }
                }
            }
            NodeKind::Map(_) => vec![doc],
            _ => {
                r.err(
                    doc.pos,
                    format!(
                        "expected a rule (a mapping), a list of rules, or `rules: [...]`; found {}",
                        doc.describe()
                    ),
                );
                continue;
            }
        };
        for item in items {
            if let Some(rule) = r.rule(item, builtin) {
                out.push(rule);
            }
        }
    }
    errors.extend(r.d.errors);
    out
}

/// Parses a YAML value given on the command line (e.g. `--set`) into JSON.
pub(super) fn yaml_value(text: &str) -> Result<serde_json::Value, String> {
    let docs = yaml::parse(text).map_err(|e| format!("invalid YAML value: {}", e.message))?;
    match docs.as_slice() {
        [] => Ok(serde_json::Value::Null),
        [one] => Ok(one.to_json()),
        _ => Err("expected one YAML value".into()),
    }
}

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

impl Reader<'_> {
    fn rule(&mut self, node: &Node, builtin: bool) -> Option<Rule> {
        let NodeKind::Map(entries) = &node.kind else {
            self.err(
                node.pos,
                format!("expected a rule (a mapping); found {}", node.describe()),
            );
            return None;
        };
        let before = self.errors.len();
        let get = |k: &str| {
            entries
                .iter()
                .find(|(key, _)| key.name == k)
                .map(|(_, v)| v)
        };
        for (key, _) in entries {
            if !RULE_KEYS.contains(&key.name.as_str()) {
                self.unknown_key(key.pos, &key.name, "a rule", RULE_KEYS);
            }
        }
        let mut missing = |name: &str| {
            self.err(
                node.pos,
                format!("missing `{name}`: a rule needs id, title, severity, scope and when"),
            );
        };
        let (id_n, title_n, sev_n, scope_n, when_n) = (
            get("id"),
            get("title"),
            get("severity"),
            get("scope"),
            get("when"),
        );
        for (name, n) in [
            ("id", id_n),
            ("title", title_n),
            ("severity", sev_n),
            ("scope", scope_n),
            ("when", when_n),
        ] {
            if n.is_none() {
                missing(name);
            }
        }
        let id = id_n.and_then(|n| self.text(n, "`id`")).unwrap_or_default();
        if let Some(n) = id_n {
            if !id.is_empty() && !is_kebab(&id) {
                self.err(n.pos, format!("rule id `{id}` must be kebab-case: lower-case letters and digits joined by single dashes, e.g. `stale-sign-in`"));
            }
        }
        let title = title_n
            .and_then(|n| self.text(n, "`title`"))
            .unwrap_or_default();
        let severity = sev_n.and_then(|n| {
            let s = self.text(n, "`severity`")?;
            let v = Severity::parse(&s);
            if v.is_none() {
                self.err(
                    n.pos,
                    format!(
                        "unknown severity `{s}`; expected one of critical, high, medium, low, info"
                    ),
                );
            }
            v
        });
        let scope = scope_n.and_then(|n| {
            let s = self.text(n, "`scope`")?;
            let v = Scope::parse(&s);
            if v.is_none() {
                self.err(
                    n.pos,
                    format!("unknown scope `{s}`; expected one of user, group, organization"),
                );
            }
            v
        });
        let description = get("description")
            .and_then(|n| self.text(n, "`description`"))
            .unwrap_or_default();
        let remediation = get("remediation")
            .and_then(|n| self.text(n, "`remediation`"))
            .unwrap_or_default();
        let message = get("message").and_then(|n| self.text(n, "`message`"));
        let message_pos = get("message").map_or(node.pos, |n| n.pos);
        let tags = get("tags")
            .map(|n| self.texts(n, "`tags`"))
            .unwrap_or_default();
        let enabled = match get("enabled") {
            None => true,
            Some(n) => match n.scalar() {
                Some(Scalar::Bool(b)) => b,
                _ => {
                    self.err(
                        n.pos,
                        format!("`enabled` must be true or false; found {}", n.describe()),
                    );
                    true
                }
            },
        };
        let references = get("references")
            .map(|n| self.references(n))
            .unwrap_or_default();
        let params = get("params").map(|n| self.params(n)).unwrap_or_default();
        let requires = get("requires")
            .map(|n| self.requires(n, &params))
            .unwrap_or_default();
        let when = match (when_n, scope) {
            (Some(n), Some(scope)) => self.condition(n, scope, &params),
            _ => None,
        };
        let fix = match (get("fix"), scope) {
            (Some(n), Some(scope)) => self.fix(n, scope, &params),
            _ => Some(super::Fix::default()),
        };
        if self.errors.len() > before {
            // The rule will not be compiled, where its message is checked: check it now, so
            // that every problem of the file is reported in one pass.
            if let (Some(scope), Some(text)) = (scope, &message) {
                let names = Names {
                    file: self.file,
                    scope,
                    params: &params,
                    evidence: None,
                };
                check_template(&names, text, message_pos, false, &mut self.d.errors);
            }
            return None;
        }
        Some(Rule {
            message: message.unwrap_or_else(|| title.clone()),
            default_severity: severity?,
            message_pos,
            id,
            title,
            severity: severity?,
            scope: scope?,
            description,
            remediation,
            references,
            tags,
            enabled,
            params,
            requires,
            when: when?,
            origin: Origin {
                file: self.file.to_string(),
                pos: node.pos,
            },
            builtin,
            fix: fix?,
            definition_sha256: crate::source::sha256_hex(
                crate::source::canonical_json(&node.to_json()).as_bytes(),
            ),
        })
    }

    /// `fix: ACTION` or `fix: {action: ACTION, when: USER-CONDITION}`.
    fn fix(&mut self, node: &Node, scope: Scope, params: &[Param]) -> Option<super::Fix> {
        const KEYS: &[&str] = &["action", "when"];
        let names = || {
            let names: Vec<&str> = FixAction::ALL.iter().map(|a| a.as_str()).collect();
            names.join(", ")
        };
        let (action_n, when_n) = match &node.kind {
            NodeKind::Scalar { .. } => (node, None),
            NodeKind::Map(entries) => {
                for (k, _) in entries {
                    if !KEYS.contains(&k.name.as_str()) {
                        self.unknown_key(k.pos, &k.name, "`fix`", KEYS);
                    }
                }
                let get = |k: &str| entries.iter().find(|(key, _)| key.name == k).map(|e| &e.1);
                let Some(action) = get("action") else {
                    self.err(
                        node.pos,
                        format!("`fix` needs an `action`: one of {}", names()),
                    );
                    return None;
                };
                (action, get("when"))
            }
            NodeKind::Seq(_) => {
                self.err(
                    node.pos,
                    format!(
                        "`fix` must be an action ({}) or {{action, when}}; found {}",
                        names(),
                        node.describe()
                    ),
                );
                return None;
            }
        };
        let text = self.text(action_n, "`fix.action`")?;
        let Some(action) = FixAction::parse(&text) else {
            let mut e = RuleError::new(
                self.file,
                action_n.pos,
                format!("unknown fix action `{text}`; expected one of {}", names()),
            );
            if let Some(s) = did_you_mean(&text, FixAction::ALL.iter().map(|a| a.as_str())) {
                e = e.with_help(format!("did you mean `{s}`?"));
            }
            self.errors.push(e);
            return None;
        };
        if !action.scopes().contains(&scope) {
            let scopes: Vec<&str> = action.scopes().iter().map(|s| s.as_str()).collect();
            self.err(
                action_n.pos,
                format!(
                    "the fix `{}` applies to {} rules; this rule's scope is {}",
                    action.as_str(),
                    scopes.join(", "),
                    scope.as_str()
                ),
            );
            return None;
        }
        let when = match (action, when_n) {
            (_, None) => None,
            (FixAction::Manual, Some(n)) => {
                self.err(
                    n.pos,
                    "`fix.when` is for an automatic fix; a manual one has no condition",
                );
                return None;
            }
            (FixAction::RemoveUser, Some(n)) => Some(self.condition(n, Scope::User, params)?),
        };
        Some(super::Fix { action, when })
    }

    fn references(&mut self, node: &Node) -> Vec<Reference> {
        let NodeKind::Seq(items) = &node.kind else {
            self.err(
                node.pos,
                format!(
                    "`references` must be a list of {{framework, control}}; found {}",
                    node.describe()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let NodeKind::Map(entries) = &item.kind else {
                self.err(
                    item.pos,
                    format!(
                        "a reference must be a mapping with `framework` and `control`; found {}",
                        item.describe()
                    ),
                );
                continue;
            };
            let (mut framework, mut control, mut url) = (None, None, None);
            for (k, v) in entries {
                match k.name.as_str() {
                    "framework" => framework = self.text(v, "`framework`"),
                    "control" => control = self.text(v, "`control`"),
                    "url" => {
                        url = self.text(v, "`url`");
                        // A link in every report: only the web, never `javascript:` or a file.
                        let web = url.as_deref().is_some_and(|u| {
                            url::Url::parse(u).is_ok_and(|p| {
                                matches!(p.scheme(), "https" | "http") && p.host().is_some()
                            })
                        });
                        if url.is_some() && !web {
                            self.err(
                                v.pos,
                                "a reference's `url` must be an https:// (or http://) address",
                            );
                            url = None;
                        }
                    }
                    other => self.unknown_key(
                        k.pos,
                        other,
                        "a reference",
                        &["framework", "control", "url"],
                    ),
                }
            }
            match (framework, control) {
                (Some(framework), Some(control)) => out.push(Reference {
                    framework,
                    control,
                    url,
                }),
                _ => self.err(item.pos, "a reference needs both `framework` and `control`"),
            }
        }
        out
    }

    fn params(&mut self, node: &Node) -> Vec<Param> {
        let NodeKind::Map(entries) = &node.kind else {
            self.err(
                node.pos,
                format!(
                    "`params` must be a mapping of names to default values; found {}",
                    node.describe()
                ),
            );
            return Vec::new();
        };
        for (k, _) in entries {
            if let Some(setting) = super::RuleSetting::parse(&k.name) {
                self.err_help(
                    k.pos,
                    format!("`{}` is a reserved name, not a parameter", k.name),
                    format!(
                        "a rule's {} is set with `{}:` in the rule, or overridden with `--set RULE_ID.{}=VALUE`",
                        setting.name(),
                        setting.name(),
                        setting.name()
                    ),
                );
            }
        }
        entries
            .iter()
            .map(|(k, v)| {
                let value = v.to_json();
                Param {
                    name: k.name.clone(),
                    default: value.clone(),
                    value,
                    pos: k.pos,
                }
            })
            .collect()
    }

    /// `requires: [params.NAME, ...]`: what must be set for the rule to be evaluated.
    fn requires(&mut self, node: &Node, params: &[Param]) -> Vec<String> {
        let items: Vec<&Node> = match &node.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut out = Vec::new();
        for item in items {
            let Some(text) = self.text(item, "an entry of `requires`") else {
                continue;
            };
            match text.strip_prefix("params.") {
                Some(name) if self.check_param(name, item.pos, params).is_some() => {
                    out.push(name.to_string())
                }
                Some(_) => {}
                None => self.err_help(
                    item.pos,
                    format!("`requires` takes parameters; found `{text}`"),
                    "write `params.NAME`: the rule is not evaluated while that parameter is empty",
                ),
            }
        }
        out
    }

    fn operand(&mut self, node: &Node, params: &[Param]) -> Option<Operand> {
        if let NodeKind::Map(entries) = &node.kind {
            if let [(k, v)] = entries.as_slice() {
                if k.name == "param" {
                    let name = self.text(v, "`param`")?;
                    self.check_param(&name, v.pos, params)?;
                    return Some(Operand::Param { name, pos: v.pos });
                }
            }
        }
        Some(Operand::Value(node.clone()))
    }

    fn check_param(&mut self, name: &str, pos: Pos, params: &[Param]) -> Option<()> {
        if params.iter().any(|p| p.name == name) {
            return Some(());
        }
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        let help = if names.is_empty() {
            "this rule declares no `params`".to_string()
        } else {
            match did_you_mean(name, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? declared params: {}", names.join(", ")),
                None => format!("declared params: {}", names.join(", ")),
            }
        };
        self.err_help(pos, format!("undefined param `{name}`"), help);
        None
    }

    fn conditions(
        &mut self,
        node: &Node,
        scope: Scope,
        params: &[Param],
        key: &str,
    ) -> Option<Vec<Cond>> {
        let NodeKind::Seq(items) = &node.kind else {
            self.err(
                node.pos,
                format!(
                    "`{key}` must be a list of conditions; found {}",
                    node.describe()
                ),
            );
            return None;
        };
        if items.is_empty() {
            self.err(node.pos, format!("`{key}` needs at least one condition"));
            return None;
        }
        let out: Vec<Option<Cond>> = items
            .iter()
            .map(|i| self.condition(i, scope, params))
            .collect();
        out.into_iter().collect()
    }

    fn condition(&mut self, node: &Node, scope: Scope, params: &[Param]) -> Option<Cond> {
        let entries = match &node.kind {
            NodeKind::Seq(_) => return self.conditions(node, scope, params, "when").map(Cond::All),
            NodeKind::Map(entries) => entries,
            _ => {
                self.err(node.pos, format!("expected a condition (a mapping such as `{{field: user_status, equals: enabled}}`); found {}", node.describe()));
                return None;
            }
        };
        let form_keys: Vec<&str> = FORMS.iter().map(|f| f.key).collect();
        let heads: Vec<&(yaml::Key, Node)> = entries
            .iter()
            .filter(|(k, _)| form_keys.contains(&k.name.as_str()))
            .collect();
        let (head_key, head) = match heads.as_slice() {
            [one] => (&one.0, &one.1),
            [] => {
                let mut valid: Vec<&str> = form_keys.clone();
                valid.extend(OPERATORS.iter().map(|o| o.name));
                let first = &entries.first().map(|(k, _)| k);
                match first {
                    Some(k) if !OPERATORS.iter().any(|o| o.name == k.name) => {
                        self.unknown_key(k.pos, &k.name, "a condition", &form_keys)
                    }
                    _ => self.err(
                        node.pos,
                        format!("a condition needs one of: {}", form_keys.join(", ")),
                    ),
                }
                return None;
            }
            [a, b, ..] => {
                self.err(
                    b.0.pos,
                    format!(
                        "`{}` and `{}` cannot be in one condition; wrap them in `all:` or `any:`",
                        a.0.name, b.0.name
                    ),
                );
                return None;
            }
        };
        let form = FORMS
            .iter()
            .find(|f| f.key == head_key.name)
            .expect("is a form key");
        if !form.scopes.contains(&scope) {
            let scopes: Vec<&str> = form.scopes.iter().map(|s| s.as_str()).collect();
            self.err(
                head_key.pos,
                format!(
                    "`{}` is for {} rules; this rule's scope is {}",
                    form.key,
                    scopes.join(", "),
                    scope.as_str()
                ),
            );
            return None;
        }
        let only_head = |r: &mut Self| {
            if let Some((k, _)) = entries.iter().find(|(k, _)| k.name != head_key.name) {
                r.err(
                    k.pos,
                    format!("unexpected key `{}` beside `{}`", k.name, head_key.name),
                );
                return None;
            }
            Some(())
        };
        match form.kind {
            FormKind::All => {
                only_head(self)?;
                self.conditions(head, scope, params, "all").map(Cond::All)
            }
            FormKind::Any => {
                only_head(self)?;
                self.conditions(head, scope, params, "any").map(Cond::Any)
            }
            FormKind::Not => {
                only_head(self)?;
                self.condition(head, scope, params)
                    .map(|c| Cond::Not(Box::new(c)))
            }
            FormKind::Expr => {
                only_head(self)?;
                let source = self.text(head, "`expr`")?;
                Some(Cond::Expr {
                    source,
                    pos: head.pos,
                })
            }
            FormKind::Quant(q) => {
                only_head(self)?;
                let inner = self.condition(head, Scope::User, params)?;
                Some(Cond::Quant {
                    q,
                    inner: Box::new(inner),
                })
            }
            FormKind::Count => {
                only_head(self)?;
                self.count(head, scope, params)
            }
            FormKind::Param => {
                let name = self.text(head, "`param`")?;
                self.check_param(&name, head.pos, params)?;
                let mut empty = None;
                for (k, v) in entries.iter().filter(|(k, _)| k.name != "param") {
                    if k.name != "empty" {
                        self.unknown_key(
                            k.pos,
                            &k.name,
                            "a `param` condition",
                            &["param", "empty"],
                        );
                        return None;
                    }
                    match v.scalar() {
                        Some(Scalar::Bool(b)) => empty = Some(b),
                        _ => {
                            self.err(
                                v.pos,
                                format!("`empty` must be true or false; found {}", v.describe()),
                            );
                            return None;
                        }
                    }
                }
                let Some(empty) = empty else {
                    self.err(
                        node.pos,
                        "a `param` condition needs `empty: true` or `empty: false`",
                    );
                    return None;
                };
                Some(Cond::ParamEmpty {
                    name,
                    empty,
                    pos: head_key.pos,
                })
            }
            FormKind::Field => self.field_condition(node, entries, head, scope, params),
        }
    }

    /// `count: {of, where, OP: N}`.
    fn count(&mut self, node: &Node, scope: Scope, params: &[Param]) -> Option<Cond> {
        let NodeKind::Map(entries) = &node.kind else {
            self.err(
                node.pos,
                format!(
                    "`count` must be a mapping: {{of: ..., where: USER-CONDITION, gt: N}}; found {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut valid = vec!["of", "where"];
        valid.extend(registry::COUNT_OPS.iter().map(|(n, _)| *n));
        let before = self.errors.len();
        for (k, _) in entries {
            if !valid.contains(&k.name.as_str()) {
                self.unknown_key(k.pos, &k.name, "a `count` condition", &valid);
            }
        }
        let get = |k: &str| {
            entries
                .iter()
                .find(|(key, _)| key.name == k)
                .map(|(_, v)| v)
        };
        let of = registry::count_of(scope)?;
        match get("of") {
            Some(v) if v.text() == Some(of) => {}
            Some(v) => self.err(
                v.pos,
                format!(
                    "a `count` in a {} rule counts `{of}`; found {}",
                    scope.as_str(),
                    v.text().map_or_else(|| v.describe(), |t| format!("`{t}`"))
                ),
            ),
            None => self.err(node.pos, format!("a `count` needs `of: {of}`")),
        }
        let ops: Vec<&(yaml::Key, Node)> = entries
            .iter()
            .filter(|(k, _)| registry::COUNT_OPS.iter().any(|(n, _)| *n == k.name))
            .collect();
        let (cmp, value) = match ops.as_slice() {
            [(k, v)] => (
                registry::COUNT_OPS
                    .iter()
                    .find(|(n, _)| *n == k.name)
                    .map(|(_, c)| *c)?,
                self.operand(v, params),
            ),
            [] => {
                self.err(
                    node.pos,
                    "a `count` needs a comparison: gt, ge, lt, le or eq with a number",
                );
                return None;
            }
            [_, (k, _), ..] => {
                self.err(
                    k.pos,
                    format!("one comparison per `count`; `{}` is a second one", k.name),
                );
                return None;
            }
        };
        let inner = match get("where") {
            Some(w) => self.condition(w, Scope::User, params),
            None => {
                self.err(
                    node.pos,
                    "a `count` needs `where`: the user condition to count",
                );
                None
            }
        };
        if self.errors.len() > before {
            return None;
        }
        Some(Cond::Count {
            inner: Box::new(inner?),
            cmp,
            value: value?,
        })
    }

    fn field_condition(
        &mut self,
        node: &Node,
        entries: &[(yaml::Key, Node)],
        head: &Node,
        scope: Scope,
        params: &[Param],
    ) -> Option<Cond> {
        let name = self.text(head, "`field`")?;
        let Some(field) = registry::field(scope, &name) else {
            let valid: Vec<&str> = registry::fields_of(scope).map(|d| d.name).collect();
            let elsewhere: Vec<&str> = FIELDS
                .iter()
                .filter(|d| d.name == name)
                .map(|d| d.scope().as_str())
                .collect();
            if !elsewhere.is_empty() {
                self.err_help(
                    head.pos,
                    format!(
                        "field `{name}` is a {} field, but this rule's scope is {}",
                        elsewhere.join("/"),
                        scope.as_str()
                    ),
                    format!("{} fields: {}", scope.as_str(), valid.join(", ")),
                );
            } else {
                let help = match did_you_mean(&name, valid.iter().copied()) {
                    Some(s) => format!(
                        "did you mean `{s}`? {} fields: {}",
                        scope.as_str(),
                        valid.join(", ")
                    ),
                    None => format!("{} fields: {}", scope.as_str(), valid.join(", ")),
                };
                self.err_help(head.pos, format!("unknown field `{name}`"), help);
            }
            return None;
        };
        let ops: Vec<&(yaml::Key, Node)> =
            entries.iter().filter(|(k, _)| k.name != "field").collect();
        let op_names: Vec<&str> = OPERATORS.iter().map(|o| o.name).collect();
        let (key, value) = match ops.as_slice() {
            [one] => (&one.0, &one.1),
            [] => {
                let valid = registry::operators_for(field.ty());
                self.err_help(
                    node.pos,
                    format!("the condition on `{name}` has no operator"),
                    format!(
                        "operators for {} fields: {}",
                        field.ty().describe(),
                        valid.join(", ")
                    ),
                );
                return None;
            }
            [_, b, ..] => {
                if op_names.contains(&b.0.name.as_str()) {
                    self.err(b.0.pos, format!("one operator per condition; `{}` is a second one (combine conditions with `all:`)", b.0.name));
                } else {
                    self.unknown_key(b.0.pos, &b.0.name, "a field condition", &op_names);
                }
                return None;
            }
        };
        let Some(op) = registry::operator(&key.name) else {
            self.unknown_key(key.pos, &key.name, "a field condition", &op_names);
            return None;
        };
        if !op.applies_to(field.ty()) {
            let valid = registry::operators_for(field.ty());
            self.err_help(
                key.pos,
                format!(
                    "operator `{}` does not apply to `{name}`, a {} field",
                    op.name,
                    field.ty().describe()
                ),
                format!(
                    "operators for {} fields: {}",
                    field.ty().describe(),
                    valid.join(", ")
                ),
            );
            return None;
        }
        if op.kind == registry::OpKind::Shared && scope != Scope::User {
            self.err(key.pos, "`shared` is for user rules");
            return None;
        }
        let operand = self.operand(value, params)?;
        Some(Cond::Field { field, op, operand })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        let mut errors = Vec::new();
        parse_file("r.yaml", text, false, &mut errors);
        errors.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn kebab_case_ids() {
        assert!(is_kebab("sso-bypass"));
        assert!(is_kebab("rule2"));
        assert!(!is_kebab("SSO"));
        assert!(!is_kebab("a--b"));
        assert!(!is_kebab("-a"));
    }

    #[test]
    fn unknown_rule_key_with_suggestion() {
        let e = errors(
            "id: a\ntitle: A\nseverty: high\nscope: user\nwhen: {field: active, equals: true}\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with(
                "r.yaml:3:1: unknown key `severty` in a rule\n  help: did you mean `severity`?"
            ),
            "{e:?}"
        );
        assert!(e[1].starts_with("r.yaml:1:1: missing `severity`"), "{e:?}");
    }

    #[test]
    fn unknown_field_lists_the_valid_ones() {
        let e = errors(
            "id: a\ntitle: A\nseverity: high\nscope: user\nwhen:\n  field: emial\n  equals: x\n",
        );
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("r.yaml:6:10: unknown field `emial`\n  help: did you mean `email`? user fields: id, email,"), "{e:?}");
    }

    #[test]
    fn scope_mismatch_and_wrong_operator() {
        let e = errors(
            "id: a\ntitle: A\nseverity: high\nscope: user\nwhen: {field: member_count, gt: 1}\n",
        );
        assert!(
            e[0].starts_with(
                "r.yaml:5:15: field `member_count` is a group field, but this rule's scope is user"
            ),
            "{e:?}"
        );
        let e = errors("id: a\ntitle: A\nseverity: high\nscope: user\nwhen: {field: email, older_than_days: 3}\n");
        assert!(
            e[0].starts_with(
                "r.yaml:5:22: operator `older_than_days` does not apply to `email`, a string field"
            ),
            "{e:?}"
        );
        let e = errors("id: a\ntitle: A\nseverity: high\nscope: user\nwhen: {no_member: {field: active, equals: true}}\n");
        assert!(
            e[0].starts_with(
                "r.yaml:5:8: `no_member` is for group rules; this rule's scope is user"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn undefined_param() {
        let e = errors("id: a\ntitle: A\nseverity: high\nscope: user\nparams: {days: 3}\nwhen: {field: created_at, older_than_days: {param: dayz}}\n");
        assert_eq!(e, vec!["r.yaml:6:52: undefined param `dayz`\n  help: did you mean `days`? declared params: days"]);
    }

    #[test]
    fn file_shapes() {
        let rule = "{id: a, title: A, severity: low, scope: organization, when: {field: user_count, equals: 0}}";
        for text in [
            rule.to_string(),
            format!("- {rule}"),
            format!("rules:\n  - {rule}"),
            format!("{rule}\n---\n{}", rule.replace("id: a", "id: b")),
        ] {
            let mut errs = Vec::new();
            let rules = parse_file("r.yaml", &text, false, &mut errs);
            assert!(errs.is_empty(), "{errs:?}");
            assert!(!rules.is_empty());
        }
    }
}
