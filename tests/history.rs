//! The history of runs (SQLite): a sequence of weekly reports through the binary, with users
//! added, fixed and coming back; lifecycles, resolved lists, the first run's gate, listing, and a
//! history that cannot be read.

mod common;

use common::run_with_env;
use serde_json::{json, Value};

fn user(id: &str, bypass: bool, last_sign_in: &str) -> Value {
    json!({"id": id, "record_type": "organization_sub_user", "email": format!("{id}@acme.example"),
        "user_status": "enabled", "organization_user_bypasses_sso": bypass,
        "created_at": "2024-01-01T00:00:00Z", "last_sign_in_at": last_sign_in,
        "groups": [{"id": "g", "name": "Eng"}]})
}

struct Week {
    code: i32,
    doc: Value,
    stderr: String,
}

fn week(
    dir: &std::path::Path,
    now: &str,
    users: Vec<Value>,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Week {
    let input = dir.join(format!("{now}.json"));
    std::fs::write(&input, json!({ "data": users }).to_string()).unwrap();
    let mut args = vec![
        "audit",
        "-i",
        input.to_str().unwrap(),
        "--now",
        now,
        "-f",
        "json",
    ];
    args.extend_from_slice(extra);
    let r = run_with_env(&args, env);
    Week {
        code: r.code,
        doc: serde_json::from_str(&r.stdout).unwrap_or(Value::Null),
        stderr: r.stderr,
    }
}

fn finding<'a>(doc: &'a Value, rule: &str, subject: &str) -> Option<&'a Value> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == rule && f["subject"]["id"] == subject)
}

#[test]
fn weekly_runs_have_lifecycles() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let h = db.to_str().unwrap();
    let recent = "2026-11-20T00:00:00Z";
    let old = "2026-01-01T00:00:00Z";
    let gate = ["--history", h, "--fail-on-new", "--fail-on", "low"];

    // Week 1: the first run gates on every finding, and says so.
    let w1 = week(
        dir.path(),
        "2026-11-29T00:00:00Z",
        vec![user("u1", true, recent), user("u2", false, old)],
        &gate,
        &[],
    );
    assert_eq!(w1.code, 1, "{}", w1.stderr);
    assert!(
        w1.stderr
            .contains("orgaudit: no previous run: gating on all findings"),
        "{}",
        w1.stderr
    );
    let f = finding(&w1.doc, "sso-bypass", "u1").unwrap();
    assert_eq!(f["first_seen"], "2026-11-29T00:00:00Z");
    assert_eq!(f["age_days"], 0);
    assert!(f.get("baseline_status").is_none());
    assert!(w1.doc["history"]["previous_run"].is_null());
    assert_eq!(w1.doc["history"]["organization"], "default");

    // Week 2: u2 signed in (resolved), u3 bypasses SSO (new), u1 unchanged and a week older.
    let w2 = week(
        dir.path(),
        "2026-12-06T00:00:00Z",
        vec![
            user("u1", true, recent),
            user("u2", false, recent),
            user("u3", true, recent),
        ],
        &gate,
        &[],
    );
    assert_eq!(w2.code, 1, "u3 is new: {}", w2.stderr);
    assert!(!w2.stderr.contains("no previous run"));
    let u1 = finding(&w2.doc, "sso-bypass", "u1").unwrap();
    assert_eq!(
        (&u1["baseline_status"], &u1["age_days"]),
        (&json!("unchanged"), &json!(7))
    );
    assert_eq!(u1["first_seen"], "2026-11-29T00:00:00Z");
    assert_eq!(
        finding(&w2.doc, "sso-bypass", "u3").unwrap()["baseline_status"],
        "new"
    );
    let resolved = w2.doc["resolved"].as_array().unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (&resolved[0]["rule_id"], &resolved[0]["subject"]["id"]),
        (&json!("stale-sign-in"), &json!("u2"))
    );
    assert_eq!(resolved[0]["last_seen"], "2026-11-29T00:00:00Z");
    assert_eq!(w2.doc["summary"]["new"], 1);
    assert_eq!(
        w2.doc["history"]["previous_run"]["audited_at"],
        "2026-11-29T00:00:00Z"
    );

    // Week 3: u3 fixed, u2 stale again: reopened, and it gates like a new one.
    let w3 = week(
        dir.path(),
        "2026-12-13T00:00:00Z",
        vec![
            user("u1", true, recent),
            user("u2", false, old),
            user("u3", false, recent),
        ],
        &gate,
        &[],
    );
    assert_eq!(w3.code, 1, "{}", w3.stderr);
    let u2 = finding(&w3.doc, "stale-sign-in", "u2").unwrap();
    assert_eq!(u2["baseline_status"], "reopened");
    assert_eq!(u2["first_seen"], "2026-11-29T00:00:00Z");
    assert_eq!(u2["age_days"], 14);
    assert_eq!(w3.doc["resolved"][0]["subject"]["id"], "u3");

    // Week 4, nothing changed: the gate on new findings passes; ORGAUDIT_HISTORY names it.
    let w4 = week(
        dir.path(),
        "2026-12-20T00:00:00Z",
        vec![
            user("u1", true, recent),
            user("u2", false, old),
            user("u3", false, recent),
        ],
        &["--fail-on-new", "--fail-on", "low"],
        &[("ORGAUDIT_HISTORY", h)],
    );
    assert_eq!(w4.code, 0, "{}", w4.stderr);
    assert_eq!(
        finding(&w4.doc, "sso-bypass", "u1").unwrap()["age_days"],
        21
    );

    // The runs, newest first.
    let list = run_with_env(&["history", "list", "--history", h, "-f", "json"], &[]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let runs: Value = serde_json::from_str(&list.stdout).unwrap();
    let times: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["audited_at"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2026-12-20T00:00:00Z",
            "2026-12-13T00:00:00Z",
            "2026-12-06T00:00:00Z",
            "2026-11-29T00:00:00Z"
        ]
    );
    assert_eq!(runs[3]["findings"], w1.doc["summary"]["findings"]);

    // --no-history wins over the environment: no history block, no new run.
    let w5 = week(
        dir.path(),
        "2026-12-27T00:00:00Z",
        vec![user("u1", true, recent)],
        &["--no-history"],
        &[("ORGAUDIT_HISTORY", h)],
    );
    assert_eq!(w5.code, 0);
    assert!(w5.doc.get("history").is_none());
    let list = run_with_env(&["history", "list", "--history", h], &[]);
    assert_eq!(list.stdout.lines().count(), 5, "{}", list.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the history holds every user's email");
    }
}

