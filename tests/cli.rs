//! The `orgaudit` binary driven end to end: outputs, exit codes, and error messages as users
//! see them.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::{example, run, run_with_stdin, NOW};
use serde_json::Value;

const ALLOW: &str = "external-email-domain.allowed_domains=[acme.example]";

fn audit_json(input: &Path, extra: &[&str]) -> Value {
    let input = input.to_str().unwrap();
    let mut args = vec!["audit", "--input", input, "--now", NOW, "--format", "json"];
    args.extend_from_slice(extra);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// Runs `audit -i examples/NAME` with `extra` arguments.
fn audit_example(name: &str, extra: &[&str]) -> common::Run {
    let input = example(name);
    let mut args = vec!["audit", "-i", input.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

/// `audit -i examples/acme-users-groups.json --now NOW -f FORMAT` with `extra` arguments.
fn example_as(format: &str, extra: &[&str]) -> common::Run {
    let mut args = vec!["--now", NOW, "-f", format];
    args.extend_from_slice(extra);
    audit_example("acme-users-groups.json", &args)
}

#[test]
fn text_audit_of_the_example() {
    let r = audit_example("acme-users-groups.json", &["--now", NOW, "--set", ALLOW]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert!(!r.stdout.contains('\x1b'), "no colour when not a terminal");
    let last = r.stdout.lines().last().unwrap();
    assert_eq!(
        last,
        "14 findings: 1 critical, 1 high, 7 medium, 4 low, 1 info | 14 rules (10 failed, 1 passed, 3 not evaluated) over 14 users and 5 groups"
    );
    assert!(r.stdout.contains("\nCRITICAL 1 finding\n  owner-sso-bypass  Active owner may bypass SSO (1)\n    - owner bob@acme.example is active and may sign in with a password, bypassing SSO\n      user 7c2d9e10-0000-4a6b-8c3d-000000000002  active=true  is_owner=true  organization_user_bypasses_sso=true\n"), "{}", r.stdout);
    let colored = audit_example("acme-users-groups.json", &["--color", "always"]);
    assert!(colored.stdout.contains("\x1b[1;97;41mCRITICAL\x1b[0m"));
}

#[test]
fn json_document_shape() {
    let doc = audit_json(&example("acme-users-groups.json"), &["--set", ALLOW]);
    assert_eq!(doc["schema_version"], 3);
    assert_eq!(doc["tool"]["name"], "orgaudit");
    assert_eq!(doc["tool"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["audited_at"], NOW);
    let src = &doc["source"];
    assert_eq!(src["kind"], "file");
    assert_eq!(src["format"], "json");
    assert_eq!(src["records"], 14);
    assert!(src["path"]
        .as_str()
        .unwrap()
        .ends_with("acme-users-groups.json"));
    let bytes = std::fs::read(example("acme-users-groups.json")).unwrap();
    assert_eq!(src["sha256"], orgaudit::source::sha256_hex(&bytes));
    assert_eq!(
        doc["summary"],
        serde_json::json!({"users": 14, "groups": 5, "rules_evaluated": 14, "findings": 14,
            "by_severity": {"critical": 1, "high": 1, "medium": 7, "low": 4, "info": 1},
            "unwaived_by_severity": {"critical": 1, "high": 1, "medium": 7, "low": 4, "info": 1},
            "waived": 0})
    );
    let rules = doc["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 14);
    let stale = rules.iter().find(|r| r["id"] == "stale-sign-in").unwrap();
    assert_eq!(stale["findings"], 2);
    assert_eq!(stale["scope"], "user");
    assert_eq!(
        stale["references"][0],
        serde_json::json!({"framework": "NIST SP 800-53", "control": "AC-2(3)"})
    );
    let findings = doc["findings"].as_array().unwrap();
    let f = findings
        .iter()
        .find(|f| f["rule_id"] == "stale-sign-in")
        .unwrap();
    assert_eq!(
        f,
        &serde_json::json!({
            "rule_id": "stale-sign-in", "severity": "medium",
            "title": "Active user has not signed in recently",
            "subject": {"kind": "user", "id": "7c2d9e10-0000-4a6b-8c3d-000000000006",
                        "email": "frank@acme.example", "name": null},
            "message": "frank@acme.example last signed in 211 days ago (limit: 90)",
            "evidence": {"active": true, "last_sign_in_at": "2026-05-01T10:00:00Z",
                         "days_since_last_sign_in_at": 211},
            "fingerprint": orgaudit::findings::fingerprint("stale-sign-in", orgaudit::rules::Scope::User, "7c2d9e10-0000-4a6b-8c3d-000000000006"),
            "waived": false
        })
    );
    // Sorted: severity (critical first), then rule id, then subject id.
    let rank = |s: &str| {
        ["critical", "high", "medium", "low", "info"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    let keys: Vec<(usize, String, String)> = findings
        .iter()
        .map(|f| {
            (
                rank(f["severity"].as_str().unwrap()),
                f["rule_id"].as_str().unwrap().to_string(),
                f["subject"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(doc["warnings"], serde_json::json!([]));
}

#[test]
fn every_builtin_rule_fires_on_the_examples() {
    let mut fired: Vec<String> = Vec::new();
    // The change rules compare with last week's snapshot, from a history.
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("h.db");
    let h = history.to_str().unwrap();
    let last_week = example("acme-users-groups.last-week.json");
    let r = run(&[
        "audit",
        "-i",
        last_week.to_str().unwrap(),
        "--now",
        "2026-11-22T00:00:00Z",
        "--history",
        h,
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let watch = "added-to-watched-group.watched_groups=[Admins]";
    for (file, extra) in [
        (
            "acme-users-groups.json",
            vec!["--set", ALLOW, "--history", h, "--set", watch],
        ),
        ("no-active-owner.json", vec![]),
        // Off by default.
        (
            "acme-users-groups.json",
            vec!["--enable", "disabled-user-lingering"],
        ),
    ] {
        let doc = audit_json(&example(file), &extra);
        for f in doc["findings"].as_array().unwrap() {
            fired.push(f["rule_id"].as_str().unwrap().to_string());
        }
    }
    let list = run(&["rules", "list", "--format", "json"]);
    let rules: Value = serde_json::from_str(&list.stdout).unwrap();
    for r in rules.as_array().unwrap() {
        let id = r["id"].as_str().unwrap();
        assert!(
            fired.iter().any(|f| f == id),
            "{id} never fires on the examples"
        );
    }
}

#[test]
fn json_and_both_csv_shapes_give_identical_findings() {
    let findings = |name: &str| {
        let doc = audit_json(&example(name), &["--set", ALLOW]);
        (
            doc["findings"].clone(),
            doc["summary"].clone(),
            doc["source"]["format"].clone(),
        )
    };
    let (json, json_summary, f1) = findings("acme-users-groups.json");
    let (csv, csv_summary, f2) = findings("acme-users-groups.csv");
    let (rows, rows_summary, f3) = findings("acme-users-groups-memberships.csv");
    assert_eq!(
        (f1.as_str(), f2.as_str(), f3.as_str()),
        (Some("json"), Some("csv"), Some("csv"))
    );
    assert_eq!(json.as_array().unwrap().len(), 14);
    assert_eq!(json, csv);
    assert_eq!(json, rows);
    assert_eq!(json_summary, csv_summary);
    assert_eq!(json_summary, rows_summary);
}

#[test]
fn standard_input_is_read_with_dash() {
    let bytes = std::fs::read(example("acme-users-groups.csv")).unwrap();
    let r = run_with_stdin(
        &["audit", "--input", "-", "--now", NOW, "--format", "json"],
        Some(bytes.clone()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["source"]["kind"], "stdin");
    assert_eq!(doc["source"]["format"], "csv");
    assert_eq!(
        doc["source"]["sha256"],
        orgaudit::source::sha256_hex(&bytes)
    );
    assert!(doc["source"].get("path").is_none());
}

#[test]
fn exit_codes_follow_fail_on() {
    let input = example("acme-users-groups.json");
    let input = input.to_str().unwrap();
    let code = |extra: &[&str]| {
        let mut args = vec!["audit", "-i", input, "--now", NOW, "-f", "json"];
        args.extend_from_slice(extra);
        run(&args).code
    };
    assert_eq!(code(&[]), 0);
    assert_eq!(code(&["--fail-on", "none"]), 0);
    assert_eq!(code(&["--fail-on", "critical"]), 1);
    assert_eq!(
        code(&["--fail-on", "critical", "--disable", "owner-sso-bypass"]),
        0
    );
    assert_eq!(
        code(&["--fail-on", "high", "--disable", "owner-sso-bypass"]),
        1
    );
    assert_eq!(code(&["--fail-on", "info", "--no-builtin"]), 0);
    let gated = run(&[
        "audit",
        "-i",
        input,
        "--now",
        NOW,
        "--fail-on",
        "medium",
        "-q",
    ]);
    assert_eq!(gated.code, 1);
    assert_eq!(
        gated.stderr,
        "orgaudit: 8 unwaived findings at or above medium (--fail-on medium)\n"
    );
    assert_eq!(code(&["--fail-on", "severe"]), 2);
    assert_eq!(code(&["--now", "yesterday"]), 2);
    assert_eq!(code(&["--disable", "no-such-rule"]), 2);
}

/// Audits the no-active-owner example to `out` as JSON.
fn audit_json_to(out: &Path) -> common::Run {
    audit_example(
        "no-active-owner.json",
        &["--now", NOW, "-f", "json", "-o", out.to_str().unwrap()],
    )
}

#[test]
fn output_file_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("findings.json");
    let r = audit_json_to(&out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A report holds every user's email: a new one is the owner's only, unless asked.
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "got {mode:o}");
        let shared = dir.path().join("shared.json");
        let r = audit_example(
            "no-active-owner.json",
            &["-o", shared.to_str().unwrap(), "--file-mode", "644"],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "got {mode:o}");
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["findings"][0]["rule_id"], "no-active-owner");
    assert_eq!(
        doc["findings"][0]["evidence"]["owners"],
        serde_json::json!([{"id": "7c2d9e10-0000-4a6b-8c3d-000000000101", "email": "founder@orphan.example", "user_status": "disabled"}])
    );
    // Missing folders are created.
    let nested = dir.path().join("missing/dir/x.txt");
    let r = audit_example("no-active-owner.json", &["-o", nested.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(nested.is_file());
}

/// Links, devices and FIFOs are written where they are, never replaced by a regular file: an
/// atomic replace of `-o /dev/null` once turned a machine's /dev/null into a file.
#[cfg(unix)]
#[test]
fn outputs_through_links_and_fifos_keep_them() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.json");
    std::fs::write(&target, "old content, longer than nothing").unwrap();
    let link = dir.path().join("latest.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let r = audit_json_to(&link);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(doc["findings"][0]["rule_id"], "no-active-owner");

    // A FIFO: a reader takes what the audit writes; the FIFO is still one afterwards.
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        return; // no mkfifo here: the link case above covers the rule
    }
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let r = audit_json_to(&fifo);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Checked before waiting on the reader, which would wait forever on a replaced FIFO.
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo());
    let text = reader.join().unwrap();
    assert!(text.contains("no-active-owner"), "{text}");
}

/// Writes `content` to a temporary file and audits it; returns (exit code, stderr).
fn audit_bytes(name: &str, content: &[u8]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    let r = run(&["audit", "--input", path.to_str().unwrap(), "--now", NOW]);
    (r.code, r.stderr.replace(path.to_str().unwrap(), name))
}

#[test]
fn malformed_input_is_exit_2_with_the_place() {
    let head = "id,record_type,email,user_status,created_at,last_sign_in_at,groups";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.json", b"".to_vec(), "error: empty.json: the input is empty; expected a users groups report as JSON or CSV\n"),
        ("blank.csv", b"\xEF\xBB\xBF \r\n".to_vec(), "error: blank.csv: the input is empty; expected a users groups report as JSON or CSV\n"),
        ("binary.json", b"PK\x03\x04\x00\x00".to_vec(), "error: binary.json: byte 4: binary data; expected a users groups report as JSON or CSV text\n"),
        ("syntax.json", b"{\"data\": [\n  {\"id\": \"u1\",, }\n]}".to_vec(), "error: syntax.json:2:15: user record 0: key must be a string\n"),
        ("type.json", b"{\"data\": [{\"id\": \"u1\", \"record_type\": \"organization_owner\", \"email\": \"a@b\", \"user_status\": \"enabled\", \"organization_user_bypasses_sso\": \"yes\"}]}".to_vec(), "error: type.json:1:141: user record 0, field `organization_user_bypasses_sso`: invalid type: string \"yes\", expected a boolean\n"),
        ("time.json", b"[{\"id\": \"u1\", \"created_at\": \"2024-02-30T00:00:00Z\"}]".to_vec(), "error: time.json:1:50: user record 0, field `created_at`: invalid timestamp \"2024-02-30T00:00:00Z\": expected RFC 3339 such as \"2018-02-02T22:25:27.521Z\"\n"),
        ("missing.json", b"[{\"id\": \"u1\"}]".to_vec(), "error: missing.json:1:13: user record 0: missing field `record_type`; a user record has id, record_type, email, user_status, organization_user_bypasses_sso, created_at, last_sign_in_at, groups\n"),
        ("groups.json", b"[{\"id\": \"u1\", \"groups\": [{\"id\": \"g\"}]}]".to_vec(), "error: groups.json:1:36: user record 0, field `groups`: missing field `name`\n"),
        ("truncated.json", b"{\"data\": [{\"id\": \"u1\"".to_vec(), "error: truncated.json:1:21: user record 0: EOF while parsing an object: the JSON ends early (truncated file?)\n"),
        ("scalar.json", b"[\"u1\"]".to_vec(), "error: scalar.json:1:5: user record 0: invalid type: string \"u1\", expected a user record (an object)\n"),
        ("header.csv", b"name,mail\nx,y\n".to_vec(), "error: header.csv: CSV line 1: unrecognised CSV header (missing column(s) id, record_type, email, user_status, created_at, last_sign_in_at; found columns: name, mail)"),
        ("cell.csv", format!("{head}\nu1,organization_owner,a@b,enabled,2024-01-01 00:00:00,last week,\n").into_bytes(), "error: cell.csv: CSV line 2, column 6 (`last_sign_in_at`): invalid timestamp \"last week\": expected RFC 3339"),
        ("crlf.csv", format!("{head}\r\nu0,organization_owner,a@b,enabled,2024-01-01T00:00:00Z,,\r\nu1,organization_owner,a@b,enabled,2024-01-01T00:00:00Z,soon,\r\n").into_bytes(), "error: crlf.csv: CSV line 3, column 6 (`last_sign_in_at`): invalid timestamp \"soon\""),
        ("short.csv", format!("{head}\r\nu1,organization_owner\r\n").into_bytes(), "error: short.csv: CSV line 2: this row has 2 fields but the header has 7\n"),
        ("latin1.csv", [format!("{head}\nu1,organization_owner,").as_bytes(), b"J\xfcrgen@b,enabled,2024-01-01T00:00:00Z,,\n"].concat(), "error: latin1.csv: CSV line 2: field 3 is not valid UTF-8; expected UTF-8 text\n"),
        ("required.csv", format!("{head}\nu1,organization_owner,,enabled,2024-01-01T00:00:00Z,,\n").into_bytes(), "error: required.csv: CSV line 2, column 3 (`email`): `email` is empty; a value is required\n"),
    ];
    for (name, content, want) in cases {
        let (code, stderr) = audit_bytes(name, &content);
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(
            stderr.starts_with(want),
            "{name}:\n got: {stderr}\nwant: {want}"
        );
    }
}

#[test]
fn unknown_values_and_duplicate_ids_are_warnings() {
    let body = br#"{"data": [
      {"id": "u1", "record_type": "organization_admin", "email": "a@acme.example", "user_status": "suspended",
       "created_at": "2024-01-01T00:00:00Z", "last_sign_in_at": null, "groups": []},
      {"id": "u1", "record_type": "organization_owner", "email": "b@acme.example", "user_status": "enabled",
       "created_at": "2024-01-01T00:00:00Z", "last_sign_in_at": "2026-11-01T00:00:00Z", "groups": []}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    std::fs::write(&path, body).unwrap();
    let p = path.to_str().unwrap();
    let r = run(&["audit", "-i", p, "--now", NOW, "-f", "json"]);
    assert_eq!(r.code, 0);
    let stderr = r.stderr.replace(p, "r.json");
    assert_eq!(
        stderr,
        "warning[unknown-record-type]: r.json: user record 0 (id u1): unknown record_type \"organization_admin\" (known: organization_owner, organization_sub_user); kept as it is\n\
         warning[unknown-user-status]: r.json: user record 0 (id u1): unknown user_status \"suspended\" (known: enabled, disabled, blocked); kept as it is, and not active\n\
         warning[duplicate-user-id]: r.json: user record 1 has the id u1 of user record 0; both are audited\n"
    );
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let codes: Vec<&str> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "unknown-record-type",
            "unknown-user-status",
            "duplicate-user-id"
        ]
    );
    assert_eq!(doc["summary"]["users"], 2);
    let quiet = run(&["audit", "-i", p, "--now", NOW, "-q"]);
    assert!(quiet.stderr.is_empty());
}

#[test]
fn rule_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "id: my-rule\ntitle: T\nseverity: hgih\nscope: user\nwhen:\n  all:\n    - {field: emial, equals: x}\n    - {field: created_at, older_than_days: {param: days}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        "rules:\n  - id: sso-bypass\n    title: Mine\n    severity: low\n    scope: user\n    when: {field: email, matches: '[a-'}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a rule").unwrap();
    let d = dir.path().to_str().unwrap();
    let r = audit_example("acme-users-groups.json", &["--rules", d]);
    assert_eq!(r.code, 2);
    let stderr = r.stderr.replace(&format!("{d}/"), "");
    assert_eq!(
        stderr,
        "error: a.yaml:3:11: unknown severity `hgih`; expected one of critical, high, medium, low, info\n\
         error: a.yaml:7:15: unknown field `emial`\n  help: did you mean `email`? user fields: id, email, email_normalized, email_domain, record_type, user_status, active, is_owner, organization_user_bypasses_sso, created_at, last_sign_in_at, groups, group_ids, group_count, is_new_user, previous_user_status, sso_bypass_turned_on, became_owner, groups_added, group_ids_added, groups_removed, group_ids_removed\n\
         error: a.yaml:8:52: undefined param `days`\n  help: this rule declares no `params`\n\
         error: b.yml:2:5: duplicate rule id `sso-bypass` (first defined at builtin:sso-bypass.yaml:1:1)\n  help: built-in rule ids are reserved; give your rule another id, or run with --no-builtin\n\
         error: b.yml:6:35: invalid regular expression \"[a-\": unclosed character class\n"
    );
    let v = run(&["rules", "validate", d]);
    assert_eq!(v.code, 2);
    assert!(v.stderr.contains("a.yaml:7:15: unknown field `emial`"));
    assert!(
        v.stderr
            .contains("b.yml:2:5: duplicate rule id `sso-bypass`"),
        "validate refuses what audit refuses"
    );
}

#[test]
fn custom_rules_with_params_and_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("eng.yaml");
    std::fs::write(
        &rule,
        r#"
id: engineering-bypass
title: Engineer bypasses SSO
severity: critical
scope: user
params: { team: Engineering }
when:
  all:
    - { field: groups, contains: { param: team } }
    - { field: organization_user_bypasses_sso, equals: true }
message: "{{ user.email }} is in {{ params.team }} and bypasses SSO"
"#,
    )
    .unwrap();
    let doc = audit_json(
        &example("acme-users-groups.json"),
        &["--no-builtin", "--rules", rule.to_str().unwrap()],
    );
    let msgs: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        msgs,
        ["carol@acme.example is in Engineering and bypasses SSO"]
    );
    assert_eq!(
        doc["findings"][0]["evidence"]["groups"],
        serde_json::json!(["Engineering"])
    );
    let doc = audit_json(
        &example("acme-users-groups.json"),
        &[
            "--no-builtin",
            "--rules",
            rule.to_str().unwrap(),
            "--set",
            "engineering-bypass.team=Admins",
        ],
    );
    assert_eq!(doc["findings"][0]["subject"]["email"], "bob@acme.example");
    let r = audit_example(
        "acme-users-groups.json",
        &["--set", "stale-sign-in.stale_after_days=[1]"],
    );
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr, "error: builtin:stale-sign-in.yaml:22:59: `older_than_days` on `last_sign_in_at` expects a number of days (>= 0); found a list (param `stale_after_days` is [1])\n");
}

#[test]
fn rules_commands() {
    let list = run(&["rules", "list"]);
    assert_eq!(list.code, 0);
    assert!(list.stdout.starts_with("ID "));
    assert!(list.stdout.contains("\nowner-sso-bypass              critical  user          yes      Active owner may bypass SSO\n"), "{}", list.stdout);
    assert_eq!(list.stdout.lines().count(), 16);

    let show = run(&[
        "rules",
        "show",
        "never-signed-in",
        "--set",
        "never-signed-in.grace_days=14",
    ]);
    assert_eq!(show.code, 0);
    assert!(
        show.stdout.contains("  grace_days = 14 (default: 30)\n"),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("  - PCI DSS v4.0 8.2.6\n"));
    assert!(show
        .stdout
        .contains("    created_at older_than_days {param: grace_days}\n"));

    let missing = run(&["rules", "show", "stale-signin"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .starts_with("error: unknown rule `stale-signin`"),
        "{}",
        missing.stderr
    );

    // The built-in pack's own files are the built-in rules: checked without them.
    let ok = run(&[
        "rules",
        "validate",
        "--no-builtin",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("rules")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.starts_with("15 rules valid in "));

    let reference = run(&["rules", "reference"]);
    assert_eq!(
        reference.stdout,
        orgaudit::rules::registry::reference_markdown()
    );
}

#[test]
fn the_rule_reference_in_docs_is_current() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md"))
        .unwrap();
    assert!(
        docs.contains(&orgaudit::rules::registry::reference_markdown()),
        "docs/rules.md is out of date: paste the output of `orgaudit rules reference` into it"
    );
}

#[test]
fn expr_conditions_and_their_runtime_errors() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("expr.yaml");
    std::fs::write(
        &rule,
        "id: many-temp-groups\ntitle: T\nseverity: low\nscope: user\nwhen:\n  expr: \"user.groups | select('startingwith', 'Eng') | list | length > 0 and user.active\"\nmessage: '{{ user.email }}'\n---\nid: broken\ntitle: B\nseverity: low\nscope: user\nenabled: false\nwhen: {expr: 'user.email + 1'}\n",
    )
    .unwrap();
    let r = rule.to_str().unwrap();
    let doc = audit_json(
        &example("acme-users-groups.json"),
        &["--no-builtin", "--rules", r],
    );
    let emails: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "carol@acme.example",
            "grace@acme.example",
            "Judy@ACME.example",
            "niaj@acme.example"
        ]
    );
    let failed = audit_example(
        "acme-users-groups.json",
        &["--no-builtin", "--rules", r, "--enable", "broken"],
    );
    assert_eq!(failed.code, 2);
    assert!(
        failed.stderr.starts_with("error: rule `broken` (")
            && failed.stderr.contains(
                "`expr` failed for user 7c2d9e10-0000-4a6b-8c3d-000000000001: invalid operation"
            ),
        "{}",
        failed.stderr
    );
}

#[test]
fn the_example_configuration_is_valid() {
    let cfg = orgaudit::config::load(&example("orgaudit.yaml")).unwrap();
    assert_eq!(cfg.organizations.len(), 2);
    assert_eq!(cfg.telnyx.concurrency, Some(4));
}

#[test]
fn input_and_fetch_exclude_each_other() {
    let r = run(&["audit"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: nothing to audit: give --input PATH"),
        "{}",
        r.stderr
    );
    let r = run(&["audit", "--input", "x.json", "--fetch"]);
    assert_eq!(r.code, 2);
    let r = audit_example("no-active-owner.json", &["--save-report", "x"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr, "error: --save-report goes with --fetch\n");
}

#[test]
fn config_check_prints_effective_settings_without_secrets() {
    let cfg = example("orgaudit.yaml");
    let out = Command::cargo_bin("orgaudit")
        .unwrap()
        .args(["config", "check", "--config", cfg.to_str().unwrap()])
        .env("TELNYX_API_KEY_ACME_PROD", "KEY-VALUE-NEVER-SHOWN")
        .env_remove("TELNYX_API_KEY_ACME_STAGING")
        .env("ORGAUDIT_SMTP_PASSWORD", "SMTP-VALUE-NEVER-SHOWN")
        .output()
        .unwrap();
    // The staging key's variable is unset: a problem, named, after the settings.
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("NEVER-SHOWN"), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: organization acme-staging: its API key variable TELNYX_API_KEY_ACME_STAGING is not set\n\
             orgaudit: 1 problem in {}\n",
            cfg.display()
        )
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("NEVER-SHOWN"), "{text}");
    assert!(
        text.contains("  organization acme-prod: key in TELNYX_API_KEY_ACME_PROD (set)\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "  organization acme-staging: key in TELNYX_API_KEY_ACME_STAGING (NOT SET)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("password in ORGAUDIT_SMTP_PASSWORD (set)"),
        "{text}"
    );
    // The remediation limits it sets, and every default with what changes it.
    assert!(
        text.contains("remediate: at most 5 removals per apply, plans at most 7 days old\n"),
        "{text}"
    );
    for d in orgaudit::defaults::TABLE {
        assert!(
            text.contains(&format!("\n  {}: {} (", d.name, (d.value)())),
            "{} is not listed:\n{text}",
            d.name
        );
    }
    assert!(text.contains(
        "  users removed by one remediate apply at most: 5 (--max, remediate.max_removals)\n"
    ));
    assert!(
        text.contains("  param stale-sign-in.stale_after_days = 60\n"),
        "{text}"
    );
    assert!(text.contains("fail_on: high\n"), "{text}");
}

#[test]
fn config_errors_name_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("orgaudit.yaml");
    std::fs::write(
        &p,
        "rules:\n  disabel: [x]\nemail:\n  to: [a@b.example]\n  smtp_url: smtp://u:hunter2@mail.example\nfail_on: severe\n",
    )
    .unwrap();
    let r = run(&["config", "check", "--config", p.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    let stderr = r.stderr.replace(&format!("{}/", dir.path().display()), "");
    assert!(!stderr.contains("hunter2"));
    assert_eq!(
        stderr,
        "error: orgaudit.yaml:2:3: unknown key `disabel` in `rules`\n  help: did you mean `disable`? valid keys: builtin, paths, disable, enable, params, severity\n\
         error: orgaudit.yaml:5:13: `email.smtp_url` holds a password; keep secrets out of this file: name the variable that holds it with `password_env`\n\
         error: orgaudit.yaml:6:10: `fail_on` must be one of critical, high, medium, low, info, none; found \"severe\"\n"
    );
}

#[test]
fn the_configuration_drives_an_audit_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("orgaudit.yaml");
    std::fs::write(
        &p,
        format!(
            "input: {}\nrules:\n  disable: [owner-sso-bypass]\n  params: {{stale-sign-in.stale_after_days: 300}}\nfail_on: high\noutputs:\n  - {{format: csv, path: out.csv}}\n",
            example("acme-users-groups.json").display()
        ),
    )
    .unwrap();
    let c = p.to_str().unwrap();
    let r = run(&["audit", "--config", c, "--now", NOW, "-f", "json"]);
    assert_eq!(r.code, 1, "sso-bypass is high: {}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let ids: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"owner-sso-bypass"));
    assert_eq!(
        ids.iter().filter(|i| **i == "stale-sign-in").count(),
        1,
        "only the 415-day one is over 300"
    );
    assert!(
        dir.path().join("out.csv").is_file(),
        "outputs are relative to the configuration"
    );
    let r = run(&[
        "audit",
        "--config",
        c,
        "--now",
        NOW,
        "--fail-on",
        "critical",
        "--set",
        "stale-sign-in.stale_after_days=90",
        "-f",
        "json",
    ]);
    assert_eq!(r.code, 0, "the flag overrides fail_on");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule_id"] == "stale-sign-in")
            .count(),
        2
    );
}

/// A report of `n` users, most of whom make some built-in rule fire.
fn many_users(n: usize) -> Vec<u8> {
    let users: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "id": format!("u{i:05}"), "record_type": "organization_sub_user",
                "email": format!("user{i}@acme.example"),
                "user_status": if i % 3 == 0 { "disabled" } else { "enabled" },
                "organization_user_bypasses_sso": i % 2 == 0,
                "created_at": "2024-01-01T00:00:00Z", "last_sign_in_at": null,
                "groups": [{"id": "g1", "name": "Eng"}],
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "data": users })).unwrap()
}

/// `| head` closes standard output early: in every format that is not an error, the exit status
/// stays the gate's, and the other outputs are written.
#[test]
fn a_reader_that_goes_away_is_not_an_error() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many.json");
    std::fs::write(&input, many_users(3000)).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("orgaudit");
    for format in ["html", "csv", "junit", "text", "json", "github", "markdown"] {
        for (gate, want) in [(None, 0), (Some("high"), 1)] {
            let side = dir.path().join(format!("side-{format}-{want}.json"));
            let mut cmd = std::process::Command::new(&bin);
            cmd.args(["audit", "-i", input.to_str().unwrap(), "--now", common::NOW])
                .args(["-f", format, "--report"])
                .arg(format!("json={}", side.display()));
            if let Some(g) = gate {
                cmd.args(["--fail-on", g]);
            }
            let mut child = cmd
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut head = [0u8; 10];
            child.stdout.take().unwrap().read_exact(&mut head).unwrap();
            // The pipe's reading end is closed here, with most of the output unread.
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(want), "{format}: {stderr}");
            assert!(!stderr.contains("Broken pipe"), "{format}: {stderr}");
            assert!(!stderr.contains("error"), "{format}: {stderr}");
            assert!(side.is_file(), "{format}: the other output is written");
        }
    }
}

