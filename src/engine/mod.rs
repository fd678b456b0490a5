//! Evaluating compiled rules over a report, producing findings with their evidence.
//!
//! Structured conditions are evaluated over typed fields without building any value per user;
//! JSON is built only for findings (evidence, message) and for `expr` conditions (the slow path).
//! What spans records (shared values, group members, organization counts) is indexed once per run.

mod access;
mod message;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;

use serde_json::{json, Value as J};

use crate::findings::{fingerprint, Evidence, Finding, Subject};
use crate::model::{Report, Timestamp, User, Warning};
use crate::rules::registry::{FieldId, TextGet};
use crate::rules::{
    CompiledRule, EvidenceItem, ListTest, Pred, Quantifier, Scope, StrTest, TimeTest,
};

use crate::model::{GroupInfo, OrgStats};
use access::{Subj, *};
use message::{Messages, Needs};

/// How many members or owners a finding's evidence lists; the count is always given in full.
pub const EVIDENCE_LIST_LIMIT: usize = crate::defaults::EVIDENCE_LIST_LIMIT;

/// An error while evaluating: only `expr` conditions can fail at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule `{rule}` ({origin}): `expr` failed for {subject}: {message}")]
pub struct EngineError {
    pub rule: String,
    pub origin: String,
    pub subject: String,
    pub message: String,
}

/// Whether a rule ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// Evaluated for every subject of its scope.
    Evaluated,
    /// Not evaluated, and why (a parameter it requires is empty).
    NotEvaluated(String),
    /// Its evaluation failed (an `expr` error); it has no findings, the other rules keep theirs.
    Error(EngineError),
}

/// How one rule's evaluation went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRun {
    pub ran: Ran,
    pub findings: usize,
    /// The subjects it was evaluated for.
    pub subjects: usize,
}

/// The findings of one evaluation, in report order (severity, rule id, subject id), and how
/// each rule's evaluation went, in rule order.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    pub runs: Vec<RuleRun>,
    pub warnings: Vec<Warning>,
}

/// Findings of group and organization rules, collected per rule while evaluating.
#[derive(Default)]
struct Buckets {
    by_rule: Vec<Vec<Finding>>,
    warnings: Vec<Warning>,
}

impl Buckets {
    fn new(rules: usize) -> Self {
        Buckets {
            by_rule: (0..rules).map(|_| Vec::new()).collect(),
            warnings: Vec::new(),
        }
    }
}

/// Users sharing a value of a field, for `shared` conditions: per user, the set of users with
/// the same value (or none), so that evaluating `shared` is an index, not a hash lookup.
#[derive(Default)]
struct SharedIndex {
    set_of: Vec<u32>,
    sets: Vec<Vec<u32>>,
}

const NO_SET: u32 = u32::MAX;

impl SharedIndex {
    fn build(report: &Report, get: TextGet) -> Self {
        use std::hash::BuildHasher;
        Self::build_with(report, get, |v| rustc_hash::FxBuildHasher.hash_one(v))
    }

    fn build_with(report: &Report, get: TextGet, hash: impl Fn(&str) -> u64) -> Self {
        let users = &report.users;
        let value = |i: u32| text(report, Subj::User(&users[i as usize]), get);
        // Values are hashed and the (hash, user) pairs sorted: equal values end up next to each
        // other, and only equal hashes are compared as strings. (A hash map of a million strings
        // spent its time in cache misses.)
        let mut keys: Vec<(u64, u32)> = (0..users.len() as u32)
            .filter_map(|i| {
                let v = value(i);
                (!v.is_empty()).then(|| (hash(&v), i))
            })
            .collect();
        keys.sort_unstable();
        let mut set_of = vec![NO_SET; users.len()];
        let mut sets: Vec<Vec<u32>> = Vec::new();
        for run in keys.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
            // Within a run (users in report order), split by value: almost always one value.
            let mut left: Vec<u32> = run.iter().map(|&(_, i)| i).collect();
            while let Some((&first, rest)) = left.split_first() {
                let v = value(first);
                let (same, other): (Vec<u32>, Vec<u32>) =
                    rest.iter().partition(|&&j| value(j) == v);
                if !same.is_empty() {
                    let s = sets.len() as u32;
                    let mut members = vec![first];
                    members.extend(same);
                    for &m in &members {
                        set_of[m as usize] = s;
                    }
                    sets.push(members);
                }
                left = other;
            }
        }
        SharedIndex { set_of, sets }
    }

    /// The users sharing user `i`'s value, `i` included; `None` when nobody does.
    fn of(&self, i: usize) -> Option<&[u32]> {
        match self.set_of.get(i) {
            Some(&s) if s != NO_SET => Some(&self.sets[s as usize]),
            _ => None,
        }
    }
}

