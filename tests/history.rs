//! The history of runs: a sequence of weekly reports through the binary, with users added,
//! fixed and coming back; lifecycles, resolved lists, the first run's gate, listing, tampering,
//! and a history that cannot be read. Every test of a history's behaviour runs twice: on a SQLite
//! file and on a real PostgreSQL server (`ORGAUDIT_TEST_POSTGRES`, a URL whose user may create
//! databases, password in `PGPASSWORD`; `.ci/run` starts one). Without that variable the
//! PostgreSQL half says so on stderr and fails under `CI`, never passing silently.

mod common;

use common::run_with_env;
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Sqlite,
    Postgres,
}

/// A fresh, empty history of one kind: a file in a temporary folder, or a new database on the
/// test server (dropped afterwards).
struct Hist {
    kind: Kind,
    location: String,
    dir: tempfile::TempDir,
    /// This history's database, dropped with it.
    _pg: Option<common::pg::Database>,
}

impl Hist {
    fn new(kind: Kind) -> Option<Hist> {
        let dir = tempfile::tempdir().unwrap();
        match kind {
            Kind::Sqlite => Some(Hist {
                kind,
                location: dir.path().join("history.db").display().to_string(),
                dir,
                _pg: None,
            }),
            Kind::Postgres => {
                let db = common::pg::Database::create("the PostgreSQL history tests")?;
                Some(Hist {
                    kind,
                    location: db.url.clone(),
                    dir,
                    _pg: Some(db),
                })
            }
        }
    }

    /// Runs SQL on the history behind orgaudit's back.
    fn tamper(&self, sql: &str) {
        match self.kind {
            Kind::Sqlite => {
                rusqlite::Connection::open(&self.location)
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
            Kind::Postgres => common::pg::client(&self.location)
                .batch_execute(sql)
                .unwrap(),
        }
    }

    /// One text value of a query.
    fn text(&self, sql: &str) -> String {
        match self.kind {
            Kind::Sqlite => rusqlite::Connection::open(&self.location)
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            Kind::Postgres => common::pg::client(&self.location)
                .query_one(sql, &[])
                .unwrap()
                .get(0),
        }
    }
}

/// Each named test, on a SQLite file and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Hist::new(super::Kind::Sqlite).unwrap());
            }
            #[test]
            fn postgres() {
                if let Some(h) = super::Hist::new(super::Kind::Postgres) {
                    super::$name(&h);
                }
            }
        }
    )*};
}

on_both_backends!(
    weekly_runs_have_lifecycles,
    concurrent_audits_both_land,
    stored_runs_are_shown_as_written_and_tampering_is_found,
    a_run_keeps_the_report_it_audited,
    findings_past_their_sla_are_overdue,
    email_when_changed,
    import_trend_prune_and_forget,
    change_detection_over_weeks,
    human_formats_show_the_history,
    findings_of_rules_that_did_not_run_keep_their_state,
    the_ci_examples_work_from_their_first_run,
    a_newer_schema_is_refused,
);

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