/// A failed write is an I/O error naming the file, whatever the format.
#[test]
fn a_failed_write_is_an_io_error_in_every_format() {
    for format in ["html", "csv", "junit", "text", "json", "github", "markdown"] {
        let r = audit_example("acme-users-groups.json", &["-f", format, "-o", "/dev/full"]);
        assert_eq!(r.code, 2, "{format}");
        assert!(
            r.stderr
                .starts_with("error: /dev/full: cannot write: No space left on device"),
            "{format}: {}",
            r.stderr
        );
    }
}

/// Messages written as YAML block scalars read as minijinja renders them (no trailing newline),
/// and an `expr` reads `rule` and `subject` as the validator says it can.
#[test]
fn block_scalar_messages_and_the_expr_context() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("r.yaml");
    std::fs::write(
        &rule,
        "id: sev\ntitle: T\nseverity: low\nscope: user\nwhen: {expr: \"rule.severity == 'low' and subject.kind == 'user' and subject.email == user.email and user.organization_user_bypasses_sso\"}\nmessage: |\n  {{ user.email }} bypasses SSO\n",
    )
    .unwrap();
    let r = rule.to_str().unwrap();
    let v = run(&["rules", "validate", r]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    let doc = audit_json(
        &example("acme-users-groups.json"),
        &["--no-builtin", "--rules", r],
    );
    let messages: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "bob@acme.example bypasses SSO",
            "carol@acme.example bypasses SSO"
        ]
    );
}

