//! `orgaudit fetch` and `orgaudit audit --fetch` against a real HTTP server started by the tests.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "KEYtest0123456789abcdefSECRET";
const REPORT_PATH: &str = "/v2/organizations/users/users_groups_report";
const NOW: &str = "2026-11-29T00:00:00Z";

fn example(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
    )
    .unwrap()
}

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs the binary off the async runtime, with a clean environment plus `env`.
async fn orgaudit(args: &[&str], env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_orgaudit"));
        cmd.args(&args).env_clear();
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let out = cmd.output().unwrap();
        let r = Run {
            code: out.status.code().expect("exited"),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        };
        let all = format!("{}{}", String::from_utf8_lossy(&r.stdout), r.stderr);
        assert!(!all.contains(KEY), "the API key leaked:\n{all}");
        assert!(
            !all.contains("SECRET"),
            "part of the API key leaked:\n{all}"
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        r
    })
    .await
    .unwrap()
}

/// A report server answering every request for the report with `response`.
async fn serving(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(REPORT_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

/// A report server answering `first` once, then the no-active-owner example.
async fn answering_once_then_ok(first: ResponseTemplate) -> MockServer {
    let server = serving(ok(example("no-active-owner.json"), "application/json")).await;
    Mock::given(method("GET"))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    server
}

fn base(server: &MockServer) -> String {
    format!("{}/v2", server.uri())
}

fn ok(body: Vec<u8>, mime: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, mime)
}

fn telnyx_error(status: u16, code: &str, title: &str, detail: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(serde_json::json!({
        "errors": [{"code": code, "title": title, "detail": detail}]
    }))
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_saves_the_body_exactly_and_sends_the_right_request() {
    let body = example("acme-users-groups.json");
    let server = serving(ok(body.clone(), "application/json")).await;
    let b = base(&server) + "/";
    let r = orgaudit(&["fetch", "--base-url", &b], &[("TELNYX_API_KEY", KEY)]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, body, "saved exactly as served");
    assert!(
        r.stderr.is_empty(),
        "nothing on stderr when not a terminal: {}",
        r.stderr
    );

    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method.as_str(), "GET");
    assert_eq!(req.url.path(), REPORT_PATH);
    assert_eq!(req.url.query(), None);
    let header = |name: &str| {
        req.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(header("authorization"), Some(format!("Bearer {KEY}")));
    assert_eq!(header("accept").as_deref(), Some("application/json"));
    assert_eq!(
        header("user-agent"),
        Some(format!("orgaudit/{}", env!("CARGO_PKG_VERSION")))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_csv_to_a_file_with_the_base_url_from_the_environment() {
    let body = example("acme-users-groups.csv");
    let server = serving(ok(body.clone(), "text/csv")).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.csv");
    let r = orgaudit(
        &[
            "fetch",
            "--format",
            "csv",
            "--output",
            out.to_str().unwrap(),
        ],
        &[("TELNYX_API_KEY", KEY), ("TELNYX_BASE_URL", &base(&server))],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), body);
    let reqs = requests(&server).await;
    assert_eq!(reqs[0].headers.get("accept").unwrap(), "text/csv");
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_fetch_records_the_source_and_keeps_the_raw_body() {
    let body = example("acme-users-groups.json");
    let server = serving(ok(body.clone(), "application/json")).await;
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("raw.json");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let b = base(&server);
    let r = orgaudit(
        &[
            "audit",
            "--fetch",
            "--base-url",
            &b,
            "--api-key-file",
            key_file.to_str().unwrap(),
            "--save-report",
            saved.to_str().unwrap(),
            "--now",
            NOW,
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: Value = serde_json::from_slice(&r.stdout).unwrap();
    let src = &doc["source"];
    assert_eq!(src["kind"], "telnyx-api");
    assert_eq!(src["base_url"], b.as_str());
    assert_eq!(src["format"], "json");
    assert_eq!(src["records"], 14);
    assert_eq!(src["sha256"], orgaudit::source::sha256_hex(&body));
    let fetched_at = src["fetched_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(fetched_at).is_ok(),
        "{fetched_at}"
    );
    assert!(src.get("path").is_none());
    assert_eq!(doc["summary"]["findings"], 13);
    assert_eq!(std::fs::read(&saved).unwrap(), body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_retry_after_is_waited_out_then_succeeds() {
    let server = answering_once_then_ok(
        telnyx_error(429, "10011", "Too many requests", "Slow down")
            .insert_header("retry-after", "1"),
    )
    .await;
    let b = base(&server);
    let r = orgaudit(
        &["fetch", "--base-url", &b, "-v"],
        &[("TELNYX_API_KEY", KEY)],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.elapsed >= Duration::from_secs(1),
        "waited {:?}",
        r.elapsed
    );
    assert_eq!(requests(&server).await.len(), 2);
    assert!(
        r.stderr
            .contains("orgaudit: HTTP 429\norgaudit: HTTP 429; retrying in 1.0 s\n"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("(attempt 2 of 3)"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_500_is_retried() {
    let server = answering_once_then_ok(ResponseTemplate::new(500)).await;
    let b = base(&server);
    let r = orgaudit(
        &[
            "audit",
            "--fetch",
            "--base-url",
            &b,
            "--now",
            NOW,
            "-f",
            "json",
        ],
        &[("TELNYX_API_KEY", KEY)],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(requests(&server).await.len(), 2);
    let doc: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(doc["findings"][0]["rule_id"], "no-active-owner");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_persistent_503_gives_up_after_the_retries() {
    let server = serving(telnyx_error(
        503,
        "90001",
        "Service unavailable",
        "Try later",
    ))
    .await;
    let b = base(&server);
    let r = orgaudit(
        &["fetch", "--base-url", &b, "--retries", "1", "-v"],
        &[("TELNYX_API_KEY", KEY)],
    )
    .await;
    assert_eq!(r.code, 3);
    assert_eq!(requests(&server).await.len(), 2);
    assert!(r.stderr.ends_with(
        "error: the Telnyx API answered 503: Service unavailable: Try later [code 90001] (a problem on Telnyx's side; try again later)\n"
    ), "{}", r.stderr);
    let r = orgaudit(&["fetch", "--base-url", &b], &[("TELNYX_API_KEY", KEY)]).await;
    assert_eq!(r.code, 3);
    assert_eq!(
        requests(&server).await.len(),
        2 + 3,
        "the default is 2 retries"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthorized_and_forbidden_say_what_to_do() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(telnyx_error(
            401,
            "10009",
            "Authentication failed",
            &format!("The API key {KEY} is not valid"),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let b = base(&server);
    let r = orgaudit(
        &["audit", "--fetch", "--base-url", &b, "-v"],
        &[("TELNYX_API_KEY", KEY)],
    )
    .await;
    assert_eq!(r.code, 3);
    assert!(r.stderr.ends_with(
        "error: the Telnyx API answered 401: Authentication failed: The API key [redacted] is not valid [code 10009] (check the API key: it is missing, wrong, or revoked)\n"
    ), "{}", r.stderr);
    assert_eq!(requests(&server).await.len(), 1, "a 401 is not retried");

    Mock::given(method("GET"))
        .respond_with(telnyx_error(
            403,
            "10010",
            "Authorization failed",
            "You are not authorized",
        ))
        .mount(&server)
        .await;
    let r = orgaudit(&["fetch", "--base-url", &b], &[("TELNYX_API_KEY", KEY)]).await;
    assert_eq!(r.code, 3);
    assert_eq!(
        r.stderr,
        "error: the Telnyx API answered 403: Authorization failed: You are not authorized [code 10010] (the key's user lacks permission to read organization users; use a key of an organization owner or admin)\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_times_out() {
    let server =
        serving(ok(b"{}".to_vec(), "application/json").set_delay(Duration::from_secs(30))).await;
    let b = base(&server);
    let r = orgaudit(
        &[
            "fetch",
            "--base-url",
            &b,
            "--timeout",
            "0.5",
            "--retries",
            "1",
            "-v",
        ],
        &[("TELNYX_API_KEY", KEY)],
    )
    .await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
    assert!(r.stderr.ends_with(
        "error: the Telnyx API did not answer within 0.5 s (after 2 attempts); raise --timeout for a large organization\n"
    ), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("orgaudit: no complete answer within 0.5 s; retrying in "),
        "{}",
        r.stderr
    );
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_body_cap_is_enforced() {
    let server = serving(ok(example("acme-users-groups.json"), "application/json")).await;
    let b = base(&server);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let r = orgaudit(
        &[
            "fetch",
            "--base-url",
            &b,
            "--max-bytes",
            "1KiB",
            "-o",
            out.to_str().unwrap(),
            "-v",
        ],
        &[("TELNYX_API_KEY", KEY)],
    )
    .await;
    assert_eq!(r.code, 3);
    assert!(r.stderr.ends_with(
        "error: the response body is larger than the cap of 1024 bytes; raise --max-bytes if the organization is that large\n"
    ), "{}", r.stderr);
    assert!(!out.exists(), "nothing is saved from a refused body");
    assert_eq!(
        requests(&server).await.len(),
        1,
        "a refused body is not retried"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_key_is_exit_2_before_any_request() {
    let server = MockServer::start().await;
    let b = base(&server);
    let r = orgaudit(&["audit", "--fetch", "--base-url", &b], &[]).await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: no Telnyx API key: set the environment variable TELNYX_API_KEY (or use --api-key-file PATH)\n"
    );
    let r = orgaudit(&["fetch", "--base-url", &b], &[("TELNYX_API_KEY", "  ")]).await;
    assert_eq!(r.code, 2);
    let r = orgaudit(&["fetch", "--api-key-file", "/nonexistent/key"], &[]).await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: /nonexistent/key: cannot read the API key"),
        "{}",
        r.stderr
    );
    assert!(requests(&server).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_exit_3() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b = format!("http://127.0.0.1:{port}/v2");
    let r = orgaudit(
        &["fetch", "--base-url", &b, "--retries", "1", "-v"],
        &[("TELNYX_API_KEY", KEY)],
    )
    .await;
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains(&format!(
            "error: cannot reach the Telnyx API at {b}/organizations/users/users_groups_report: "
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("(after 2 attempts)"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn several_organizations_are_fetched_and_audited_together() {
    let server = MockServer::start().await;
    let prod = example("acme-users-groups.json");
    let orphan = example("no-active-owner.json");
    Mock::given(method("GET"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer KEY-PROD-SECRET",
        ))
        .respond_with(ok(prod.clone(), "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer KEY-ORPHAN-SECRET",
        ))
        .respond_with(ok(orphan.clone(), "application/json"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("orgaudit.yaml");
    std::fs::write(
        &cfg,
        format!(
            "telnyx:\n  base_url: {}\n  concurrency: 2\norganizations:\n  - name: acme-prod\n    api_key_env: KEY_PROD\n  - name: orphan\n    api_key_env: KEY_ORPHAN\n",
            base(&server)
        ),
    )
    .unwrap();
    let saved = dir.path().join("raw");
    let env = [
        ("KEY_PROD", "KEY-PROD-SECRET"),
        ("KEY_ORPHAN", "KEY-ORPHAN-SECRET"),
    ];
    let r = orgaudit(
        &[
            "audit",
            "--config",
            cfg.to_str().unwrap(),
            "--now",
            NOW,
            "-f",
            "json",
            "--save-report",
            saved.to_str().unwrap(),
        ],
        &env,
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout_str().contains("KEY-PROD") && !r.stderr.contains("KEY-PROD"));
    let doc: Value = serde_json::from_slice(&r.stdout).unwrap();
    let orgs = doc["source"]["organizations"].as_array().unwrap();
    assert_eq!(orgs.len(), 2);
    assert_eq!(orgs[0]["organization"], "acme-prod");
    assert_eq!(orgs[0]["sha256"], orgaudit::source::sha256_hex(&prod));
    assert_eq!(orgs[1]["organization"], "orphan");
    assert_eq!(doc["source"]["records"], 16);
    assert_eq!(doc["summary"]["users"], 16);
    let findings = doc["findings"].as_array().unwrap();
    assert!(findings.iter().all(|f| f["organization"].is_string()));
    let owner = findings
        .iter()
        .find(|f| f["rule_id"] == "no-active-owner")
        .unwrap();
    assert_eq!(owner["organization"], "orphan");
    assert_eq!(owner["subject"]["id"], "orphan");
    assert_eq!(
        owner["fingerprint"],
        orgaudit::findings::fingerprint_in(
            Some("orphan"),
            "no-active-owner",
            orgaudit::rules::Scope::Organization,
            "orphan"
        )
    );
    assert_eq!(std::fs::read(saved.join("acme-prod.json")).unwrap(), prod);
    assert_eq!(std::fs::read(saved.join("orphan.json")).unwrap(), orphan);

    // A missing key is reported per organization, before any request.
    let before = requests(&server).await.len();
    let r = orgaudit(
        &["audit", "--config", cfg.to_str().unwrap()],
        &[("KEY_PROD", "x")],
    )
    .await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: organization orphan: no Telnyx API key: set the environment variable KEY_ORPHAN (or use --api-key-file PATH)\n"
    );
    assert_eq!(requests(&server).await.len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unparseable_body_names_the_url() {
    let server = serving(ok(
        b"{\"data\": [{\"id\": 7}]}".to_vec(),
        "application/json",
    ))
    .await;
    let b = base(&server);
    let r = orgaudit(
        &["audit", "--fetch", "--base-url", &b],
        &[("TELNYX_API_KEY", KEY)],
    )
    .await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!("error: {b}/organizations/users/users_groups_report:1:18: user record 0, field `id`: invalid type: integer `7`, expected a string\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn standard_proxy_variables_are_honoured() {
    // The proxy is the test server; the API host does not exist, so only the proxy can answer.
    let proxy = MockServer::start().await;
    let body = example("no-active-owner.json");
    Mock::given(method("GET"))
        .and(path(REPORT_PATH))
        .respond_with(ok(body.clone(), "application/json"))
        .mount(&proxy)
        .await;
    let r = orgaudit(
        &[
            "fetch",
            "--base-url",
            "http://api.telnyx.invalid/v2",
            "--retries",
            "0",
        ],
        &[("TELNYX_API_KEY", KEY), ("HTTP_PROXY", &proxy.uri())],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, body);
    let reqs = requests(&proxy).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].headers.get("host").unwrap(), "api.telnyx.invalid");
    // NO_PROXY turns it off for that host: then the host must be reached directly, and fails.
    let r = orgaudit(
        &[
            "fetch",
            "--base-url",
            "http://api.telnyx.invalid/v2",
            "--retries",
            "0",
        ],
        &[
            ("TELNYX_API_KEY", KEY),
            ("HTTP_PROXY", &proxy.uri()),
            ("NO_PROXY", "api.telnyx.invalid"),
        ],
    )
    .await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(requests(&proxy).await.len(), 1);
}

/// `-v` with standard error closed (its reader went away): the audit still runs and writes its
/// output; a message nobody can read is not a panic. A credential written in the base URL is
/// never printed; a lying Content-Length is not preallocated.
#[tokio::test(flavor = "multi_thread")]
async fn closed_stderr_credentials_in_urls_and_lying_lengths() {
    let server = serving(
        ok(example("acme-users-groups.json"), "application/json")
            .insert_header("content-length-hint", "x"),
    )
    .await;
    let url = base(&server).replacen("http://", "http://user:hunter2pw@", 1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.json");
    let args: Vec<String> = [
        "audit",
        "--fetch",
        "-v",
        "--base-url",
        &url,
        "-f",
        "json",
        "-o",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let code = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_orgaudit"))
            .args(&args)
            .env_clear()
            .env("TELNYX_API_KEY", KEY)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take()); // the reader goes away before anything is written
        child.wait().unwrap().code()
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0));
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["summary"]["users"], 14);
    // The password of the URL is in no output and no message.
    let r = orgaudit(
        &["audit", "--fetch", "-v", "--base-url", &url, "-f", "json"],
        &[("TELNYX_API_KEY", KEY)],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let all = format!("{}{}", String::from_utf8_lossy(&r.stdout), r.stderr);
    assert!(!all.contains("hunter2pw"), "{all}");
    assert!(all.contains("user:***@") || !all.contains("user:"), "{all}");
}

/// Item 9 and the risky one: organizations whose names sanitise to the same file name each keep
/// their saved report; a link planted where a saved report goes is replaced, not followed; new
/// files are 0600, and an existing file keeps its mode.
#[tokio::test(flavor = "multi_thread")]
async fn saved_reports_never_overwrite_each_other_nor_follow_links() {
    use std::os::unix::fs::PermissionsExt;
    let server = serving(ok(example("acme-users-groups.json"), "application/json")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("orgaudit.yaml");
    std::fs::write(
        &cfg,
        format!(
            "telnyx:\n  base_url: {}\norganizations:\n  - name: acme/prod\n    api_key_env: KEY_A\n  - name: acme:prod\n    api_key_env: KEY_B\n",
            base(&server)
        ),
    )
    .unwrap();
    let saved = dir.path().join("raw");
    std::fs::create_dir(&saved).unwrap();
    // A link planted where a report might go, pointing at a file that must not change.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "untouched").unwrap();
    let report = dir.path().join("report.json");
    std::fs::write(&report, "old").unwrap();
    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o640)).unwrap();
    let fresh = dir.path().join("fresh.html");
    let r = orgaudit(
        &[
            "audit",
            "--config",
            cfg.to_str().unwrap(),
            "--now",
            NOW,
            "-f",
            "json",
            "-o",
            report.to_str().unwrap(),
            "--report",
            &format!("html={}", fresh.display()),
            "--save-report",
            saved.to_str().unwrap(),
        ],
        &[("KEY_A", "KEY-A-SECRET"), ("KEY_B", "KEY-B-SECRET")],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut names: Vec<String> = std::fs::read_dir(&saved)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("acme_prod-") && n.ends_with(".json")),
        "{names:?}"
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&report), 0o640, "an existing file keeps its mode");
    assert_eq!(mode(&fresh), 0o600, "a new report is the owner's only");
    assert_eq!(mode(&saved.join(&names[0])), 0o600);
    // Now plant links at both names and fetch again: the links are replaced.
    for n in &names {
        std::fs::remove_file(saved.join(n)).unwrap();
        std::os::unix::fs::symlink(&victim, saved.join(n)).unwrap();
    }
    let r = orgaudit(
        &[
            "audit",
            "--config",
            cfg.to_str().unwrap(),
            "--now",
            NOW,
            "-f",
            "json",
            "-o",
            "/dev/null",
            "--save-report",
            saved.to_str().unwrap(),
        ],
        &[("KEY_A", "KEY-A-SECRET"), ("KEY_B", "KEY-B-SECRET")],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    for n in &names {
        let meta = std::fs::symlink_metadata(saved.join(n)).unwrap();
        assert!(meta.file_type().is_file(), "{n} is a file again");
    }
}

/// Item 7: a Content-Length is not believed before the bytes arrive. A server announcing a
/// terabyte (under a cap raised to two) and sending a few bytes made the process abort on the
/// allocation; now the short body is a network error, exit 3.
#[tokio::test(flavor = "multi_thread")]
async fn a_lying_content_length_is_not_preallocated() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        // One connection per attempt; no retries are asked for.
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1099511627776\r\n\r\n{\"data\": [",
            );
        }
    });
    let r = orgaudit(
        &[
            "fetch",
            "--base-url",
            &format!("http://{addr}/v2"),
            "--max-bytes",
            "2048GiB",
            "--retries",
            "0",
            "--timeout",
            "5",
            "-o",
            "/dev/null",
        ],
        &[("TELNYX_API_KEY", KEY)],
    )
    .await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    server.join().unwrap();
}

/// A run over several organizations keeps one history run per organization, keyed by its name:
/// each with its snapshot, so that change detection and lifecycles work per organization.
#[tokio::test(flavor = "multi_thread")]
async fn several_organizations_have_a_history_each() {
    let server = MockServer::start().await;
    let serve = |prod: Vec<u8>| {
        let server = &server;
        async move {
            server.reset().await;
            for (key, body) in [
                ("Bearer KEY-PROD-SECRET", prod),
                ("Bearer KEY-ORPHAN-SECRET", example("no-active-owner.json")),
            ] {
                Mock::given(method("GET"))
                    .and(wiremock::matchers::header("authorization", key))
                    .respond_with(ok(body, "application/json"))
                    .mount(server)
                    .await;
            }
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("orgaudit.yaml");
    let db = dir.path().join("h.db");
    std::fs::write(
        &cfg,
        format!(
            "telnyx:\n  base_url: {}\norganizations:\n  - name: acme-prod\n    api_key_env: KEY_PROD\n  - name: orphan\n    api_key_env: KEY_ORPHAN\nhistory: {}\n",
            base(&server),
            db.display()
        ),
    )
    .unwrap();
    let env = [
        ("KEY_PROD", "KEY-PROD-SECRET"),
        ("KEY_ORPHAN", "KEY-ORPHAN-SECRET"),
    ];
    let audit = |now: &'static str| {
        let cfg = cfg.clone();
        async move {
            let r = orgaudit(
                &[
                    "audit",
                    "--config",
                    cfg.to_str().unwrap(),
                    "--now",
                    now,
                    "-f",
                    "json",
                ],
                &env,
            )
            .await;
            assert_eq!(r.code, 0, "{}", r.stderr);
            serde_json::from_slice::<Value>(&r.stdout).unwrap()
        }
    };
    serve(example("acme-users-groups.last-week.json")).await;
    let w1 = audit("2026-11-22T00:00:00Z").await;
    let warned = w1["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == "no-previous-snapshot")
        .count();
    assert_eq!(warned, 2, "one per organization");
    serve(example("acme-users-groups.json")).await;
    let w2 = audit("2026-11-29T00:00:00Z").await;
    // Two runs per audit, one per organization, keyed by name.
    let list = orgaudit(
        &[
            "history",
            "list",
            "--history",
            db.to_str().unwrap(),
            "-f",
            "json",
        ],
        &[],
    )
    .await;
    let runs: Value = serde_json::from_slice(&list.stdout).unwrap();
    let mut keys: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["organization"].as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["acme-prod", "acme-prod", "orphan", "orphan"]);
    // Change detection per organization: bob became an owner in acme-prod.
    let owner = w2["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "new-owner")
        .expect("new-owner fires");
    assert_eq!(
        (&owner["organization"], &owner["subject"]["email"]),
        (
            &serde_json::json!("acme-prod"),
            &serde_json::json!("bob@acme.example")
        )
    );
    assert_eq!(
        w2["changes"]["became_owner"][0]["organization"],
        "acme-prod"
    );
    // Lifecycles per organization: the orphan organization's finding is a week old.
    let orphan = w2["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "no-active-owner")
        .unwrap();
    assert_eq!(
        (&orphan["baseline_status"], &orphan["age_days"]),
        (&serde_json::json!("unchanged"), &serde_json::json!(7))
    );
    assert_eq!(w2["history"]["organization"], "acme-prod, orphan");
    // Each organization's run keeps its own snapshot.
    let snap = orgaudit(
        &[
            "history",
            "snapshot",
            "latest",
            "--history",
            db.to_str().unwrap(),
            "-f",
            "csv",
        ],
        &[],
    )
    .await;
    assert_eq!(snap.code, 0, "{}", snap.stderr);
}
