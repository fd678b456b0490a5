//! Compiling a validated rule: parameters bound, values typed, regexes compiled, and the list of
//! evidence each finding will carry worked out. The engine gets [`Pred`]s that cannot fail.
//!
//! Longer than most files, on purpose: the operator compilation is one exhaustive match (on the
//! operator, then on the field's accessor) kept whole so that the compiler checks every pair,
//! and a third of the file is its tests.

use std::borrow::Cow;
use std::collections::HashSet;

use regex::Regex;
use serde_json::Value as J;

use super::parse::{Cond, Operand};
use super::registry::{
    self, Cmp, CountGet, FieldDef, FieldId, FieldType, Get, GroupList, OpDef, OpKind, Quantifier,
    TextGet,
};
use super::template::{check_template, Names};
use super::Rule;
use crate::diag::{RuleError, RuleErrors};
use crate::model::{Timestamp, User};
use crate::yaml::Pos;

/// An operator's value, where it is written, and a note naming the param it came from.
struct Given<'v> {
    v: &'v J,
    pos: Pos,
    note: &'v str,
}

/// A compiled condition over typed fields: each test holds the accessor of its field (from the
/// registry), so evaluating it is a call and a comparison, with no type left to check.
#[derive(Debug, Clone)]
pub enum Pred {
    Const(bool),
    All(Vec<Pred>),
    Any(Vec<Pred>),
    Not(Box<Pred>),
    Str {
        get: TextGet,
        test: StrTest,
    },
    Bool {
        get: fn(&User) -> bool,
        value: bool,
    },
    Num {
        get: CountGet,
        cmp: Cmp,
        value: f64,
    },
    NumIn {
        get: CountGet,
        values: Vec<f64>,
        negate: bool,
    },
    Time {
        get: TimeGet,
        test: TimeTest,
    },
    List {
        key: GroupList,
        test: ListTest,
    },
    Present {
        get: Get,
        want: bool,
    },
    /// Over a group's members or all users; the inner predicate is over users.
    Quant {
        q: Quantifier,
        inner: Box<Pred>,
    },
    /// How many of a group's members or all users satisfy [`CompiledRule::counts`]`[index]`,
    /// compared with `value`.
    Count {
        index: usize,
        cmp: Cmp,
        value: f64,
    },
    /// Index into [`CompiledRule::exprs`].
    Expr(usize),
}

/// How a time field is read.
pub type TimeGet = fn(&User) -> Option<Timestamp>;

#[derive(Debug, Clone)]
pub enum StrTest {
    Eq(Box<str>),
    Ne(Box<str>),
    In(StrSet),
    NotIn(StrSet),
    Matches(Regex),
    Contains(Box<str>),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    /// Another user record has the same (non-empty) value of this field.
    Shared(FieldId),
    /// The value matches one of the globs.
    Glob(Box<[Box<str>]>),
}

/// A set of strings for `in`, `not_in` and `contains_any`: a short list is scanned (faster than
/// hashing for the handful of values rules name), a long one hashed.
#[derive(Debug, Clone)]
pub enum StrSet {
    Few(Vec<Box<str>>),
    Many(HashSet<Box<str>>),
}

impl StrSet {
    pub fn new(values: Vec<Box<str>>) -> Self {
        if values.len() <= 8 {
            StrSet::Few(values)
        } else {
            StrSet::Many(values.into_iter().collect())
        }
    }

    pub fn contains(&self, v: &str) -> bool {
        match self {
            StrSet::Few(list) => list.iter().any(|x| **x == *v),
            StrSet::Many(set) => set.contains(v),
        }
    }
}

#[derive(Debug, Clone)]
pub enum TimeTest {
    /// `t < now - d`.
    OlderThan(chrono::Duration),
    /// `t > now - d`.
    NewerThan(chrono::Duration),
    Before(TimeGet),
    After(TimeGet),
}

#[derive(Debug, Clone)]
pub enum ListTest {
    Contains(Box<str>),
    ContainsAny(StrSet),
    Matches(Regex),
    /// An element matches one of the globs.
    Glob(Box<[Box<str>]>),
}