/// `--set RULE.severity=` and `rules.severity` in the configuration change a rule's severity
/// (recorded with the original), never a fingerprint; `severity` and `enabled` are reserved.
#[test]
fn severity_overrides() {
    let input = example("acme-users-groups.json");
    let plain = audit_json(&input, &[]);
    let raised = audit_json(&input, &["--set", "sso-bypass.severity=critical"]);
    let pick = |doc: &Value| -> Vec<(String, String, Value)> {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule_id"] == "sso-bypass")
            .map(|f| {
                (
                    f["severity"].as_str().unwrap().to_string(),
                    f["fingerprint"].as_str().unwrap().to_string(),
                    f["default_severity"].clone(),
                )
            })
            .collect()
    };
    let (before, after) = (pick(&plain), pick(&raised));
    assert!(!before.is_empty());
    for ((s0, fp0, d0), (s1, fp1, d1)) in before.iter().zip(&after) {
        assert_eq!((s0.as_str(), d0), ("high", &Value::Null));
        assert_eq!((s1.as_str(), d1.as_str()), ("critical", Some("high")));
        assert_eq!(fp0, fp1, "fingerprints never depend on severity");
    }
    // Critical findings come first: the raised rule is among them.
    assert_eq!(raised["findings"][1]["rule_id"], "sso-bypass");
    assert_eq!(raised["summary"]["by_severity"]["critical"], 2);
    let rule = raised["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "sso-bypass")
        .unwrap();
    assert_eq!(
        (&rule["severity"], &rule["default_severity"]),
        (&Value::from("critical"), &Value::from("high"))
    );
    // From the configuration, and `enabled` the same way.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "rules:\n  severity: {sso-bypass: low}\n  params: {stale-sign-in.enabled: false}\n",
    )
    .unwrap();
    let doc = audit_json(&input, &["--config", cfg.to_str().unwrap()]);
    assert!(pick(&doc).iter().all(|(s, _, d)| s == "low" && d == "high"));
    assert!(doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["id"] != "stale-sign-in"));
    // Bad values and reserved names.
    let r = audit_example(
        "acme-users-groups.json",
        &["--set", "sso-bypass.severity=urgent"],
    );
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: `sso-bypass.severity` must be one of critical, high, medium, low, info; found \"urgent\"\n"
    );
    let rule = dir.path().join("r.yaml");
    std::fs::write(
        &rule,
        "id: a\ntitle: A\nseverity: low\nscope: user\nparams: {severity: 3}\nwhen: {field: active, equals: true}\n",
    )
    .unwrap();
    let v = run(&["rules", "validate", rule.to_str().unwrap()]);
    assert_eq!(v.code, 2);
    assert!(
        v.stderr.contains("r.yaml:5:10: `severity` is a reserved name, not a parameter\n  help: a rule's severity is set with `severity:` in the rule, or overridden with `--set RULE_ID.severity=VALUE`"),
        "{}",
        v.stderr
    );
}

