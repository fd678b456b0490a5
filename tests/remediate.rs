//! `remediate plan` and `remediate apply` against a local HTTP server that keeps state like the
//! Telnyx API: the report, one user (`GET /organizations/users/{id}`), and the removal
//! (`POST /organizations/users/{id}/actions/remove`; a removed user is gone, an unknown id is a
//! 404). Faults are queued per user: 429 with `Retry-After`, 500, a lost answer, 401, a state
//! that changed after the plan, a process killed half-way.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{example, Run};
use serde_json::{json, Value};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The API key the server accepts; it must never be written anywhere.
const KEY: &str = "KEYsecret0123456789";
const NOW: &str = "2026-11-29T00:00:00Z";
const DAVE: &str = "7c2d9e10-0000-4a6b-8c3d-000000000004";
const ERIN: &str = "7c2d9e10-0000-4a6b-8c3d-000000000005";
const GRACE: &str = "7c2d9e10-0000-4a6b-8c3d-000000000007";

/// What the server does instead of answering normally, once, for one user's call.
#[derive(Clone, Debug)]
enum Fault {
    /// Answer this status (with `Retry-After` when given) without acting.
    Status(u16, Option<&'static str>),
    /// Act, then hold the answer this long (the client gives up first).
    ActThenStall(Duration),
}

#[derive(Default)]
struct State {
    users: Vec<Value>,
    /// `(post, user id, fault)`, used in order.
    faults: Vec<(bool, String, Fault)>,
    /// Every request: `GET id`, `POST id`, `REPORT`.
    log: Vec<String>,
}

#[derive(Clone)]
struct Api(Arc<Mutex<State>>);

impl Respond for Api {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != format!("Bearer {KEY}") {
            return ResponseTemplate::new(401).set_body_json(
                json!({"errors": [{"code": "10009", "title": "Authentication failed"}]}),
            );
        }
        let path = request.url.path().to_string();
        let post = request.method.as_str() == "POST";
        if path == "/v2/organizations/users/users_groups_report" {
            s.log.push("REPORT".into());
            return ResponseTemplate::new(200).set_body_json(json!({ "data": s.users }));
        }
        let rest = path.strip_prefix("/v2/organizations/users/").unwrap_or("");
        let (id, remove) = match rest.strip_suffix("/actions/remove") {
            Some(id) => (id.to_string(), true),
            None => (rest.to_string(), false),
        };
        if remove != post || id.is_empty() || id.contains('/') {
            return ResponseTemplate::new(404);
        }
        if !remove {
            assert_eq!(
                request.url.query(),
                Some("include_groups=true"),
                "a user is read with its groups"
            );
        }
        s.log
            .push(format!("{} {id}", if post { "POST" } else { "GET" }));
        let fault = s
            .faults
            .iter()
            .position(|(p, u, _)| *p == post && *u == id)
            .map(|i| s.faults.remove(i).2);
        let mut stall = None;
        match fault {
            Some(Fault::Status(status, retry_after)) => {
                let mut r = ResponseTemplate::new(status).set_body_json(
                    json!({"errors": [{"title": format!("fault {status}"), "detail": format!("not with key {KEY}")}]}),
                );
                if let Some(after) = retry_after {
                    r = r.insert_header("retry-after", after);
                }
                return r;
            }
            Some(Fault::ActThenStall(d)) => stall = Some(d),
            None => {}
        }
        let at = s.users.iter().position(|u| u["id"] == id.as_str());
        let response = match (at, post) {
            (None, _) => ResponseTemplate::new(404)
                .set_body_json(json!({"errors": [{"title": "Resource not found"}]})),
            (Some(i), false) => {
                ResponseTemplate::new(200).set_body_json(json!({"data": s.users[i]}))
            }
            (Some(i), true) => {
                let gone = s.users.remove(i);
                ResponseTemplate::new(200).set_body_json(json!({"data": gone}))
            }
        };
        match stall {
            Some(d) => response.set_delay(d),
            None => response,
        }
    }
}

/// A server holding `users`.
async fn server(users: Vec<Value>) -> (MockServer, Api) {
    let server = MockServer::start().await;
    let api = Api(Arc::new(Mutex::new(State {
        users,
        ..State::default()
    })));
    Mock::given(wiremock::matchers::any())
        .respond_with(api.clone())
        .mount(&server)
        .await;
    (server, api)
}