/// Each user's position when users are ordered by id (byte order; equal ids keep report order).
/// Sorted on the ids' first eight bytes as keys, so most comparisons stay within the key array.
fn id_rank(users: &[User]) -> Vec<u32> {
    let prefix = |id: &str| {
        let mut b = [0u8; 8];
        let n = id.len().min(8);
        b[..n].copy_from_slice(&id.as_bytes()[..n]);
        u64::from_be_bytes(b)
    };
    let mut keys: Vec<(u64, u32)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (prefix(&u.id), i as u32))
        .collect();
    keys.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| users[a.1 as usize].id.cmp(&users[b.1 as usize].id))
            .then(a.1.cmp(&b.1))
    });
    let mut rank = vec![0u32; users.len()];
    for (k, &(_, i)) in keys.iter().enumerate() {
        rank[i as usize] = k as u32;
    }
    rank
}

/// A user's index in its report.
fn index_of(report: &Report, u: &User) -> usize {
    (u as *const User as usize - report.users.as_ptr() as usize) / std::mem::size_of::<User>()
}

struct Ctx<'a> {
    report: &'a Report,
    now: Timestamp,
    /// `now - d` for every duration of the rules' time tests, worked out once per run.
    cutoffs: &'a [(chrono::Duration, Timestamp)],
    shared: &'a HashMap<FieldId, SharedIndex>,
    exprs: &'a [Vec<minijinja::Expression<'a, 'a>>],
    /// The rule being evaluated, for expression lookup.
    rule: usize,
    rules: &'a [CompiledRule],
    expr_error: RefCell<Option<String>>,
}

/// Evaluates `rules` over `report` at time `now`.
pub fn evaluate(report: &Report, rules: &[CompiledRule], now: Timestamp) -> Evaluation {
    // Users are independent: with more than one core, contiguous parts are evaluated at once
    // and joined in order, so the result is the same as one pass.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(if report.users.len() >= 20_000 { 4 } else { 1 });
    evaluate_on(report, rules, now, threads, true)
}

/// What a part of the evaluation found per rule: the users it fired for, or its error.
type Fired = Vec<Result<Vec<u32>, EngineError>>;