/// `rules validate` reports every problem of every rule in one pass: message templates (unknown
/// filters, tests and variables, with a did-you-mean) even in rules with other errors, and ids
/// that collide with a built-in rule, as an audit would.
#[test]
fn validate_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.yaml");
    std::fs::write(
        &p,
        "- id: a\n  title: A\n  severity: low\n  scope: user\n  when: {field: emial, equals: x}\n  message: \"{{ user.email | joinn(', ') }} {{ usr.email }} {{ 'a | b' }}\"\n\
         - id: sso-bypass\n  title: B\n  severity: low\n  scope: user\n  when: {field: active, equals: true}\n\
         - id: c\n  title: C\n  severity: low\n  scope: user\n  when: {field: email, matches: \"([\"}\n  message: \"{{ user.emial }} {% if user.groups is itrable %}x{% endif %}\"\n",
    )
    .unwrap();
    let r = run(&["rules", "validate", p.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    let stderr = r.stderr.replace(&format!("{}/", dir.path().display()), "");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(
        lines,
        [
            "error: r.yaml:5:17: unknown field `emial`",
            "error: r.yaml:6:12: the message template uses the filter `joinn`, which does not exist",
            "error: r.yaml:6:12: the message template uses `usr.email`, which this rule does not define",
            "error: r.yaml:7:3: duplicate rule id `sso-bypass` (first defined at builtin:sso-bypass.yaml:1:1)",
            "error: r.yaml:16:33: invalid regular expression \"([\": unclosed character class",
            "error: r.yaml:17:12: the message template uses the test `itrable`, which does not exist",
            "error: r.yaml:17:12: the message template uses `user.emial`, which this rule does not define",
        ],
        "{stderr}"
    );
    assert!(
        stderr.contains("  help: did you mean `join`? filters: abs, attr,"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  help: did you mean `iterable`? tests: "),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "  help: did you mean `user`? available: user, params, rule, subject, evidence"
        ),
        "{stderr}"
    );
    // With --no-builtin, as `audit --no-builtin`, the built-in ids are free.
    let r = run(&["rules", "validate", "--no-builtin", p.to_str().unwrap()]);
    assert!(!r.stderr.contains("sso-bypass"), "{}", r.stderr);
}

/// When several things fail in one run, every output is still written, each failure gets its
/// line, and the exit status is the worst: 2 (input, output) over 3 (network, SMTP) over 1 (a
/// gate).
#[test]
fn failures_are_collected_and_ranked() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok.json");
    let report = format!("json={}", ok.display());
    // A closed port: the SMTP delivery fails at once (exit 3).
    let email = [
        "--email-to",
        "a@acme.example",
        "--email-from",
        "b@acme.example",
        "--smtp-url",
        "smtp://127.0.0.1:1",
        "--smtp-retries",
        "0",
    ];
    let mut args = vec!["--fail-on", "high", "-o", "/dev/null", "--report", &report];
    args.extend(email);
    let r = audit_example("acme-users-groups.json", &args);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(ok.is_file(), "the outputs are written");
    assert!(
        r.stderr
            .contains("error: email not sent via smtp://127.0.0.1:1"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("orgaudit: 2 unwaived findings at or above high"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(&ok).unwrap();
    args.extend(["--report", "html=/dev/full"]);
    let r = audit_example("acme-users-groups.json", &args);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(ok.is_file(), "the outputs are written");
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 2, "{}", r.stderr);
    assert!(
        errors[0].starts_with("error: /dev/full: cannot write: "),
        "{}",
        r.stderr
    );
    // The gate alone is 1.
    let r = audit_example(
        "acme-users-groups.json",
        &["--fail-on", "high", "-o", "/dev/null"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
}

/// Every rule has an outcome: failed, passed, not evaluated (with the reason), waived, or error;
/// a rule in error loses its findings but not the others', and the outputs are written.
#[test]
fn rule_outcomes() {
    let input = example("acme-users-groups.json");
    let outcome = |doc: &Value, id: &str| -> (String, Value, Value) {
        let r = doc["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id}"));
        (
            r["outcome"].as_str().unwrap().to_string(),
            r["outcome_reason"].clone(),
            r["evaluated_subjects"].clone(),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let waivers = dir.path().join("w.yaml");
    std::fs::write(
        &waivers,
        "waivers:\n  - {rule: stale-sign-in, all_subjects: true, reason: r, approved_by: a, expires: 2026-12-31}\n",
    )
    .unwrap();
    let doc = audit_json(&input, &["--waivers", waivers.to_str().unwrap()]);
    assert_eq!(
        outcome(&doc, "external-email-domain"),
        (
            "not_evaluated".into(),
            Value::from("the parameter `allowed_domains` it requires is empty"),
            Value::from(0)
        )
    );
    assert_eq!(outcome(&doc, "sso-bypass").0, "failed");
    assert_eq!(outcome(&doc, "sso-bypass").2, Value::from(14));
    assert_eq!(outcome(&doc, "stale-sign-in").0, "waived");
    assert_eq!(outcome(&doc, "no-active-owner").0, "passed");
    assert_eq!(outcome(&doc, "no-active-owner").2, Value::from(1));
    // An `expr` that fails: that rule is `error`, the others keep their findings.
    let rule = dir.path().join("r.yaml");
    std::fs::write(
        &rule,
        "id: broken\ntitle: B\nseverity: low\nscope: user\nwhen: {expr: 'user.email + 1'}\n",
    )
    .unwrap();
    let out = dir.path().join("out.json");
    let r = audit_example(
        "acme-users-groups.json",
        &[
            "--rules",
            rule.to_str().unwrap(),
            "-f",
            "json",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("error: rule `broken` ("),
        "{}",
        r.stderr
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let (status, reason, _) = outcome(&doc, "broken");
    assert_eq!(status, "error");
    assert!(
        reason
            .as_str()
            .unwrap()
            .starts_with("`expr` failed for user 7c2d9e10-0000-4a6b-8c3d-000000000001: "),
        "{reason}"
    );
    assert_eq!(doc["summary"]["findings"], 13);
    assert!(doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["rule_id"] != "broken"));
    // `requires` names declared parameters.
    std::fs::write(
        &rule,
        "id: r\ntitle: R\nseverity: low\nscope: user\nrequires: [params.nope, allowed]\nwhen: {field: active, equals: true}\n",
    )
    .unwrap();
    let v = run(&["rules", "validate", rule.to_str().unwrap()]);
    assert_eq!(v.code, 2);
    let stderr = v.stderr.replace(&format!("{}/", dir.path().display()), "");
    assert_eq!(
        stderr,
        "error: r.yaml:5:12: undefined param `nope`\n  help: this rule declares no `params`\n\
         error: r.yaml:5:25: `requires` takes parameters; found `allowed`\n  help: write `params.NAME`: the rule is not evaluated while that parameter is empty\n"
    );
}

/// `count` conditions at group and organization scope: how many members or users match a user
/// condition, with `matching_count` and the first matching users as evidence.
#[test]
fn aggregate_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("agg.yaml");
    std::fs::write(
        &rules,
        r#"- id: many-sso-bypass
  title: Too many active users may bypass SSO
  severity: high
  scope: organization
  params: { max: 2 }
  when:
    count:
      of: users
      where: { all: [ {field: active, equals: true}, {field: organization_user_bypasses_sso, equals: true} ] }
      gt: { param: max }
  message: "{{ evidence.matching_count }} active users may bypass SSO (limit {{ params.max }})"
- id: big-admin-group
  title: Admin group with active members
  severity: medium
  scope: group
  when:
    all:
      - { field: name, matches: "(?i)admin" }
      - count: { of: members, where: {field: active, equals: true}, ge: 1 }
  message: "{{ group.name }}: {{ evidence.matching_count }} active members"
"#,
    )
    .unwrap();
    let r = rules.to_str().unwrap();
    let input = example("acme-users-groups.json");
    let doc = audit_json(&input, &["--no-builtin", "--rules", r]);
    let findings = doc["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["message"], "Admins: 2 active members");
    assert_eq!(findings[0]["evidence"]["matching_count"], 2);
    let emails: Vec<&str> = findings[0]["evidence"]["matching"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["alice@acme.example", "bob@acme.example"]);
    // A lower limit fires the organization rule; the configuration caps the list.
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "limits: {matching_subjects: 1}\n").unwrap();
    let doc = audit_json(
        &input,
        &[
            "--no-builtin",
            "--rules",
            r,
            "--set",
            "many-sso-bypass.max=1",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let org = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "many-sso-bypass")
        .unwrap();
    assert_eq!(org["message"], "2 active users may bypass SSO (limit 1)");
    assert_eq!(org["evidence"]["matching_count"], 2);
    assert_eq!(org["evidence"]["matching"].as_array().unwrap().len(), 1);
    // Mistakes are errors with the place.
    std::fs::write(
        &rules,
        "id: a\ntitle: A\nseverity: low\nscope: group\nwhen:\n  count: {of: users, where: {field: active, equals: true}, gt: 1, lt: 5}\n---\nid: b\ntitle: B\nseverity: low\nscope: user\nwhen: {count: {of: users, gt: 1}}\n",
    )
    .unwrap();
    let v = run(&["rules", "validate", "--no-builtin", r]);
    let stderr = v.stderr.replace(&format!("{}/", dir.path().display()), "");
    assert_eq!(
        stderr,
        "error: agg.yaml:6:15: a `count` in a group rule counts `members`; found `users`\n\
         error: agg.yaml:6:67: one comparison per `count`; `lt` is a second one\n\
         error: agg.yaml:12:8: `count` is for group, organization rules; this rule's scope is user\n"
    );
}

/// Strings from outside reach no reader as markup or control codes: a baseline's rule id, a
/// rule's title, a bidirectional override in an email, a URL in a group name.
#[test]
fn hostile_strings_are_shown_not_obeyed() {
    let dir = tempfile::tempdir().unwrap();
    let users = serde_json::json!({"data": [
        {"id": "u1", "record_type": "organization_sub_user",
         "email": "alice\u{202E}moc.live@acme.example", "user_status": "enabled",
         "organization_user_bypasses_sso": true,
         "created_at": "2024-01-01T00:00:00Z", "last_sign_in_at": "2026-11-01T00:00:00Z",
         "groups": [{"id": "g1", "name": "see https://evil.example now"}]},
    ]});
    let input = dir.path().join("r.json");
    std::fs::write(&input, users.to_string()).unwrap();
    let evil_id = "x`) <img src=x onerror=alert(1)> [click](https://evil.example) \u{1b}[31mred";
    let baseline = serde_json::json!({
        "schema_version": 1, "audited_at": "2026-11-01T00:00:00Z",
        "findings": [{"rule_id": evil_id, "severity": "high", "title": "t",
            "subject": {"kind": "user", "id": "u9", "email": null, "name": null},
            "message": "m", "evidence": {}, "fingerprint": "f", "waived": false}]
    });
    let base = dir.path().join("b.json");
    std::fs::write(&base, baseline.to_string()).unwrap();
    let rule = dir.path().join("t.yaml");
    std::fs::write(
        &rule,
        "id: t\ntitle: \"Title \\e[2J\\u202Ehidden\"\nseverity: low\nscope: user\nwhen: {field: groups, matches: evil}\nmessage: '{{ user.groups | join(\", \") }}'\n",
    )
    .unwrap();
    let args = |format: &str| {
        vec![
            "audit".to_string(),
            "-i".into(),
            input.display().to_string(),
            "--now".into(),
            common::NOW.into(),
            "--baseline".into(),
            base.display().to_string(),
            "--rules".into(),
            rule.display().to_string(),
            "-f".into(),
            format.into(),
        ]
    };
    let out = |format: &str| {
        let a = args(format);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let r = run(&a);
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        r.stdout
    };
    let text = out("text");
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(!text.contains('\u{202E}'), "{text}");
    assert!(text.contains("\\u{1b}[31mred"), "{text}");
    assert!(
        text.contains("alice\\u{202e}moc.live@acme.example"),
        "{text}"
    );
    assert!(text.contains("Title \\u{1b}[2J\\u{202e}hidden"), "{text}");
    let md = out("markdown");
    // The baseline's id is one code span (literal text), whatever backticks it holds.
    assert!(
        md.contains(
            "| ``x`) <img src=x onerror=alert(1)> [click](https://evil.example)  [31mred`` |"
        ),
        "{md}"
    );
    assert_eq!(md.matches("<img").count(), 1, "{md}");
    assert!(!md.contains('\u{1b}'), "{md}");
    assert!(!md.contains('\u{202E}') && md.contains("[U+202E]"), "{md}");
    assert!(md.contains("see https\\://evil.example now"), "{md}");
    let html = out("html");
    assert!(!html.contains("<img src=x"), "html");
    assert!(!html.contains('\u{202E}') && html.contains("[U+202E]"));
    let gh = out("github");
    assert!(!gh.contains('\u{202E}') && gh.contains("[U+202E]"), "{gh}");
}

/// `--templates DIR` sees only its own folder: no absolute paths, no `..`, no link out of it.
#[test]
fn templates_cannot_read_outside_their_folder() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("tpl");
    std::fs::create_dir(&tpl).unwrap();
    std::fs::write(dir.path().join("secret.txt"), "TOPSECRET-FILE").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), tpl.join("link.md")).unwrap();
    std::fs::write(tpl.join("part.md"), "PART-OK").unwrap();
    for include in [
        "/proc/self/environ",
        "../secret.txt",
        "link.md",
        "sub/../../secret.txt",
    ] {
        std::fs::write(
            tpl.join("report.md"),
            format!("{{% include \"part.md\" %}}{{% include \"{include}\" %}}"),
        )
        .unwrap();
        let r = common::run_with_env(
            &[
                "audit",
                "-i",
                example("acme-users-groups.json").to_str().unwrap(),
                "-f",
                "markdown",
                "--templates",
                tpl.to_str().unwrap(),
            ],
            &[("TELNYX_API_KEY", "KEY-TOPSECRET-ENV")],
        );
        assert_eq!(r.code, 2, "{include}: {}", r.stderr);
        assert!(!r.stdout.contains("TOPSECRET"), "{include}");
        assert!(!r.stderr.contains("TOPSECRET"), "{include}");
        assert!(
            r.stderr
                .contains("a template may only load templates inside the templates folder"),
            "{include}: {}",
            r.stderr
        );
    }
    // An include inside the folder still works.
    std::fs::write(tpl.join("report.md"), "{% include \"part.md\" %}").unwrap();
    let r = audit_example(
        "acme-users-groups.json",
        &["-f", "markdown", "--templates", tpl.to_str().unwrap()],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "PART-OK"));
}

/// A rule's remediation and references reach every human format, references with a `url:` as
/// links; a reference URL that is not a web address is refused.
#[test]
fn remediation_and_references_reach_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.yaml");
    let rule = |url: &str| {
        format!(
            "id: owners-bypass\ntitle: Owner may bypass SSO\nseverity: high\nscope: user\nremediation: >\n  Turn it off.\n  Then check again.\nreferences:\n  - {{ framework: ACME, control: AC-9, url: '{url}' }}\n  - {{ framework: ACME, control: AC-10 }}\nwhen: {{ field: organization_user_bypasses_sso, equals: true }}\nmessage: \"{{{{ user.email }}}} may bypass SSO\"\n"
        )
    };
    std::fs::write(&rules, rule("https://controls.acme.example/ac-9")).unwrap();
    let audit = |format: &str, extra: &[&str]| {
        let rules = ["--no-builtin", "--rules", rules.to_str().unwrap()];
        let r = example_as(format, &[&rules[..], extra].concat());
        assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
        r.stdout
    };
    let json: Value = serde_json::from_str(&audit("json", &[])).unwrap();
    let r = &json["rules"][0];
    assert_eq!(r["remediation"], "Turn it off. Then check again.");
    assert_eq!(r["frameworks"], serde_json::json!(["ACME"]));
    assert_eq!(
        r["references"][0]["url"],
        "https://controls.acme.example/ac-9"
    );
    assert!(r["references"][1].get("url").is_none());
    let html = audit("html", &[]);
    assert!(html.contains("<b>How to fix:</b> Turn it off. Then check again."));
    // (The HTML escaper writes `/` as `&#x2f;`, which a browser reads back.)
    assert!(html.contains(
        "<a class=\"tag\" href=\"https:&#x2f;&#x2f;controls.acme.example&#x2f;ac-9\" rel=\"noopener noreferrer\">ACME AC-9</a>"
    ), "{html}");
    let md = audit("markdown", &[]);
    assert!(md.contains("**Fix:** Turn it off. Then check again. _See [ACME AC-9](https://controls.acme.example/ac-9), ACME AC-10._"), "{md}");
    assert!(audit("github", &[]).contains("%0AFix: Turn it off. Then check again."));
    assert!(audit("junit", &[]).contains("Fix: Turn it off. Then check again."));
    let text = audit("text", &["-v"]);
    assert!(text.contains("    fix: Turn it off. Then check again.\n    see: ACME AC-9 <https://controls.acme.example/ac-9>; ACME AC-10\n"), "{text}");
    assert!(!audit("text", &[]).contains("fix:"), "only with -v");
    // A link in every report is a web address, never javascript: or a file.
    for bad in ["javascript:alert(1)", "file:///etc/passwd", "not a url"] {
        std::fs::write(&rules, rule(bad)).unwrap();
        let r = run(&["rules", "validate", rules.to_str().unwrap(), "--no-builtin"]);
        assert_eq!(r.code, 2, "{bad}");
        assert!(
            r.stderr
                .contains("a reference's `url` must be an https:// (or http://) address"),
            "{}",
            r.stderr
        );
    }
}

/// An organization's display name (`--org-name`, `name:`) heads every report and the email
/// subject; it is presentation only: fingerprints and the history's key do not change.
#[test]
fn the_display_name_heads_the_reports_and_changes_no_identity() {
    let dir = tempfile::tempdir().unwrap();
    let input = example("acme-users-groups.json");
    let db = dir.path().join("h.db");
    let eml = dir.path().join("m.eml");
    let base = [
        "audit",
        "-i",
        input.to_str().unwrap(),
        "--now",
        NOW,
        "--history",
        db.to_str().unwrap(),
    ];
    let plain = run(&[&base[..], &["-f", "json"]].concat());
    let plain: Value = serde_json::from_str(&plain.stdout).unwrap();
    assert!(plain.get("organization_name").is_none());
    let html = dir.path().join("r.html");
    let named = run(&[
        &base[..],
        &[
            "-f",
            "json",
            "--org-name",
            "Acme <Prod>",
            "--report",
            &format!("html={}", html.display()),
            "--email-to",
            "sec@acme.example",
            "--email-from",
            "orgaudit@acme.example",
            "--email-dry-run",
            eml.to_str().unwrap(),
        ],
    ]
    .concat());
    assert_eq!(named.code, 0, "{}", named.stderr);
    let named: Value = serde_json::from_str(&named.stdout).unwrap();
    assert_eq!(named["organization_name"], "Acme <Prod>");
    let fps = |d: &Value| -> Vec<Value> {
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["fingerprint"].clone())
            .collect()
    };
    assert_eq!(fps(&plain), fps(&named), "fingerprints do not change");
    assert_eq!(
        named["history"]["organization"], "default",
        "nor the history's key"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<h1>Access review: Acme &lt;Prod&gt;</h1>"),
        "escaped"
    );
    let mail = std::fs::read_to_string(&eml).unwrap();
    assert!(mail.contains("in Acme <Prod>"), "the subject names it");
    // From the configuration, and in Markdown and text.
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "name: Acme Staging\n").unwrap();
    let md = run(&[
        "audit",
        "-i",
        input.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "-f",
        "markdown",
    ]);
    assert!(
        md.stdout.starts_with("## orgaudit: Acme Staging, "),
        "{}",
        md.stdout
    );
    let text = run(&["audit", "-i", input.to_str().unwrap(), "--org-name", "Acme"]);
    assert!(text.stdout.contains(" audit of Acme: "), "{}", text.stdout);
}

