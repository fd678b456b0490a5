//! The security review's findings, one test each, driving the binary: what a hostile file,
//! template or argument could do, and what orgaudit does instead.

mod common;

use common::{example, run, run_with_stdin, NOW};
use serde_json::{json, Value};

fn user(id: &str, email: &str, groups: Value) -> Value {
    json!({"id": id, "record_type": "organization_sub_user", "email": email,
        "user_status": "enabled", "organization_user_bypasses_sso": true,
        "created_at": "2024-01-01T00:00:00Z", "last_sign_in_at": "2026-11-01T00:00:00Z",
        "groups": groups})
}

fn audit_json_of(
    dir: &std::path::Path,
    name: &str,
    users: Vec<Value>,
    extra: &[&str],
) -> (i32, Value, String) {
    let input = dir.join(name);
    std::fs::write(&input, json!({ "data": users }).to_string()).unwrap();
    let mut args = vec![
        "audit",
        "-i",
        input.to_str().unwrap(),
        "--now",
        NOW,
        "-f",
        "json",
    ];
    args.extend_from_slice(extra);
    let r = run(&args);
    let doc = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    (r.code, doc, r.stderr)
}

/// Item 10: two users with one id get distinct fingerprints, so a new finding on the second does
/// not hide behind the first; a unique id keeps the fingerprint it always had.
#[test]
fn duplicate_ids_do_not_share_a_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let g = json!([{"id": "g", "name": "G"}]);
    let (_, week1, _) = audit_json_of(
        dir.path(),
        "w1.json",
        vec![user("dup", "a@x.example", g.clone())],
        &[],
    );
    let fp = |doc: &Value| -> Vec<String> {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule_id"] == "sso-bypass")
            .map(|f| f["fingerprint"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        fp(&week1),
        [orgaudit::findings::fingerprint(
            "sso-bypass",
            orgaudit::rules::Scope::User,
            "dup"
        )]
    );
    let base = dir.path().join("w1-out.json");
    std::fs::write(&base, week1.to_string()).unwrap();
    let (code, week2, stderr) = audit_json_of(
        dir.path(),
        "w2.json",
        vec![
            user("dup", "a@x.example", g.clone()),
            user("dup", "b@x.example", g),
        ],
        &["--baseline", base.to_str().unwrap(), "--fail-on-new"],
    );
    let fps = fp(&week2);
    assert_eq!(fps.len(), 2);
    assert_ne!(fps[0], fps[1]);
    assert_eq!(code, 1, "the second user's finding is new: {stderr}");
}

/// Item 5: a huge `--waiver-max-days` is no limit, not a panic.
#[test]
fn a_huge_waiver_limit_is_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.yaml");
    std::fs::write(
        &w,
        "waivers:\n  - {rule: sso-bypass, all_subjects: true, reason: r, approved_by: a, expires: 2999-01-01}\n",
    )
    .unwrap();
    let r = run(&[
        "audit",
        "-i",
        example("acme-users-groups.json").to_str().unwrap(),
        "--now",
        NOW,
        "--waivers",
        w.to_str().unwrap(),
        "--waiver-max-days",
        "4294967295",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// Item 14: an SMTP password on the command line, where every process list shows it, is
/// refused, naming the variable to use.
#[test]
fn an_smtp_password_on_the_command_line_is_refused() {
    let r = run(&[
        "audit",
        "-i",
        example("acme-users-groups.json").to_str().unwrap(),
        "--email-to",
        "a@acme.example",
        "--email-from",
        "b@acme.example",
        "--smtp-url",
        "smtps://bob:hunter2@mail.example",
    ]);
    assert_eq!(r.code, 2);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "holds a password, which every process list shows: give it in ORGAUDIT_SMTP_PASSWORD"
        ),
        "{}",
        r.stderr
    );
}

/// Item 16: a CSV with two columns of one name is an error naming both, not a silent pick.
#[test]
fn duplicate_csv_columns_are_an_error() {
    let csv = "id,record_type,email,user_status,created_at,last_sign_in_at,groups,email\n\
               u1,organization_sub_user,a@x.example,enabled,2024-01-01T00:00:00Z,,G,b@x.example\n";
    let r = run_with_stdin(&["audit", "-i", "-"], Some(csv.as_bytes().to_vec()));
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: <stdin>: CSV line 1, column 8 (`email`): the column `email` appears twice (columns 3 and 8); a CSV report names each column once\n"
    );
}

