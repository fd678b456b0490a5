//! `--notify slack|teams|webhook` and `notify:` against a real HTTP server started by the tests:
//! each service's payload, retries, failures that never show the URL, and the alert sent when
//! the audit cannot run.

mod common;

use common::{example_arg as example, run_isolated, Run};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NOW: &str = "2026-11-29T00:00:00Z";
/// A secret part of every webhook URL: it must never be printed.
const SECRET: &str = "T000SECRETB000xyz";

/// Runs the binary off the async runtime, with a clean environment plus `env`; the URL's secret
/// part must not appear in what it prints.
async fn orgaudit(args: &[&str], env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = run_isolated(common::root(), &args, &env);
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(!all.contains(SECRET), "the webhook URL leaked:\n{all}");
        r
    })
    .await
    .unwrap()
}

/// A server that takes posts to the hook's path with `status`.
async fn hook_server(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/hook/{SECRET}")))
        .respond_with(ResponseTemplate::new(status).set_body_string("ok"))
        .mount(&server)
        .await;
    server
}

fn hook_url(server: &MockServer) -> String {
    format!("{}/hook/{SECRET}", server.uri())
}

/// The JSON bodies the server received, in order.
async fn received(server: &MockServer) -> Vec<Value> {
    let requests = server.received_requests().await.unwrap();
    for r in &requests {
        assert_eq!(
            r.headers.get("content-type").unwrap().to_str().unwrap(),
            "application/json"
        );
    }
    requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn audit_args<'a>(extra: &[&'a str], input: &'a str) -> Vec<&'a str> {
    let mut a = vec!["audit", "-i", input, "--now", NOW, "-f", "json"];
    a.extend_from_slice(extra);
    a
}

#[tokio::test]
async fn slack_gets_a_block_kit_summary() {
    let server = hook_server(200).await;
    let url = hook_url(&server);
    let input = example("acme-users-groups.json");
    let r = orgaudit(
        &audit_args(
            &[
                "--notify",
                "slack",
                "--fail-on",
                "high",
                "--org-name",
                "<!channel> *Acme* <https://evil.example|click>",
                "--report-url",
                "https://ci.example/runs/42",
            ],
            &input,
        ),
        &[("ORGAUDIT_SLACK_WEBHOOK_URL", &url)],
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("orgaudit: summary posted to slack (ORGAUDIT_SLACK_WEBHOOK_URL)"),
        "{}",
        r.stderr
    );
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let bodies = received(&server).await;
    assert_eq!(bodies.len(), 1);
    let b = &bodies[0];
    // The notification text: escaped, so no ping or link comes from a value.
    let text = b["text"].as_str().unwrap();
    assert!(text.contains("&lt;!channel&gt;"), "{text}");
    assert!(
        !text.contains("<!channel>") && !text.contains("<https://evil"),
        "{text}"
    );
    let blocks = b["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[0]["text"]["text"]
        .as_str()
        .unwrap()
        .starts_with("Access review: <!channel> *Acme*"));
    // Every text object is plain text: nothing in a value is markup.
    let all = serde_json::to_string(blocks).unwrap();
    assert!(!all.contains("mrkdwn"));
    // The verdict and the counts that decided it.
    let gating = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["waived"] == false && matches!(f["severity"].as_str(), Some("critical" | "high"))
        })
        .count();
    assert!(gating > 0);
    assert!(
        blocks[1]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Gate failed: {gating} at or above high")),
        "{}",
        blocks[1]
    );
    let fields = serde_json::to_string(&blocks[2]["fields"]).unwrap();
    let s = &doc["summary"]["unwaived_by_severity"];
    assert!(
        fields.contains(&format!("{} critical, {} high", s["critical"], s["high"])),
        "{fields}"
    );
    assert!(fields.contains("Top rules: "), "{fields}");
    // The report link, as a button.
    assert_eq!(
        blocks[3]["elements"][0]["url"],
        "https://ci.example/runs/42"
    );
}