/// Coverage: every rule is listed with its outcome; a rule that was not evaluated is never
/// shown as a pass, nor is a compliance control that only it supports.
#[test]
fn coverage_never_shows_a_rule_that_did_not_run_as_a_pass() {
    let audit = |format: &str| example_as(format, &[]).stdout;
    let html = audit("html");
    // ISO 27001 A.8.2 is supported only by new-owner, which needs a history.
    let row = html
        .lines()
        .find(|l| l.contains("<td class=\"mono\">A.8.2</td>"))
        .expect("the control's row");
    assert!(
        row.contains("data-control-status=\"not_evaluated\"") && row.contains("Not evaluated"),
        "{row}"
    );
    assert!(!row.contains("No findings"));
    assert!(html.contains("<tr data-outcome=\"not_evaluated\"><td><b>Active user with an email outside the allowed domains</b>"));
    assert!(html.contains("<small>the parameter `allowed_domains` it requires is empty</small>"));
    let text = audit("text");
    assert!(text.contains("NOT EVALUATED external-email-domain: the parameter `allowed_domains` it requires is empty"), "{text}");
    assert!(
        text.contains("| 14 rules (9 failed, 1 passed, 4 not evaluated) over"),
        "{text}"
    );
    let md = audit("markdown");
    assert!(
        md.contains(
            "<details><summary>Coverage: 14 rules, 9 failed, 1 passed, 4 not evaluated</summary>"
        ),
        "{md}"
    );
    assert!(md.contains("| `no-active-owner` | passed | 0 |  |"), "{md}");
}

