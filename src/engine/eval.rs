//! Evaluating a compiled condition for one subject: typed field tests through the registry's
//! accessors, quantifiers and counts over members or users, and `expr` (the slow path).

use super::access::*;
use super::index::index_of;
use super::message::{Messages, Needs};
use super::{Buckets, Ctx, EngineError};
use crate::glob::glob_match;
use crate::model::{Timestamp, User};
use crate::rules::registry::FieldId;
use crate::rules::{ListTest, Pred, Quantifier, StrTest, TimeTest};

impl<'a> Ctx<'a> {
    /// Evaluates rule `ri` for one subject and records a finding if it fires.
    pub(super) fn apply(
        &mut self,
        ri: usize,
        s: Subj<'a>,
        messages: &Messages,
        out: &mut Buckets,
    ) -> Result<(), EngineError> {
        if self.fires(ri, s)? {
            let rule = &self.rules[ri];
            let f = self.finding(rule, s, messages, &mut out.warnings)?;
            out.by_rule[ri].push(f);
        }
        Ok(())
    }

    /// Whether rule `ri` fires for the subject; an `expr` that fails is an error.
    pub(super) fn fires(&mut self, ri: usize, s: Subj<'a>) -> Result<bool, EngineError> {
        self.rule = ri;
        let rule = &self.rules[ri];
        let fired = self.eval(&rule.pred, s);
        match self.expr_error.borrow_mut().take() {
            None => Ok(fired),
            Some(message) => Err(EngineError {
                rule: rule.rule.id.clone(),
                origin: rule.rule.origin.to_string(),
                what: "`expr`",
                subject: match s {
                    Subj::User(u) => format!("user {}", u.id),
                    Subj::Group(g) => format!("group {}", self.report.groups.id(g.ix)),
                    Subj::Org(_) => "the organization".to_string(),
                },
                message,
            }),
        }
    }

    pub(super) fn eval(&self, p: &Pred, s: Subj<'a>) -> bool {
        let report = self.report;
        match p {
            Pred::Const(b) => *b,
            Pred::All(items) => items.iter().all(|p| self.eval(p, s)),
            Pred::Any(items) => items.iter().any(|p| self.eval(p, s)),
            Pred::Not(p) => !self.eval(p, s),
            Pred::Bool { get, value } => bool_of(s, *get) == *value,
            Pred::Num { get, cmp, value } => cmp.test(count(s, *get) as f64, *value),
            Pred::NumIn {
                get,
                values,
                negate,
            } => {
                let n = count(s, *get) as f64;
                values.contains(&n) != *negate
            }
            Pred::Present { get, want } => present(report, s, *get) == *want,
            Pred::Str { get, test } => {
                let v = text(report, s, *get);
                match test {
                    StrTest::Eq(x) => *v == **x,
                    StrTest::Ne(x) => *v != **x,
                    StrTest::In(set) => set.contains(&v),
                    StrTest::NotIn(set) => !set.contains(&v),
                    StrTest::Matches(re) => re.is_match(&v),
                    StrTest::Contains(x) => v.contains(&**x),
                    StrTest::StartsWith(x) => v.starts_with(&**x),
                    StrTest::EndsWith(x) => v.ends_with(&**x),
                    StrTest::Shared(field) => self.shared_with(*field, s.user()).is_some(),
                    StrTest::Glob(globs) => globs.iter().any(|g| glob_match(g, &v)),
                }
            }
            Pred::Time { get, test } => {
                let Some(t) = time(s, *get) else {
                    return false;
                };
                match test {
                    TimeTest::OlderThan(d) => t < self.cutoff(*d),
                    TimeTest::NewerThan(d) => t > self.cutoff(*d),
                    TimeTest::Before(other) => time(s, *other).is_some_and(|o| t < o),
                    TimeTest::After(other) => time(s, *other).is_some_and(|o| t > o),
                }
            }
            Pred::List { key, test } => {
                let mut items = groups(report, s, *key);
                match test {
                    ListTest::Contains(x) => items.any(|i| i == &**x),
                    ListTest::ContainsAny(set) => items.any(|i| set.contains(i)),
                    ListTest::Matches(re) => items.any(|i| re.is_match(i)),
                    ListTest::Glob(globs) => items.any(|i| globs.iter().any(|g| glob_match(g, i))),
                }
            }
            Pred::Quant { q, inner } => {
                let mut users = self.population(s).map(|(_, u)| u);
                match q {
                    Quantifier::Any => users.any(|u| self.eval(inner, Subj::User(u))),
                    Quantifier::All => users.all(|u| self.eval(inner, Subj::User(u))),
                    Quantifier::None => !users.any(|u| self.eval(inner, Subj::User(u))),
                }
            }
            Pred::Count { index, cmp, value } => {
                let inner = &self.rules[self.rule].counts[*index];
                let n = self
                    .population(s)
                    .filter(|(_, u)| self.eval(inner, Subj::User(u)))
                    .count();
                cmp.test(n as f64, *value)
            }
            Pred::Expr(i) => {
                let expr = &self.exprs[self.rule][*i];
                let ctx = self.expr_context(s);
                match expr.eval(ctx) {
                    Ok(v) => v.is_true(),
                    Err(e) => {
                        let why = if e.kind() == minijinja::ErrorKind::OutOfFuel {
                            format!(
                                "it ran out of fuel ({} instructions, limits.template_fuel)",
                                self.rules[self.rule].limits.template_fuel
                            )
                        } else {
                            e.to_string()
                        };
                        self.expr_error.borrow_mut().get_or_insert(why);
                        false
                    }
                }
            }
        }
    }

    /// The users a quantifier or a `count` ranges over, with their indices: a group's members,
    /// or every user of the report (organization rules; a user rule has none of these forms).
    pub(super) fn population(&self, s: Subj<'a>) -> Box<dyn Iterator<Item = (u32, &'a User)> + 'a> {
        let users = &self.report.users;
        match s {
            Subj::Group(g) => Box::new(g.members.iter().map(move |&i| (i, &users[i as usize]))),
            Subj::Org(_) | Subj::User(_) => {
                Box::new(users.iter().enumerate().map(|(i, u)| (i as u32, u)))
            }
        }
    }

    pub(super) fn cutoff(&self, d: chrono::Duration) -> Timestamp {
        match self.cutoffs.iter().find(|(k, _)| *k == d) {
            Some((_, t)) => *t,
            None => self.now - d,
        }
    }

    pub(super) fn shared_with(&self, field: FieldId, u: &User) -> Option<&[u32]> {
        self.shared
            .get(&field)
            .and_then(|m| m.of(index_of(self.report, u)))
    }

    /// The context of an `expr`: every variable of the schema an `expr` can read.
    pub(super) fn expr_context(&self, s: Subj<'a>) -> minijinja::Value {
        let rule = &self.rules[self.rule];
        let subject = self.subject(rule.rule.scope, s);
        self.context(&Needs::all(true), rule, s, &subject, None)
    }
}
