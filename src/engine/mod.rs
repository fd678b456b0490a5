//! Evaluating compiled rules over a report, producing findings with their evidence.
//!
//! Structured conditions are evaluated over typed fields without building any value per user;
//! JSON is built only for findings (evidence, message) and for `expr` conditions (the slow path).
//! What spans records (shared values, group members, organization counts) is indexed once per run.

mod access;

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::{json, Map, Value as J};

use crate::findings::{fingerprint, Finding, Subject};
use crate::model::{Report, Timestamp, User, Warning};
use crate::rules::registry::FieldId;
use crate::rules::{
    CompiledRule, EvidenceItem, ListTest, Pred, Quantifier, Scope, StrTest, TimeTest,
};

pub use access::{group_infos, GroupInfo, OrgStats};
use access::{Subj, *};

/// How many members or owners a finding's evidence lists; the count is always given in full.
pub const EVIDENCE_LIST_LIMIT: usize = 100;

/// An error while evaluating: only `expr` conditions can fail at run time.
#[derive(Debug, thiserror::Error)]
#[error("rule `{rule}` ({origin}): `expr` failed for {subject}: {message}")]
pub struct EngineError {
    pub rule: String,
    pub origin: String,
    pub subject: String,
    pub message: String,
}

/// The findings of one evaluation, unsorted, and per-rule finding counts in rule order.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    pub counts: Vec<usize>,
    pub warnings: Vec<Warning>,
}

/// Users sharing a value of a field, for `shared` conditions.
type SharedIndex = HashMap<Box<str>, Vec<u32>>;

struct Ctx<'a> {
    report: &'a Report,
    now: Timestamp,
    shared: HashMap<FieldId, SharedIndex>,
    exprs: Vec<Vec<minijinja::Expression<'a, 'a>>>,
    /// The rule being evaluated, for expression lookup.
    rule: usize,
    rules: &'a [CompiledRule],
    expr_error: RefCell<Option<String>>,
}

/// Evaluates `rules` over `report` at time `now`.
pub fn evaluate(
    report: &Report,
    rules: &[CompiledRule],
    now: Timestamp,
) -> Result<Evaluation, EngineError> {
    // Cross-record state, computed before the per-subject contexts that borrow it.
    let has_scope = |scope| rules.iter().any(|r| r.rule.scope == scope);
    let groups = if has_scope(Scope::Group) {
        group_infos(report)
    } else {
        Vec::new()
    };
    let org = OrgStats::of(report);
    let env = minijinja::Environment::new();
    let mut exprs = Vec::with_capacity(rules.len());
    for r in rules {
        let compiled: Vec<_> = r
            .exprs
            .iter()
            .map(|src| {
                env.compile_expression_owned(src.clone())
                    .expect("checked when the rule was compiled")
            })
            .collect();
        exprs.push(compiled);
    }
    let mut ctx = Ctx {
        report,
        now,
        shared: HashMap::new(),
        exprs,
        rule: 0,
        rules,
        expr_error: RefCell::new(None),
    };
    for r in rules {
        collect_shared(&r.pred, &mut ctx.shared);
    }
    for (field, index) in ctx.shared.iter_mut() {
        for (i, u) in report.users.iter().enumerate() {
            let v = user_str(report, u, *field);
            if !v.is_empty() {
                index.entry(v.into()).or_default().push(i as u32);
            }
        }
    }

    let mut out = Evaluation {
        counts: vec![0; rules.len()],
        ..Default::default()
    };
    let messages = Messages::new(rules);
    let of_scope = |scope: Scope| -> Vec<usize> {
        (0..rules.len())
            .filter(|&i| rules[i].rule.scope == scope)
            .collect()
    };
    let user_rules = of_scope(Scope::User);
    for u in &report.users {
        for &ri in &user_rules {
            ctx.apply(ri, Subj::User(u), &messages, &mut out)?;
        }
    }
    let group_rules = of_scope(Scope::Group);
    for g in &groups {
        for &ri in &group_rules {
            ctx.apply(ri, Subj::Group(g), &messages, &mut out)?;
        }
    }
    for ri in of_scope(Scope::Organization) {
        ctx.apply(ri, Subj::Org(&org), &messages, &mut out)?;
    }
    Ok(out)
}

fn collect_shared(p: &Pred, out: &mut HashMap<FieldId, SharedIndex>) {
    match p {
        Pred::All(v) | Pred::Any(v) => v.iter().for_each(|p| collect_shared(p, out)),
        Pred::Not(p) | Pred::Quant { inner: p, .. } => collect_shared(p, out),
        Pred::Str {
            field,
            test: StrTest::Shared,
        } => {
            out.entry(*field).or_default();
        }
        _ => {}
    }
}