/// What a finding's evidence records, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceItem {
    /// The field's value, under the field's name.
    Field(FieldId),
    /// Whole days from the timestamp to `now`, as `days_since_<field>`.
    DaysSince(FieldId),
    /// The other records with the same value, as `<field>_shared_with`.
    SharedWith(FieldId),
    /// How many subjects a `count` condition (by index) matched: `matching_count`.
    MatchingCount(usize),
    /// The first of them: `matching`.
    Matching(usize),
}

impl EvidenceItem {
    /// The key the item is recorded under; static for the fields of the registry that have one.
    pub fn key(&self) -> Cow<'static, str> {
        match *self {
            EvidenceItem::Field(f) => Cow::Borrowed(f.name()),
            EvidenceItem::DaysSince(FieldId::CreatedAt) => Cow::Borrowed("days_since_created_at"),
            EvidenceItem::DaysSince(FieldId::LastSignInAt) => {
                Cow::Borrowed("days_since_last_sign_in_at")
            }
            EvidenceItem::SharedWith(FieldId::EmailNormalized) => {
                Cow::Borrowed("email_normalized_shared_with")
            }
            EvidenceItem::DaysSince(f) => Cow::Owned(format!("days_since_{}", f.name())),
            EvidenceItem::SharedWith(f) => Cow::Owned(format!("{}_shared_with", f.name())),
            EvidenceItem::MatchingCount(0) => Cow::Borrowed("matching_count"),
            EvidenceItem::Matching(0) => Cow::Borrowed("matching"),
            EvidenceItem::MatchingCount(i) => Cow::Owned(format!("matching_count_{}", i + 1)),
            EvidenceItem::Matching(i) => Cow::Owned(format!("matching_{}", i + 1)),
        }
    }
}

/// A rule ready for evaluation: its condition compiled, parameters bound. Made by
/// [`super::RuleSet::compile`]; [`crate::audit_compiled`] evaluates a list of them.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub(crate) rule: Rule,
    pub(crate) pred: Pred,
    pub(crate) evidence: Vec<EvidenceItem>,
    /// Sources of the rule's `expr` conditions.
    pub(crate) exprs: Vec<String>,
    /// Why the rule is not evaluated (a parameter it requires is empty); `None`: it is.
    pub(crate) not_evaluated: Option<String>,
    /// The user conditions of the rule's `count` conditions.
    pub(crate) counts: Vec<Pred>,
    /// How many matching subjects a `count`'s evidence lists.
    pub(crate) matching_limit: usize,
    /// The budget of its message and `expr`.
    pub(crate) limits: super::Limits,
    /// It reads a change-detection field: without a previous snapshot it is not evaluated.
    pub(crate) uses_changes: bool,
    pub(crate) params: serde_json::Map<String, J>,
    /// With `fix: remove_user`: the user condition under which a finding may be fixed that way
    /// (`Const(true)` without `fix.when`); `None` for a manual fix.
    pub(crate) fix: Option<Pred>,
}

impl CompiledRule {
    /// The rule it was compiled from.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }
}

struct Compiler<'r> {
    rule: &'r Rule,
    errors: Vec<RuleError>,
    evidence: Vec<EvidenceItem>,
    exprs: Vec<String>,
    counts: Vec<Pred>,
    uses_changes: bool,
}

