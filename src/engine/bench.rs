//! Rule evaluation alone, without findings: what the benchmarks measure. Unstable: only built
//! with the `unstable-bench` feature.

use std::cell::RefCell;
use std::collections::HashMap;

use super::access::Subj;
use super::index::{build_shared, collect_shared, cutoffs, SharedFields, SharedIndex};
use super::Ctx;
use crate::model::{Report, Timestamp};
use crate::rules::registry::FieldId;
use crate::rules::{CompiledRule, Scope};

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
            duplicated: &[],
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
