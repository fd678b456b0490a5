//! Each built-in rule on both sides of its boundary, through the library API.

use chrono::{DateTime, Duration, Utc};
use orgaudit::rules::RuleSet;
use orgaudit::{audit, source};
use serde_json::{json, Value};

const NOW: &str = "2026-06-01T00:00:00Z";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

fn ago(d: Duration) -> String {
    (now() - d).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A user record with harmless defaults; `over` replaces fields.
fn user(id: &str, over: Value) -> Value {
    let mut u = json!({
        "id": id,
        "record_type": "organization_sub_user",
        "email": format!("{id}@acme.example"),
        "user_status": "enabled",
        "organization_user_bypasses_sso": false,
        "created_at": ago(Duration::days(400)),
        "last_sign_in_at": ago(Duration::days(1)),
        "groups": [{"id": "g-eng", "name": "Engineering"}],
    });
    for (k, v) in over.as_object().unwrap() {
        u[k] = v.clone();
    }
    u
}

fn owner() -> Value {
    user(
        "owner",
        json!({"record_type": "organization_owner", "groups": []}),
    )
}

/// (rule id, subject id) of every finding of `rule` for these users (plus an active owner
/// unless `with_owner` is false).
fn fired_with(rule: &str, users: Vec<Value>, sets: &[&str]) -> Vec<String> {
    let body = json!({ "data": users }).to_string();
    let loaded = source::from_bytes(body.as_bytes(), "test.json").unwrap();
    let mut rules = RuleSet::builtin();
    for s in sets {
        rules.apply_set(s).unwrap();
    }
    let report = audit(&loaded, &rules, now()).unwrap();
    report
        .findings
        .iter()
        .filter(|f| f.rule_id == rule)
        .map(|f| f.subject.id.clone())
        .collect()
}

fn fired(rule: &str, mut users: Vec<Value>) -> Vec<String> {
    users.push(owner());
    fired_with(rule, users, &[])
}

#[test]
fn stale_sign_in_is_strictly_older_than_90_days() {
    let exactly = user(
        "exactly",
        json!({"last_sign_in_at": ago(Duration::days(90))}),
    );
    let older = user(
        "older",
        json!({"last_sign_in_at": ago(Duration::days(90) + Duration::milliseconds(1))}),
    );
    let never = user("never", json!({"last_sign_in_at": null}));
    let disabled = user(
        "disabled",
        json!({"user_status": "disabled", "last_sign_in_at": ago(Duration::days(200))}),
    );
    assert_eq!(
        fired("stale-sign-in", vec![exactly, older, never, disabled]),
        ["older"]
    );
}

#[test]
fn stale_sign_in_threshold_is_a_param() {
    let u = user("u", json!({"last_sign_in_at": ago(Duration::days(61))}));
    assert!(fired("stale-sign-in", vec![u.clone()]).is_empty());
    assert_eq!(
        fired_with(
            "stale-sign-in",
            vec![u, owner()],
            &["stale-sign-in.stale_after_days=60"]
        ),
        ["u"]
    );
}

#[test]
fn never_signed_in_after_the_grace_period() {
    let within = user(
        "within",
        json!({"last_sign_in_at": null, "created_at": ago(Duration::days(30))}),
    );
    let past = user(
        "past",
        json!({"last_sign_in_at": null, "created_at": ago(Duration::days(30) + Duration::seconds(1))}),
    );
    let signed_in = user("signed", json!({"created_at": ago(Duration::days(300))}));
    let blocked = user(
        "blocked",
        json!({"last_sign_in_at": null, "user_status": "blocked"}),
    );
    assert_eq!(
        fired("never-signed-in", vec![within, past, signed_in, blocked]),
        ["past"]
    );
}

#[test]
fn sso_bypass_for_active_sub_users_and_owners_separately() {
    let sub = user("sub", json!({"organization_user_bypasses_sso": true}));
    let off = user("off", json!({"organization_user_bypasses_sso": false}));
    let absent = {
        let mut u = user("absent", json!({}));
        u.as_object_mut()
            .unwrap()
            .remove("organization_user_bypasses_sso");
        u
    };
    let disabled = user(
        "disabled",
        json!({"organization_user_bypasses_sso": true, "user_status": "disabled"}),
    );
    let boss = user(
        "boss",
        json!({"organization_user_bypasses_sso": true, "record_type": "organization_owner"}),
    );
    let users = vec![sub, off, absent, disabled, boss];
    assert_eq!(fired("sso-bypass", users.clone()), ["sub"]);
    assert_eq!(fired("owner-sso-bypass", users), ["boss"]);
}

#[test]
fn disabled_or_blocked_users_in_groups() {
    let disabled = user("disabled", json!({"user_status": "disabled"}));
    let blocked = user("blocked", json!({"user_status": "blocked"}));
    let no_groups = user("nogroups", json!({"user_status": "disabled", "groups": []}));
    let enabled = user("enabled", json!({}));
    let unknown = user("unknown", json!({"user_status": "suspended"}));
    assert_eq!(
        fired(
            "disabled-user-in-groups",
            vec![disabled, blocked, no_groups, enabled, unknown]
        ),
        ["blocked", "disabled"]
    );
}

#[test]
fn ungrouped_active_sub_users() {
    let alone = user("alone", json!({"groups": []}));
    let grouped = user("grouped", json!({}));
    let disabled = user("disabled", json!({"groups": [], "user_status": "disabled"}));
    // The owner has no groups either, and is not a sub-user.
    assert_eq!(
        fired("ungrouped-user", vec![alone, grouped, disabled]),
        ["alone"]
    );
}

#[test]
fn duplicate_emails_compare_trimmed_and_lower_cased() {
    let a = user("a", json!({"email": "Pat@Acme.example"}));
    let b = user("b", json!({"email": " pat@acme.example "}));
    let c = user(
        "c",
        json!({"email": "pat@acme.example", "user_status": "disabled"}),
    );
    let d = user("d", json!({"email": "someone@acme.example"}));
    assert_eq!(fired("duplicate-email", vec![a, b, c, d]), ["a", "b", "c"]);
}

#[test]
fn duplicate_email_evidence_names_the_other_records() {
    let body = json!({"data": [
        user("a", json!({"email": "x@acme.example"})),
        user("b", json!({"email": "X@acme.example"})),
        user("c", json!({"email": "x@acme.example"})),
        owner(),
    ]})
    .to_string();
    let loaded = source::from_bytes(body.as_bytes(), "t.json").unwrap();
    let report = audit(&loaded, &RuleSet::builtin(), now()).unwrap();
    let f = report
        .findings
        .iter()
        .find(|f| f.rule_id == "duplicate-email" && f.subject.id == "b")
        .unwrap();
    assert_eq!(
        f.evidence["email_normalized_shared_with"],
        json!([{"id": "a", "email": "x@acme.example"}, {"id": "c", "email": "x@acme.example"}])
    );
    assert_eq!(f.evidence["email_normalized"], "x@acme.example");
    assert_eq!(
        f.message,
        "X@acme.example is also the email of 2 other user record(s)"
    );
}

#[test]
fn external_domains_only_when_allowed_domains_is_set() {
    let users = || {
        vec![
            user("inside", json!({"email": "a@ACME.example"})),
            user("outside", json!({"email": "a@gmail.example"})),
            user("sub", json!({"email": "a@eng.acme.example"})),
            user(
                "gone",
                json!({"email": "b@gmail.example", "user_status": "disabled"}),
            ),
            owner(),
        ]
    };
    assert!(fired_with("external-email-domain", users(), &[]).is_empty());
    assert_eq!(
        fired_with(
            "external-email-domain",
            users(),
            &["external-email-domain.allowed_domains=[Acme.Example]"]
        ),
        ["outside", "sub"]
    );
}

#[test]
fn sign_in_before_creation_is_strict() {
    let t = ago(Duration::days(10));
    let same = user("same", json!({"created_at": t, "last_sign_in_at": t}));
    let before = user(
        "before",
        json!({"created_at": t, "last_sign_in_at": ago(Duration::days(10) + Duration::milliseconds(1))}),
    );
    let never = user("never", json!({"created_at": t, "last_sign_in_at": null}));
    assert_eq!(
        fired("sign-in-before-creation", vec![same, before, never]),
        ["before"]
    );
}

#[test]
fn groups_without_active_members() {
    let g = |id: &str| json!([{"id": id, "name": id.to_uppercase()}]);
    let users = vec![
        user("a", json!({"groups": g("g-mixed")})),
        user(
            "b",
            json!({"groups": g("g-mixed"), "user_status": "disabled"}),
        ),
        user(
            "c",
            json!({"groups": g("g-dead"), "user_status": "disabled"}),
        ),
        user(
            "d",
            json!({"groups": g("g-dead"), "user_status": "blocked"}),
        ),
    ];
    assert_eq!(fired("group-without-active-members", users), ["g-dead"]);
}

#[test]
fn no_active_owner() {
    let sub = user("sub", json!({}));
    let disabled_owner = user(
        "o1",
        json!({"record_type": "organization_owner", "user_status": "disabled"}),
    );
    assert_eq!(
        fired_with("no-active-owner", vec![sub.clone(), disabled_owner], &[]),
        ["organization"]
    );
    assert_eq!(
        fired_with("no-active-owner", vec![sub.clone()], &[]),
        ["organization"]
    );
    assert!(fired_with("no-active-owner", vec![sub, owner()], &[]).is_empty());
}

#[test]
fn every_finding_has_a_message_and_evidence() {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/acme-users-groups.json"
    ))
    .unwrap();
    let loaded = source::from_bytes(&body, "acme").unwrap();
    let mut rules = RuleSet::builtin();
    rules
        .apply_set("external-email-domain.allowed_domains=[acme.example]")
        .unwrap();
    let report = audit(&loaded, &rules, now()).unwrap();
    for f in &report.findings {
        assert!(!f.evidence.is_empty(), "{} has no evidence", f.rule_id);
        assert!(!f.message.contains("{{"), "{}", f.message);
        assert_ne!(f.message, f.title, "{} fell back to its title", f.rule_id);
    }
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn large_reports_evaluated_on_several_cores_give_the_same_findings() {
    // Enough users for the engine to split them across threads; the shared-email pair sits at
    // both ends, so it spans the halves.
    let n = 30_000;
    let mut users: Vec<Value> = (0..n)
        .map(|i| user(&format!("u{i:05}"), json!({})))
        .collect();
    users[0]["email"] = json!("same@acme.example");
    users[n - 1]["email"] = json!("SAME@acme.example");
    users[12_345]["organization_user_bypasses_sso"] = json!(true);
    users[n - 2]["last_sign_in_at"] = json!(null);
    users.push(owner());
    let body = json!({ "data": users }).to_string();
    let loaded = source::from_bytes(body.as_bytes(), "big.json").unwrap();
    let report = audit(&loaded, &RuleSet::builtin(), now()).unwrap();
    let got: Vec<(String, String)> = report
        .findings
        .iter()
        .map(|f| (f.rule_id.clone(), f.subject.id.clone()))
        .collect();
    let want: Vec<(String, String)> = [
        ("sso-bypass", "u12345"),
        ("duplicate-email", "u00000"),
        ("duplicate-email", "u29999"),
        ("never-signed-in", "u29998"),
    ]
    .iter()
    .map(|(r, s)| (r.to_string(), s.to_string()))
    .collect();
    assert_eq!(got, want);
    let dup = &report.findings[1];
    assert_eq!(
        dup.evidence["email_normalized_shared_with"],
        json!([{"id": "u29999", "email": "SAME@acme.example"}])
    );
    assert_eq!(report.rules.iter().map(|r| r.findings).sum::<usize>(), 4);
}
