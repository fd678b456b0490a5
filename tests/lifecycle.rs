//! The audit lifecycle: the built-in rule tests, `orgaudit rules test`, baselines, waivers and
//! the gates on them.

mod common;

use std::path::{Path, PathBuf};

use common::{root, run, Run, NOW};
use serde_json::Value;

fn example() -> String {
    common::example("acme-users-groups.json")
        .display()
        .to_string()
}

fn audit(extra: &[&str]) -> Run {
    let input = example();
    let mut args = vec!["audit", "-i", input.as_str(), "--now", NOW];
    args.extend_from_slice(extra);
    run(&args)
}

fn json(r: &Run) -> Value {
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn the_built_in_rule_tests_pass() {
    let files = orgaudit::ruletest::find(&[root().join("rules")]).unwrap();
    let mut results = Vec::new();
    for f in &files {
        let t = orgaudit::ruletest::load(f).unwrap();
        results.push((
            f.display().to_string(),
            orgaudit::ruletest::run(&t).unwrap(),
        ));
    }
    let mut out = Vec::new();
    let (passed, failed) = orgaudit::ruletest::report(&results, &mut out).unwrap();
    assert_eq!(failed, 0, "{}", String::from_utf8_lossy(&out));
    assert!(passed >= 2 * orgaudit::rules::RuleSet::builtin().rules().len() - 2);
    // Every built-in rule has its test file.
    for rule in orgaudit::rules::RuleSet::builtin().rules() {
        assert!(
            root()
                .join(format!("rules/{}.test.yaml", rule.id))
                .is_file(),
            "rules/{}.test.yaml is missing",
            rule.id
        );
    }
}

#[test]
fn rules_test_reports_failures_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.yaml"),
        "id: bypass\ntitle: T\nseverity: high\nscope: user\nwhen: {field: organization_user_bypasses_sso, equals: true}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("mine.test.yaml"),
        "now: 2026-01-01T00:00:00Z\ndefaults: {record_type: organization_sub_user, user_status: enabled, created_at: 2025-01-01T00:00:00Z, last_sign_in_at: null, groups: []}\ntests:\n  - name: right\n    report: [{id: u1, email: a@x.example, organization_user_bypasses_sso: true}]\n    expect: [{rule: bypass, subject: a@x.example}]\n  - name: wrong\n    report:\n      - {id: u1, email: a@x.example, organization_user_bypasses_sso: true}\n      - {id: u2, email: b@x.example}\n    expect: [{rule: bypass, subject: u2}]\n  - name: broken param\n    params: {bypass.nope: 1}\n    report: []\n    expect: []\n",
    )
    .unwrap();
    let d = dir.path().display().to_string();
    let r = run(&["rules", "test", &d]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let out = r.stdout.replace(&format!("{d}/"), "");
    assert_eq!(
        out,
        "mine.test.yaml\n  ok    right\n  FAIL  wrong (mine.test.yaml:7:5)\n        - expected, not found   + found, not expected\n        - bypass u2\n        + bypass u1 (a@x.example)\n  ERROR broken param (mine.test.yaml:12:5)\n        rule `bypass` has no parameter `nope`\n          help: rule `bypass` has no parameters; every rule has the settings severity, enabled\n1 passed, 2 failed\n"
    );
    // An invalid test file is exit 2 with the place.
    std::fs::write(
        dir.path().join("bad.test.yaml"),
        "rules: [mine.yaml]\ntests:\n  - name: x\n    reprot: []\n",
    )
    .unwrap();
    let r = run(&["rules", "test", &format!("{d}/bad.test.yaml")]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.test.yaml:4:5: unknown key `reprot` in a test case\n  help: did you mean `report`?"), "{}", r.stderr);
}

/// A baseline written by this orgaudit, with some rules turned off.
fn baseline(dir: &Path, extra: &[&str]) -> PathBuf {
    let path = dir.join(format!("baseline{}.json", extra.join("_")));
    let mut args = vec!["-f", "json", "-o", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let r = audit(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    path
}

#[test]
fn baselines_mark_new_and_list_resolved_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    // Before: stale-sign-in was off; so its 2 findings are new now.
    let before = baseline(dir.path(), &["--disable", "stale-sign-in"]);
    let b = before.to_str().unwrap();
    let doc = json(&audit(&["--baseline", b, "-f", "json"]));
    assert_eq!(doc["summary"]["new"], 2);
    assert_eq!(doc["summary"]["resolved"], 0);
    assert_eq!(doc["baseline"]["findings"], 11);
    for f in doc["findings"].as_array().unwrap() {
        let want = if f["rule_id"] == "stale-sign-in" {
            "new"
        } else {
            "unchanged"
        };
        assert_eq!(f["baseline_status"], want, "{f}");
    }
    assert_eq!(doc["resolved"], serde_json::json!([]));

    // Reversed: now stale-sign-in is off, so its findings are resolved.
    let full = baseline(dir.path(), &[]);
    let f = full.to_str().unwrap();
    let doc = json(&audit(&[
        "--baseline",
        f,
        "-f",
        "json",
        "--disable",
        "stale-sign-in",
    ]));
    assert_eq!(doc["summary"]["new"], 0);
    assert_eq!(doc["summary"]["resolved"], 2);
    let resolved = doc["resolved"].as_array().unwrap();
    assert_eq!(resolved.len(), 2);
    assert_eq!(resolved[0]["rule_id"], "stale-sign-in");
    assert_eq!(resolved[0]["baseline_status"], "resolved");
    assert!(resolved[0]["fingerprint"].is_string() && resolved[0]["evidence"].is_object());

    let text = audit(&["--baseline", f, "--disable", "stale-sign-in"]).stdout;
    assert!(text.contains("RESOLVED 2 findings since the baseline\n  - stale-sign-in frank@acme.example: frank@acme.example last signed in 211 days ago (limit: 90)\n"), "{text}");
    assert!(
        text.contains("| 0 new, 2 resolved since the baseline |"),
        "{text}"
    );
    let html = audit(&["--baseline", f, "--disable", "stale-sign-in", "-f", "html"]).stdout;
    assert!(html.contains("<h2>Resolved since the baseline</h2>"));
    assert!(html.contains("data-resolved>2<"));
    let md = audit(&[
        "--baseline",
        f,
        "--disable",
        "stale-sign-in",
        "-f",
        "markdown",
    ])
    .stdout;
    assert!(
        md.contains("**0 new** since the last audit (2026-11-29T00:00:00Z), **2 resolved**."),
        "{md}"
    );
    assert!(md.contains("### Resolved since the last audit, 2"), "{md}");
    let junit = audit(&["--baseline", f, "--disable", "stale-sign-in", "-f", "junit"]).stdout;
    assert!(junit.contains("[resolved since the baseline] stale-sign-in user 7c2d9e10-0000-4a6b-8c3d-000000000006: frank@acme.example last signed in"), "{junit}");
    let all = audit(&[
        "--baseline",
        f,
        "-f",
        "junit",
        "--disable",
        "never-signed-in",
    ])
    .stdout;
    assert!(
        all.contains("[resolved since the baseline] never-signed-in"),
        "{all}"
    );

    // New findings are tagged in every format.
    let text = audit(&["--baseline", b]).stdout;
    assert!(
        text.contains("    - [new] frank@acme.example last signed in"),
        "{text}"
    );
    let html = audit(&["--baseline", b, "-f", "html"]).stdout;
    assert_eq!(
        html.matches("<span class=\"tag tag-new\">new</span>")
            .count(),
        2
    );
    let md = audit(&["--baseline", b, "-f", "markdown"]).stdout;
    assert!(md.contains("| **new** frank@acme.example |"), "{md}");
    let junit = audit(&["--baseline", b, "-f", "junit"]).stdout;
    assert!(
        junit.contains("[medium] [new] user 7c2d9e10-0000-4a6b-8c3d-000000000006"),
        "{junit}"
    );
    let gh = audit(&["--baseline", b, "-f", "github"]).stdout;
    assert!(gh.contains("::warning title=[new] stale-sign-in (medium) - Active user has not signed in recently::frank"), "{gh}");
}

#[test]
fn fail_on_new_gates_only_on_new_findings() {
    let dir = tempfile::tempdir().unwrap();
    let same = baseline(dir.path(), &[]);
    let s = same.to_str().unwrap();
    assert_eq!(audit(&["--baseline", s, "--fail-on", "high"]).code, 1);
    assert_eq!(
        audit(&["--baseline", s, "--fail-on", "high", "--fail-on-new"]).code,
        0
    );
    assert_eq!(audit(&["--baseline", s, "--fail-on-new"]).code, 0);
    let older = baseline(dir.path(), &["--disable", "sso-bypass"]);
    let o = older.to_str().unwrap();
    let r = audit(&["--baseline", o, "--fail-on", "high", "--fail-on-new"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.ends_with(
            "orgaudit: 1 unwaived new finding at or above high (--fail-on high --fail-on-new)\n"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        audit(&["--baseline", o, "--fail-on", "critical", "--fail-on-new"]).code,
        0
    );
    let r = audit(&["--fail-on-new"]);
    assert_eq!(r.code, 2, "--fail-on-new needs --baseline");
}

#[test]
fn corrupt_or_foreign_baselines_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("truncated.json", "{\"schema_version\": 1, \"findings\": [", "truncated.json: line 1, column 35: not valid JSON"),
        ("report.json", "{\"data\": []}", "report.json: no `schema_version`; expected the JSON output of `orgaudit audit --format json`"),
        ("v4.json", "{\"schema_version\": 4, \"findings\": []}", "v4.json: schema_version 4, but this orgaudit reads baselines of schema versions 1 to 3"),
    ];
    for (name, content, want) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        let r = audit(&["--baseline", p.to_str().unwrap()]);
        assert_eq!(r.code, 2);
        let stderr = r.stderr.replace(&format!("{}/", dir.path().display()), "");
        assert!(stderr.starts_with(&format!("error: {want}")), "{stderr}");
    }
}

fn waivers(dir: &Path, text: &str) -> String {
    let p = dir.join("waivers.yaml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const W: &str = "reason: accepted\n    approved_by: ciso@acme.example\n    expires: 2027-01-31";

#[test]
fn waivers_match_by_email_id_glob_and_all_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let w = waivers(
        dir.path(),
        &format!(
            "waivers:\n  - rule: owner-sso-bypass\n    subject: BOB@acme.example\n    ticket: SEC-1\n    {W}\n  - rule: sso-bypass\n    subject: 7c2d9e10-0000-4a6b-8c3d-000000000003\n    {W}\n  - rule: \"stale-*\"\n    subject: frank@acme.example\n    {W}\n  - rule: group-without-*\n    all_subjects: true\n    {W}\n  - rule: duplicate-email\n    subject: Legacy Integrations\n    {W}\n"
        ),
    );
    let r = audit(&["--waivers", &w, "-f", "json", "--fail-on", "high"]);
    assert_eq!(
        r.code, 0,
        "both high-or-above findings are waived: {}",
        r.stderr
    );
    let doc = json(&r);
    let waived: Vec<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["waived"] == true)
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap().to_string(),
                f["subject"]["id"].as_str().unwrap()[..8].to_string(),
            )
        })
        .collect();
    assert_eq!(waived.len(), 5, "{waived:?}");
    assert_eq!(doc["summary"]["waived"], 5);
    let bob = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "owner-sso-bypass")
        .unwrap();
    assert_eq!(bob["waiver"]["reason"], "accepted");
    assert_eq!(bob["waiver"]["approved_by"], "ciso@acme.example");
    assert_eq!(bob["waiver"]["expires"], "2027-01-31");
    assert_eq!(bob["waiver"]["ticket"], "SEC-1");
    assert!(bob["waiver"]["source"]
        .as_str()
        .unwrap()
        .ends_with("waivers.yaml:2:5"));
    // The waiver for a group name on a user rule matched nothing.
    assert!(
        r.stderr.contains("warning[unused-waiver]: waiver at "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("(rule duplicate-email, subject Legacy Integrations) matched no finding"),
        "{}",
        r.stderr
    );
    // A waived finding stays visible in every format.
    assert!(audit(&["--waivers", &w, "-q"])
        .stdout
        .contains("[waived until 2027-01-31: accepted] owner bob@acme.example"));
    assert!(audit(&["--waivers", &w, "-q", "-f", "html"])
        .stdout
        .contains("<span class=\"tag\">waived until 2027-01-31</span> accepted"));
    assert!(audit(&["--waivers", &w, "-q", "-f", "csv"])
        .stdout
        .contains(",true,"));
    let junit = audit(&["--waivers", &w, "-q", "-f", "junit"]).stdout;
    assert!(junit.contains("[waived until 2027-01-31 by ciso@acme.example: accepted] user 7c2d9e10-0000-4a6b-8c3d-000000000002"));
    assert!(
        !junit.contains("<failure type=\"critical\""),
        "a fully waived rule passes"
    );
    // With waivers and a baseline, the JUnit output still validates against the schema.
    let before = baseline(dir.path(), &["--disable", "never-signed-in"]);
    let junit = audit(&[
        "--waivers",
        &w,
        "-q",
        "-f",
        "junit",
        "--baseline",
        before.to_str().unwrap(),
        "--disable",
        "ungrouped-user",
    ])
    .stdout;
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, &junit).unwrap();
    match std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(root().join("tests/fixtures/junit.xsd"))
        .arg(&file)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "{}\n{junit}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => assert!(std::env::var_os("CI").is_none(), "xmllint is missing"),
    }
}