#[tokio::test]
async fn teams_gets_an_adaptive_card() {
    let server = hook_server(202).await;
    let url = hook_url(&server);
    let input = example("acme-users-groups.json");
    let r = orgaudit(
        &audit_args(
            &[
                "--notify",
                "teams",
                "--org-name",
                "Acme [prod](https://evil.example)",
            ],
            &input,
        ),
        &[("ORGAUDIT_TEAMS_WEBHOOK_URL", &url)],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bodies = received(&server).await;
    assert_eq!(bodies.len(), 1);
    let b = &bodies[0];
    assert_eq!(b["type"], "message");
    let a = &b["attachments"][0];
    assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
    let card = &a["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    let title = card["body"][0]["text"].as_str().unwrap();
    // Markdown in a value is escaped: no link is made from the organization's name.
    assert!(title.contains(r"Acme \[prod\]"), "{title}");
    let headline = card["body"][1]["text"].as_str().unwrap();
    assert!(headline.ends_with("unwaived findings"), "{headline}");
    let facts = card["body"][2]["facts"].as_array().unwrap();
    assert_eq!(facts[0]["title"], "Organization");
    assert!(card.get("actions").is_none(), "no --report-url, no button");
}

#[tokio::test]
async fn a_generic_webhook_from_the_configuration_gets_the_counts() {
    let server = hook_server(204).await;
    let url = hook_url(&server);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("orgaudit.yaml");
    std::fs::write(
        &cfg,
        "notify:\n  - { service: webhook, url_env: MY_HOOK, when: findings }\n",
    )
    .unwrap();
    let input = example("acme-users-groups.json");
    let r = orgaudit(
        &audit_args(
            &["--config", cfg.to_str().unwrap(), "--fail-on", "critical"],
            &input,
        ),
        &[("MY_HOOK", &url)],
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("summary posted to webhook (MY_HOOK)"),
        "{}",
        r.stderr
    );
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let bodies = received(&server).await;
    assert_eq!(bodies.len(), 1);
    let b = &bodies[0];
    assert_eq!(b["kind"], "audit");
    assert_eq!(b["verdict"], "failed");
    assert_eq!(b["threshold"], "critical");
    assert_eq!(b["findings"], doc["summary"]["findings"]);
    assert_eq!(b["waived"], doc["summary"]["waived"]);
    assert_eq!(
        b["unwaived_by_severity"],
        doc["summary"]["unwaived_by_severity"]
    );
    assert_eq!(b["top_rules"].as_array().unwrap().len(), 3);
    assert_eq!(b["organization"], "acme-users-groups.json");

    // `when: findings`: nothing posted for a report without unwaived findings.
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("quiet.yaml"),
        "id: quiet\ntitle: Never fires\nseverity: low\nscope: user\nwhen: { field: email, equals: nobody@nowhere.example }\n",
    )
    .unwrap();
    let server = hook_server(204).await;
    let url = hook_url(&server);
    let r = orgaudit(
        &audit_args(
            &[
                "--config",
                cfg.to_str().unwrap(),
                "--no-builtin",
                "--rules",
                rules.to_str().unwrap(),
            ],
            &input,
        ),
        &[("MY_HOOK", &url)],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn posts_are_retried_like_api_requests() {
    let server = MockServer::start().await;
    let hook = format!("/hook/{SECRET}");
    Mock::given(method("POST"))
        .and(path(hook.clone()))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(hook.clone()))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(hook))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let url = hook_url(&server);
    let input = example("acme-users-groups.json");
    let r = orgaudit(
        &audit_args(&["--notify", "webhook"], &input),
        &[("ORGAUDIT_WEBHOOK_URL", &url)],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bodies = received(&server).await;
    assert_eq!(bodies.len(), 3, "two retries, then delivered");
    assert_eq!(bodies[0], bodies[2], "the same message each time");
}

#[tokio::test]
async fn a_refused_post_is_exit_3_and_names_the_variable_not_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(403).set_body_string(format!("invalid_token \u{1b}[31m{SECRET}")),
        )
        .mount(&server)
        .await;
    let url = hook_url(&server);
    let input = example("acme-users-groups.json");
    // The server echoes the secret: the excerpt of its reply is not printed raw either.
    let r = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_orgaudit"))
                .args([
                    "audit",
                    "-i",
                    &input,
                    "--now",
                    NOW,
                    "--notify",
                    "slack",
                    "-o",
                    "/dev/null",
                ])
                .env_clear()
                .env("ORGAUDIT_SLACK_WEBHOOK_URL", &url)
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(r.0, Some(3), "{}", r.1);
    assert!(
        r.1.contains("slack (ORGAUDIT_SLACK_WEBHOOK_URL): HTTP 403"),
        "{}",
        r.1
    );
    assert!(!r.1.contains(&url), "{}", r.1);
    assert!(
        !r.1.contains('\u{1b}'),
        "no terminal escapes from the reply"
    );
    // Not retried: a 403 will not change.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);

    // An unset variable, or one without an https:// URL, stops the run before it starts.
    let r = orgaudit(
        &audit_args(&["--notify", "teams"], &example("acme-users-groups.json")),
        &[],
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("ORGAUDIT_TEAMS_WEBHOOK_URL"),
        "{}",
        r.stderr
    );
    let plain = format!("http://hooks.example/{SECRET}");
    let r = orgaudit(
        &audit_args(&["--notify", "teams"], &example("acme-users-groups.json")),
        &[("ORGAUDIT_TEAMS_WEBHOOK_URL", &plain)],
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("ORGAUDIT_TEAMS_WEBHOOK_URL must hold an https:// URL"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn an_audit_that_cannot_run_still_alerts_by_webhook_and_email() {
    let server = hook_server(200).await;
    let url = hook_url(&server);
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("weekly.json");
    std::fs::write(&broken, "{\"data\": [ {\"user_id\": ").unwrap();
    let eml = dir.path().join("alert.eml");
    let r = orgaudit(
        &[
            "audit",
            "-i",
            broken.to_str().unwrap(),
            "--notify",
            "webhook",
            "--org-name",
            "Acme",
            "--email-to",
            "secops@acme.example",
            "--email-from",
            "orgaudit@acme.example",
            "--email-dry-run",
            eml.to_str().unwrap(),
        ],
        &[("ORGAUDIT_WEBHOOK_URL", &url)],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("failure alert posted to webhook (ORGAUDIT_WEBHOOK_URL)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("failure alert written to"),
        "{}",
        r.stderr
    );
    let bodies = received(&server).await;
    assert_eq!(bodies.len(), 1);
    let b = &bodies[0];
    assert_eq!(b["kind"], "failure");
    assert_eq!(b["organization"], "Acme");
    assert_eq!(b["exit_code"], 2);
    assert!(b["error"].as_str().unwrap().contains("weekly.json"), "{b}");
    // The email: to the usual recipients, plain text, with the error.
    let raw = std::fs::read(&eml).unwrap();
    let mail = mailparse::parse_mail(&raw).unwrap();
    let subject = mail
        .headers
        .iter()
        .find(|h| h.get_key() == "Subject")
        .unwrap()
        .get_value();
    assert_eq!(subject, "orgaudit: the audit of Acme could not run");
    let body = mail.get_body().unwrap();
    assert!(body.contains("could not run"), "{body}");
    assert!(body.contains("weekly.json"), "{body}");
    assert!(body.contains("exit status 2"), "{body}");

    // A fetch that fails (the API unreachable): exit 3, alerted too.
    let server = hook_server(200).await;
    let url = hook_url(&server);
    let r = orgaudit(
        &["audit", "--fetch", "--retries", "0", "--notify", "slack"],
        &[
            ("ORGAUDIT_SLACK_WEBHOOK_URL", &url),
            ("TELNYX_API_KEY", "KEY0123456789"),
            ("TELNYX_BASE_URL", "http://127.0.0.1:9/v2"),
        ],
    )
    .await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    let bodies = received(&server).await;
    assert_eq!(bodies.len(), 1);
    let text = bodies[0]["text"].as_str().unwrap();
    assert!(text.starts_with("Access review could not run"), "{text}");
    assert!(!serde_json::to_string(&bodies[0])
        .unwrap()
        .contains("KEY0123456789"));
}

#[tokio::test]
async fn the_configuration_names_variables_never_urls() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("orgaudit.yaml");
    std::fs::write(
        &cfg,
        "notify:\n  - { service: slack }\n  - { service: webhook, url_env: MY_HOOK, when: findings }\n",
    )
    .unwrap();
    let r = orgaudit(
        &["config", "check", "--config", cfg.to_str().unwrap()],
        &[("MY_HOOK", &format!("https://hooks.example/{SECRET}"))],
    )
    .await;
    // The unset variable is a problem of the configuration, named.
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("slack notification: the environment variable ORGAUDIT_SLACK_WEBHOOK_URL that should hold its URL is not set"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout
            .contains("notify: slack (URL in ORGAUDIT_SLACK_WEBHOOK_URL: NOT SET), when always"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("notify: webhook (URL in MY_HOOK: set), when findings"),
        "{}",
        r.stdout
    );
    // A URL in the file is refused, with its place; so is an unknown service.
    std::fs::write(
        &cfg,
        format!("notify:\n  - service: slack\n    url: https://hooks.example/{SECRET}\n  - {{ service: pager }}\n"),
    )
    .unwrap();
    let r = orgaudit(&["config", "check", "--config", cfg.to_str().unwrap()], &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("orgaudit.yaml:3:10"), "{}", r.stderr);
    assert!(
        r.stderr.contains("a webhook URL is a secret"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("`notify.service` must be one of slack, teams, webhook; found \"pager\""),
        "{}",
        r.stderr
    );
}