fn acme() -> Vec<Value> {
    let text = std::fs::read_to_string(example("acme-users-groups.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["data"].as_array().unwrap().clone()
}

impl Api {
    fn log(&self) -> Vec<String> {
        self.0.lock().unwrap().log.clone()
    }
    fn posts(&self, id: &str) -> usize {
        self.log()
            .iter()
            .filter(|l| **l == format!("POST {id}"))
            .count()
    }
    fn all_posts(&self) -> usize {
        self.log().iter().filter(|l| l.starts_with("POST")).count()
    }
    fn has(&self, id: &str) -> bool {
        self.0.lock().unwrap().users.iter().any(|u| u["id"] == id)
    }
    fn fault(&self, post: bool, id: &str, f: Fault) {
        self.0
            .lock()
            .unwrap()
            .faults
            .push((post, id.to_string(), f));
    }
    fn edit(&self, id: &str, f: impl FnOnce(&mut Value)) {
        let mut s = self.0.lock().unwrap();
        let u = s.users.iter_mut().find(|u| u["id"] == id).unwrap();
        f(u);
    }
}

/// Runs the binary in `dir` off the async runtime, with only `env` (and the key, and the
/// server's URL); what it prints must never hold the key.
async fn orgaudit(dir: &Path, server: &MockServer, args: &[&str], env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("TELNYX_API_KEY".into(), KEY.into()));
    env.push(("TELNYX_BASE_URL".into(), format!("{}/v2", server.uri())));
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = common::run_isolated(&dir, &args, &env);
        assert!(
            !format!("{}{}", r.stdout, r.stderr).contains(KEY),
            "the key leaked:\n{}{}",
            r.stdout,
            r.stderr
        );
        r
    })
    .await
    .unwrap()
}

/// `remediate apply orgaudit-plan.json` with `extra`.
async fn apply(dir: &Path, server: &MockServer, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args = vec!["remediate", "apply", "orgaudit-plan.json"];
    args.extend_from_slice(extra);
    orgaudit(dir, server, &args, env).await
}

/// `remediate plan` from the server's report, with the example's time.
async fn plan(dir: &Path, server: &MockServer, extra: &[&str], env: &[(&str, &str)]) -> PathBuf {
    let mut args = vec!["remediate", "plan", "--fetch", "--now", NOW];
    args.extend_from_slice(extra);
    let r = orgaudit(dir, server, &args, env).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let p = dir.join("orgaudit-plan.json");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(!text.contains(KEY));
    p
}

fn journal(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("orgaudit-plan.json.journal.jsonl")).unwrap();
    assert!(!text.contains(KEY), "the key is in the journal");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events<'a>(journal: &'a [Value], id: &str) -> Vec<&'a str> {
    journal
        .iter()
        .filter(|r| r["user_id"] == id)
        .map(|r| r["event"].as_str().unwrap())
        .collect()
}

fn summary(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", r.stdout, r.stderr))
}

/// `remediate apply --execute --yes -f json`: its summary, after checking its exit status.
async fn executed(dir: &Path, server: &MockServer, code: i32) -> Value {
    let r = apply(dir, server, &["--execute", "--yes", "-f", "json"], &[]).await;
    assert_eq!(r.code, code, "{}", r.stderr);
    summary(&r)
}