fn weekly_runs_have_lifecycles(hist: &Hist) {
    let dir = &hist.dir;
    let h = hist.location.as_str();
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
    // u3 is new, and may bypass SSO: change detection says so too.
    assert_eq!(w2.doc["summary"]["new"], 2);
    assert!(finding(&w2.doc, "sso-bypass-turned-on", "u3").is_some());
    assert_eq!(w2.doc["changes"]["users_added"][0]["id"], "u3");
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
    if hist.kind == Kind::Sqlite {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(h).unwrap().permissions().mode() & 0o777;
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
        r.stderr.contains("a password in the URL is refused"),
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
fn concurrent_audits_both_land(hist: &Hist) {
    let db = &hist.location;
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
            .arg(db)
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
    let list = run_with_env(&["history", "list", "--history", db, "-f", "json"], &[]);
    let runs: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 5);
    let verified = run_with_env(&["history", "verify", "--history", db], &[]);
    assert_eq!(verified.code, 0, "one chain: {}", verified.stdout);
}

/// The scheduled example's command works on its very first run, and on the next.
#[test]
fn the_crontab_example_runs_from_the_first_week() {
    let text = std::fs::read_to_string(common::example("schedule/crontab")).unwrap();
    let line = text.lines().find(|l| l.contains("orgaudit audit")).unwrap();
    let flags = &line[line.find("orgaudit audit").unwrap()..];
    assert!(
        flags.contains("--history /var/lib/orgaudit/history.db --email-when changed"),
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
fn stored_runs_are_shown_as_written_and_tampering_is_found(hist: &Hist) {
    let h = hist.location.as_str();
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
    assert_eq!(head, hist.text("SELECT hash FROM runs WHERE id = 2"));
    // An edited run.
    hist.tamper("UPDATE runs SET content_hash = 'edited' WHERE id = 2");
    let r = run_with_env(&["history", "verify", "--history", h], &[]);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (
            1,
            "history broken at run 2: its content was changed after it was recorded"
        )
    );
    // A deleted run.
    hist.tamper("DELETE FROM runs WHERE id = 2");
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
fn a_run_keeps_the_report_it_audited(hist: &Hist) {
    let dir = &hist.dir;
    let h = hist.location.as_str();
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
fn findings_past_their_sla_are_overdue(hist: &Hist) {
    let dir = &hist.dir;
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "history: '{}'\nsla: {{high: 7, medium: 90}}\n",
            hist.location
        ),
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
fn email_when_changed(hist: &Hist) {
    let dir = &hist.dir;
    let eml = dir.path().join("m.eml");
    let recent = "2026-11-20T00:00:00Z";
    let args = [
        "--history",
        hist.location.as_str(),
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

/// A PostgreSQL history that refuses the password, or a server that is not there, is exit 3
/// with the server's complaint, after the outputs; the password is never printed.
#[test]
fn postgres_faults_are_exit_3_and_never_show_the_password() {
    let Some(hist) = Hist::new(Kind::Postgres) else {
        return;
    };
    let input = common::example("acme-users-groups.json");
    let out = hist.dir.path().join("out.json");
    let audit = |location: &str, env: &[(&str, &str)]| {
        let _ = std::fs::remove_file(&out);
        run_with_env(
            &[
                "audit",
                "-i",
                input.to_str().unwrap(),
                "--history",
                location,
                "-o",
                out.to_str().unwrap(),
            ],
            env,
        )
    };
    let r = audit(&hist.location, &[("PGPASSWORD", "not-the-password-42")]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("password authentication failed"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("not-the-password-42"), "{}", r.stderr);
    assert!(out.is_file(), "the outputs are written");
    // Nobody listening on that port.
    let r = audit(
        "postgres://orgaudit@127.0.0.1:1/none?sslmode=disable&connect_timeout=5",
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("cannot connect"), "{}", r.stderr);
    // A password file: read when PGPASSWORD is unset, ignored when others can read it.
    let pass = std::env::var("PGPASSWORD").unwrap_or_default();
    let file = hist.dir.path().join("pgpass");
    std::fs::write(&file, format!("# test\n127.0.0.1:*:*:orgaudit:{pass}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut cmd = assert_cmd::Command::cargo_bin("orgaudit").unwrap();
        let r = cmd
            .env_remove("PGPASSWORD")
            .env("PGPASSFILE", &file)
            .args(["history", "list", "--history", &hist.location])
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut cmd = assert_cmd::Command::cargo_bin("orgaudit").unwrap();
        let r = cmd
            .env_remove("PGPASSWORD")
            .env("PGPASSFILE", &file)
            .args(["history", "list", "--history", &hist.location])
            .output()
            .unwrap();
        assert_eq!(
            r.status.code(),
            Some(3),
            "a file others can read is ignored"
        );
    }
}

/// A history started from kept JSON outputs, then audited, trended, pruned and a person
/// forgotten: each step leaves a chain that `verify` accepts.
fn import_trend_prune_and_forget(hist: &Hist) {
    let dir = hist.dir.path();
    let h = hist.location.as_str();
    let recent = "2026-11-20T00:00:00Z";
    let old = "2026-01-01T00:00:00Z";
    // Three weekly outputs somebody kept, without a history.
    let weeks = [
        (
            "2026-11-08T00:00:00Z",
            vec![user("u1", true, recent), user("u2", false, old)],
        ),
        (
            "2026-11-15T00:00:00Z",
            vec![user("u1", true, recent), user("u2", false, recent)],
        ),
        (
            "2026-11-22T00:00:00Z",
            vec![user("u1", true, recent), user("u2", false, old)],
        ),
    ];
    let mut files = Vec::new();
    let mut kept = Vec::new();
    for (now, users) in weeks.iter().rev() {
        let w = week(dir, now, users.clone(), &[], &[]);
        let out = dir.join(format!("kept-{now}.json"));
        let text = serde_json::to_string_pretty(&w.doc).unwrap() + "\n";
        std::fs::write(&out, &text).unwrap();
        files.push(out.display().to_string());
        kept.push(text);
    }
    let mut args = vec!["history", "import", "--history", h];
    args.extend(files.iter().map(String::as_str));
    let r = run_with_env(&args, &[]);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "imported 3 run(s) of `default`"),
        "{}",
        r.stderr
    );
    let again = run_with_env(&args, &[]);
    assert_eq!(
        again.code, 2,
        "only into an empty history: {}",
        again.stderr
    );
    let list = run_with_env(&["history", "list", "--history", h, "-f", "json"], &[]);
    let runs: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 3);
    assert!(runs
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["imported"] == true));
    let shown = run_with_env(&["history", "show", "latest", "--history", h], &[]);
    assert!(shown.stdout == kept[0], "the newest file, byte for byte");

    // The next audit's lifecycles start from the imported runs.
    let w4 = week(
        dir,
        "2026-11-29T00:00:00Z",
        vec![user("u1", true, recent), user("u2", false, recent)],
        &["--history", h],
        &[],
    );
    assert_eq!(w4.code, 0, "{}", w4.stderr);
    let u1 = finding(&w4.doc, "sso-bypass", "u1").unwrap();
    assert_eq!(
        (&u1["first_seen"], &u1["age_days"]),
        (&json!("2026-11-08T00:00:00Z"), &json!(21))
    );
    assert_eq!(w4.doc["resolved"][0]["subject"]["id"], "u2");

    // The trend: one point per run; stale-sign-in on u2 was resolved twice, after 7 days each.
    let t = run_with_env(&["history", "trend", "--history", h, "-f", "json"], &[]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    let trend: Value = serde_json::from_str(&t.stdout).unwrap();
    assert_eq!(trend["runs"].as_array().unwrap().len(), 4);
    assert_eq!(trend["runs"][3]["resolved"], 1);
    let stale = trend["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "stale-sign-in")
        .unwrap();
    assert_eq!(
        (
            &stale["resolved"],
            &stale["mean_days_to_resolve"],
            &stale["open"]
        ),
        (&json!(2), &json!(7.0), &json!(0))
    );
    let sso = trend["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "sso-bypass")
        .unwrap();
    assert_eq!((&sso["resolved"], &sso["open"]), (&json!(0), &json!(1)));
    let text = run_with_env(&["history", "trend", "--history", h], &[]);
    assert!(
        text.stdout.contains("stale-sign-in") && text.stdout.contains("7.0"),
        "{}",
        text.stdout
    );

    // Prune to the newest two runs: a checkpoint keeps the chain verifiable.
    let p = run_with_env(
        &["history", "prune", "--keep", "2runs", "--history", h],
        &[],
    );
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert!(
        p.stdout
            .starts_with("pruned 2 run(s)\ncheckpoint: through run 2, head "),
        "{}",
        p.stdout
    );
    let v = run_with_env(&["history", "verify", "--history", h], &[]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    assert!(
        v.stdout
            .contains("2 earlier run(s) pruned behind a checkpoint"),
        "{}",
        v.stdout
    );
    let bad = run_with_env(&["history", "prune", "--keep", "12", "--history", h], &[]);
    assert_eq!(bad.code, 2, "a bare number is ambiguous: {}", bad.stderr);

    // Forget u1: gone from every stored output and snapshot; verify still passes.
    let f = run_with_env(
        &[
            "history",
            "forget",
            "--user",
            "U1@acme.example",
            "--history",
            h,
        ],
        &[],
    );
    assert_eq!(
        (f.code, f.stdout.trim()),
        (0, "removed the person's data from 2 run(s)"),
        "{}",
        f.stderr
    );
    let shown = run_with_env(&["history", "show", "latest", "--history", h], &[]);
    assert!(
        !shown.stdout.contains("u1@acme.example"),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains("u2@acme.example"));
    let snap = run_with_env(&["history", "snapshot", "latest", "--history", h], &[]);
    assert!(
        !snap.stdout.contains("u1@") && snap.stdout.contains("u2@"),
        "{}",
        snap.stdout
    );
    let v = run_with_env(&["history", "verify", "--history", h], &[]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    assert!(
        v.stdout.contains("2 run(s) redacted by `history forget`"),
        "{}",
        v.stdout
    );
    // A redacted run whose hash is then edited is still caught.
    hist.tamper("UPDATE runs SET hash = 'x' WHERE id = 3");
    let v = run_with_env(&["history", "verify", "--history", h], &[]);
    assert_eq!(v.code, 1, "{}", v.stdout);
}

fn member(id: &str, owner: bool, bypass: bool, groups: &[(&str, &str)]) -> Value {
    let groups: Vec<Value> = groups
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    json!({"id": id, "email": format!("{id}@acme.example"),
        "record_type": if owner { "organization_owner" } else { "organization_sub_user" },
        "user_status": "enabled", "organization_user_bypasses_sso": bypass,
        "created_at": "2024-01-01T00:00:00Z", "last_sign_in_at": "2026-11-20T00:00:00Z",
        "groups": groups})
}

fn rule_ids(doc: &Value, rule: &str) -> Vec<String> {
    let mut ids: Vec<String> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == rule)
        .map(|f| f["subject"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Change detection over weeks: users added, removed, moved into a watched group, SSO bypass
/// turned on and off, a new owner; the changes section lists them whether or not a rule
/// watches them; the first run says once why the change rules did not run.
fn change_detection_over_weeks(hist: &Hist) {
    let dir = hist.dir.path();
    let h = hist.location.as_str();
    let admin = ("g-admin", "Admins");
    let eng = ("g-eng", "Engineering");
    let args = [
        "--history",
        h,
        "--set",
        "added-to-watched-group.watched_groups=[Admin*]",
    ];
    let w1 = week(
        dir,
        "2026-11-01T00:00:00Z",
        vec![
            member("own", true, false, &[admin]),
            member("a", false, false, &[eng]),
            member("b", false, true, &[eng]),
            member("c", false, false, &[eng]),
        ],
        &args,
        &[],
    );
    assert_eq!(w1.code, 0, "{}", w1.stderr);
    assert!(w1.doc.get("changes").is_none());
    let outcome = |doc: &Value, id: &str| {
        doc["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["outcome"]
            .clone()
    };
    assert_eq!(outcome(&w1.doc, "new-owner"), "not_evaluated");
    let warned: Vec<&Value> = w1.doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == "no-previous-snapshot")
        .collect();
    assert_eq!(warned.len(), 1, "one warning, not one per user: {warned:?}");
    // Week 2: a joins Admins, b's bypass is turned off, c's turned on and c is promoted, d
    // arrives with bypass, own leaves.
    let after = || {
        vec![
            member("a", false, false, &[eng, admin]),
            member("b", false, false, &[eng]),
            member("c", true, true, &[eng]),
            member("d", false, true, &[]),
        ]
    };
    let w2 = week(dir, "2026-11-08T00:00:00Z", after(), &args, &[]);
    assert_eq!(w2.code, 0, "{}", w2.stderr);
    assert_eq!(outcome(&w2.doc, "new-owner"), "failed");
    assert_eq!(rule_ids(&w2.doc, "added-to-watched-group"), ["a"]);
    assert_eq!(rule_ids(&w2.doc, "sso-bypass-turned-on"), ["c", "d"]);
    assert_eq!(rule_ids(&w2.doc, "new-owner"), ["c"]);
    let c = &w2.doc["changes"];
    assert_eq!(c["since"], "2026-11-01T00:00:00Z");
    assert_eq!(
        c["users_added"],
        json!([{"id": "d", "email": "d@acme.example"}])
    );
    assert_eq!(
        c["users_removed"],
        json!([{"id": "own", "email": "own@acme.example"}])
    );
    assert_eq!(
        c["groups_changed"],
        json!([{"id": "a", "email": "a@acme.example", "added": ["Admins"]}])
    );
    assert_eq!(c["sso_bypass_turned_off"][0]["id"], "b");
    assert_eq!(c["became_owner"][0]["id"], "c");
    let evidence = &finding(&w2.doc, "added-to-watched-group", "a").unwrap()["evidence"];
    assert_eq!(evidence["groups_added"], json!(["Admins"]), "{evidence}");
    // Week 3, nothing changed: the change rules find nothing, the section is empty.
    let w3 = week(dir, "2026-11-15T00:00:00Z", after(), &args, &[]);
    assert!(rule_ids(&w3.doc, "sso-bypass-turned-on").is_empty());
    assert_eq!(outcome(&w3.doc, "new-owner"), "passed");
    assert_eq!(w3.doc["changes"]["users_added"], json!([]));
    // The trend block: three runs, this one last.
    let trend = w3.doc["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 3);
    assert!(trend[2].get("run").is_none() && trend[0]["run"].is_number());
    // Week 2's new findings: the four change findings, c's sso-bypass and owner-sso-bypass, d's
    // ungrouped-user. A change finding is an event: it is resolved the next week, when
    // nothing changed again.
    assert_eq!(trend[1]["new"], 7, "{trend:?}");
    assert_eq!(trend[2]["resolved"], 4, "{trend:?}");
}

/// Every human format shows what the history knows: overdue findings first, how long each
/// finding has been open, the changes since the last run, and (HTML, email) the trend chart.
fn human_formats_show_the_history(hist: &Hist) {
    let dir = hist.dir.path();
    let cfg = dir.join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "history: {{location: '{}', retention_days: 30}}\nsla: {{high: 7}}\n",
            hist.location
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let eml = dir.join("m.eml");
    let html = dir.join("r.html");
    let md = dir.join("r.md");
    let args = [
        "--config",
        c,
        "--report",
        &format!("html={}", html.display()),
        "--report",
        &format!("markdown={}", md.display()),
        "--email-to",
        "sec@acme.example",
        "--email-from",
        "orgaudit@acme.example",
        "--email-dry-run",
        eml.to_str().unwrap(),
    ];
    let recent = "2026-11-20T00:00:00Z";
    let weeks = [
        ("2026-10-04T00:00:00Z", vec![user("u1", true, recent)]),
        ("2026-11-08T00:00:00Z", vec![user("u1", true, recent)]),
        (
            "2026-11-15T00:00:00Z",
            vec![user("u1", true, recent), user("u2", false, recent)],
        ),
        (
            "2026-11-22T00:00:00Z",
            vec![user("u1", true, recent), user("u3", true, recent)],
        ),
    ];
    let mut last = None;
    for (now, users) in weeks {
        let w = week(dir, now, users, &args, &[]);
        assert_eq!(w.code, 0, "{}", w.stderr);
        last = Some(w);
    }
    let w = last.unwrap();
    // Retention: the run of 2026-10-04 is more than 30 days older than the last one.
    let list = run_with_env(
        &["history", "list", "--history", &hist.location, "-f", "json"],
        &[],
    );
    let runs: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 3, "{}", list.stdout);
    let v = run_with_env(&["history", "verify", "--history", &hist.location], &[]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    assert!(v.stdout.contains("1 earlier run(s) pruned"), "{}", v.stdout);
    // Pruning keeps lifecycles: u1's finding is still first seen on 2026-10-04, and overdue.
    let u1 = finding(&w.doc, "sso-bypass", "u1").unwrap();
    assert_eq!(
        (&u1["first_seen"], &u1["age_days"], &u1["overdue"]),
        (&json!("2026-10-04T00:00:00Z"), &json!(49), &json!(true))
    );

    let page = std::fs::read_to_string(&html).unwrap();
    // A stored run re-rendered is the report that run wrote.
    for (format, file) in [("html", &html), ("markdown", &md)] {
        let shown = run_with_env(
            &[
                "history",
                "show",
                "latest",
                "--history",
                &hist.location,
                "-f",
                format,
            ],
            &[],
        );
        assert_eq!(shown.code, 0, "{}", shown.stderr);
        assert!(
            shown.stdout == std::fs::read_to_string(file).unwrap(),
            "history show -f {format} differs from what the run wrote"
        );
    }
    let at = |needle: &str| {
        page.find(needle)
            .unwrap_or_else(|| panic!("{needle} in the HTML"))
    };
    assert!(
        at("id=\"overdue\"") < at("id=\"findings\""),
        "overdue first"
    );
    assert_eq!(
        page.matches("data-trend-day=").count(),
        3,
        "one bar per run kept"
    );
    assert!(page.contains("<svg class=\"chart trend\""));
    // Every output names the chain's head, a copy of it outside the database.
    let head = w.doc["history"]["head"].as_str().unwrap();
    assert!(page.contains(&format!("data-history-head>{head}</dd>")));
    assert!(page.contains("data-age>open for 49 days</small>"));
    assert!(at("id=\"changes\"") < at("id=\"findings\""));
    assert!(
        page.contains("<dt>Users added (1)</dt><dd>u3@acme.example</dd>"),
        "{page}"
    );
    assert!(page.contains("<dt>Users removed (1)</dt><dd>u2@acme.example</dd>"));

    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.find("### Overdue: ").unwrap()
            < text.find("| Severity | Unwaived findings |").unwrap()
    );
    assert!(
        text.contains("- **Users added** (1): u3@acme.example"),
        "{text}"
    );
    assert!(text.contains("_(open for 49 days)_"));
    assert!(text.contains(&format!("History chain head `{}…`", &head[..16])));

    let mail = std::fs::read(&eml).unwrap();
    let parsed = mailparse::parse_mail(&mail).unwrap();
    let mut bodies = String::new();
    for part in parsed
        .subparts
        .iter()
        .flat_map(|p| std::iter::once(p).chain(p.subparts.iter()))
    {
        if part.ctype.mimetype.starts_with("text/") {
            bodies.push_str(&part.get_body().unwrap());
        }
    }
    assert!(bodies.contains("OVERDUE: PAST THEIR SLA (2)"), "{bodies}");
    assert!(bodies.contains("CHANGES SINCE THE LAST RUN"));
    assert!(bodies.contains(&format!("History chain head (before this run): {head}")));
    assert!(bodies.contains("<svg") && bodies.contains("Trend: unwaived findings, last 3 runs"));

    let input = dir.join("2026-11-22T00:00:00Z.json");
    let r = run_with_env(
        &[
            "audit",
            "-i",
            input.to_str().unwrap(),
            "--now",
            "2026-11-29T00:00:00Z",
            "--config",
            c,
        ],
        &[],
    );
    let overdue = r
        .stdout
        .find("OVERDUE 2 findings past their SLA")
        .expect(&r.stdout);
    assert!(overdue < r.stdout.find("HIGH ").unwrap(), "{}", r.stdout);
    assert!(r
        .stdout
        .contains("CHANGES since the last run (2026-11-22T00:00:00Z)"));
    assert!(
        r.stdout.contains(", chain head before this run "),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("TREND unwaived findings over the last 4 runs"));
}

/// A finding whose rule did not run this time is neither confirmed nor resolved: it is listed
/// in `not_rechecked` and stays open, so that it is unchanged (not new) when the rule runs
/// again, and its age goes on.
fn findings_of_rules_that_did_not_run_keep_their_state(hist: &Hist) {
    let dir = hist.dir.path();
    let h = hist.location.as_str();
    let users = || vec![user("u1", true, "2026-11-20T00:00:00Z")];
    let w1 = week(dir, "2026-11-01T00:00:00Z", users(), &["--history", h], &[]);
    assert!(finding(&w1.doc, "sso-bypass", "u1").is_some());
    let w2 = week(
        dir,
        "2026-11-08T00:00:00Z",
        users(),
        &["--history", h, "--disable", "sso-bypass"],
        &[],
    );
    assert_eq!(w2.code, 0, "{}", w2.stderr);
    assert!(finding(&w2.doc, "sso-bypass", "u1").is_none());
    let kept = w2.doc["not_rechecked"].as_array().expect("not_rechecked");
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (&kept[0]["rule_id"], &kept[0]["baseline_status"]),
        (&json!("sso-bypass"), &json!("not_rechecked"))
    );
    let resolved = w2.doc["resolved"].as_array().unwrap();
    assert!(
        resolved.iter().all(|f| f["rule_id"] != "sso-bypass"),
        "never resolved: {resolved:?}"
    );
    // Twice in a row: still kept (read from the run before's not_rechecked list).
    let w3 = week(
        dir,
        "2026-11-15T00:00:00Z",
        users(),
        &["--history", h, "--disable", "sso-bypass"],
        &[],
    );
    assert_eq!(w3.doc["not_rechecked"][0]["subject"]["id"], "u1");
    let w4 = week(dir, "2026-11-22T00:00:00Z", users(), &["--history", h], &[]);
    let f = finding(&w4.doc, "sso-bypass", "u1").unwrap();
    assert_eq!(
        (&f["baseline_status"], &f["first_seen"], &f["age_days"]),
        (
            &json!("unchanged"),
            &json!("2026-11-01T00:00:00Z"),
            &json!(21)
        )
    );
    assert!(w4.doc.get("not_rechecked").is_none());
}

/// A history written by schema 1 (gzip, findings rows) opens with this version: the migration
/// builds the findings state from its runs' outputs, the chain still verifies, and the next
/// audit's lifecycles start from the old runs.
#[test]
fn a_schema_1_history_is_migrated() {
    use sha2::Digest;
    use std::io::Write;
    let hex = |b: &[u8]| {
        sha2::Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let dir = tempfile::tempdir().unwrap();
    let users = vec![user("u1", true, "2026-11-20T00:00:00Z")];
    let old = week(dir.path(), "2026-11-01T00:00:00Z", users.clone(), &[], &[]);
    let output = serde_json::to_string_pretty(&old.doc).unwrap() + "\n";
    let db = dir.path().join("v1.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, organization TEXT NOT NULL,
            audited_at TEXT NOT NULL, tool_version TEXT NOT NULL, source_sha256 TEXT NOT NULL,
            source_kind TEXT NOT NULL, findings INTEGER NOT NULL, unwaived INTEGER NOT NULL,
            output BLOB NOT NULL, snapshot BLOB, content_hash TEXT NOT NULL,
            prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
         CREATE INDEX runs_by_org ON runs (organization, audited_at);
         CREATE TABLE findings (run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            fingerprint TEXT NOT NULL, PRIMARY KEY (run_id, fingerprint)) WITHOUT ROWID;
         PRAGMA user_version = 1;",
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(output.as_bytes()).unwrap();
    let packed = gz.finish().unwrap();
    let content = hex(format!("{}\n\n", hex(output.as_bytes())).as_bytes());
    let genesis = "0".repeat(64);
    let hash = hex(format!("{genesis}\n{content}\n").as_bytes());
    let n = old.doc["findings"].as_array().unwrap().len() as i64;
    conn.execute(
        "INSERT INTO runs VALUES (1, 'default', '2026-11-01T00:00:00Z', '0.1.0', 'x', 'file', ?1, ?1, ?2, NULL, ?3, ?4, ?5)",
        rusqlite::params![n, packed, content, genesis, hash],
    )
    .unwrap();
    drop(conn);
    let h = db.to_str().unwrap();
    let v = run_with_env(&["history", "verify", "--history", h], &[]);
    assert_eq!(
        (v.code, v.stdout.trim()),
        (0, format!("history intact: 1 run, head {hash}").as_str()),
        "{}",
        v.stderr
    );
    let shown = run_with_env(&["history", "show", "latest", "--history", h], &[]);
    assert!(
        shown.stdout == output,
        "a gzip run is still shown byte for byte"
    );
    let w = week(
        dir.path(),
        "2026-11-08T00:00:00Z",
        users,
        &["--history", h],
        &[],
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let f = finding(&w.doc, "sso-bypass", "u1").unwrap();
    assert_eq!(
        (&f["baseline_status"], &f["first_seen"]),
        (&json!("unchanged"), &json!("2026-11-01T00:00:00Z"))
    );
    let v = run_with_env(&["history", "verify", "--history", h], &[]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

/// The schedules and CI examples keep a history instead of juggling baseline files, and their
/// gate works from the very first run: the GitHub and GitLab ones through ORGAUDIT_HISTORY (in
/// PostgreSQL, never actions/cache).
fn the_ci_examples_work_from_their_first_run(hist: &Hist) {
    for name in [
        "schedule/crontab",
        "schedule/orgaudit.service",
        "schedule/kubernetes-cronjob.yaml",
        "schedule/github-weekly-email.yml",
        "ci/github-actions.yml",
        "ci/gitlab-ci.yml",
    ] {
        let text = std::fs::read_to_string(common::example(name)).unwrap();
        assert!(
            !text.contains("--baseline"),
            "{name} juggles a baseline file"
        );
        assert!(
            text.contains("--history") || text.contains("ORGAUDIT_HISTORY"),
            "{name} keeps no history"
        );
        if name.contains("git") {
            assert!(!text.contains("uses: actions/cache"), "{name}");
            assert!(
                text.contains("PGPASSWORD"),
                "{name}: the password comes from PGPASSWORD"
            );
        }
    }
    // The CI examples' gate, with the bundled report instead of the fetch, twice.
    let input = common::example("acme-users-groups.json");
    let gate = |now: &str| {
        run_with_env(
            &[
                "audit",
                "-i",
                input.to_str().unwrap(),
                "--now",
                now,
                "--fail-on",
                "high",
                "--fail-on-new",
                "--format",
                "github",
            ],
            &[("ORGAUDIT_HISTORY", hist.location.as_str())],
        )
    };
    let first = gate("2026-11-23T06:00:00Z");
    assert_eq!(
        first.code, 1,
        "every high finding gates the first run: {}",
        first.stderr
    );
    assert!(first
        .stderr
        .contains("no previous run: gating on all findings"));
    let second = gate("2026-11-30T06:00:00Z");
    assert_eq!(second.code, 0, "nothing new: {}", second.stderr);
}

/// A history of a newer schema than this binary knows is refused (exit 3, outputs written),
/// never changed.
fn a_newer_schema_is_refused(hist: &Hist) {
    let input = common::example("acme-users-groups.json");
    let out = hist.dir.path().join("o.json");
    let args = [
        "audit",
        "-i",
        input.to_str().unwrap(),
        "--history",
        hist.location.as_str(),
        "-o",
        out.to_str().unwrap(),
    ];
    assert_eq!(run_with_env(&args, &[]).code, 0);
    match hist.kind {
        Kind::Sqlite => hist.tamper("PRAGMA user_version = 99"),
        Kind::Postgres => hist.tamper("UPDATE orgaudit_schema SET version = 99"),
    }
    std::fs::remove_file(&out).unwrap();
    let r = run_with_env(&args, &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("its schema is version 99, newer than this orgaudit knows"),
        "{}",
        r.stderr
    );
    assert!(out.is_file(), "the outputs are written");
    let list = run_with_env(
        &["history", "list", "--history", hist.location.as_str()],
        &[],
    );
    assert_eq!(
        list.code, 3,
        "still refused, never migrated: {}",
        list.stderr
    );
}

/// `config check` shows the history (never a password) and refuses a URL that holds one.
#[test]
fn config_check_shows_the_history_and_refuses_a_password_in_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "history: {location: 'postgres://auditor@db.example/h?sslmode=require', retention_days: 30}\nsla: {high: 7}\nfail_on_overdue: true\n",
    )
    .unwrap();
    let r = run_with_env(&["config", "check", "--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(
            "history: postgres://auditor@db.example/h?sslmode=require (retention 30 days, password in PGPASSWORD: "
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("sla: high 7 days (fail on overdue)"),
        "{}",
        r.stdout
    );
    std::fs::write(&cfg, "history: 'postgres://auditor:hunter2@db.example/h'\n").unwrap();
    let r = run_with_env(&["config", "check", "--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains(":1:10: a password in the history URL is refused"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("hunter2") && r.stdout.is_empty());
}