pub(super) fn compile(rule: &Rule, limits: super::Limits) -> Result<CompiledRule, RuleErrors> {
    let matching_limit = limits.matching_subjects;
    let mut c = Compiler {
        rule,
        errors: Vec::new(),
        evidence: Vec::new(),
        exprs: Vec::new(),
        counts: Vec::new(),
        uses_changes: false,
    };
    let pred = c.cond(&rule.when, true);
    // The fix condition adds nothing to the evidence: a finding shows why the rule fired.
    let fix = match rule.fix.action {
        super::FixAction::Manual => None,
        super::FixAction::RemoveUser => Some(match &rule.fix.when {
            None => Pred::Const(true),
            Some(cond) => {
                let evidence = std::mem::take(&mut c.evidence);
                let p = c.cond(cond, false);
                c.evidence = evidence;
                p
            }
        }),
    };
    // Only a rule whose condition compiled has the evidence the message may use; the rest of
    // the message is checked either way.
    let compiled = c.errors.is_empty();
    c.check_message(compiled);
    if !c.errors.is_empty() {
        return Err(RuleErrors(c.errors));
    }
    let not_evaluated = rule
        .requires
        .iter()
        .find(|name| rule.param(name).is_none_or(|p| is_empty(&p.value)))
        .map(|name| format!("the parameter `{name}` it requires is empty"));
    Ok(CompiledRule {
        uses_changes: c.uses_changes,
        not_evaluated,
        counts: c.counts,
        matching_limit,
        limits,
        rule: rule.clone(),
        pred,
        evidence: c.evidence,
        exprs: c.exprs,
        params: rule.params_json(),
        fix,
    })
}

/// Whether a parameter value is empty: null, or an empty string, list or mapping.
fn is_empty(v: &J) -> bool {
    match v {
        J::Null => true,
        J::String(s) => s.is_empty(),
        J::Array(a) => a.is_empty(),
        J::Object(o) => o.is_empty(),
        J::Bool(_) | J::Number(_) => false,
    }
}

/// A JSON value in words, for messages.
fn describe(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "a list",
        J::Object(_) => "a mapping",
    }
}

