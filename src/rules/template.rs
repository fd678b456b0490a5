//! Checking a message template or an `expr`: its syntax, the names it reads (against the context
//! schema, [`super::registry::VARS`]) and the filters and tests it calls. minijinja only finds an
//! unknown filter when it renders, so the validator looks for them itself: a small scan of the
//! expression parts of a template (strings skipped), and minijinja's own `is filter` /
//! `is test` to tell whether a name exists.

use std::collections::HashSet;

use super::registry::{self, Var, VARS};
use super::{Param, Scope};
use crate::diag::{did_you_mean, RuleError};
use crate::yaml::Pos;

/// A filter or a test that a template calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Call {
    Filter(String),
    Test(String),
}

impl Call {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Call::Filter(_) => "filter",
            Call::Test(_) => "test",
        }
    }
    pub(super) fn name(&self) -> &str {
        match self {
            Call::Filter(n) | Call::Test(n) => n,
        }
    }
}

/// Names minijinja may know, offered as suggestions when they exist in this build.
const CANDIDATES: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
    "zip",
    "defined",
    "undefined",
    "none",
    "escaped",
    "boolean",
    "odd",
    "even",
    "divisibleby",
    "number",
    "integer",
    "sequence",
    "iterable",
    "mapping",
    "startingwith",
    "endingwith",
    "sameas",
    "eq",
    "equalto",
    "ne",
    "lt",
    "lessthan",
    "le",
    "gt",
    "greaterthan",
    "ge",
    "in",
    "true",
    "false",
    "filter",
    "test",
];

/// Whether minijinja's environment knows a filter or test of that name.
pub(super) fn exists(call: &Call) -> bool {
    let env = minijinja::Environment::new();
    let probe = format!("name is {}", call.kind());
    env.compile_expression(&probe)
        .and_then(|e| e.eval(minijinja::context! { name => call.name() }))
        .is_ok_and(|v| v.is_true())
}

/// The filters or tests (as `like`'s kind) that exist, for a did-you-mean.
pub(super) fn known(like: &Call) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = CANDIDATES
        .iter()
        .copied()
        .filter(|n| {
            exists(&match like {
                Call::Filter(_) => Call::Filter(n.to_string()),
                Call::Test(_) => Call::Test(n.to_string()),
            })
        })
        .collect();
    names.sort_unstable();
    names
}

#[derive(Debug, PartialEq)]
enum Tok<'a> {
    Ident(&'a str),
    Pipe,
    Other,
}

/// The tokens of one expression: identifiers and `|`; strings and everything else are `Other`.
fn tokens(expr: &str) -> Vec<Tok<'_>> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(Tok::Other);
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(&expr[start..i]));
        } else if c == b'|' {
            out.push(Tok::Pipe);
            i += 1;
        } else {
            if !c.is_ascii_whitespace() {
                out.push(Tok::Other);
            }
            i += 1;
        }
    }
    out
}

/// The filters and tests of one expression (`block`: a `{% ... %}` tag, where `filter NAME`
/// opens a filter block).
fn calls_in(expr: &str, block: bool, out: &mut Vec<Call>) {
    let toks = tokens(expr);
    let mut push = |c: Call| {
        if !out.contains(&c) {
            out.push(c);
        }
    };
    for (i, t) in toks.iter().enumerate() {
        match (t, toks.get(i + 1), toks.get(i + 2)) {
            (Tok::Pipe, Some(Tok::Ident(name)), _) => push(Call::Filter(name.to_string())),
            (Tok::Ident("filter"), Some(Tok::Ident(name)), _) if block && i == 0 => {
                push(Call::Filter(name.to_string()))
            }
            (Tok::Ident("is"), Some(Tok::Ident("not")), Some(Tok::Ident(name)))
            | (Tok::Ident("is"), Some(Tok::Ident(name)), _)
                if *name != "not" =>
            {
                push(Call::Test(name.to_string()))
            }
            _ => {}
        }
    }
}

