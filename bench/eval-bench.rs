//! Rule evaluation alone: the built-in pack's user conditions over every user of a report, no
//! findings built. Prints evaluations, matches, seconds and evaluations per second (one core).
//!
//! cargo run --release --example eval-bench -- report.json

use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: eval-bench REPORT");
    let loaded =
        orgaudit::source::load(&orgaudit::source::Input::Path(path.into())).expect("a report");
    let mut rules = orgaudit::rules::RuleSet::builtin();
    rules
        .apply_set("external-email-domain.allowed_domains=[acme.example]")
        .unwrap();
    let compiled = rules.compile().unwrap();
    let now = "2026-11-29T00:00:00Z".parse().unwrap();
    // Best of three, to leave out a cold cache.
    let t = Instant::now();
    let evaluator = orgaudit::UserEvaluator::new(&loaded.report, &compiled, now);
    let prepare = t.elapsed().as_secs_f64();
    let mut best = f64::MAX;
    let mut result = (0, 0);
    for _ in 0..3 {
        let t = Instant::now();
        result = evaluator.count();
        best = best.min(t.elapsed().as_secs_f64());
    }
    let (evals, hits) = result;
    println!(
        "evaluations={evals} matches={hits} seconds={best:.4} per_second={:.0} index_seconds={prepare:.4}",
        evals as f64 / best
    );
}
