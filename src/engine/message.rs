//! Finding messages and the contexts of messages and `expr` conditions.
//!
//! Both contexts are built from one schema, [`registry::VARS`], which the validator reads too.
//! Most messages are text with `{{ var.attr }}` lookups (optionally through `join` or `length`):
//! those are filled by direct lookups, the fast path, which prints exactly what minijinja prints
//! (a differential test holds the two together) and declines whatever it cannot prove, which
//! minijinja then renders.

use std::borrow::Cow;

use serde_json::{json, Map, Value as J};

use super::access::{field_json, subject_json, text, Subj};
use super::{Ctx, EngineError};
use crate::findings::{Evidence, Subject};
use crate::model::Warning;
use crate::rules::registry::{self, FieldId, Get, RuleAttr, SubjectAttr, Var};
use crate::rules::{CompiledRule, Scope};

/// A buffer that takes at most `cap` bytes; a write past it fails.
struct Capped {
    buf: Vec<u8>,
    cap: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > self.cap {
            let room = self.cap - self.buf.len();
            self.buf.extend_from_slice(&b[..room]);
            return Err(std::io::Error::other("the message is too long"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Message templates, compiled once per run.
pub(super) struct Messages {
    env: minijinja::Environment<'static>,
    /// Per rule: its template's name and what the template reads.
    names: Vec<String>,
    needs: Vec<Needs>,
    /// Per rule: the template as text and lookups, when it is no more than that.
    plans: Vec<Option<Vec<Seg>>>,
}

/// A piece of a simple message template.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Text(String),
    /// `{{ var.attr }}`, optionally through one filter.
    Var(Var, String, Option<Filter>),
}

/// The filters a simple template may use.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    /// `| join('sep')`, over a list of strings.
    Join(String),
    /// `| length`, of a list or a map.
    Length,
}

/// The template source as minijinja's lexer sees it: one trailing newline (`\n`, then a `\r`)
/// removed, since `keep_trailing_newline` is off. A block scalar (`message: |`) ends with one.
fn as_lexed(template: &str) -> &str {
    let t = template.strip_suffix('\n').unwrap_or(template);
    t.strip_suffix('\r').unwrap_or(t)
}

/// Splits a template made only of text and `{{ var.attr }}` lookups of the context schema
/// (optionally through `| join('sep')` or `| length`); `None` for anything more (other filters,
/// tags, comments, whitespace control, names outside the schema), which minijinja renders.
fn plan(template: &str, scope: Scope) -> Option<Vec<Seg>> {
    let template = as_lexed(template);
    if template.contains("{%") || template.contains("{#") {
        return None;
    }
    let mut segs = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            segs.push(Seg::Text(rest[..start].to_string()));
        }
        let end = rest[start..].find("}}")? + start;
        let expr = &rest[start + 2..end];
        if expr.starts_with('-') || expr.ends_with('-') || expr.starts_with('+') {
            return None;
        }
        let (lookup, filter) = match expr.split_once('|') {
            None => (expr, None),
            Some((lookup, filter)) => (lookup, Some(plan_filter(filter.trim())?)),
        };
        let (head, attr) = lookup.trim().split_once('.')?;
        let ident =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ident(head) || !ident(attr) {
            return None;
        }
        let var = registry::var(scope, head, false)?;
        segs.push(Seg::Var(var, attr.to_string(), filter));
        rest = &rest[end + 2..];
    }
    if rest.contains("}}") {
        return None;
    }
    if !rest.is_empty() {
        segs.push(Seg::Text(rest.to_string()));
    }
    Some(segs)
}

fn plan_filter(filter: &str) -> Option<Filter> {
    if filter == "length" {
        return Some(Filter::Length);
    }
    let arg = filter.strip_prefix("join(")?.strip_suffix(')')?.trim();
    let quote = arg.chars().next().filter(|q| *q == '\'' || *q == '"')?;
    let sep = arg.strip_prefix(quote)?.strip_suffix(quote)?;
    if sep.contains(['\'', '"', '\\']) {
        return None;
    }
    Some(Filter::Join(sep.to_string()))
}

/// A value printed as minijinja prints it, for the values where that is certain.
fn print_plain(v: &J, out: &mut String) -> Option<()> {
    match v {
        J::String(s) => out.push_str(s),
        // minijinja 3 prints booleans as Python does.
        J::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
        J::Number(n) if n.is_i64() || n.is_u64() => out.push_str(&n.to_string()),
        _ => return None,
    }
    Some(())
}