impl Compiler<'_> {
    fn err(&mut self, pos: Pos, message: String) {
        self.errors
            .push(RuleError::new(&self.rule.origin.file, pos, message));
    }

    fn note(&mut self, item: EvidenceItem) {
        if !self.evidence.contains(&item) {
            self.evidence.push(item);
        }
    }

    /// The operand's value with its position and, for a param, a note for messages.
    fn value(&self, operand: &Operand) -> (J, Pos, String) {
        match operand {
            Operand::Value(node) => (node.to_json(), node.pos, String::new()),
            Operand::Param { name, pos } => {
                let v = self.rule.param(name).map_or(J::Null, |p| p.value.clone());
                let note = format!(" (param `{name}` is {v})");
                (v, *pos, note)
            }
        }
    }

    fn text(v: &J, lowercase: bool) -> Option<Box<str>> {
        let s = match v {
            J::String(s) => s.clone(),
            J::Number(n) => n.to_string(),
            J::Bool(b) => b.to_string(),
            _ => return None,
        };
        Some(if lowercase { s.to_lowercase() } else { s }.into())
    }

    fn texts(v: &J, lowercase: bool) -> Option<StrSet> {
        match v {
            J::Array(items) => items
                .iter()
                .map(|i| Self::text(i, lowercase))
                .collect::<Option<Vec<_>>>()
                .map(StrSet::new),
            _ => None,
        }
    }

    /// A glob, or a list of them.
    fn globs(v: &J) -> Option<Box<[Box<str>]>> {
        match v {
            J::String(s) => Some(Box::new([s.as_str().into()])),
            J::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(Into::into))
                .collect::<Option<Box<[_]>>>(),
            _ => None,
        }
    }

    fn regex(&mut self, v: &J, pos: Pos, note: &str) -> Option<Regex> {
        let J::String(s) = v else {
            self.err(
                pos,
                format!(
                    "`matches` expects a regular expression (a string); found {}{note}",
                    describe(v)
                ),
            );
            return None;
        };
        match Regex::new(s) {
            Ok(r) => Some(r),
            Err(e) => {
                let detail = e.to_string();
                let last = detail.lines().last().unwrap_or("").trim();
                let last = last.strip_prefix("error: ").unwrap_or(last);
                self.err(
                    pos,
                    format!("invalid regular expression {s:?}: {last}{note}"),
                );
                None
            }
        }
    }

    fn cond(&mut self, cond: &Cond, top: bool) -> Pred {
        match cond {
            Cond::All(items) => Pred::All(items.iter().map(|c| self.cond(c, top)).collect()),
            Cond::Any(items) => Pred::Any(items.iter().map(|c| self.cond(c, top)).collect()),
            Cond::Not(inner) => Pred::Not(Box::new(self.cond(inner, top))),
            Cond::Count {
                inner, cmp, value, ..
            } => {
                let (v, pos, note) = self.value(value);
                let Some(n) = v.as_f64().filter(|n| n.is_finite()) else {
                    self.err(
                        pos,
                        format!(
                            "a `count` compares with a number; found {}{note}",
                            describe(&v)
                        ),
                    );
                    return Pred::Const(false);
                };
                let inner = self.cond(inner, false);
                let index = self.counts.len();
                self.counts.push(inner);
                if top {
                    self.note(EvidenceItem::MatchingCount(index));
                    self.note(EvidenceItem::Matching(index));
                }
                Pred::Count {
                    index,
                    cmp: *cmp,
                    value: n,
                }
            }
            Cond::Quant { q, inner, .. } => Pred::Quant {
                q: *q,
                inner: Box::new(self.cond(inner, false)),
            },
            Cond::ParamEmpty { name, empty, pos } => {
                let v = self.rule.param(name).map_or(J::Null, |p| p.value.clone());
                let is_empty = match &v {
                    J::Null => true,
                    J::String(s) => s.is_empty(),
                    J::Array(a) => a.is_empty(),
                    J::Object(o) => o.is_empty(),
                    _ => {
                        self.err(
                            *pos,
                            format!(
                                "`empty` tests a list or string param; param `{name}` is {}",
                                describe(&v)
                            ),
                        );
                        false
                    }
                };
                Pred::Const(is_empty == *empty)
            }
            Cond::Expr { source, pos } => {
                self.check_expr(source, *pos);
                self.exprs.push(source.clone());
                Pred::Expr(self.exprs.len() - 1)
            }
            Cond::Field {
                field, op, operand, ..
            } => {
                if top {
                    self.note(EvidenceItem::Field(field.id));
                }
                let (v, pos, note) = self.value(operand);
                let pred = self.field(
                    field,
                    op,
                    &Given {
                        v: &v,
                        pos,
                        note: &note,
                    },
                    top,
                );
                pred.unwrap_or(Pred::Const(false))
            }
        }
    }

    /// An operator the field's type does not take: the parser refuses it first, with the list
    /// of those that apply; this keeps the two from drifting apart.
    fn inapplicable(&mut self, field: &FieldDef, op: &OpDef, pos: Pos) -> Option<Pred> {
        self.err(
            pos,
            format!(
                "operator `{}` does not apply to `{}`, a {} field",
                op.name,
                field.name,
                field.ty().describe()
            ),
        );
        None
    }

    /// Compiles one field condition: an exhaustive match on the operator, then on how the
    /// field is read.
    fn field(&mut self, field: &FieldDef, op: &OpDef, o: &Given<'_>, top: bool) -> Option<Pred> {
        self.uses_changes |= field.change;
        let v = o.v;
        let lc = field.lowercase;
        let mismatch = |c: &mut Self| {
            c.err(
                o.pos,
                format!(
                    "`{}` on `{}` expects {}; found {}{}",
                    op.name,
                    field.name,
                    op.operand,
                    describe(v),
                    o.note
                ),
            );
            None
        };
        let pred = match op.kind {
            OpKind::Present => match v {
                J::Bool(b) => Pred::Present {
                    get: field.get,
                    want: *b,
                },
                _ => return mismatch(self),
            },
            OpKind::Equals | OpKind::NotEquals => {
                let eq = op.kind == OpKind::Equals;
                match field.get {
                    Get::Bool(get) => match v {
                        J::Bool(b) => Pred::Bool {
                            get,
                            value: *b == eq,
                        },
                        _ => return mismatch(self),
                    },
                    Get::Count(get) => match v.as_f64() {
                        Some(n) => Pred::Num {
                            get,
                            cmp: if eq { Cmp::Eq } else { Cmp::Ne },
                            value: n,
                        },
                        None => return mismatch(self),
                    },
                    Get::Text(get, _) => match Self::text(v, lc) {
                        Some(s) => Pred::Str {
                            get,
                            test: if eq { StrTest::Eq(s) } else { StrTest::Ne(s) },
                        },
                        None => return mismatch(self),
                    },
                    Get::Time(_) | Get::Groups(_) => return self.inapplicable(field, op, o.pos),
                }
            }
            OpKind::In | OpKind::NotIn => {
                let negate = op.kind == OpKind::NotIn;
                match field.get {
                    Get::Count(get) => {
                        let values: Option<Vec<f64>> = match v {
                            J::Array(items) => items.iter().map(J::as_f64).collect(),
                            _ => None,
                        };
                        match values {
                            Some(values) => Pred::NumIn {
                                get,
                                values,
                                negate,
                            },
                            None => return mismatch(self),
                        }
                    }
                    Get::Text(get, _) => match Self::texts(v, lc) {
                        Some(set) => Pred::Str {
                            get,
                            test: if negate {
                                StrTest::NotIn(set)
                            } else {
                                StrTest::In(set)
                            },
                        },
                        None => return mismatch(self),
                    },
                    Get::Bool(_) | Get::Time(_) | Get::Groups(_) => {
                        return self.inapplicable(field, op, o.pos)
                    }
                }
            }
            OpKind::Matches => match field.get {
                Get::Text(get, _) => Pred::Str {
                    get,
                    test: StrTest::Matches(self.regex(v, o.pos, o.note)?),
                },
                Get::Groups(key) => Pred::List {
                    key,
                    test: ListTest::Matches(self.regex(v, o.pos, o.note)?),
                },
                Get::Bool(_) | Get::Count(_) | Get::Time(_) => {
                    return self.inapplicable(field, op, o.pos)
                }
            },
            OpKind::Contains => match (field.get, Self::text(v, false)) {
                (Get::Text(get, _), Some(_)) => Pred::Str {
                    get,
                    test: StrTest::Contains(Self::text(v, lc)?),
                },
                (Get::Groups(key), Some(s)) => Pred::List {
                    key,
                    test: ListTest::Contains(s),
                },
                (Get::Text(..) | Get::Groups(_), None) => return mismatch(self),
                (Get::Bool(_) | Get::Count(_) | Get::Time(_), _) => {
                    return self.inapplicable(field, op, o.pos)
                }
            },
            OpKind::MatchesGlob => match (field.get, Self::globs(v)) {
                (Get::Text(get, _), Some(globs)) => Pred::Str {
                    get,
                    test: StrTest::Glob(globs),
                },
                (Get::Groups(key), Some(globs)) => Pred::List {
                    key,
                    test: ListTest::Glob(globs),
                },
                (Get::Text(..) | Get::Groups(_), None) => return mismatch(self),
                (Get::Bool(_) | Get::Count(_) | Get::Time(_), _) => {
                    return self.inapplicable(field, op, o.pos)
                }
            },
            OpKind::ContainsAny => match field.get {
                Get::Groups(key) => match Self::texts(v, false) {
                    Some(s) => Pred::List {
                        key,
                        test: ListTest::ContainsAny(s),
                    },
                    None => return mismatch(self),
                },
                Get::Text(..) | Get::Bool(_) | Get::Count(_) | Get::Time(_) => {
                    return self.inapplicable(field, op, o.pos)
                }
            },
            OpKind::StartsWith | OpKind::EndsWith => match field.get {
                Get::Text(get, _) => {
                    let Some(s) = Self::text(v, lc) else {
                        return mismatch(self);
                    };
                    let test = if op.kind == OpKind::StartsWith {
                        StrTest::StartsWith(s)
                    } else {
                        StrTest::EndsWith(s)
                    };
                    Pred::Str { get, test }
                }
                Get::Bool(_) | Get::Count(_) | Get::Time(_) | Get::Groups(_) => {
                    return self.inapplicable(field, op, o.pos)
                }
            },
            OpKind::Compare(cmp) => match field.get {
                Get::Count(get) => {
                    let Some(n) = v.as_f64() else {
                        return mismatch(self);
                    };
                    Pred::Num { get, cmp, value: n }
                }
                Get::Text(..) | Get::Bool(_) | Get::Time(_) | Get::Groups(_) => {
                    return self.inapplicable(field, op, o.pos)
                }
            },
            OpKind::OlderThanDays | OpKind::NewerThanDays => match field.get {
                Get::Time(get) => {
                    let days = match v.as_f64() {
                        Some(d) if d >= 0.0 && d.is_finite() && d < 1e6 => d,
                        _ => return mismatch(self),
                    };
                    if top {
                        self.note(EvidenceItem::DaysSince(field.id));
                    }
                    let d = chrono::Duration::milliseconds((days * 86_400_000.0).round() as i64);
                    let test = if op.kind == OpKind::OlderThanDays {
                        TimeTest::OlderThan(d)
                    } else {
                        TimeTest::NewerThan(d)
                    };
                    Pred::Time { get, test }
                }
                Get::Text(..) | Get::Bool(_) | Get::Count(_) | Get::Groups(_) => {
                    return self.inapplicable(field, op, o.pos)
                }
            },
            OpKind::Before | OpKind::After => match field.get {
                Get::Time(get) => {
                    let other = match v {
                        J::String(s) => {
                            registry::field(field.scope(), s).and_then(|d| match d.get {
                                Get::Time(g) => Some((d, g)),
                                Get::Text(..) | Get::Bool(_) | Get::Count(_) | Get::Groups(_) => {
                                    None
                                }
                            })
                        }
                        _ => None,
                    };
                    let Some((other, other_get)) = other else {
                        let names: Vec<&str> = registry::fields_of(field.scope())
                            .filter(|d| d.ty() == FieldType::Timestamp && d.id != field.id)
                            .map(|d| d.name)
                            .collect();
                        self.err(
                            o.pos,
                            format!(
                                "`{}` on `{}` expects another timestamp field: {}; found {v}{}",
                                op.name,
                                field.name,
                                names.join(", "),
                                o.note
                            ),
                        );
                        return None;
                    };
                    if top {
                        self.note(EvidenceItem::Field(other.id));
                    }
                    let test = if op.kind == OpKind::Before {
                        TimeTest::Before(other_get)
                    } else {
                        TimeTest::After(other_get)
                    };
                    Pred::Time { get, test }
                }
                Get::Text(..) | Get::Bool(_) | Get::Count(_) | Get::Groups(_) => {
                    return self.inapplicable(field, op, o.pos)
                }
            },
            OpKind::Shared => match field.get {
                Get::Text(get @ TextGet::User(_), _) => {
                    let shared = Pred::Str {
                        get,
                        test: StrTest::Shared(field.id),
                    };
                    match v {
                        J::Bool(true) => {
                            if top {
                                self.note(EvidenceItem::SharedWith(field.id));
                            }
                            shared
                        }
                        J::Bool(false) => Pred::Not(Box::new(shared)),
                        _ => return mismatch(self),
                    }
                }
                Get::Text(TextGet::Group(_), _) => {
                    self.err(o.pos, "`shared` is for user rules".into());
                    return None;
                }
                Get::Bool(_) | Get::Count(_) | Get::Time(_) | Get::Groups(_) => {
                    return self.inapplicable(field, op, o.pos)
                }
            },
        };
        Some(pred)
    }

    /// What this rule's templates may read; `evidence` known only once the condition compiled.
    fn names(&self, evidence_known: bool) -> Names<'_> {
        let evidence = evidence_known.then(|| {
            let mut keys: Vec<String> =
                self.evidence.iter().map(|e| e.key().into_owned()).collect();
            keys.extend(
                registry::scope_evidence(self.rule.scope)
                    .iter()
                    .map(|s| s.to_string()),
            );
            keys
        });
        Names {
            file: &self.rule.origin.file,
            scope: self.rule.scope,
            params: &self.rule.params,
            evidence,
        }
    }

    fn check_message(&mut self, evidence_known: bool) {
        let names = self.names(evidence_known);
        let mut errors = Vec::new();
        check_template(
            &names,
            &self.rule.message,
            self.rule.message_pos,
            false,
            &mut errors,
        );
        self.errors.extend(errors);
    }

    fn check_expr(&mut self, source: &str, pos: Pos) {
        let names = self.names(false);
        let mut errors = Vec::new();
        check_template(&names, source, pos, true, &mut errors);
        self.errors.extend(errors);
    }
}