/// [`evaluate`] with the users split into `threads` parts; `fast_messages` false renders every
/// message with minijinja (what the fast path is tested against).
fn evaluate_on(
    report: &Report,
    rules: &[CompiledRule],
    now: Timestamp,
    threads: usize,
    fast_messages: bool,
) -> Evaluation {
    // Cross-record state, computed before the per-subject contexts that borrow it.
    let has_scope = |scope| rules.iter().any(|r| r.rule.scope == scope);
    let groups = if has_scope(Scope::Group) {
        GroupInfo::all(report)
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
    let mut fields = SharedFields::new();
    for r in rules {
        for p in std::iter::once(&r.pred).chain(&r.counts) {
            collect_shared(p, &mut fields);
        }
    }
    let shared = build_shared(report, &fields);
    let cutoffs = cutoffs(&rules.iter().collect::<Vec<_>>(), now);
    let new_ctx = || Ctx {
        report,
        now,
        cutoffs: &cutoffs,
        shared: &shared,
        exprs: &exprs,
        rule: 0,
        rules,
        expr_error: RefCell::new(None),
    };
    let messages = Messages::new(rules, fast_messages);
    // Rules whose requirements are not met are not evaluated at all.
    let of_scope = |scope: Scope| -> Vec<usize> {
        (0..rules.len())
            .filter(|&i| rules[i].rule.scope == scope && rules[i].not_evaluated.is_none())
            .collect()
    };
    let user_rules = of_scope(Scope::User);
    // First, which users each rule fires for: cheap, in report order (users are read in the
    // order they lie in memory), and it tells where every finding goes, so that findings are
    // built straight into their place.
    let chunk = report.users.len().div_ceil(threads.max(1)).max(1);
    let parts: Vec<Range<u32>> = (0..report.users.len())
        .step_by(chunk)
        .map(|start| start as u32..(start + chunk).min(report.users.len()) as u32)
        .collect();
    let match_part = |ids: Range<u32>| -> Fired {
        let mut ctx = new_ctx();
        let mut fired: Fired = vec![Ok(Vec::new()); rules.len()];
        for i in ids {
            let u = &report.users[i as usize];
            for &ri in &user_rules {
                // A rule that failed in this part is not evaluated further.
                let Ok(users) = &mut fired[ri] else {
                    continue;
                };
                match ctx.fires(ri, Subj::User(u)) {
                    Ok(true) => users.push(i),
                    Ok(false) => {}
                    Err(e) => fired[ri] = Err(e),
                }
            }
        }
        fired
    };
    // Each rule's users in id order: the order its findings are listed in. A rule that failed
    // in any part keeps the first error, in report order, and no findings.
    let rank = id_rank(&report.users);
    let mut fired: Vec<Vec<u32>> = vec![Vec::new(); rules.len()];
    let mut errors: Vec<Option<EngineError>> = vec![None; rules.len()];
    for part in on_parts(parts, match_part) {
        for (r, some) in part.into_iter().enumerate() {
            match some {
                Ok(users) => fired[r].extend(users),
                Err(e) => {
                    errors[r].get_or_insert(e);
                }
            }
        }
    }
    for (users, error) in fired.iter_mut().zip(&errors) {
        if error.is_some() {
            users.clear();
        }
    }
    for users in &mut fired {
        users.sort_unstable_by_key(|&i| rank[i as usize]);
    }

    // Group and organization rules: few subjects, one core.
    let mut other = Buckets::new(rules.len());
    let mut ctx = new_ctx();
    let group_rules = of_scope(Scope::Group);
    for g in &groups {
        for &ri in &group_rules {
            if errors[ri].is_none() {
                if let Err(e) = ctx.apply(ri, Subj::Group(g), &messages, &mut other) {
                    errors[ri] = Some(e);
                }
            }
        }
    }
    for ri in of_scope(Scope::Organization) {
        if let Err(e) = ctx.apply(ri, Subj::Org(&org), &messages, &mut other) {
            errors[ri] = Some(e);
        }
    }
    for (found, error) in other.by_rule.iter_mut().zip(&errors) {
        if error.is_some() {
            found.clear();
        }
    }

    // The result's layout: rules by severity then id; within a rule, its users in id order,
    // or its group findings sorted by subject id.
    let mut rule_order: Vec<usize> = (0..rules.len()).collect();
    rule_order.sort_by(|&a, &b| {
        let (ra, rb) = (&rules[a].rule, &rules[b].rule);
        rb.severity
            .cmp(&ra.severity)
            .then_with(|| ra.id.cmp(&rb.id))
    });
    let counts: Vec<usize> = (0..rules.len())
        .map(|r| fired[r].len() + other.by_rule[r].len())
        .collect();
    let mut slots: Vec<Option<Finding>> = Vec::new();
    slots.resize_with(counts.iter().sum(), || None);
    // Each rule's findings are split evenly between the threads that build them.
    type Job<'s> = (usize, &'s [u32], &'s mut [Option<Finding>]);
    let mut jobs: Vec<Vec<Job<'_>>> = (0..threads.max(1)).map(|_| Vec::new()).collect();
    let mut rest = &mut slots[..];
    for &r in &rule_order {
        let per = fired[r].len().div_ceil(jobs.len()).max(1);
        for (job, users) in jobs.iter_mut().zip(fired[r].chunks(per)) {
            let (here, tail) = std::mem::take(&mut rest).split_at_mut(users.len());
            job.push((r, users, here));
            rest = tail;
        }
        let mut found = std::mem::take(&mut other.by_rule[r]);
        found.sort_by(|a, b| a.subject.id.cmp(&b.subject.id));
        let (here, tail) = std::mem::take(&mut rest).split_at_mut(found.len());
        for (slot, f) in here.iter_mut().zip(found) {
            *slot = Some(f);
        }
        rest = tail;
    }

    // Then the findings, built on every core into their places.
    let build_warnings = on_parts(jobs, |jobs| {
        let mut ctx = new_ctx();
        let mut warnings = Vec::new();
        for (r, users, slots) in jobs {
            ctx.rule = r;
            for (slot, &i) in slots.iter_mut().zip(users) {
                let s = Subj::User(&report.users[i as usize]);
                *slot = Some(ctx.finding(&rules[r], s, &messages, &mut warnings));
            }
        }
        warnings
    });
    let mut warnings = Vec::new();
    for w in build_warnings {
        warnings.extend(w);
    }
    warnings.extend(other.warnings);
    // In place: an `Option<Finding>` is the size of a `Finding`.
    let findings = slots
        .into_iter()
        .map(|f| f.expect("every slot is filled"))
        .collect();
    let runs = rules
        .iter()
        .zip(errors)
        .zip(counts)
        .map(|((rule, error), findings)| {
            let subjects = match rule.rule.scope {
                Scope::User => report.users.len(),
                Scope::Group => groups.len(),
                Scope::Organization => 1,
            };
            match (&rule.not_evaluated, error) {
                (Some(reason), _) => RuleRun {
                    ran: Ran::NotEvaluated(reason.clone()),
                    findings: 0,
                    subjects: 0,
                },
                (None, Some(e)) => RuleRun {
                    ran: Ran::Error(e),
                    findings: 0,
                    subjects,
                },
                (None, None) => RuleRun {
                    ran: Ran::Evaluated,
                    findings,
                    subjects,
                },
            }
        })
        .collect();
    Evaluation {
        findings,
        runs,
        warnings,
    }
}

// A finding's `None` is a niche: a list of optional findings can become a list of findings in
// place, without a second allocation.
const _: () = assert!(std::mem::size_of::<Option<Finding>>() == std::mem::size_of::<Finding>());

/// Runs `f` over each item, on a thread each when there are several; results in item order.
fn on_parts<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.into_iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|t| scope.spawn(move || f(t)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an evaluation thread does not panic"))
            .collect()
    })
}

