//! A report large enough for the paths that only large reports take: JSON records parsed on
//! several cores (over 4 MiB), users evaluated in parts on several cores (20,000 users or more),
//! findings serialized in chunks and converted to template values in parallel. The same users as
//! CSV (always parsed in one pass) must give the same audit, and the binary's output must be
//! the document serde writes.

mod common;

use std::fmt::Write as _;

use common::{run, NOW};

const USERS: usize = 25_000;

/// The same users as a JSON envelope and as CSV: every kind of finding, ids not in report
/// order, duplicate and external emails, groups with escapes in their names.
fn report() -> (String, String, usize) {
    let mut group_ids = std::collections::BTreeSet::new();
    let mut json = String::from("{\"data\": [\n");
    let mut csv = String::from("id,record_type,email,user_status,organization_user_bypasses_sso,created_at,last_sign_in_at,groups,group_ids\n");
    for i in 0..USERS {
        let id = format!("{:08x}-{i:05}", (i as u32).wrapping_mul(2_654_435_761));
        let owner = i == 7;
        let email = match i % 101 {
            0 => "Shared@Acme.example".to_string(),
            1 => format!("u{i}@gmail.com"),
            _ => format!("u{i}@acme.example"),
        };
        let status = ["enabled", "enabled", "enabled", "disabled", "blocked"][i % 5];
        let bypass = i % 33 == 0 || owner;
        let last = match i % 12 {
            0 => None,
            k => Some(format!("2026-{k:02}-15T10:00:00.250Z")),
        };
        let groups: Vec<(String, String)> = (0..i % 4)
            .map(|g| {
                let n = (i * 7 + g) % 40;
                group_ids.insert(n);
                (format!("g-{n}"), format!("Team \"{n}\""))
            })
            .collect();
        let rt = if owner {
            "organization_owner"
        } else {
            "organization_sub_user"
        };
        let groups_json: Vec<String> = groups
            .iter()
            .map(|(gid, name)| {
                format!(
                    "{{\"id\": \"{gid}\", \"name\": \"{}\"}}",
                    name.replace('"', "\\\"")
                )
            })
            .collect();
        let last_json = last
            .as_ref()
            .map_or("null".to_string(), |t| format!("\"{t}\""));
        let sep = if i + 1 < USERS { "," } else { "" };
        writeln!(
            json,
            "  {{\"id\": \"{id}\", \"record_type\": \"{rt}\", \"email\": \"{email}\", \"user_status\": \"{status}\", \"organization_user_bypasses_sso\": {bypass}, \"created_at\": \"2024-01-01T00:00:00Z\", \"last_sign_in_at\": {last_json}, \"groups\": [{}]}}{sep}",
            groups_json.join(", ")
        )
        .unwrap();
        let names: Vec<String> = groups.iter().map(|(_, n)| n.clone()).collect();
        let ids: Vec<String> = groups.iter().map(|(g, _)| g.clone()).collect();
        writeln!(
            csv,
            "{id},{rt},{email},{status},{bypass},2024-01-01T00:00:00Z,{},\"{}\",{}",
            last.unwrap_or_default(),
            names.join(";").replace('"', "\"\""),
            ids.join(";")
        )
        .unwrap();
    }
    json.push_str("], \"meta\": {\"total_results\": 25000}}\n");
    (json, csv, group_ids.len())
}

#[test]
fn a_large_report_audits_the_same_from_json_and_csv() {
    let (json, csv, groups) = report();
    assert!(
        json.len() > 4 << 20,
        "large enough to be parsed on several cores"
    );
    let dir = tempfile::tempdir().unwrap();
    let (jp, cp) = (dir.path().join("r.json"), dir.path().join("r.csv"));
    std::fs::write(&jp, &json).unwrap();
    std::fs::write(&cp, &csv).unwrap();
    let audit = |input: &std::path::Path, format: &str| {
        let r = run(&[
            "audit",
            "--now",
            NOW,
            "-q",
            "-i",
            input.to_str().unwrap(),
            "-f",
            format,
            "--set",
            "external-email-domain.allowed_domains=[acme.example]",
        ]);
        assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
        r.stdout
    };
    let from_json: serde_json::Value = serde_json::from_str(&audit(&jp, "json")).unwrap();
    let from_csv: serde_json::Value = serde_json::from_str(&audit(&cp, "json")).unwrap();
    let summary = &from_json["summary"];
    assert_eq!(summary["users"], USERS);
    assert_eq!(summary["groups"], groups);
    let fired: Vec<&str> = from_json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["findings"].as_u64() > Some(0))
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for rule in [
        "duplicate-email",
        "external-email-domain",
        "stale-sign-in",
        "never-signed-in",
        "disabled-user-in-groups",
        "sso-bypass",
        "owner-sso-bypass",
        "ungrouped-user",
    ] {
        assert!(fired.contains(&rule), "{rule} fired: {fired:?}");
    }
    assert!(summary["findings"].as_u64().unwrap() > 10_000);
    for key in ["summary", "rules", "findings", "warnings"] {
        assert!(
            from_json[key] == from_csv[key],
            "{key} differs between JSON and CSV input"
        );
    }
    // Sorted as documented: severity, rule, subject id.
    let findings = from_json["findings"].as_array().unwrap();
    let rank = |s: &str| {
        ["critical", "high", "medium", "low", "info"]
            .iter()
            .position(|x| *x == s)
    };
    let keys: Vec<_> = findings
        .iter()
        .map(|f| {
            (
                rank(f["severity"].as_str().unwrap()),
                f["rule_id"].as_str().unwrap(),
                f["subject"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(keys.is_sorted(), "findings in report order");
    // The HTML page lists every finding.
    let html = audit(&jp, "html");
    assert_eq!(html.matches("<tr class=\"finding").count(), findings.len());
}