/// The reason the summary gives for a user.
fn reason(s: &Value, id: &str) -> String {
    outcome_of(s, id)["reason"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn outcome_of<'a>(s: &'a Value, id: &str) -> &'a Value {
    s["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {s}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_review_apply_removes_exactly_the_planned_users_and_journals_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api) = server(acme()).await;
    let p = plan(dir.path(), &server, &[], &[]).await;
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let planned: Vec<&str> = doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["user"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(planned, [DAVE, ERIN, GRACE]);
    assert_eq!(
        doc["actions"][0]["findings"][0]["rule_id"],
        "disabled-user-in-groups"
    );
    assert_eq!(
        doc["actions"][0]["findings"][0]["rule_version"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert_eq!(
        doc["actions"][0]["user"]["groups"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        doc["organization"]["owner_ids"],
        json!([
            "7c2d9e10-0000-4a6b-8c3d-000000000001",
            "7c2d9e10-0000-4a6b-8c3d-000000000002"
        ])
    );
    assert_eq!(doc["signature"]["algorithm"], "sha256");
    // Manual items (SSO bypass, stale sign-ins) are a checklist with the portal steps.
    assert!(doc["manual"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["rule_id"] == "sso-bypass"));
    let md = std::fs::read_to_string(dir.path().join("orgaudit-plan.md")).unwrap();
    assert!(md.contains("irreversible"), "{md}");
    assert!(
        md.contains("### HIGH Active sub-user may bypass SSO (`sso-bypass`), 1 finding\n"),
        "{md}"
    );
    assert!(md.contains(
        "- [ ] carol@acme.example (`7c2d9e10-0000-4a6b-8c3d-000000000003`): carol@acme.example is active"
    ));
    assert!(
        md.contains("| dave@acme.example | `7c2d9e10-0000-4a6b-8c3d-000000000004` | disabled |")
    );
    // A manual item is a rule with its steps and its findings.
    let sso = doc["manual"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["rule_id"] == "stale-sign-in")
        .unwrap();
    assert_eq!(sso["findings"].as_array().unwrap().len(), 2);
    assert!(sso["steps"][0].as_str().unwrap().contains("open its users"));
    assert!(sso["steps"][1]
        .as_str()
        .unwrap()
        .starts_with("Confirm the user still needs access"));

    // The dry run reads, and changes nothing.
    let r = apply(dir.path(), &server, &["-f", "json"], &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = summary(&r);
    assert_eq!(s["execute"], false);
    assert_eq!(s["counts"]["would_remove"], 3);
    assert_eq!(api.all_posts(), 0);
    assert!(!dir.path().join("orgaudit-plan.json.journal.jsonl").exists());

    // Without a terminal, --execute needs --yes: refused before any request.
    let before = api.log().len();
    let r = apply(dir.path(), &server, &["--execute"], &[]).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("add --yes"), "{}", r.stderr);
    assert_eq!(api.log().len(), before);

    let exec = [
        "-f",
        "json",
        "--execute",
        "--yes",
        "--approved-by",
        "Ada Lovelace",
    ];
    let r = apply(dir.path(), &server, &exec, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = summary(&r);
    assert_eq!(s["counts"]["removed"], 3, "{s}");
    assert_eq!(s["counts"]["refused"], 0);
    for id in [DAVE, ERIN, GRACE] {
        assert!(!api.has(id));
        assert_eq!(api.posts(id), 1);
        assert_eq!(outcome_of(&s, id)["outcome"], "removed");
    }
    assert_eq!(api.all_posts(), 3);
    assert!(
        api.has("7c2d9e10-0000-4a6b-8c3d-000000000006"),
        "frank stays"
    );

    let j = journal(dir.path());
    for id in [DAVE, ERIN, GRACE] {
        assert_eq!(events(&j, id), ["planned", "sending", "removed"]);
    }
    let removed = j
        .iter()
        .find(|r| r["event"] == "removed" && r["user_id"] == DAVE)
        .unwrap();
    // The full record, to invite the person again by hand.
    assert_eq!(removed["user"]["email"], "dave@acme.example");
    assert_eq!(removed["user"]["user_status"], "disabled");
    assert_eq!(removed["user"]["groups"][2]["name"], "Legacy Integrations");
    assert_eq!(j[0]["event"], "run_started");
    assert_eq!(j[0]["approved_by"], "Ada Lovelace");
    assert_eq!(j.last().unwrap()["event"], "run_finished");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("orgaudit-plan.json.journal.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Applying it again sends nothing: the journal says they are removed.
    let r = apply(dir.path(), &server, &exec, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(summary(&r)["counts"]["already_removed"], 3);
    assert_eq!(api.all_posts(), 3);

    // The text summary.
    let r = apply(dir.path(), &server, &[], &[]).await;
    assert!(
        r.stdout
            .contains("Dry run (nothing changed) of the plan for"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("dave@acme.example"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("0 removed, 3 already removed, 0 skipped, 0 refused, 0 failed"),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("  dave@acme.example   already removed   removed by an earlier run"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_server_errors_and_lost_answers_are_retried_without_a_second_removal() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api) = server(acme()).await;
    plan(dir.path(), &server, &[], &[]).await;
    api.fault(true, DAVE, Fault::Status(429, Some("1")));
    api.fault(true, ERIN, Fault::Status(500, None));
    // The removal happens, its answer never comes within the timeout.
    api.fault(true, GRACE, Fault::ActThenStall(Duration::from_secs(5)));
    let r = apply(
        dir.path(),
        &server,
        &["--execute", "--yes", "-f", "json", "--timeout", "1", "-v"],
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = summary(&r);
    assert_eq!(s["counts"]["removed"], 3, "{s}");
    // 429: sent again after Retry-After; 500: the user read, still there, sent again.
    assert_eq!(api.posts(DAVE), 2);
    assert_eq!(api.posts(ERIN), 2);
    // Lost answer: the user read again, gone: never sent twice.
    assert_eq!(api.posts(GRACE), 1);
    assert!(reason(&s, GRACE).contains("reading the user again found it gone"));
    assert!(
        r.stderr.contains("HTTP 429") || r.stderr.contains("fault 429"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("trying again in 1.0 s"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_mid_way_stops_the_run_and_a_422_is_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api) = server(acme()).await;
    plan(dir.path(), &server, &[], &[]).await;
    api.fault(true, ERIN, Fault::Status(401, None));
    let s = executed(dir.path(), &server, 3).await;
    assert_eq!(outcome_of(&s, DAVE)["outcome"], "removed");
    assert_eq!(outcome_of(&s, ERIN)["outcome"], "failed");
    assert_eq!(outcome_of(&s, GRACE)["outcome"], "not_attempted");
    assert!(s["stopped"].as_str().unwrap().contains("HTTP 401"), "{s}");
    assert!(api.has(GRACE));
    assert_eq!(api.posts(GRACE), 0);
    assert_eq!(
        api.log().iter().filter(|l| l.ends_with(GRACE)).count(),
        0,
        "nothing after the 401"
    );
    let j = journal(dir.path());
    assert_eq!(events(&j, ERIN), ["planned", "sending", "failed"]);
    assert!(j.iter().any(|r| r["event"] == "stopped"));

    // The resumed run: dave is done, erin's removal is refused by the API (4xx): exit 1,
    // grace is removed.
    api.fault(true, ERIN, Fault::Status(422, None));
    let s = executed(dir.path(), &server, 1).await;
    assert_eq!(outcome_of(&s, DAVE)["outcome"], "already_removed");
    assert_eq!(outcome_of(&s, ERIN)["outcome"], "failed");
    assert!(reason(&s, ERIN).contains("HTTP 422"));
    assert_eq!(outcome_of(&s, GRACE)["outcome"], "removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_that_changed_since_the_plan_are_skipped_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api) = server(acme()).await;
    plan(dir.path(), &server, &[], &[]).await;
    api.edit(DAVE, |u| u["user_status"] = json!("enabled"));
    api.edit(ERIN, |u| u["record_type"] = json!("organization_owner"));
    api.edit(GRACE, |u| {
        u["last_sign_in_at"] = json!("2026-12-01T10:00:00Z");
        u["groups"] = json!([]);
    });
    let s = executed(dir.path(), &server, 0).await;
    assert_eq!(s["counts"]["skipped"], 3, "{s}");
    let reason = |id| outcome_of(&s, id)["reason"].as_str().unwrap().to_string();
    assert!(
        reason(DAVE).contains("re-enabled (was disabled)"),
        "{}",
        reason(DAVE)
    );
    assert!(reason(ERIN).contains("became an owner"), "{}", reason(ERIN));
    assert!(
        reason(GRACE).contains("signed in since the plan"),
        "{}",
        reason(GRACE)
    );
    assert!(reason(GRACE).contains("moved groups (0 added, 1 removed)"));
    assert_eq!(api.all_posts(), 0);
}

/// A report of owners and disabled users in groups, unused for a year.
fn org_with(owners: &[(&str, &str)], disabled: usize) -> Vec<Value> {
    let mut users: Vec<Value> = owners
        .iter()
        .map(|(id, status)| {
            json!({"id": id, "record_type": "organization_owner", "email": format!("{id}@acme.example"),
                   "user_status": status, "created_at": "2020-01-01T00:00:00Z",
                   "last_sign_in_at": "2025-01-01T00:00:00Z", "groups": [{"id": "g1", "name": "Admins"}]})
        })
        .collect();
    for i in 0..disabled {
        users.push(
            json!({"id": format!("d{i}"), "record_type": "organization_sub_user",
            "email": format!("d{i}@acme.example"), "user_status": "disabled",
            "created_at": "2020-01-01T00:00:00Z", "last_sign_in_at": "2025-01-01T00:00:00Z",
            "groups": [{"id": "g2", "name": "Support"}]}),
        );
    }
    users
}

#[tokio::test(flavor = "multi_thread")]
async fn owners_are_refused_in_the_plan_and_never_removed() {
    // A disabled owner beside an active one; then the last owner, disabled.
    for (owners, reason) in [
        (
            vec![("o1", "enabled"), ("o2", "disabled")],
            "an organization owner: owners are never removed",
        ),
        (vec![("o2", "disabled")], "the organization's last owner"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (server, api) = server(org_with(&owners, 1)).await;
        plan(dir.path(), &server, &[], &[]).await;
        let doc: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("orgaudit-plan.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(doc["refused"][0]["user"]["id"], "o2");
        assert!(
            doc["refused"][0]["reason"]
                .as_str()
                .unwrap()
                .contains(reason),
            "{doc}"
        );
        assert_eq!(doc["actions"].as_array().unwrap().len(), 1);
        let md = std::fs::read_to_string(dir.path().join("orgaudit-plan.md")).unwrap();
        assert!(md.contains("**refused**"), "{md}");
        let r = apply(
            dir.path(),
            &server,
            &["--execute", "--yes", "-f", "json"],
            &[],
        )
        .await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let s = summary(&r);
        assert_eq!(outcome_of(&s, "o2")["outcome"], "refused");
        assert_eq!(outcome_of(&s, "d0")["outcome"], "removed");
        assert_eq!(api.posts("o2"), 0);
        assert!(api.has("o2"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn edited_plans_are_refused_and_a_key_makes_the_signature_an_hmac() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api) = server(acme()).await;
    let p = plan(dir.path(), &server, &[], &[]).await;
    let text = std::fs::read_to_string(&p).unwrap();
    // An accidental edit: the sha256 no longer matches.
    std::fs::write(&p, text.replace("dave@acme.example", "dave@evil.example")).unwrap();
    let r = apply(dir.path(), &server, &["--execute", "--yes"], &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("was edited after `remediate plan` wrote it"),
        "{}",
        r.stderr
    );
    // Not a plan at all, or broken JSON: the file and the place.
    std::fs::write(
        &p,
        "{\"kind\": \"orgaudit-remediation-plan\",\n \"format\": 1,",
    )
    .unwrap();
    let r = apply(dir.path(), &server, &["--execute", "--yes"], &[]).await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("orgaudit-plan.json: not a remediation plan: invalid JSON at line 2"),
        "{}",
        r.stderr
    );
    assert!(
        api.log().iter().all(|l| l == "REPORT"),
        "no call for a bad plan"
    );

    // With ORGAUDIT_PLAN_KEY, an HMAC: the plan needs the same key to be applied.
    let key = [("ORGAUDIT_PLAN_KEY", "plan-key-1")];
    plan(dir.path(), &server, &[], &key).await;
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    assert_eq!(doc["signature"]["algorithm"], "hmac-sha256");
    let r = apply(dir.path(), &server, &[], &[]).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("set ORGAUDIT_PLAN_KEY"), "{}", r.stderr);
    let r = apply(dir.path(), &server, &[], &[("ORGAUDIT_PLAN_KEY", "other")]).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("was edited"), "{}", r.stderr);
    let r = apply(dir.path(), &server, &[], &key).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A deliberate edit re-signed with a bare sha256 (anyone can: orgaudit's own library does
    // it) passes without the key, never with it.
    let mut forged: orgaudit::remediate::Plan = serde_json::from_value(doc.clone()).unwrap();
    forged.actions.truncate(1);
    forged.sign(None);
    std::fs::write(&p, serde_json::to_string_pretty(&forged).unwrap()).unwrap();
    let r = apply(dir.path(), &server, &["-f", "json"], &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(summary(&r)["counts"]["would_remove"], 1);
    let r = apply(dir.path(), &server, &[], &key).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("carries only a sha256"), "{}", r.stderr);
    assert_eq!(api.all_posts(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cap_the_age_and_the_selection_are_checked_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api) = server(acme()).await;
    plan(dir.path(), &server, &[], &[]).await;
    let calls = api.log().len();
    let r = apply(
        dir.path(),
        &server,
        &["--execute", "--yes", "--max", "2"],
        &[],
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("would remove 3 users, more than --max 2"),
        "{}",
        r.stderr
    );
    // The configuration's cap.
    std::fs::write(
        dir.path().join("cfg.yaml"),
        "remediate:\n  max_removals: 1\n",
    )
    .unwrap();
    let r = apply(
        dir.path(),
        &server,
        &["--execute", "--yes", "--config", "cfg.yaml"],
        &[],
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("more than --max 1"), "{}", r.stderr);
    let later = (chrono::Utc::now() + chrono::Duration::days(8)).to_rfc3339();
    let r = apply(
        dir.path(),
        &server,
        &["--execute", "--yes", "--now", &later],
        &[],
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("more than --max-age 7 days ago"),
        "{}",
        r.stderr
    );
    let r = apply(
        dir.path(),
        &server,
        &[
            "--execute",
            "--yes",
            "--only",
            "7c2d9e10-0000-4a6b-8c3d-00000000004",
        ],
        &[],
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean"), "{}", r.stderr);
    assert_eq!(api.log().len(), calls, "no request for a refused run");

    // Part of the plan, within the cap.
    let r = apply(
        dir.path(),
        &server,
        &[
            "--execute",
            "--yes",
            "--max",
            "1",
            "--only",
            ERIN,
            "-f",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = summary(&r);
    assert_eq!(outcome_of(&s, ERIN)["outcome"], "removed");
    assert_eq!(outcome_of(&s, DAVE)["outcome"], "skipped");
    assert_eq!(api.all_posts(), 1);
    let r = apply(
        dir.path(),
        &server,
        &["--execute", "--yes", "--exclude", GRACE, "-f", "json"],
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = summary(&r);
    assert_eq!(outcome_of(&s, DAVE)["outcome"], "removed");
    assert_eq!(outcome_of(&s, ERIN)["outcome"], "already_removed");
    assert_eq!(outcome_of(&s, GRACE)["outcome"], "skipped");
    assert!(api.has(GRACE));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_is_never_applied_to_another_organization() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server(acme()).await;
    plan(dir.path(), &server, &[], &[]).await;
    // Another organization: the same users but none of the plan's owners.
    let others: Vec<Value> = acme()
        .into_iter()
        .filter(|u| u["record_type"] != "organization_owner")
        .collect();
    let (other, api) = self::server(others).await;
    let r = apply(dir.path(), &other, &["--execute", "--yes"], &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("is unknown to the API with this key"),
        "{}",
        r.stderr
    );
    assert_eq!(api.all_posts(), 0);

    // More than 3 planned users missing: stopped.
    let dir = tempfile::tempdir().unwrap();
    let (server, api) = self::server(org_with(&[("o1", "enabled")], 6)).await;
    plan(dir.path(), &server, &[], &[]).await;
    api.0.lock().unwrap().users.retain(|u| u["id"] == "o1");
    let r = apply(
        dir.path(),
        &server,
        &["--execute", "--yes", "--max", "10", "-f", "json"],
        &[],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let s = summary(&r);
    assert_eq!(s["counts"]["absent"], 4, "{s}");
    assert_eq!(s["counts"]["removed"], 0);
    assert_eq!(s["counts"]["not_attempted"], 2);
    assert!(s["stopped"]
        .as_str()
        .unwrap()
        .contains("another organization's"));
    assert_eq!(api.all_posts(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_removal_resumes_without_sending_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api) = server(acme()).await;
    plan(dir.path(), &server, &[], &[]).await;
    // Erin's removal happens on the server; its answer takes a minute: the process is killed
    // while it waits.
    api.fault(true, ERIN, Fault::ActThenStall(Duration::from_secs(60)));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_orgaudit"))
        .current_dir(dir.path())
        .args([
            "remediate",
            "apply",
            "orgaudit-plan.json",
            "--execute",
            "--yes",
            "--timeout",
            "120",
        ])
        .env_clear()
        .env("TELNYX_API_KEY", KEY)
        .env("TELNYX_BASE_URL", format!("{}/v2", server.uri()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal_path = dir.path().join("orgaudit-plan.json.journal.jsonl");
    let mut waited = 0;
    loop {
        let sent = std::fs::read_to_string(&journal_path)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("\"sending\"") && l.contains(ERIN));
        if sent && api.posts(ERIN) == 1 {
            break;
        }
        assert!(waited < 600, "the removal was never sent");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let j = journal(dir.path());
    assert_eq!(events(&j, DAVE), ["planned", "sending", "removed"]);
    assert_eq!(
        events(&j, ERIN),
        ["planned", "sending"],
        "the journal shows the call in flight"
    );
    assert!(!api.has(ERIN));

    let s = executed(dir.path(), &server, 0).await;
    assert_eq!(outcome_of(&s, DAVE)["outcome"], "already_removed");
    assert_eq!(outcome_of(&s, ERIN)["outcome"], "removed");
    assert!(reason(&s, ERIN).contains("an earlier run sent the removal"));
    assert_eq!(outcome_of(&s, GRACE)["outcome"], "removed");
    assert_eq!(api.posts(DAVE), 1);
    assert_eq!(api.posts(ERIN), 1, "no second removal");
    assert_eq!(api.posts(GRACE), 1);
}

/// Applies a plan with `--history LOCATION`: the history holds the journal line for line, and
/// `history forget` takes a person's records out of it.
async fn the_journal_is_kept_in(history: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server(acme()).await;
    let p = plan(dir.path(), &server, &[], &[]).await;
    // A PostgreSQL history's password comes from the environment, as in production.
    let password = std::env::var("PGPASSWORD").unwrap_or_default();
    let env = [("PGPASSWORD", password.as_str())];
    let args = ["--execute", "--yes", "--history", history];
    let r = apply(dir.path(), &server, &args, &env).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let id = doc["signature"]["value"].as_str().unwrap();
    // The store's client blocks (PostgreSQL's runs a runtime of its own): off the async one.
    let journal_of = |id: &str| {
        tokio::task::block_in_place(|| {
            let mut store = orgaudit::history::Location::parse(history)
                .unwrap()
                .open()
                .unwrap();
            store.journal(id).unwrap()
        })
    };
    let stored = journal_of(id);
    let file =
        std::fs::read_to_string(dir.path().join("orgaudit-plan.json.journal.jsonl")).unwrap();
    assert_eq!(stored, file.lines().collect::<Vec<_>>());
    assert!(stored.iter().any(|r| r.contains("\"removed\"")));
    let forget = [
        "history",
        "forget",
        "--user",
        "dave@acme.example",
        "--history",
        history,
    ];
    let r = orgaudit(dir.path(), &server, &forget, &env).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let stored = journal_of(id);
    assert!(stored.iter().all(|r| !r.contains("dave@acme.example")));
    assert!(stored.iter().any(|r| r.contains("erin@acme.example")));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_journal_is_kept_in_a_sqlite_history() {
    let dir = tempfile::tempdir().unwrap();
    the_journal_is_kept_in(dir.path().join("h.db").to_str().unwrap()).await;
}

#[test]
fn the_journal_is_kept_in_a_postgresql_history() {
    // Made and dropped outside the async runtime: the PostgreSQL client blocks.
    let Some(db) = common::pg::Database::create("the PostgreSQL journal test") else {
        return;
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(the_journal_is_kept_in(&db.url));
}

/// The README's try-it command: a plan of the bundled example, without a key or a network.
#[test]
fn the_readme_plan_of_the_bundled_example() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("orgaudit remediate plan --input examples/"))
        .expect("the README's remediate plan example");
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = line
        .split_whitespace()
        .skip(1)
        .map(|a| match a.strip_prefix("examples/") {
            Some(f) => common::example_arg(f),
            None => a.to_string(),
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = common::run_isolated(dir.path(), &args, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("3 users to remove, 0 refused, 10 findings to fix by hand"),
        "{}",
        r.stdout
    );
    assert!(dir.path().join("orgaudit-plan.json").is_file());
    assert!(dir.path().join("orgaudit-plan.md").is_file());
}