/// The user rules' conditions, prepared over a report (shared values indexed), to evaluate
/// without building findings: the raw cost of rule evaluation, for benchmarks. Rules with `expr`
/// conditions are left out (they are the slow path by design).
pub struct UserEvaluator<'a> {
    report: &'a Report,
    now: Timestamp,
    cutoffs: Vec<(chrono::Duration, Timestamp)>,
    shared: HashMap<FieldId, SharedIndex>,
    rules: &'a [CompiledRule],
    user_rules: Vec<&'a CompiledRule>,
}

impl<'a> UserEvaluator<'a> {
    pub fn new(report: &'a Report, rules: &'a [CompiledRule], now: Timestamp) -> Self {
        let user_rules: Vec<&CompiledRule> = rules
            .iter()
            .filter(|r| r.rule.scope == Scope::User && r.exprs.is_empty())
            .collect();
        let mut fields = SharedFields::new();
        for r in &user_rules {
            collect_shared(&r.pred, &mut fields);
        }
        let shared = build_shared(report, &fields);
        UserEvaluator {
            report,
            now,
            cutoffs: cutoffs(&user_rules, now),
            shared,
            rules,
            user_rules,
        }
    }

    /// Evaluates every user rule for every user: (evaluations, matches).
    pub fn count(&self) -> (u64, u64) {
        let ctx = Ctx {
            report: self.report,
            now: self.now,
            cutoffs: &self.cutoffs,
            shared: &self.shared,
            exprs: &[],
            rule: 0,
            rules: self.rules,
            expr_error: RefCell::new(None),
        };
        let (mut evals, mut hits) = (0u64, 0u64);
        for u in &self.report.users {
            for r in &self.user_rules {
                evals += 1;
                hits += ctx.eval(&r.pred, Subj::User(u)) as u64;
            }
        }
        (evals, hits)
    }
}