/// A value through a filter, printed as minijinja prints it; `None` where that is not certain.
fn print_filtered(v: &J, filter: &Filter, out: &mut String) -> Option<()> {
    match (filter, v) {
        (Filter::Length, J::Array(items)) => out.push_str(&items.len().to_string()),
        (Filter::Length, J::Object(map)) => out.push_str(&map.len().to_string()),
        (Filter::Join(sep), J::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                out.push_str(item.as_str()?);
            }
        }
        _ => return None,
    }
    Some(())
}

/// What a context holds, so that only that is built: the variables, and for the subject, its
/// fields (`None`: all of them) and whether a group's `members`.
pub(super) struct Needs {
    vars: Vec<Var>,
    subject_fields: Option<Vec<FieldId>>,
    members: bool,
}

impl Needs {
    /// Everything the schema gives a message (`in_expr` false) or an `expr` (true).
    pub(super) fn all(in_expr: bool) -> Needs {
        Needs {
            vars: registry::VARS
                .iter()
                .filter(|d| d.in_expr || !in_expr)
                .map(|d| d.var)
                .collect(),
            subject_fields: None,
            members: true,
        }
    }

    /// What a message template reads.
    fn of(template: &minijinja::Template<'_, '_>, scope: Scope) -> Needs {
        let mut n = Needs {
            vars: Vec::new(),
            subject_fields: Some(Vec::new()),
            members: false,
        };
        for name in template.undeclared_variables(true) {
            let mut parts = name.split('.');
            let head = parts.next().unwrap_or("");
            let Some(var) = registry::var(scope, head, false) else {
                continue;
            };
            if !n.vars.contains(&var) {
                n.vars.push(var);
            }
            if var != Var::Subject {
                continue;
            }
            match parts.next() {
                Some(a) if registry::subject_extras(scope).contains(&a) => n.members = true,
                Some(a) => match (registry::field(scope, a), n.subject_fields.as_mut()) {
                    (Some(d), Some(list)) => list.push(d.id),
                    _ => n.subject_fields = None,
                },
                None => {
                    n.subject_fields = None;
                    n.members = true;
                }
            }
        }
        n
    }
}

impl Messages {
    /// The templates of `rules`; `fast` false leaves every message to minijinja.
    pub(super) fn new(rules: &[CompiledRule], fast: bool) -> Self {
        let mut env = minijinja::Environment::new();
        env.set_fuel(rules.first().map(|r| r.limits.template_fuel));
        let names: Vec<String> = (0..rules.len()).map(|i| i.to_string()).collect();
        for (name, r) in names.iter().zip(rules) {
            // Checked when the rule was compiled; a failure leaves the title as the message.
            let _ = env.add_template_owned(name.clone(), r.rule.message.clone());
        }
        let needs = names
            .iter()
            .zip(rules)
            .map(|(name, r)| match env.get_template(name) {
                Ok(t) => Needs::of(&t, r.rule.scope),
                Err(_) => Needs::all(false),
            })
            .collect();
        let plans = rules
            .iter()
            .map(|r| plan(&r.rule.message, r.rule.scope).filter(|_| fast))
            .collect();
        Messages {
            env,
            names,
            needs,
            plans,
        }
    }
}

impl Messages {
    /// How many rules' messages take the fast path.
    #[cfg(test)]
    pub(super) fn planned(&self) -> usize {
        self.plans.iter().filter(|p| p.is_some()).count()
    }
}

impl<'a> Ctx<'a> {
    /// A finding's message: the fast path where it applies, minijinja otherwise.
    pub(super) fn message(
        &self,
        rule: &CompiledRule,
        s: Subj<'a>,
        subject: &Subject,
        evidence: &Evidence,
        messages: &Messages,
        warnings: &mut Vec<Warning>,
    ) -> Result<String, EngineError> {
        let fast = messages.plans[self.rule]
            .as_ref()
            .and_then(|segs| self.render_plain(segs, rule, s, subject, evidence));
        let message = match fast {
            Some(m) => m,
            None => self.render_message(rule, s, subject, evidence, messages, warnings)?,
        };
        let cap = rule.limits.message_bytes;
        if message.len() > cap {
            return Err(self.budget_error(
                rule,
                subject,
                format!("the message is longer than {cap} bytes (limits.message_bytes)"),
            ));
        }
        Ok(message)
    }

    /// A rule's message out of budget: an error of the rule, naming the limit.
    fn budget_error(&self, rule: &CompiledRule, subject: &Subject, message: String) -> EngineError {
        EngineError {
            rule: rule.rule.id.clone(),
            origin: rule.rule.origin.to_string(),
            what: "the message",
            subject: format!("{} {}", subject.kind.as_str(), subject.id),
            message,
        }
    }