/// Message templates, compiled once per run.
struct Messages {
    env: minijinja::Environment<'static>,
}

impl Messages {
    fn new(rules: &[CompiledRule]) -> Self {
        let mut env = minijinja::Environment::new();
        for (i, r) in rules.iter().enumerate() {
            // Checked when the rule was compiled; a failure leaves the title as the message.
            let _ = env.add_template_owned(i.to_string(), r.rule.message.clone());
        }
        Messages { env }
    }
}

impl<'a> Ctx<'a> {
    /// Evaluates rule `ri` for one subject and records a finding if it fires.
    fn apply(
        &mut self,
        ri: usize,
        s: Subj<'a>,
        messages: &Messages,
        out: &mut Evaluation,
    ) -> Result<(), EngineError> {
        self.rule = ri;
        let rule = &self.rules[ri];
        if self.eval(&rule.pred, s) {
            out.counts[ri] += 1;
            let f = self.finding(rule, s, messages, &mut out.warnings);
            out.findings.push(f);
        }
        match self.expr_error.borrow_mut().take() {
            None => Ok(()),
            Some(message) => Err(EngineError {
                rule: rule.rule.id.clone(),
                origin: rule.rule.origin.to_string(),
                subject: match s {
                    Subj::User(u) => format!("user {}", u.id),
                    Subj::Group(g) => format!("group {}", self.report.groups.id(g.ix)),
                    Subj::Org(_) => "the organization".to_string(),
                },
                message,
            }),
        }
    }

    fn eval(&self, p: &Pred, s: Subj<'a>) -> bool {
        let report = self.report;
        match p {
            Pred::Const(b) => *b,
            Pred::All(items) => items.iter().all(|p| self.eval(p, s)),
            Pred::Any(items) => items.iter().any(|p| self.eval(p, s)),
            Pred::Not(p) => !self.eval(p, s),
            Pred::Bool { field, value } => bool_field(s, *field) == *value,
            Pred::Num { field, cmp, value } => cmp.test(num_field(s, *field), *value),
            Pred::NumIn {
                field,
                values,
                negate,
            } => {
                let n = num_field(s, *field);
                values.contains(&n) != *negate
            }
            Pred::Present { field, want } => present(report, s, *field) == *want,
            Pred::Str { field, test } => {
                let v = str_field(report, s, *field);
                match test {
                    StrTest::Eq(x) => *v == **x,
                    StrTest::Ne(x) => *v != **x,
                    StrTest::In(set) => set.contains(&*v),
                    StrTest::NotIn(set) => !set.contains(&*v),
                    StrTest::Matches(re) => re.is_match(&v),
                    StrTest::Contains(x) => v.contains(&**x),
                    StrTest::StartsWith(x) => v.starts_with(&**x),
                    StrTest::EndsWith(x) => v.ends_with(&**x),
                    StrTest::Shared => self.shared_with(*field, &v).map_or(0, <[u32]>::len) > 1,
                }
            }
            Pred::Time { field, test } => {
                let Some(t) = time_field(s, *field) else {
                    return false;
                };
                match test {
                    TimeTest::OlderThan(d) => t < self.now - *d,
                    TimeTest::NewerThan(d) => t > self.now - *d,
                    TimeTest::Before(other) => time_field(s, *other).is_some_and(|o| t < o),
                    TimeTest::After(other) => time_field(s, *other).is_some_and(|o| t > o),
                }
            }
            Pred::List { field, test } => {
                let mut items = list_field(report, s, *field);
                match test {
                    ListTest::Contains(x) => items.any(|i| i == &**x),
                    ListTest::ContainsAny(set) => items.any(|i| set.contains(i)),
                    ListTest::Matches(re) => items.any(|i| re.is_match(i)),
                    ListTest::Present(want) => items.next().is_some() == *want,
                }
            }
            Pred::Quant { q, inner } => {
                let mut users: Box<dyn Iterator<Item = &User>> = match s {
                    Subj::Group(g) => {
                        Box::new(g.members.iter().map(|&i| &report.users[i as usize]))
                    }
                    _ => Box::new(report.users.iter()),
                };
                match q {
                    Quantifier::Any => users.any(|u| self.eval(inner, Subj::User(u))),
                    Quantifier::All => users.all(|u| self.eval(inner, Subj::User(u))),
                    Quantifier::None => !users.any(|u| self.eval(inner, Subj::User(u))),
                }
            }
            Pred::Expr(i) => {
                let expr = &self.exprs[self.rule][*i];
                let ctx = self.template_context(s, Map::new());
                match expr.eval(ctx) {
                    Ok(v) => v.is_true(),
                    Err(e) => {
                        self.expr_error.borrow_mut().get_or_insert(e.to_string());
                        false
                    }
                }
            }
        }
    }