#[cfg(test)]
mod tests {
    use super::super::RuleSet;
    use super::{registry, EvidenceItem};
    use crate::rules::Scope;

    fn load(text: &str) -> Result<RuleSet, String> {
        let mut set = RuleSet::new();
        set.add_source("r.yaml", text).map_err(|e| e.to_string())?;
        Ok(set)
    }

    const HEAD: &str = "id: a\ntitle: A\nseverity: low\nscope: user\n";

    #[test]
    fn operand_types_are_checked_with_positions() {
        let e = load(&format!(
            "{HEAD}when: {{field: created_at, older_than_days: soon}}\n"
        ))
        .unwrap_err();
        assert_eq!(e, "r.yaml:5:44: `older_than_days` on `created_at` expects a number of days (>= 0); found a string");
        let e = load(&format!("{HEAD}when: {{field: email, matches: '(['}}\n")).unwrap_err();
        assert!(
            e.starts_with("r.yaml:5:31: invalid regular expression \"([\":"),
            "{e}"
        );
        let e = load(&format!(
            "{HEAD}when: {{field: last_sign_in_at, before: email}}\n"
        ))
        .unwrap_err();
        assert!(
            e.contains("expects another timestamp field: created_at"),
            "{e}"
        );
    }

    #[test]
    fn set_param_rechecks_types() {
        let mut set = load(&format!("{HEAD}params: {{days: 5}}\nwhen: {{field: created_at, older_than_days: {{param: days}}}}\n")).unwrap();
        let e = set.apply_set("a.days=lots").unwrap_err().to_string();
        assert_eq!(e, "r.yaml:6:52: `older_than_days` on `created_at` expects a number of days (>= 0); found a string (param `days` is \"lots\")");
        assert_eq!(set.get("a").unwrap().param("days").unwrap().value, 5);
        set.apply_set("a.days=7").unwrap();
        assert_eq!(set.get("a").unwrap().param("days").unwrap().value, 7);
        let e = set.apply_set("a.dayz=7").unwrap_err().to_string();
        assert_eq!(
            e,
            "rule `a` has no parameter `dayz`\n  help: rule `a` has the parameters: days; every rule has the settings severity, enabled"
        );
        let e = set.apply_set("b.days=7").unwrap_err().to_string();
        assert!(e.starts_with("unknown rule `b`"), "{e}");
    }