/// The `shared` conditions' fields, with how each is read.
type SharedFields = Vec<(FieldId, TextGet)>;

fn build_shared(report: &Report, fields: &SharedFields) -> HashMap<FieldId, SharedIndex> {
    fields
        .iter()
        .map(|&(field, get)| (field, SharedIndex::build(report, get)))
        .collect()
}

/// `now - d` for each duration the rules' time tests use.
fn cutoffs(rules: &[&CompiledRule], now: Timestamp) -> Vec<(chrono::Duration, Timestamp)> {
    fn walk(p: &Pred, out: &mut Vec<chrono::Duration>) {
        match p {
            Pred::All(v) | Pred::Any(v) => v.iter().for_each(|p| walk(p, out)),
            Pred::Not(p) | Pred::Quant { inner: p, .. } => walk(p, out),
            Pred::Time {
                test: TimeTest::OlderThan(d) | TimeTest::NewerThan(d),
                ..
            } if !out.contains(d) => out.push(*d),
            _ => {}
        }
    }
    let mut durations = Vec::new();
    for r in rules {
        for p in std::iter::once(&r.pred).chain(&r.counts) {
            walk(p, &mut durations);
        }
    }
    durations.into_iter().map(|d| (d, now - d)).collect()
}

fn collect_shared(p: &Pred, out: &mut SharedFields) {
    match p {
        Pred::All(v) | Pred::Any(v) => v.iter().for_each(|p| collect_shared(p, out)),
        Pred::Not(p) | Pred::Quant { inner: p, .. } => collect_shared(p, out),
        Pred::Str {
            get,
            test: StrTest::Shared(field),
        } if !out.iter().any(|(f, _)| f == field) => out.push((*field, *get)),
        _ => {}
    }
}

impl<'a> Ctx<'a> {
    /// Evaluates rule `ri` for one subject and records a finding if it fires.
    fn apply(
        &mut self,
        ri: usize,
        s: Subj<'a>,
        messages: &Messages,
        out: &mut Buckets,
    ) -> Result<(), EngineError> {
        if self.fires(ri, s)? {
            let rule = &self.rules[ri];
            let f = self.finding(rule, s, messages, &mut out.warnings);
            out.by_rule[ri].push(f);
        }
        Ok(())
    }