    fn shared_with(&self, field: FieldId, value: &str) -> Option<&[u32]> {
        self.shared
            .get(&field)
            .and_then(|m| m.get(value))
            .map(Vec::as_slice)
    }

    fn subject_var(s: Subj<'_>) -> &'static str {
        match s {
            Subj::User(_) => "user",
            Subj::Group(_) => "group",
            Subj::Org(_) => "organization",
        }
    }

    fn template_context(&self, s: Subj<'a>, extra: Map<String, J>) -> minijinja::Value {
        let mut obj = subject_json(self.report, s);
        if let Subj::Group(g) = s {
            obj.insert("members".into(), self.users_brief(&g.members));
        }
        let mut root = extra;
        root.insert(Self::subject_var(s).into(), J::Object(obj));
        root.insert(
            "params".into(),
            J::Object(self.rules[self.rule].params.clone()),
        );
        minijinja::Value::from(minijinja::value::Serde(&root))
    }

    fn users_brief(&self, ids: &[u32]) -> J {
        J::Array(
            ids.iter()
                .take(EVIDENCE_LIST_LIMIT)
                .map(|&i| user_brief(&self.report.users[i as usize]))
                .collect(),
        )
    }

    fn subject(&self, kind: Scope, s: Subj<'_>) -> Subject {
        match s {
            Subj::User(u) => Subject {
                kind,
                id: u.id.to_string(),
                email: Some(u.email.to_string()),
                name: None,
            },
            Subj::Group(g) => Subject {
                kind,
                id: self.report.groups.id(g.ix).to_string(),
                email: None,
                name: Some(self.report.groups.name(g.ix).to_string()),
            },
            Subj::Org(_) => Subject {
                kind,
                id: "organization".to_string(),
                email: None,
                name: None,
            },
        }
    }

    fn evidence(&self, rule: &CompiledRule, s: Subj<'a>) -> Map<String, J> {
        let report = self.report;
        let mut ev = Map::new();
        for item in &rule.evidence {
            let value = match *item {
                EvidenceItem::Field(f) => field_json(report, s, f),
                EvidenceItem::DaysSince(f) => {
                    time_field(s, f).map_or(J::Null, |t| json!((self.now - t).num_days()))
                }
                EvidenceItem::SharedWith(f) => {
                    let me = match s {
                        Subj::User(u) => u as *const User,
                        _ => std::ptr::null(),
                    };
                    let v = str_field(report, s, f);
                    let others: Vec<J> = self
                        .shared_with(f, &v)
                        .unwrap_or(&[])
                        .iter()
                        .map(|&i| &report.users[i as usize])
                        .filter(|u| !std::ptr::eq(*u, me))
                        .map(|u| json!({ "id": &*u.id, "email": &*u.email }))
                        .collect();
                    J::Array(others)
                }
            };
            ev.insert(item.key(), value);
        }
        match s {
            Subj::Group(g) => {
                ev.insert("member_count".into(), json!(g.members.len()));
                ev.insert("members".into(), self.users_brief(&g.members));
            }
            Subj::Org(o) => {
                ev.insert("user_count".into(), json!(o.user_count));
                let owners: Vec<u32> = (0..report.users.len() as u32)
                    .filter(|&i| report.users[i as usize].is_owner())
                    .collect();
                ev.insert("owners".into(), self.users_brief(&owners));
            }
            Subj::User(_) => {}
        }
        ev
    }

    fn finding(
        &self,
        rule: &CompiledRule,
        s: Subj<'a>,
        messages: &Messages,
        warnings: &mut Vec<Warning>,
    ) -> Finding {
        let r = &rule.rule;
        let subject = self.subject(r.scope, s);
        let evidence = self.evidence(rule, s);
        let mut extra = Map::new();
        extra.insert("evidence".into(), J::Object(evidence.clone()));
        extra.insert(
            "rule".into(),
            json!({ "id": r.id, "title": r.title, "severity": r.severity }),
        );
        extra.insert(
            "subject".into(),
            serde_json::to_value(&subject).unwrap_or(J::Null),
        );
        let ctx = self.template_context(s, extra);
        let message = match messages
            .env
            .get_template(&self.rule.to_string())
            .and_then(|t| t.render(ctx))
        {
            Ok(m) => m,
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
                r.title.clone()
            }
        };
        Finding {
            organization: None,
            fingerprint: fingerprint(&r.id, r.scope, &subject.id),
            rule_id: r.id.clone(),
            severity: r.severity,
            title: r.title.clone(),
            subject,
            message,
            evidence,
            waived: false,
            baseline_status: None,
            waiver: None,
        }
    }
}