/// JUnit and GitHub annotations follow the run's gate: JUnit fails a rule only for findings that
/// trip `--fail-on` (the rest are skipped) and passes when the gate passes; annotations are
/// errors at or above the threshold, warnings one level below, notices otherwise.
#[test]
fn junit_and_github_follow_the_gate() {
    let audit = |format: &str, gate: &[&str]| example_as(format, gate).stdout;
    let junit = audit("junit", &["--fail-on", "high"]);
    assert!(
        junit.contains("<testsuites name=\"orgaudit\" tests=\"14\" failures=\"2\""),
        "{junit}"
    );
    let suite = |id: &str| {
        junit
            .lines()
            .find(|l| l.contains(&format!("<testsuite name=\"{id}\"")))
            .unwrap()
            .to_string()
    };
    assert!(suite("owner-sso-bypass").contains("failures=\"1\" errors=\"0\" skipped=\"0\""));
    assert!(suite("stale-sign-in").contains("failures=\"0\" errors=\"0\" skipped=\"1\""));
    assert!(
        junit.contains("<skipped message=\"2 findings below the gate (high and above fail)\"/>"),
        "{junit}"
    );
    // The gate passes: no failure at all.
    let junit = audit("junit", &["--fail-on", "none"]);
    assert!(
        junit.contains("failures=\"9\""),
        "without a gate, every rule with unwaived findings fails: {junit}"
    );
    let level = |out: &str, rule: &str| {
        out.lines()
            .find(|l| l.contains(&format!("title={rule} (")))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .unwrap()
    };
    let gh = audit("github", &["--fail-on", "critical"]);
    assert_eq!(level(&gh, "owner-sso-bypass"), "::error");
    assert_eq!(level(&gh, "sso-bypass"), "::warning", "one level below");
    assert_eq!(level(&gh, "stale-sign-in"), "::notice");
    let gh = audit("github", &[]);
    assert_eq!(
        level(&gh, "sso-bypass"),
        "::error",
        "without a gate, by severity"
    );
    assert_eq!(level(&gh, "stale-sign-in"), "::warning");
}