/// Item 17: a user listed twice in one group counts once, in JSON as in CSV, with a warning.
#[test]
fn a_membership_given_twice_counts_once_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let twice = json!([{"id": "g", "name": "G"}, {"id": "g", "name": "G"}]);
    let mut u = user("u1", "a@x.example", twice);
    u["user_status"] = json!("disabled");
    let (_, doc, stderr) = audit_json_of(dir.path(), "t.json", vec![u], &[]);
    let csv = "id,record_type,email,user_status,created_at,last_sign_in_at,group_id,group_name\n\
               u1,organization_sub_user,a@x.example,disabled,2024-01-01T00:00:00Z,,g,G\n\
               u1,organization_sub_user,a@x.example,disabled,2024-01-01T00:00:00Z,,g,G\n";
    let r = run_with_stdin(
        &["audit", "-i", "-", "--now", NOW, "-f", "json"],
        Some(csv.as_bytes().to_vec()),
    );
    let from_csv: Value = serde_json::from_str(&r.stdout).unwrap();
    let message = |doc: &Value| {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule_id"] == "disabled-user-in-groups")
            .map(|f| f["message"].clone())
    };
    assert_eq!(
        message(&doc),
        Some(json!("a@x.example is disabled but still in 1 group(s): G"))
    );
    assert_eq!(message(&doc), message(&from_csv));
    assert!(stderr.contains("warning[duplicate-membership]"), "{stderr}");
}

/// Item 20: YAML tags are honoured (`!!str true` is a string), or refused when they do not fit.
#[test]
fn yaml_tags_are_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("r.yaml");
    std::fs::write(
        &rule,
        "id: t\ntitle: T\nseverity: low\nscope: user\nparams: {flag: !!str true}\nwhen: {field: email, equals: {param: flag}}\nmessage: '{{ params.flag is string }}'\n",
    )
    .unwrap();
    let v = run(&[
        "rules",
        "show",
        "t",
        "--no-builtin",
        "--rules",
        rule.to_str().unwrap(),
    ]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert!(v.stdout.contains("flag = \"true\""), "{}", v.stdout);
    std::fs::write(
        &rule,
        "id: t\ntitle: !!int T\nseverity: low\nscope: user\nwhen: {field: active, equals: true}\n",
    )
    .unwrap();
    let v = run(&["rules", "validate", "--no-builtin", rule.to_str().unwrap()]);
    assert_eq!(v.code, 2);
    assert!(
        v.stderr
            .contains(":2:14: invalid YAML: the tag `!!int` does not fit \"T\""),
        "{}",
        v.stderr
    );
}

/// Item 15: a report, baseline or waivers path naming a device is read up to a cap, then an
/// error names the limit (it read until memory ran out).
#[test]
fn devices_are_read_up_to_a_cap() {
    let input = example("acme-users-groups.json");
    let input = input.to_str().unwrap();
    for (args, want) in [
        (
            vec!["audit", "-i", "/dev/zero", "--max-bytes", "1MiB"],
            "error: /dev/zero: cannot read the report: larger than the limit of 1048576 bytes",
        ),
        (
            vec![
                "audit",
                "-i",
                input,
                "--baseline",
                "/dev/zero",
                "--max-bytes",
                "1MiB",
            ],
            "error: /dev/zero: cannot read the baseline: larger than the limit of 1048576 bytes",
        ),
        (
            vec!["audit", "-i", input, "--waivers", "/dev/zero"],
            "error: /dev/zero: cannot read the waivers: larger than the limit of 16777216 bytes",
        ),
        (
            vec![
                "audit",
                "-i",
                input,
                "--waivers",
                "/dev/zero",
                "--max-text-bytes",
                "1KiB",
            ],
            "error: /dev/zero: cannot read the waivers: larger than the limit of 1024 bytes",
        ),
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}");
        assert_eq!(r.stderr.trim_end(), want);
    }
}