/// The filters and tests a template (or, with `in_expr`, an expression) calls, in order.
pub(super) fn calls(source: &str, in_expr: bool) -> Vec<Call> {
    let mut out = Vec::new();
    if in_expr {
        calls_in(source, false, &mut out);
        return out;
    }
    let mut rest = source;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let (close, block) = match after.as_bytes().first() {
            Some(b'{') => ("}}", false),
            Some(b'%') => ("%}", true),
            Some(b'#') => ("#}", false),
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        // The end of the tag, outside strings.
        let mut end = None;
        let bytes = body.as_bytes();
        let mut i = 0;
        let mut quote = None;
        while i + 1 < bytes.len() {
            match (quote, bytes[i]) {
                (Some(_), b'\\') => i += 1,
                (Some(q), c) if c == q => quote = None,
                (None, b'\'' | b'"') if close != "#}" => quote = Some(bytes[i]),
                (None, _) if body[i..].starts_with(close) => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let Some(end) = end else { break };
        let inner = body[..end].trim_matches(|c| c == '-' || c == '+' || c == '~');
        if close != "#}" {
            if block && inner.trim() == "raw" {
                // Nothing is an expression until `endraw`.
                match body[end..].find("endraw") {
                    Some(r) => {
                        rest = &body[end + r..];
                        continue;
                    }
                    None => break,
                }
            }
            calls_in(inner, block, &mut out);
        }
        rest = &body[end + close.len()..];
    }
    out
}

/// What the names in a rule's message or `expr` may be: the context schema for its scope, its
/// parameters, and its evidence keys (`None` while the condition has not compiled: evidence
/// attributes are then not checked).
pub(super) struct Names<'a> {
    pub file: &'a str,
    pub scope: Scope,
    pub params: &'a [Param],
    pub evidence: Option<Vec<String>>,
}

impl Names<'_> {
    /// The names an attribute of `var` may take; `None`: not known yet.
    fn attrs_of(&self, var: Var) -> Option<Vec<String>> {
        let scope = self.scope;
        Some(match var {
            Var::Subject => registry::fields_of(scope)
                .map(|d| d.name)
                .chain(registry::subject_extras(scope).iter().copied())
                .map(str::to_string)
                .collect(),
            Var::Params => self.params.iter().map(|p| p.name.clone()).collect(),
            Var::Rule => registry::RuleAttr::ALL
                .iter()
                .map(|a| a.name().to_string())
                .collect(),
            Var::About => registry::SubjectAttr::ALL
                .iter()
                .map(|a| a.name().to_string())
                .collect(),
            Var::Evidence => self.evidence.clone()?,
        })
    }

    /// Checks that names used by a template or expression exist in the context schema
    /// ([`registry::VARS`]): the variable, and its attribute when one is read. Unknown names
    /// get a did-you-mean and the list of what is there.
    fn check(
        &self,
        names: HashSet<String>,
        pos: Pos,
        what: &str,
        in_expr: bool,
        errors: &mut Vec<RuleError>,
    ) {
        let scope = self.scope;
        let mut sorted: Vec<String> = names.into_iter().collect();
        sorted.sort();
        for name in sorted {
            let mut parts = name.splitn(2, '.');
            let head = parts.next().unwrap_or("");
            let attr = parts.next().map(|a| a.split('.').next().unwrap_or(a));
            let help = match (registry::var(scope, head, in_expr), attr) {
                (Some(_), None) => continue,
                (Some(var), Some(a)) => {
                    let Some(valid) = self.attrs_of(var) else {
                        continue;
                    };
                    if valid.iter().any(|v| v == a) {
                        continue;
                    }
                    let list = if valid.is_empty() {
                        format!("`{head}` has nothing in this rule")
                    } else {
                        format!("`{head}` has: {}", valid.join(", "))
                    };
                    match did_you_mean(a, valid.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `{head}.{s}`? {list}"),
                        None => list,
                    }
                }
                (None, _) => {
                    let vars: Vec<&str> = VARS
                        .iter()
                        .filter(|d| d.in_expr || !in_expr)
                        .map(|d| d.var.name(scope))
                        .collect();
                    let list = format!("available: {}", vars.join(", "));
                    let hint = if in_expr && head == Var::Evidence.name(scope) {
                        " (`evidence` is for messages: an `expr` runs before there is a finding)"
                    } else {
                        ""
                    };
                    match did_you_mean(head, vars.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`? {list}{hint}"),
                        None => format!("{list}{hint}"),
                    }
                }
            };
            errors.push(
                RuleError::new(
                    self.file,
                    pos,
                    format!("{what} uses `{name}`, which this rule does not define"),
                )
                .with_help(help),
            );
        }
    }
}

/// Checks a message template (or, with `in_expr`, an `expr`): its syntax, the filters and
/// tests it calls, and the names it reads. Every problem is reported.
pub(super) fn check_template(
    names: &Names<'_>,
    source: &str,
    pos: Pos,
    in_expr: bool,
    errors: &mut Vec<RuleError>,
) {
    let what = if in_expr {
        "`expr`"
    } else {
        "the message template"
    };
    let env = minijinja::Environment::new();
    let read = if in_expr {
        env.compile_expression(source)
            .map(|e| e.undeclared_variables(true))
    } else {
        env.template_from_str(source)
            .map(|t| t.undeclared_variables(true))
    };
    let vars = match read {
        Ok(vars) => vars,
        Err(e) => {
            let kind = if in_expr {
                "`expr`"
            } else {
                "message template"
            };
            errors.push(RuleError::new(
                names.file,
                pos,
                format!("invalid {kind}: {}", e.detail().unwrap_or(&e.to_string())),
            ));
            return;
        }
    };
    for call in calls(source, in_expr) {
        if exists(&call) {
            continue;
        }
        let known = known(&call);
        let list = format!("{}s: {}", call.kind(), known.join(", "));
        let help = match did_you_mean(call.name(), known.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? {list}"),
            None => list,
        };
        errors.push(
            RuleError::new(
                names.file,
                pos,
                format!(
                    "{what} uses the {} `{}`, which does not exist",
                    call.kind(),
                    call.name()
                ),
            )
            .with_help(help),
        );
    }
    // minijinja's own globals (`range`, `dict`, `namespace`, ...) are not variables of ours.
    let globals: Vec<&str> = env.globals().map(|(k, _)| k).collect();
    let vars = vars
        .into_iter()
        .filter(|v| !globals.contains(&v.split('.').next().unwrap_or("")))
        .collect();
    names.check(vars, pos, what, in_expr, errors);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_filters_and_tests_outside_strings() {
        let got = calls(
            "{{ a | upper | joinn(', ') }} {{ 'x | nope' }} {% if b is not odd %}{% endif %}{% filter title %}t{% endfilter %}{# c | nothere #}{% raw %}{{ d | inraw }}{% endraw %}{{ e is defined }}",
            false,
        );
        let want = [
            Call::Filter("upper".into()),
            Call::Filter("joinn".into()),
            Call::Test("odd".into()),
            Call::Filter("title".into()),
            Call::Test("defined".into()),
        ];
        assert_eq!(got, want);
        assert_eq!(
            calls("user.groups | select('startingwith', 'x') | list", true),
            [Call::Filter("select".into()), Call::Filter("list".into())]
        );
    }

    #[test]
    fn minijinja_tells_what_exists() {
        assert!(exists(&Call::Filter("upper".into())));
        assert!(!exists(&Call::Filter("joinn".into())));
        assert!(exists(&Call::Test("startingwith".into())));
        assert!(!exists(&Call::Test("startswith".into())));
        assert!(known(&Call::Filter(String::new())).contains(&"join"));
    }
}