/// The executive summary at the top of text, HTML, Markdown and the email: the gate's verdict,
/// unwaived counts by severity (waived apart), the rules with most findings, and the waivers
/// that expire soon.
#[test]
fn every_report_opens_with_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let waivers = dir.path().join("w.yaml");
    std::fs::write(
        &waivers,
        "waivers:\n  - {rule: sso-bypass, subject: carol@acme.example, reason: break-glass, approved_by: ciso, expires: 2026-12-05}\n",
    )
    .unwrap();
    let eml = dir.path().join("m.eml");
    let audit = |format: &str, extra: &[&str]| {
        let waived = ["--fail-on", "high", "--waivers", waivers.to_str().unwrap()];
        let r = example_as(format, &[&waived[..], extra].concat());
        assert_eq!(r.code, 1, "{}", r.stderr);
        r.stdout
    };
    let json: Value = serde_json::from_str(&audit("json", &[])).unwrap();
    assert_eq!(
        json["summary"]["by_severity"]["high"], 1,
        "unchanged: every finding"
    );
    assert_eq!(json["summary"]["unwaived_by_severity"]["high"], 0);
    let text = audit("text", &[]);
    let top: Vec<&str> = text.lines().skip(1).take(3).collect();
    assert_eq!(
        top,
        [
            "GATE FAILED: 1 unwaived finding at or above high",
            "most findings: disabled-user-in-groups (2), duplicate-email (2), stale-sign-in (2)",
            "waiver sso-bypass for carol@acme.example expires 2026-12-05 (in 6 days, approved by ciso)"
        ]
    );
    let html = audit("html", &[]);
    assert!(
        html.contains(
            "data-verdict=\"fail\"><b>Gate failed</b>: 1 unwaived finding at or above high."
        ),
        "{html}"
    );
    assert!(
        html.contains("data-severity-count=\"high\">0<"),
        "waived findings are not in the bars"
    );
    assert!(html.contains("<b>Waivers expiring soon:</b> <code>sso-bypass</code> for carol@acme.example on 2026-12-05 (in 6 days"));
    let md = audit("markdown", &[]);
    assert!(md.contains("**Gate failed**: 1 unwaived finding at or above high."));
    assert!(
        md.contains("Most findings: Disabled or blocked user still in groups (2)"),
        "{md}"
    );
    audit(
        "text",
        &[
            "--email-to",
            "a@acme.example",
            "--email-from",
            "o@acme.example",
            "--email-dry-run",
            eml.to_str().unwrap(),
        ],
    );
    let mail = std::fs::read_to_string(&eml).unwrap();
    assert!(
        mail.contains("GATE FAILED: 1 unwaived finding at or above high."),
        "{mail}"
    );
    // --waiver-warn-days narrows the list.
    let text = audit("text", &["--waiver-warn-days", "3"]);
    assert!(!text.contains("waiver sso-bypass"), "{text}");
}

