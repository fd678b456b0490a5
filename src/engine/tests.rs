//! The engine's tests: parts on several cores against one pass, the shared-value index, and the
//! message fast path against minijinja.

use super::index::SharedIndex;
use super::message::Messages;
use super::*;
use crate::rules::registry::FieldId;
use serde_json::{json, Value as J};

mod unit {
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