    /// A simple template rendered by direct lookups; `None` when a value is not a plain string,
    /// number or boolean, or does not suit its filter (minijinja then renders it, so the text is
    /// always minijinja's).
    fn render_plain(
        &self,
        segs: &[Seg],
        rule: &CompiledRule,
        s: Subj<'a>,
        subject: &Subject,
        evidence: &Evidence,
    ) -> Option<String> {
        let r = &rule.rule;
        let string = |t: &str| Cow::Owned(J::String(t.to_string()));
        let mut out = String::with_capacity(96);
        for seg in segs {
            let (var, attr, filter) = match seg {
                Seg::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Seg::Var(var, attr, filter) => (*var, attr.as_str(), filter),
            };
            let v: Cow<'_, J> = match var {
                Var::Evidence => Cow::Borrowed(evidence.get(attr)?),
                Var::Params => Cow::Borrowed(rule.params.get(attr)?),
                Var::Rule => string(r.attr(RuleAttr::parse(attr)?)),
                Var::About => string(subject.attr(SubjectAttr::parse(attr)?)?),
                Var::Subject => {
                    let d = registry::field(r.scope, attr)?;
                    if let (None, Get::Text(get, _)) = (filter, d.get) {
                        // Printed straight from the model: the common case, no value built.
                        out.push_str(&text(self.report, s, get));
                        continue;
                    }
                    Cow::Owned(field_json(self.report, s, d.id))
                }
            };
            match filter {
                None => print_plain(&v, &mut out)?,
                Some(f) => print_filtered(&v, f, &mut out)?,
            }
        }
        out.shrink_to_fit();
        Some(out)
    }

    /// The message rendered by minijinja, from a context holding only what the template reads.
    fn render_message(
        &self,
        rule: &CompiledRule,
        s: Subj<'a>,
        subject: &Subject,
        evidence: &Evidence,
        messages: &Messages,
        warnings: &mut Vec<Warning>,
    ) -> Result<String, EngineError> {
        let r = &rule.rule;
        let needs = &messages.needs[self.rule];
        let ctx = self.context(needs, rule, s, subject, Some(evidence));
        // Rendered into a buffer that refuses to grow past the limit: a template cannot
        // allocate its way to gigabytes of output.
        let cap = rule.limits.message_bytes;
        let mut out = Capped {
            buf: Vec::new(),
            cap,
        };
        let rendered = messages
            .env
            .get_template(&messages.names[self.rule])
            .and_then(|t| t.render_captured_to(ctx, &mut out).map(|_| ()));
        match rendered {
            Ok(()) => Ok(String::from_utf8_lossy(&out.buf).into_owned()),
            Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(self.budget_error(
                rule,
                subject,
                format!(
                    "it ran out of fuel ({} instructions, limits.template_fuel)",
                    rule.limits.template_fuel
                ),
            )),
            Err(_) if out.buf.len() >= cap => Err(self.budget_error(
                rule,
                subject,
                format!("the message is longer than {cap} bytes (limits.message_bytes)"),
            )),
            Err(e) => {
                warnings.push(Warning {
                    code: "message-template",
                    message: format!(
                        "rule `{}`: the message could not be rendered for {} {}: {e}; the title is used",
                        r.id,
                        r.scope.as_str(),
                        subject.id
                    ),
                });
                Ok(r.title.clone())
            }
        }
    }

    /// The minijinja context of a message or an `expr`: the variables of the schema that
    /// `needs` names (`evidence`: `None` before there is a finding).
    pub(super) fn context(
        &self,
        needs: &Needs,
        rule: &CompiledRule,
        s: Subj<'a>,
        subject: &Subject,
        evidence: Option<&Evidence>,
    ) -> minijinja::Value {
        let r = &rule.rule;
        let mut root = Map::new();
        for &var in &needs.vars {
            let value = match var {
                Var::Subject => {
                    let mut obj = match &needs.subject_fields {
                        None => subject_json(self.report, s),
                        Some(fields) => fields
                            .iter()
                            .map(|f| (f.name().to_string(), field_json(self.report, s, *f)))
                            .collect(),
                    };
                    if let (true, Subj::Group(g)) = (needs.members, s) {
                        obj.insert("members".into(), self.users_brief(&g.members));
                    }
                    J::Object(obj)
                }
                Var::Params => J::Object(rule.params.clone()),
                Var::Rule => J::Object(
                    RuleAttr::ALL
                        .iter()
                        .map(|a| (a.name().to_string(), json!(r.attr(*a))))
                        .collect(),
                ),
                Var::About => J::Object(
                    SubjectAttr::ALL
                        .iter()
                        .map(|a| (a.name().to_string(), json!(subject.attr(*a))))
                        .collect(),
                ),
                Var::Evidence => evidence.map_or(J::Null, |e| J::Object(e.to_map())),
            };
            root.insert(var.name(r.scope).into(), value);
        }
        minijinja::Value::from(minijinja::value::Serde(&root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_templates_are_planned_and_others_left_to_minijinja() {
        let u = Scope::User;
        assert_eq!(
            plan("{{ user.email }} is {{evidence.days}} days old", u),
            Some(vec![
                Seg::Var(Var::Subject, "email".into(), None),
                Seg::Text(" is ".into()),
                Seg::Var(Var::Evidence, "days".into(), None),
                Seg::Text(" days old".into()),
            ])
        );
        assert_eq!(plan("plain", u), Some(vec![Seg::Text("plain".into())]));
        // minijinja drops one trailing newline: a block scalar's.
        assert_eq!(plan("plain\n", u), Some(vec![Seg::Text("plain".into())]));
        assert_eq!(
            plan("plain\n\n", u),
            Some(vec![Seg::Text("plain\n".into())])
        );
        assert_eq!(
            plan("{{ user.groups | join(', ') }}: {{ evidence.x|length }}", u),
            Some(vec![
                Seg::Var(
                    Var::Subject,
                    "groups".into(),
                    Some(Filter::Join(", ".into()))
                ),
                Seg::Text(": ".into()),
                Seg::Var(Var::Evidence, "x".into(), Some(Filter::Length)),
            ])
        );
        assert_eq!(
            plan(r#"{{ params.a | join("; ") }}"#, u),
            Some(vec![Seg::Var(
                Var::Params,
                "a".into(),
                Some(Filter::Join("; ".into()))
            )])
        );
        for complex in [
            "{{ user.groups | join(', ') | upper }}",
            "{{ user.groups | join(sep) }}",
            "{{ user.groups | join('a\\'b') }}",
            "{{ user.groups | join(', \") }}",
            "{{ user.groups | sort }}",
            "{{ user.email | length }}x{{",
            "{% if x %}y{% endif %}",
            "{{- user.email }}",
            "{{ user }}",
            "{{ a.b.c }}",
            "{{ group.name }}",
            "{{ user.email",
            "a }} b",
            "{# note #}",
        ] {
            assert_eq!(plan(complex, u), None, "{complex}");
        }
    }

    /// The fast path prints what minijinja prints, or declines.
    #[test]
    fn filtered_values_print_as_minijinja_prints_them() {
        let env = minijinja::Environment::new();
        let cases = [
            (json!(["a", "b c", "d"]), "{{ v.x | join(', ') }}"),
            (json!([]), "{{ v.x | join(', ') }}"),
            (json!(["é"]), r#"{{ v.x | join("; ") }}"#),
            (json!(["a", "b"]), "{{ v.x | length }}"),
            (json!({"a": 1, "b": 2, "c": 3}), "{{ v.x | length }}"),
            (json!([]), "{{ v.x|length }}"),
        ];
        for (value, template) in cases {
            let expected = env
                .render_str(
                    template,
                    minijinja::Value::from(minijinja::value::Serde(json!({ "v": { "x": value } }))),
                )
                .unwrap();
            let filter = plan_filter(
                template
                    .split('|')
                    .nth(1)
                    .unwrap()
                    .trim_end_matches("}}")
                    .trim(),
            )
            .unwrap();
            let mut out = String::new();
            print_filtered(&value, &filter, &mut out).unwrap();
            assert_eq!(out, expected, "{template} over {value}");
        }
        let join = Filter::Join(",".into());
        for declined in [json!([1, 2]), json!(["a", null]), json!("ab"), json!(null)] {
            assert!(print_filtered(&declined, &join, &mut String::new()).is_none());
        }
        assert!(print_filtered(&json!("ab"), &Filter::Length, &mut String::new()).is_none());
    }

    #[test]
    fn only_certain_values_print_directly() {
        let mut out = String::new();
        for v in [json!("a"), json!(3), json!(true)] {
            print_plain(&v, &mut out).unwrap();
        }
        assert_eq!(out, "a3True");
        for v in [json!(null), json!(1.5), json!([1]), json!({})] {
            assert!(print_plain(&v, &mut String::new()).is_none(), "{v}");
        }
    }
}