/// A history that cannot be read is exit 3 after the outputs are written (or before anything,
/// with --history-required); a file that is not a history is never overwritten.
#[test]
fn an_unreadable_history_is_exit_3_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.txt");
    std::fs::write(&db, "these are my notes, not a database\n".repeat(200)).unwrap();
    let before = std::fs::read(&db).unwrap();
    let out = dir.path().join("out.json");
    let input = common::example("acme-users-groups.json");
    let args = [
        "audit",
        "-i",
        input.to_str().unwrap(),
        "--now",
        common::NOW,
        "--history",
        db.to_str().unwrap(),
        "-f",
        "json",
        "-o",
        out.to_str().unwrap(),
    ];
    let r = run_with_env(&args, &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with(&format!("error: history {}: ", db.display())),
        "{}",
        r.stderr
    );
    assert!(out.is_file(), "the outputs are written");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    std::fs::remove_file(&out).unwrap();
    let mut required = args.to_vec();
    required.push("--history-required");
    let r = run_with_env(&required, &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(!out.exists(), "nothing is written");
    let r = run_with_env(
        &[
            "audit",
            "-i",
            input.to_str().unwrap(),
            "--history",
            "postgres://auditor:hunter2@db/x",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("not supported by this version"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("hunter2") && r.stderr.contains("auditor:***@db"),
        "the password in a location is never echoed: {}",
        r.stderr
    );
}

/// Two audits writing the same history at once both land (WAL, a busy timeout, one
/// transaction each).
#[test]
fn concurrent_audits_both_land() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let input = common::example("acme-users-groups.json");
    let bin = env!("CARGO_BIN_EXE_orgaudit");
    let spawn = |now: &str| {
        std::process::Command::new(bin)
            .args([
                "audit",
                "-i",
                input.to_str().unwrap(),
                "--now",
                now,
                "-o",
                "/dev/null",
                "--history",
            ])
            .arg(&db)
            .spawn()
            .unwrap()
    };
    // The first creates the schema; then four at once.
    assert!(spawn("2026-11-01T00:00:00Z").wait().unwrap().success());
    let children: Vec<_> = (2..6)
        .map(|d| spawn(&format!("2026-11-0{d}T00:00:00Z")))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let list = run_with_env(
        &[
            "history",
            "list",
            "--history",
            db.to_str().unwrap(),
            "-f",
            "json",
        ],
        &[],
    );
    let runs: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 5);
}