    #[test]
    fn message_names_are_checked() {
        let e = load(&format!("{HEAD}when: {{field: created_at, older_than_days: 1}}\nmessage: '{{{{ evidence.days }}}} {{{{ user.emial }}}}'\n")).unwrap_err();
        assert_eq!(e, "r.yaml:6:10: the message template uses `evidence.days`, which this rule does not define\n  help: did you mean `evidence.days_since_created_at`? `evidence` has: created_at, days_since_created_at\n\
            r.yaml:6:10: the message template uses `user.emial`, which this rule does not define\n  help: did you mean `user.email`? `user` has: id, email, email_normalized, email_domain, record_type, user_status, active, is_owner, organization_user_bypasses_sso, created_at, last_sign_in_at, groups, group_ids, group_count, is_new_user, previous_user_status, sso_bypass_turned_on, became_owner, groups_added, group_ids_added, groups_removed, group_ids_removed");
        // An `expr` reads what its context holds: no evidence before there is a finding.
        let e = load(&format!(
            "{HEAD}when: {{expr: \"evidence.x or rule.severty\"}}\n"
        ))
        .unwrap_err();
        assert_eq!(e, "r.yaml:5:14: `expr` uses `evidence.x`, which this rule does not define\n  help: available: user, params, rule, subject (`evidence` is for messages: an `expr` runs before there is a finding)\n\
            r.yaml:5:14: `expr` uses `rule.severty`, which this rule does not define\n  help: did you mean `rule.severity`? `rule` has: id, title, severity");
        load(&format!(
            "{HEAD}when: {{expr: \"rule.severity == 'low' and subject.kind == 'user'\"}}\n"
        ))
        .unwrap();
        let e = load(&format!(
            "{HEAD}when: {{field: active, equals: true}}\nmessage: '{{{{ user.email'\n"
        ))
        .unwrap_err();
        assert!(
            e.starts_with("r.yaml:6:10: invalid message template"),
            "{e}"
        );
    }