/// Item 4: a message template that would run for hours, or write megabytes, puts its rule in
/// error naming the limit; the other rules' findings are written; exit 2. Another template
/// error keeps the title as the message, with a warning.
#[test]
fn templates_have_a_budget() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.yaml");
    std::fs::write(
        &rules,
        "- id: forever\n  title: F\n  severity: low\n  scope: user\n  when: {field: active, equals: true}\n  message: \"{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\"\n\
         - id: huge\n  title: H\n  severity: low\n  scope: user\n  when: {field: active, equals: true}\n  message: \"{{ 'x' * 10000000 }}\"\n\
         - id: broken\n  title: Broken title\n  severity: low\n  scope: user\n  when: {field: active, equals: true}\n  message: \"{{ user.groups | join(1, 2, 3) }}\"\n",
    )
    .unwrap();
    let out = dir.path().join("o.json");
    let r = run(&[
        "audit",
        "-i",
        example("acme-users-groups.json").to_str().unwrap(),
        "--now",
        NOW,
        "--rules",
        rules.to_str().unwrap(),
        "-f",
        "json",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("error: rule `forever` (")
            && r.stderr.contains("the message failed for user ")
            && r.stderr
                .contains("it ran out of fuel (200000 instructions, limits.template_fuel)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("error: rule `huge` (")
            && r.stderr
                .contains("the message is longer than 65536 bytes (limits.message_bytes)"),
        "{}",
        r.stderr
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let outcome = |id: &str| {
        doc["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["outcome"]
            .clone()
    };
    assert_eq!(outcome("forever"), "error");
    assert_eq!(outcome("huge"), "error");
    assert_eq!(outcome("broken"), "failed");
    assert_eq!(outcome("sso-bypass"), "failed");
    let findings = doc["findings"].as_array().unwrap();
    assert!(findings
        .iter()
        .all(|f| f["rule_id"] != "forever" && f["rule_id"] != "huge"));
    assert!(findings
        .iter()
        .any(|f| f["rule_id"] == "broken" && f["message"] == "Broken title"));
    assert!(
        r.stderr
            .contains("warning[message-template]: rule `broken`"),
        "{}",
        r.stderr
    );
}

/// A waiver of every rule for every subject silences the gate: refused unless asked for; any
/// glob over every subject is a warning with what it covers; the gate's line counts waived.
#[test]
fn blanket_waivers_are_refused_and_broad_ones_reported() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.yaml");
    let input = example("acme-users-groups.json");
    let input = input.to_str().unwrap();
    let waivers = w.to_str().unwrap();
    let gate = |extra: &[&str]| {
        let mut args = vec![
            "audit",
            "-i",
            input,
            "--now",
            NOW,
            "--waivers",
            waivers,
            "--fail-on",
            "low",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    std::fs::write(
        &w,
        "waivers:\n  - {rule: '*', all_subjects: true, reason: r, approved_by: a, expires: 2026-12-31}\n",
    )
    .unwrap();
    let r = gate(&[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(":2:5: the waiver `*` with all_subjects: true covers every rule of the audit (14): it would silence the whole gate"),
        "{}",
        r.stderr
    );
    let r = gate(&["--allow-blanket-waiver"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::write(
        &w,
        "waivers:\n  - {rule: 'sso-*', all_subjects: true, reason: r, approved_by: a, expires: 2026-12-31}\n",
    )
    .unwrap();
    let r = gate(&[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning[broad-waiver]: waiver at ")
            && r.stderr.contains(
                "(rule sso-*) covers every subject of 2 rule(s) (1 finding(s)): sso-bypass-turned-on, sso-bypass"
            ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("at or above low (--fail-on low); 1 waived"),
        "{}",
        r.stderr
    );
}

/// Item 21: on a terminal, an error first clears the progress line it may follow, so it never
/// starts mid-line. Runs the binary under `script`, which gives it a terminal.
#[test]
fn errors_on_a_terminal_start_on_a_clean_line() {
    let Ok(out) = std::process::Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "{} audit -i /no/such/report.json",
            env!("CARGO_BIN_EXE_orgaudit")
        ))
        .arg("/dev/null")
        .output()
    else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`script` (util-linux) is needed for this test in CI"
        );
        eprintln!("SKIPPED: `script` (util-linux) is not installed");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\r\x1b[Kerror: /no/such/report.json: cannot read the report"),
        "{text:?}"
    );
}

/// Item 11: terminal escapes in what a file says (a CSV header) reach the terminal escaped.
#[test]
fn error_messages_are_terminal_safe() {
    let csv = "id,\x1b[2J\x1b]0;owned\x07,email\nu1,x,a@b.c\n";
    let r = run_with_stdin(&["audit", "-i", "-"], Some(csv.as_bytes().to_vec()));
    assert_eq!(r.code, 2);
    assert!(
        !r.stderr.contains('\x1b') && !r.stderr.contains('\x07'),
        "{:?}",
        r.stderr
    );
    assert!(r.stderr.contains("\\u{1b}[2J"), "{}", r.stderr);
    // A failure after the audit (an output that cannot be written) is escaped too.
    let report = "json=/dev/null/such\x1b[2J/x.json";
    let input = example("acme-users-groups.json");
    let r = run(&["audit", "-i", input.to_str().unwrap(), "--report", report]);
    assert_eq!(r.code, 2);
    assert!(!r.stderr.contains('\x1b'), "{:?}", r.stderr);
    assert!(
        r.stderr.contains("/dev/null/such\\u{1b}[2J/x.json"),
        "{}",
        r.stderr
    );
}
