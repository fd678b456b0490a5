//! Evaluating compiled rules over a report, producing findings with their evidence.
//!
//! Structured conditions are evaluated over typed fields without building any value per user;
//! JSON is built only for findings (evidence, message) and for `expr` conditions (the slow path).
//! What spans records (shared values, group members, organization counts) is indexed once per run.

mod access;
#[cfg(feature = "unstable-bench")]
mod bench;
mod eval;
mod finding;
mod index;
mod message;
#[cfg(test)]
mod tests;

#[cfg(feature = "unstable-bench")]
pub use bench::UserEvaluator;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;

use crate::findings::Finding;
use crate::model::{Report, Timestamp, Warning};
use crate::rules::registry::FieldId;
use crate::rules::{CompiledRule, Scope};

use crate::model::{GroupInfo, OrgStats};
use access::Subj;
use index::{build_shared, collect_shared, cutoffs, id_rank, SharedFields, SharedIndex};
use message::Messages;

/// How many members or owners a finding's evidence lists; the count is always given in full.
pub const EVIDENCE_LIST_LIMIT: usize = crate::defaults::EVIDENCE_LIST_LIMIT;

/// An error while evaluating: an `expr` that fails, or a message or `expr` out of budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule `{rule}` ({origin}): {what} failed for {subject}: {message}")]
pub struct EngineError {
    pub rule: String,
    pub origin: String,
    /// `` `expr` `` or `the message`.
    pub what: &'static str,
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

struct Ctx<'a> {
    report: &'a Report,
    /// Per user: whether another user has the same id (their fingerprints take the email too).
    duplicated: &'a [bool],
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
    let mut env = minijinja::Environment::new();
    env.set_fuel(rules.first().map(|r| r.limits.template_fuel));
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
        for p in std::iter::once(&r.pred).chain(&r.counts).chain(&r.fix) {
            collect_shared(p, &mut fields);
        }
    }
    let shared = build_shared(report, &fields);
    let cutoffs = cutoffs(&rules.iter().collect::<Vec<_>>(), now);
    let (rank, duplicated) = id_rank(&report.users);
    let new_ctx = || Ctx {
        duplicated: &duplicated,
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
    // Rules whose requirements are not met are not evaluated at all: an empty parameter they
    // require, or a change field without a previous snapshot to compare with.
    let skip: Vec<Option<String>> = rules
        .iter()
        .map(|r| {
            r.not_evaluated.clone().or_else(|| {
                (r.uses_changes && report.compared.is_none()).then(|| NO_PREVIOUS.to_string())
            })
        })
        .collect();
    let of_scope = |scope: Scope| -> Vec<usize> {
        (0..rules.len())
            .filter(|&i| rules[i].rule.scope == scope && skip[i].is_none())
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
    // A rule whose message fails (out of budget) stops there: its slots stay empty.
    let built = on_parts(jobs, |jobs| {
        let mut ctx = new_ctx();
        let mut warnings = Vec::new();
        let mut failed: Vec<(usize, EngineError)> = Vec::new();
        for (r, users, slots) in jobs {
            ctx.rule = r;
            for (slot, &i) in slots.iter_mut().zip(users) {
                let s = Subj::User(&report.users[i as usize]);
                match ctx.finding(&rules[r], s, &messages, &mut warnings) {
                    Ok(f) => *slot = Some(f),
                    Err(e) => {
                        failed.push((r, e));
                        break;
                    }
                }
            }
        }
        (warnings, failed)
    });
    let mut warnings = Vec::new();
    let mut failed_rules = Vec::new();
    for (w, failed) in built {
        warnings.extend(w);
        for (r, e) in failed {
            errors[r].get_or_insert(e);
            failed_rules.push(rules[r].rule.id.as_str());
        }
    }
    warnings.extend(other.warnings);
    let findings = if failed_rules.is_empty() {
        // In place: an `Option<Finding>` is the size of a `Finding`.
        slots
            .into_iter()
            .map(|f| f.expect("every slot is filled"))
            .collect()
    } else {
        slots
            .into_iter()
            .flatten()
            .filter(|f| !failed_rules.contains(&f.rule_id.as_str()))
            .collect()
    };
    let runs = rules
        .iter()
        .zip(errors)
        .zip(counts)
        .zip(&skip)
        .map(|(((rule, error), findings), skip)| {
            let subjects = match rule.rule.scope {
                Scope::User => report.users.len(),
                Scope::Group => groups.len(),
                Scope::Organization => 1,
            };
            match (skip, error) {
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

/// Why a rule that reads a change field is not evaluated without a previous snapshot.
pub(crate) const NO_PREVIOUS: &str =
    "no previous snapshot to compare with (it reads change-detection fields)";

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