    /// The operator table (what the validator and the reference say applies) and the compiler
    /// (what each operator does with each kind of field) agree on every pair.
    #[test]
    fn every_operator_compiles_for_the_fields_it_applies_to() {
        use super::{Compiler, Given};
        use registry::{FieldType, OpKind, FIELDS, OPERATORS};
        use serde_json::json;
        let set = load(&format!("{HEAD}when: {{field: active, equals: true}}\n")).unwrap();
        let rule = &set.rules()[0];
        for field in FIELDS {
            for op in OPERATORS {
                let value = match (op.kind, field.ty()) {
                    (OpKind::Present | OpKind::Shared, _) => json!(true),
                    (OpKind::Equals | OpKind::NotEquals, FieldType::Bool) => json!(true),
                    (
                        OpKind::Equals | OpKind::NotEquals | OpKind::Compare(_),
                        FieldType::Number,
                    ) => json!(2),
                    (OpKind::OlderThanDays | OpKind::NewerThanDays, _) => json!(3),
                    (OpKind::In | OpKind::NotIn, FieldType::Number) => json!([1, 2]),
                    (OpKind::In | OpKind::NotIn | OpKind::ContainsAny, _) => json!(["x"]),
                    (OpKind::Before | OpKind::After, _) => {
                        json!(if field.name == "created_at" {
                            "last_sign_in_at"
                        } else {
                            "created_at"
                        })
                    }
                    _ => json!("x"),
                };
                let mut c = Compiler {
                    rule,
                    errors: Vec::new(),
                    evidence: Vec::new(),
                    exprs: Vec::new(),
                    counts: Vec::new(),
                    uses_changes: false,
                };
                let given = Given {
                    v: &value,
                    pos: Default::default(),
                    note: "",
                };
                let compiled = c.field(field, op, &given, true).is_some();
                let applies = op.applies_to(field.ty())
                    && !(op.kind == OpKind::Shared && field.scope() != Scope::User);
                assert_eq!(
                    compiled, applies,
                    "{} {}: {:?}",
                    field.name, op.name, c.errors
                );
            }
        }
    }

    #[test]
    fn static_evidence_keys_are_the_formatted_ones() {
        for scope in [Scope::User, Scope::Group, Scope::Organization] {
            for d in registry::fields_of(scope) {
                let days = EvidenceItem::DaysSince(d.id).key();
                assert_eq!(days, format!("days_since_{}", d.name));
                let shared = EvidenceItem::SharedWith(d.id).key();
                assert_eq!(shared, format!("{}_shared_with", d.name));
            }
        }
    }

    #[test]
    fn evidence_lists_the_fields_of_the_condition() {
        let set = load(&format!("{HEAD}when:\n  all:\n    - {{field: active, equals: true}}\n    - {{field: last_sign_in_at, older_than_days: 90}}\n    - {{field: email_normalized, shared: true}}\n")).unwrap();
        let c = set.compile().unwrap();
        let keys: Vec<String> = c[0].evidence.iter().map(|e| e.key().into_owned()).collect();
        assert_eq!(
            keys,
            [
                "active",
                "last_sign_in_at",
                "days_since_last_sign_in_at",
                "email_normalized",
                "email_normalized_shared_with"
            ]
        );
    }
}