/// Outputs: folders created, the format from the extension, names in any case, appends to the
/// step summary and with `FORMAT+=PATH`.
#[test]
fn outputs_infer_their_format_create_folders_and_append() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = example("acme-users-groups.json");
    let input = input.to_str().unwrap();
    let html = d.join("reports/weekly/review.HTML");
    let sarif = d.join("out/findings.sarif");
    let r = run(&[
        "audit",
        "-i",
        input,
        "--now",
        NOW,
        "-o",
        html.to_str().unwrap(),
        "--report",
        sarif.to_str().unwrap(),
        "--report",
        &format!("JSON={}", d.join("f.json").display()),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .starts_with("<!doctype html>"));
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(s["version"], "2.1.0");
    assert!(d.join("f.json").is_file());

    // A summary file other steps write too: appended to, in one write.
    let summary = d.join("step_summary.md");
    std::fs::write(&summary, "# Earlier step\n").unwrap();
    let mut cmd = Command::cargo_bin("orgaudit").unwrap();
    let out = cmd
        .env_remove("ORGAUDIT_HISTORY")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args([
            "audit",
            "-i",
            input,
            "--now",
            NOW,
            "-f",
            "json",
            "-o",
            "/dev/null",
        ])
        .arg("--report")
        .arg(format!("markdown={}", summary.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.starts_with("# Earlier step\n## orgaudit:"), "{text}");
    // `FORMAT+=PATH` appends anywhere.
    let r = run(&[
        "audit",
        "-i",
        input,
        "--now",
        NOW,
        "-f",
        "json",
        "-o",
        "/dev/null",
        "--report",
        &format!("csv+={}", summary.display()),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let again = std::fs::read_to_string(&summary).unwrap();
    assert!(again.starts_with(&text) && again[text.len()..].starts_with("rule_id,severity"));

    // A format that disagrees with the extension is written, with a warning.
    let r = run(&[
        "audit",
        "-i",
        input,
        "--now",
        NOW,
        "-f",
        "json",
        "-o",
        d.join("x.html").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0);
    assert!(
        r.stderr.contains("warning: writing json to"),
        "{}",
        r.stderr
    );
    assert!(std::fs::read_to_string(d.join("x.html"))
        .unwrap()
        .starts_with('{'));
    // An extension that names no format, without FORMAT=: exit 2.
    let r = run(&["audit", "-i", input, "--now", NOW, "--report", "out.weird"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot tell the format of `out.weird`"),
        "{}",
        r.stderr
    );
    // A folder that cannot be created is named.
    std::fs::write(d.join("plain"), "").unwrap();
    let r = run(&[
        "audit",
        "-i",
        input,
        "--now",
        NOW,
        "-o",
        d.join("plain/sub/r.txt").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot create the folder"),
        "{}",
        r.stderr
    );
}

/// Expired waivers are warnings of the run in GitHub's format.
#[test]
fn github_format_warns_of_expired_waivers() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.yaml");
    std::fs::write(
        &w,
        "waivers:\n  - { rule: sso-bypass, subject: carol@acme.example, reason: old, approved_by: a@acme.example, expires: 2026-01-01 }\n",
    )
    .unwrap();
    let input = example("acme-users-groups.json");
    let r = run(&[
        "audit",
        "-i",
        input.to_str().unwrap(),
        "--now",
        NOW,
        "-f",
        "github",
        "--waivers",
        w.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.lines().any(|l| l
            .starts_with("::warning title=orgaudit%3A expired-waiver::waiver at ")
            && l.contains("expired on 2026-01-01")),
        "{}",
        r.stdout
    );
}

/// The committed man page is what `orgaudit man` prints: regenerate it with
/// `cargo run -q -- man > docs/orgaudit.1` when the command line changes.
#[test]
fn the_committed_man_page_is_current() {
    let r = run(&["man"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let committed = std::fs::read_to_string(common::root().join("docs/orgaudit.1")).unwrap();
    assert!(
        r.stdout == committed,
        "docs/orgaudit.1 is stale: run `cargo run -q -- man > docs/orgaudit.1`"
    );
    // Every command and every audit option is in it.
    for needle in [
        ".SH \"ORGAUDIT AUDIT\"",
        "\\-\\-sarif\\-max\\-results",
        "\\-\\-notify",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(committed.contains(needle), "{needle}");
    }
}

#[test]
fn completions_and_version() {
    for (shell, needle) in [
        ("bash", "_orgaudit()"),
        ("zsh", "#compdef orgaudit"),
        ("fish", "complete -c orgaudit"),
    ] {
        let r = run(&["completions", shell]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stdout.contains(needle),
            "{shell}: {}",
            &r.stdout[..200.min(r.stdout.len())]
        );
        assert!(r.stdout.contains("sarif-max-results"), "{shell}");
    }
    let r = run(&["--version"]);
    assert_eq!(r.code, 0);
    let v = r.stdout.trim();
    assert!(
        v.starts_with(&format!("orgaudit {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let date = v.rsplit("built ").next().unwrap().trim_end_matches(')');
    assert!(
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
        "{v}"
    );
    // --help is grouped by task.
    let r = run(&["audit", "--help"]);
    let headings: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(':'))
        .collect();
    assert_eq!(
        headings,
        [
            "Options:",
            "Input:",
            "Rules and waivers:",
            "Gate, baseline and history:",
            "Outputs:",
            "Email and notifications:",
            "Configuration and network:"
        ]
    );
}

/// A waiver whose rule id is misspelt says which rule it was probably meant for.
#[test]
fn a_misspelt_waiver_rule_gets_a_did_you_mean() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.yaml");
    std::fs::write(
        &w,
        "waivers:\n  - { rule: sso-bypas, subject: carol@acme.example, reason: r, approved_by: a@acme.example, expires: 2027-01-01 }\n  - { rule: no-such-thing-at-all, subject: x, reason: r, approved_by: a@acme.example, expires: 2027-01-01 }\n",
    )
    .unwrap();
    let input = example("acme-users-groups.json");
    let r = run(&[
        "audit",
        "-i",
        input.to_str().unwrap(),
        "--now",
        NOW,
        "--waivers",
        w.to_str().unwrap(),
        "-f",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("(rule sso-bypas, subject carol@acme.example) names no rule of this audit; did you mean `sso-bypass`?"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("(rule no-such-thing-at-all, subject x) names no rule of this audit; `orgaudit rules list` shows the ids"),
        "{}",
        r.stderr
    );
}

/// A history command that reads never leaves an empty history behind where there was none.
#[test]
fn reading_a_missing_history_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("history.db");
    for cmd in [
        &["history", "list"][..],
        &["history", "verify"],
        &["history", "trend"],
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--history", missing.to_str().unwrap()]);
        let r = run(&args);
        assert_eq!(r.code, 2, "{cmd:?}: {}", r.stderr);
        assert!(r.stderr.contains("no history there"), "{}", r.stderr);
        assert!(!missing.exists(), "{cmd:?} created {}", missing.display());
    }
}

/// The README's paragraph on the configuration file names every top-level key the reader takes.
#[test]
fn the_readme_lists_every_configuration_key() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let para = readme
        .split("Its keys: ")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("the README's list of configuration keys");
    for key in orgaudit::config::TOP_KEYS {
        assert!(
            para.contains(&format!("`{key}`")),
            "README.md does not list `{key}`"
        );
    }
}

/// Every flag of `audit --help` is documented in the README.
#[test]
fn the_readme_documents_every_audit_flag() {
    documents_every_flag("README.md", &["audit"], 40);
}

/// Every flag of `remediate plan` and `remediate apply` is documented in docs/remediation.md.
#[test]
fn the_remediation_guide_documents_every_flag() {
    documents_every_flag("docs/remediation.md", &["remediate", "plan"], 20);
    documents_every_flag("docs/remediation.md", &["remediate", "apply"], 15);
}

fn documents_every_flag(doc: &str, command: &[&str], at_least: usize) {
    let readme = std::fs::read_to_string(common::root().join(doc)).unwrap();
    let mut args = command.to_vec();
    args.push("--help");
    let help = run(&args).stdout;
    let flags: std::collections::BTreeSet<&str> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']' || c == '=')
        .filter(|w| w.starts_with("--") && w.len() > 2 && *w != "--help")
        .map(|w| {
            w.split('<')
                .next()
                .unwrap()
                .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        })
        .collect();
    assert!(flags.len() > at_least, "{flags:?}");
    // Named as a flag: followed by a space, a backtick or a comma, not as part of a longer one.
    let documented = |f: &str| {
        readme
            .match_indices(f)
            .any(|(i, _)| matches!(readme[i + f.len()..].chars().next(), Some(' ' | '`' | ',')))
    };
    let missing: Vec<&&str> = flags.iter().filter(|f| !documented(f)).collect();
    assert!(missing.is_empty(), "{doc} does not document {missing:?}");
}

#[test]
fn fix_declarations_are_checked_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fixes.yaml");
    std::fs::write(
        &file,
        r#"- id: a
  title: A
  severity: low
  scope: user
  when: { field: active, equals: false }
  fix: { action: remove_usr }
- id: b
  title: B
  severity: low
  scope: group
  when: { field: member_count, equals: 0 }
  fix: remove_user
- id: c
  title: C
  severity: low
  scope: user
  when: { field: active, equals: false }
  fix: { action: manual, when: { field: active, equals: false } }
- id: d
  title: D
  severity: low
  scope: user
  when: { field: active, equals: false }
  fix: { action: remove_user, when: { field: no_such_field, equals: 1 }, after: 3 }
- id: e
  title: E
  severity: low
  scope: user
  when: { field: active, equals: false }
  fix: { action: remove_user, when: { field: created_at, older_than_days: 90 } }
"#,
    )
    .unwrap();
    let r = run(&["rules", "validate", "--no-builtin", file.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    let f = file.display().to_string();
    for expected in [
        format!("{f}:6:18: unknown fix action `remove_usr`; expected one of manual, remove_user"),
        "did you mean `remove_user`?".to_string(),
        format!(
            "{f}:12:8: the fix `remove_user` applies to user rules; this rule's scope is group"
        ),
        format!("{f}:18:32: `fix.when` is for an automatic fix; a manual one has no condition"),
        format!("{f}:24:74: unknown key `after` in `fix`"),
        format!("{f}:24:46: unknown field `no_such_field`"),
    ] {
        assert!(r.stderr.contains(&expected), "{expected}\n{}", r.stderr);
    }
    assert!(!r.stderr.contains(":30:"), "rule e is valid: {}", r.stderr);

    // `rules show` and `rules list` say what a rule's fix is.
    let show = run(&["rules", "show", "disabled-user-in-groups"]);
    assert!(
        show.stdout.contains("\nfix:\n  remove_user (`orgaudit remediate plan` proposes it; owners are never removed), when:\n    any:\n"),
        "{}",
        show.stdout
    );
    let show = run(&["rules", "show", "stale-sign-in"]);
    assert!(show.stdout.contains("\nfix:\n  manual"), "{}", show.stdout);
    let list: Value = serde_json::from_str(&run(&["rules", "list", "-f", "json"]).stdout).unwrap();
    let fix_of = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["fix"]
            .clone()
    };
    assert_eq!(fix_of("never-signed-in"), "remove_user");
    assert_eq!(fix_of("disabled-user-lingering"), "remove_user");
    assert_eq!(fix_of("sso-bypass"), "manual");
}