#[test]
fn expired_waivers_stop_applying_and_warn() {
    let dir = tempfile::tempdir().unwrap();
    let w = waivers(
        dir.path(),
        "waivers:\n  - rule: owner-sso-bypass\n    subject: bob@acme.example\n    reason: r\n    approved_by: a\n    expires: 2026-11-28\n",
    );
    let r = audit(&["--waivers", &w, "--fail-on", "critical"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("warning[expired-waiver]: waiver at "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("expired on 2026-11-28; it no longer applies"),
        "{}",
        r.stderr
    );
    // Through its last day it still applies.
    let r = run(&[
        "audit",
        "-i",
        &example(),
        "--now",
        "2026-11-28T23:59:59Z",
        "--waivers",
        &w,
        "--fail-on",
        "critical",
        "-q",
    ]);
    assert_eq!(r.code, 0);
}

#[test]
fn invalid_waivers_are_rejected_with_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let w = waivers(
        dir.path(),
        "waivers:\n  - rule: sso-bypass\n    subject: a\n    approved_by: a\n    expires: 2027-01-01\n  - rule: sso-bypass\n    subject: a\n    reason: r\n    approved_by: a\n    expires: 2028-06-01\n",
    );
    let r = audit(&["--waivers", &w]);
    assert_eq!(r.code, 2);
    let stderr = r.stderr.replace(&format!("{}/", dir.path().display()), "");
    assert_eq!(
        stderr,
        "error: waivers.yaml:2:5: a waiver needs `reason` (why the risk is accepted)\n\
         error: waivers.yaml:10:14: `expires` 2028-06-01 is 550 days away; a waiver may last at most 365 days\n  help: choose an earlier date and review the risk again then (the limit is set with --waiver-max-days)\n"
    );
    let r = audit(&["--waivers", &w, "--waiver-max-days", "600"]);
    assert_eq!(r.code, 2, "the missing reason is still an error");
    assert!(!r.stderr.contains("550 days away"));
}

#[test]
fn the_example_waivers_are_valid() {
    let now = NOW.parse().unwrap();
    let list = orgaudit::waivers::load(&root().join("examples/waivers.yaml"), now, 365).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1].subject, None);
}