/// The scheduled example's command works on its very first run, and on the next.
#[test]
fn the_crontab_example_runs_from_the_first_week() {
    let text = std::fs::read_to_string(common::example("schedule/crontab")).unwrap();
    let line = text.lines().find(|l| l.contains("orgaudit audit")).unwrap();
    let flags = &line[line.find("orgaudit audit").unwrap()..];
    assert!(
        flags.contains("--history /var/lib/orgaudit/history.db"),
        "{flags}"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let input = common::example("acme-users-groups.json");
    for now in ["2026-11-23T06:00:00Z", "2026-11-30T06:00:00Z"] {
        // The example's flags, with the bundled report instead of the configuration's fetch.
        let r = run_with_env(
            &[
                "audit",
                "-i",
                input.to_str().unwrap(),
                "--now",
                now,
                "--history",
                db.to_str().unwrap(),
                "-q",
            ],
            &[],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
}

/// `history show` gives back a run's JSON output byte for byte; every output names the chain's
/// head; `history verify` finds a run edited or deleted behind orgaudit's back.
#[test]
fn stored_runs_are_shown_as_written_and_tampering_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let h = db.to_str().unwrap();
    let input = common::example("acme-users-groups.json");
    let mut outputs = Vec::new();
    for now in [
        "2026-11-01T00:00:00Z",
        "2026-11-08T00:00:00Z",
        "2026-11-15T00:00:00Z",
    ] {
        let r = run_with_env(
            &[
                "audit",
                "-i",
                input.to_str().unwrap(),
                "--now",
                now,
                "-f",
                "json",
                "--history",
                h,
            ],
            &[],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        outputs.push(r.stdout);
    }
    let shown = run_with_env(&["history", "show", "previous", "--history", h], &[]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout == outputs[1], "byte for byte");
    let by_date = run_with_env(&["history", "show", "2026-11-03", "--history", h], &[]);
    assert!(by_date.stdout == outputs[0]);
    let verified = run_with_env(&["history", "verify", "--history", h], &[]);
    assert_eq!(verified.code, 0, "{}", verified.stdout);
    assert!(
        verified.stdout.starts_with("history intact: 3 runs, head "),
        "{}",
        verified.stdout
    );
    // The third output names the head as it was: the second run's hash.
    let third: Value = serde_json::from_str(&outputs[2]).unwrap();
    let head = third["history"]["head"].as_str().unwrap().to_string();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let second: String = conn
        .query_row("SELECT hash FROM runs WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(head, second);
    // An edited run.
    conn.execute("UPDATE runs SET content_hash = 'edited' WHERE id = 2", [])
        .unwrap();
    let r = run_with_env(&["history", "verify", "--history", h], &[]);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (
            1,
            "history broken at run 2: its content was changed after it was recorded"
        )
    );
    // A deleted run.
    conn.execute("DELETE FROM findings WHERE run_id = 2", [])
        .unwrap();
    conn.execute("DELETE FROM runs WHERE id = 2", []).unwrap();
    let r = run_with_env(&["history", "verify", "--history", h], &[]);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (
            1,
            "history broken at run 3: the run before it in the chain is missing or was changed"
        )
    );
}

/// `history snapshot` gives the report a run audited: the users as they were, as JSON that
/// orgaudit reads again (the same findings) or as CSV.
#[test]
fn a_run_keeps_the_report_it_audited() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let h = db.to_str().unwrap();
    let input = common::example("acme-users-groups.json");
    let first = run_with_env(
        &[
            "audit",
            "-i",
            input.to_str().unwrap(),
            "--now",
            common::NOW,
            "-f",
            "json",
            "--history",
            h,
        ],
        &[],
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    let snap = run_with_env(&["history", "snapshot", "latest", "--history", h], &[]);
    assert_eq!(snap.code, 0, "{}", snap.stderr);
    let again = dir.path().join("snap.json");
    std::fs::write(&again, &snap.stdout).unwrap();
    let second = run_with_env(
        &[
            "audit",
            "-i",
            again.to_str().unwrap(),
            "--now",
            common::NOW,
            "-f",
            "json",
        ],
        &[],
    );
    let a: Value = serde_json::from_str(&first.stdout).unwrap();
    let b: Value = serde_json::from_str(&second.stdout).unwrap();
    let key = |d: &Value| -> Vec<(Value, Value, Value)> {
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["fingerprint"].clone(),
                    f["message"].clone(),
                    f["evidence"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(key(&a), key(&b), "the snapshot audits the same");
    let csv = run_with_env(
        &["history", "snapshot", "latest", "--history", h, "-f", "csv"],
        &[],
    );
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    assert!(csv.stdout.starts_with("id,record_type,email,user_status,organization_user_bypasses_sso,created_at,last_sign_in_at,groups,group_ids\n"));
    assert_eq!(csv.stdout.lines().count(), 15, "a header and 14 users");
}

/// SLAs: each finding gets `due` (first seen plus its severity's days) and `overdue`; a waived
/// one is never overdue; --fail-on-overdue fails on them, naming the gate.
#[test]
fn findings_past_their_sla_are_overdue() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!("history: {}\nsla: {{high: 7, medium: 90}}\n", db.display()),
    )
    .unwrap();
    let waivers = dir.path().join("w.yaml");
    std::fs::write(
        &waivers,
        "waivers:\n  - {rule: sso-bypass, subject: u2, reason: r, approved_by: a, expires: 2027-01-31}\n",
    )
    .unwrap();
    let recent = "2026-11-20T00:00:00Z";
    let users = vec![user("u1", true, recent), user("u2", true, recent)];
    let c = cfg.to_str().unwrap();
    let w = waivers.to_str().unwrap();
    let args = ["--config", c, "--waivers", w, "--fail-on-overdue"];
    let w1 = week(
        dir.path(),
        "2026-11-29T00:00:00Z",
        users.clone(),
        &args,
        &[],
    );
    assert_eq!(w1.code, 0, "{}", w1.stderr);
    let f = finding(&w1.doc, "sso-bypass", "u1").unwrap();
    assert_eq!(
        (&f["due"], &f["overdue"]),
        (&json!("2026-12-06"), &json!(false))
    );
    let w2 = week(
        dir.path(),
        "2026-12-07T00:00:00Z",
        users.clone(),
        &args,
        &[],
    );
    assert_eq!(w2.code, 1, "{}", w2.stderr);
    assert_eq!(
        finding(&w2.doc, "sso-bypass", "u1").unwrap()["overdue"],
        true
    );
    assert_eq!(
        finding(&w2.doc, "sso-bypass", "u2").unwrap()["overdue"],
        false,
        "waived"
    );
    // u1 and the organization (no active owner, high); not u2, waived.
    assert!(
        w2.stderr
            .contains("orgaudit: 2 findings past their SLA (--fail-on-overdue)"),
        "{}",
        w2.stderr
    );
    // The text output says so.
    let input = dir.path().join("2026-12-07T00:00:00Z.json");
    let r = run_with_env(
        &[
            "audit",
            "-i",
            input.to_str().unwrap(),
            "--now",
            "2026-12-08T00:00:00Z",
            "--config",
            c,
        ],
        &[],
    );
    assert!(
        r.stdout.contains("[overdue since 2026-12-06]"),
        "{}",
        r.stdout
    );
    // Without a history, the gate cannot be asked for.
    let r = run_with_env(
        &["audit", "-i", input.to_str().unwrap(), "--fail-on-overdue"],
        &[],
    );
    assert_eq!(r.code, 2);
}

/// `--email-when changed` sends on the first run, stays quiet while nothing changes, and sends
/// again when a finding is new.
#[test]
fn email_when_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let eml = dir.path().join("m.eml");
    let recent = "2026-11-20T00:00:00Z";
    let args = [
        "--history",
        db.to_str().unwrap(),
        "--email-to",
        "sec@acme.example",
        "--email-from",
        "orgaudit@acme.example",
        "--email-when",
        "changed",
        "--email-dry-run",
        eml.to_str().unwrap(),
    ];
    let sent = |now: &str, users: Vec<Value>| {
        let _ = std::fs::remove_file(&eml);
        let w = week(dir.path(), now, users, &args, &[]);
        assert_eq!(w.code, 0, "{}", w.stderr);
        eml.is_file()
    };
    assert!(
        sent("2026-11-29T00:00:00Z", vec![user("u1", true, recent)]),
        "the first run"
    );
    assert!(
        !sent("2026-12-06T00:00:00Z", vec![user("u1", true, recent)]),
        "nothing changed"
    );
    assert!(
        sent(
            "2026-12-13T00:00:00Z",
            vec![user("u1", true, recent), user("u2", true, recent)]
        ),
        "u2 is new"
    );
    assert!(
        sent("2026-12-20T00:00:00Z", vec![user("u2", true, recent)]),
        "u1 is resolved"
    );
}