    /// Whether rule `ri` fires for the subject; an `expr` that fails is an error.
    fn fires(&mut self, ri: usize, s: Subj<'a>) -> Result<bool, EngineError> {
        self.rule = ri;
        let rule = &self.rules[ri];
        let fired = self.eval(&rule.pred, s);
        match self.expr_error.borrow_mut().take() {
            None => Ok(fired),
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
                        self.expr_error.borrow_mut().get_or_insert(e.to_string());
                        false
                    }
                }
            }
        }
    }

    /// The users a quantifier or a `count` ranges over, with their indices: a group's members,
    /// or every user of the report (organization rules; a user rule has none of these forms).
    fn population(&self, s: Subj<'a>) -> Box<dyn Iterator<Item = (u32, &'a User)> + 'a> {
        let users = &self.report.users;
        match s {
            Subj::Group(g) => Box::new(g.members.iter().map(move |&i| (i, &users[i as usize]))),
            Subj::Org(_) | Subj::User(_) => {
                Box::new(users.iter().enumerate().map(|(i, u)| (i as u32, u)))
            }
        }
    }

    fn cutoff(&self, d: chrono::Duration) -> Timestamp {
        match self.cutoffs.iter().find(|(k, _)| *k == d) {
            Some((_, t)) => *t,
            None => self.now - d,
        }
    }

    fn shared_with(&self, field: FieldId, u: &User) -> Option<&[u32]> {
        self.shared
            .get(&field)
            .and_then(|m| m.of(index_of(self.report, u)))
    }

    /// The context of an `expr`: every variable of the schema an `expr` can read.
    fn expr_context(&self, s: Subj<'a>) -> minijinja::Value {
        let rule = &self.rules[self.rule];
        let subject = self.subject(rule.rule.scope, s);
        self.context(&Needs::all(true), rule, s, &subject, None)
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

    fn evidence(&self, rule: &CompiledRule, s: Subj<'a>) -> Evidence {
        let report = self.report;
        // Exactly what is recorded: a million findings' spare entries add up.
        let extra = if matches!(s, Subj::User(_)) { 0 } else { 2 };
        let mut ev = Evidence::with_capacity(rule.evidence.len() + extra);
        for item in &rule.evidence {
            let value = match *item {
                EvidenceItem::Field(f) => field_json(report, s, f),
                EvidenceItem::DaysSince(f) => {
                    time_of(s, f).map_or(J::Null, |t| json!((self.now - t).num_days()))
                }
                EvidenceItem::SharedWith(f) => {
                    let me = s.user();
                    let others: Vec<J> = self
                        .shared_with(f, me)
                        .unwrap_or(&[])
                        .iter()
                        .map(|&i| &report.users[i as usize])
                        .filter(|u| !std::ptr::eq(*u, me))
                        .map(|u| json!({ "id": &*u.id, "email": &*u.email }))
                        .collect();
                    J::Array(others)
                }
                EvidenceItem::MatchingCount(i) => {
                    let inner = &rule.counts[i];
                    json!(self
                        .population(s)
                        .filter(|(_, u)| self.eval(inner, Subj::User(u)))
                        .count())
                }
                EvidenceItem::Matching(i) => {
                    let inner = &rule.counts[i];
                    J::Array(
                        self.population(s)
                            .filter(|(_, u)| self.eval(inner, Subj::User(u)))
                            .map(|(_, u)| user_brief(u))
                            .take(rule.matching_limit)
                            .collect(),
                    )
                }
            };
            ev.insert(item.key(), value);
        }
        match s {
            Subj::Group(g) => {
                ev.insert("member_count", json!(g.members.len()));
                ev.insert("members", self.users_brief(&g.members));
            }
            Subj::Org(o) => {
                ev.insert("user_count", json!(o.user_count));
                let owners: Vec<u32> = (0..report.users.len() as u32)
                    .filter(|&i| report.users[i as usize].is_owner())
                    .collect();
                ev.insert("owners", self.users_brief(&owners));
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
        let message = self.message(rule, s, &subject, &evidence, messages, warnings);
        Finding {
            organization: None,
            fingerprint: fingerprint(&r.id, r.scope, &subject.id),
            rule_id: r.id.clone(),
            severity: r.severity,
            default_severity: r.overridden_severity(),
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

#[cfg(test)]
mod tests {
    use super::tests_support::varied_report;
    use super::*;

    #[test]
    fn parts_on_several_cores_give_one_pass_result() {
        let report = varied_report(3001);
        let mut set = crate::rules::RuleSet::builtin();
        set.apply_set("external-email-domain.allowed_domains=[acme.example]")
            .unwrap();
        let rules = set.compile().unwrap();
        let now = "2026-01-01T00:00:00Z".parse().unwrap();
        let one = evaluate_on(&report, &rules, now, 1, true);
        assert!(
            one.runs.iter().filter(|r| r.findings > 0).count() >= 8,
            "{:?}",
            one.runs
        );
        for threads in [2, 3, 7] {
            let many = evaluate_on(&report, &rules, now, threads, true);
            assert_eq!(many.runs, one.runs, "{threads} threads");
            assert!(many.findings == one.findings, "{threads} threads");
        }
        // Report order: severity, rule id, subject id.
        let mut sorted = one.findings.clone();
        crate::findings::sort(&mut sorted);
        assert!(sorted == one.findings);
    }

    #[test]
    fn shared_values_are_grouped_even_when_hashes_collide() {
        use crate::rules::registry::Get;
        let emails = [
            "x@a.io", "Y@a.io", "X@A.io", "z@a.io", "", "y@a.io", "", "x@a.io",
        ];
        let records: Vec<J> = emails
            .iter()
            .enumerate()
            .map(|(i, e)| {
                json!({"id": i.to_string(), "record_type": "organization_sub_user", "email": e,
                    "user_status": "enabled", "organization_user_bypasses_sso": false,
                    "created_at": "2024-01-01T00:00:00Z", "last_sign_in_at": null, "groups": []})
            })
            .collect();
        let json = serde_json::to_vec(&records).unwrap();
        let report = crate::source::from_bytes(&json, "t.json").unwrap().report;
        let Get::Text(get, _) = FieldId::EmailNormalized.def().get else {
            panic!("a text field")
        };
        let real = SharedIndex::build(&report, get);
        let collide = SharedIndex::build_with(&report, get, |_| 7);
        for index in [real, collide] {
            let sets: Vec<Option<&[u32]>> = (0..8).map(|i| index.of(i)).collect();
            let xs: &[u32] = &[0, 2, 7];
            let ys: &[u32] = &[1, 5];
            assert_eq!(
                sets,
                [
                    Some(xs),
                    Some(ys),
                    Some(xs),
                    None,
                    None,
                    Some(ys),
                    None,
                    Some(xs)
                ]
            );
        }
    }
}

/// The message fast path against minijinja: every message of every finding, rendered both ways.
#[cfg(test)]
mod differential {
    use super::tests_support::varied_report;
    use super::*;

    fn both_ways(report: &Report, rules: &[CompiledRule]) -> usize {
        let now = "2026-01-01T00:00:00Z".parse().unwrap();
        let fast = evaluate_on(report, rules, now, 1, true);
        let slow = evaluate_on(report, rules, now, 1, false);
        assert_eq!(fast.findings.len(), slow.findings.len());
        for (f, s) in fast.findings.iter().zip(&slow.findings) {
            assert_eq!(
                f.message,
                s.message,
                "rule {} ({:?}) on {}",
                f.rule_id,
                rules
                    .iter()
                    .find(|r| r.rule.id == f.rule_id)
                    .unwrap()
                    .rule
                    .message,
                f.subject.id
            );
        }
        assert_eq!(fast.warnings, slow.warnings);
        Messages::new(rules, true).planned()
    }

    #[test]
    fn every_builtin_message_reads_the_same_both_ways() {
        let report = varied_report(600);
        let mut set = crate::rules::RuleSet::builtin();
        set.apply_set("external-email-domain.allowed_domains=[acme.example]")
            .unwrap();
        let rules = set.compile().unwrap();
        let planned = both_ways(&report, &rules);
        assert_eq!(
            planned,
            rules.len(),
            "every built-in message takes the fast path"
        );
    }

    /// Generated templates: text (unicode, braces, line breaks, a block scalar's trailing
    /// newline), lookups of every variable, filters, values that are null or missing.
    #[test]
    fn generated_templates_read_the_same_both_ways() {
        const TEXTS: &[&str] = &[
            "",
            "plain ",
            "é ü 日本 ",
            "a}b ",
            "{ ",
            "\n",
            "line\nbreak ",
            "tab\t",
            "\r\n",
            "  ",
        ];
        const LOOKUPS: &[&str] = &[
            "{{ user.email }}",
            "{{user.email}}",
            "{{ user.groups | join(', ') }}",
            "{{ user.groups|join(\"; \") }}",
            "{{ user.group_ids | join('') }}",
            "{{ user.group_count }}",
            "{{ user.last_sign_in_at }}",
            "{{ user.active }}",
            "{{ user.organization_user_bypasses_sso }}",
            "{{ user.created_at }}",
            "{{ user.user_status }}",
            "{{ user.email_domain }}",
            "{{ evidence.days_since_created_at }}",
            "{{ evidence.created_at }}",
            "{{ evidence.email_normalized_shared_with | length }}",
            "{{ evidence.email_normalized_shared_with }}",
            "{{ params.n }}",
            "{{ params.list | join(', ') }}",
            "{{ params.list | length }}",
            "{{ params.f }}",
            "{{ params.s }}",
            "{{ params.empty | join(',') }}",
            "{{ rule.id }}",
            "{{ rule.severity }}",
            "{{ rule.title }}",
            "{{ subject.email }}",
            "{{ subject.name }}",
            "{{ subject.kind }}",
            "{{ user.email | upper }}",
            "{{ user.groups | length }}",
            "{{ user.email | length }}",
            "{{ user.groups }}",
            "{{ params.list }}",
        ];
        const ENDS: &[&str] = &["", "\n", "\n\n", "\r\n", " \n"];
        let mut state = 0x2545_f491_u64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as usize) % n
        };
        let mut yaml = String::new();
        for i in 0..160 {
            let mut t = String::new();
            for _ in 0..1 + next(4) {
                t.push_str(TEXTS[next(TEXTS.len())]);
                t.push_str(LOOKUPS[next(LOOKUPS.len())]);
            }
            t.push_str(TEXTS[next(TEXTS.len())]);
            t.push_str(ENDS[next(ENDS.len())]);
            let message = if i % 10 == 0 {
                // A block scalar, as people write multi-line messages.
                format!(
                    "|\n    {}\n",
                    t.trim_end().replace('\n', " ").replace('\r', "")
                )
            } else {
                serde_json::to_string(&t).unwrap()
            };
            yaml.push_str(&format!(
                "- id: t-{i}\n  title: T {i}\n  severity: low\n  scope: user\n  params: {{n: 3, list: [a, b], f: 1.5, s: x, empty: []}}\n  when:\n    any:\n      - {{field: created_at, older_than_days: 1}}\n      - {{field: email_normalized, shared: true}}\n  message: {message}\n"
            ));
        }
        yaml.push_str("- id: g-1\n  title: G\n  severity: low\n  scope: group\n  when: {field: member_count, gte: 0}\n  message: |\n    {{ group.name }} has {{ group.member_count }} ({{ evidence.members | length }}) {{ subject.name }} {{ subject.email }}\n");
        let mut set = crate::rules::RuleSet::new();
        set.add_source("gen.yaml", &yaml).unwrap();
        let rules = set.compile().unwrap();
        let report = varied_report(150);
        let planned = both_ways(&report, &rules);
        assert!(
            planned > rules.len() / 2,
            "{planned} of {} planned",
            rules.len()
        );
    }
}

#[cfg(test)]
mod tests_support {
    use super::*;

    /// A report of `n` users with every kind of finding, ids not in report order.
    pub(super) fn varied_report(n: usize) -> Report {
        let records: Vec<J> = (0..n)
            .map(|i| {
                let k = (i * 7919) % n;
                let status = ["enabled", "enabled", "disabled", "blocked"][i % 4];
                let domain = ["acme.example", "gmail.com"][i % 2];
                json!({
                    "id": format!("{:08x}-{k}", k.wrapping_mul(2654435761) as u32),
                    "record_type": if i == 0 { "organization_owner" } else { "organization_sub_user" },
                    "email": if i % 97 == 0 { "Same@Corp.io".to_string() } else { format!("u{i}@{domain}") },
                    "user_status": status,
                    "organization_user_bypasses_sso": i % 5 == 0,
                    "created_at": "2024-01-01T00:00:00Z",
                    "last_sign_in_at": if i % 3 == 0 { J::Null } else { json!(format!("2025-{:02}-01T00:00:00Z", 1 + i % 12)) },
                    "groups": (0..i % 3).map(|g| json!({"id": format!("g{}", (i + g) % 17), "name": format!("G{}", (i + g) % 17)})).collect::<Vec<_>>(),
                })
            })
            .collect();
        let bytes = serde_json::to_vec(&records).unwrap();
        crate::source::from_bytes(&bytes, "varied.json")
            .unwrap()
            .report
    }
}
