//! The HTML report in a real browser: headless Chromium driven over WebDriver (chromedriver),
//! the page served by a local HTTP server. Checks the counts, a finding, filtering by severity
//! and rule, sorting, that the page makes no request, and (axe-core) that it has no serious or
//! critical accessibility violation; saves a screenshot as an artifact
//! (target/test-artifacts/html-report.png).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium and chromedriver, or a skip outside CI (where .ci/run installs them).
fn browser_available() -> bool {
    let ok = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium and chromedriver are missing; .ci/run installs them"
        );
        eprintln!("skipped: apt-get install chromium chromium-driver to run the browser test");
    }
    ok
}

struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1280,1000",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let mut d = Driver {
            child,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        let v = d.post("/session", caps).await;
        d.session = v["sessionId"].as_str().expect("a session").to_string();
        d
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let bytes = req.send().await.unwrap().bytes().await.unwrap();
        let resp: Value = serde_json::from_slice(&bytes).unwrap();
        let value = resp["value"].clone();
        if let Some(err) = value.get("error") {
            panic!("WebDriver {path}: {err} {}", value["message"]);
        }
        value
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn js(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    async fn click(&self, css: &str) {
        let el = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("element found")
            .to_string();
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    async fn visible_rows(&self) -> u64 {
        self.js("return Array.from(document.querySelectorAll('tr.finding')).filter(function (r) { return r.offsetParent !== null; }).length;")
            .await
            .as_u64()
            .unwrap()
    }

    async fn screenshot(&self, to: &Path) {
        let b64 = self
            .call(reqwest::Method::GET, "/screenshot", None)
            .await
            .as_str()
            .unwrap()
            .to_string();
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, png).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn report_html() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_orgaudit"))
        .args([
            "audit",
            "--input",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/acme-users-groups.json"
            ),
            "--now",
            "2026-11-29T00:00:00Z",
            "--set",
            "external-email-domain.allowed_domains=[acme.example]",
            "--format",
            "html",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// axe-core's script, from `AXE_CORE_JS` (a path to axe.min.js).
fn axe_source() -> Option<String> {
    let path = std::env::var_os("AXE_CORE_JS")?;
    Some(std::fs::read_to_string(path).expect("AXE_CORE_JS names axe.min.js"))
}

fn artifact(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-artifacts")
        .join(name)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_html_report_works_in_chromium() {
    if !browser_available() {
        return;
    }
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(report_html(), "text/html; charset=utf-8"),
        )
        .mount(&server)
        .await;
    let d = Driver::start().await;
    d.post(
        "/url",
        json!({"url": format!("{}/report.html", server.uri())}),
    )
    .await;

    // The summary and a finding render.
    assert_eq!(
        d.js("return document.querySelector('[data-total]').textContent")
            .await,
        "14"
    );
    assert_eq!(
        d.js("return document.querySelector('[data-severity-count=medium]').textContent")
            .await,
        "7"
    );
    let first = d
        .js("return document.querySelector('#rule-owner-sso-bypass tr.finding').textContent")
        .await;
    assert!(
        first
            .as_str()
            .unwrap()
            .contains("owner bob@acme.example is active and may sign in with a password"),
        "{first}"
    );
    assert_eq!(d.visible_rows().await, 14);
    d.screenshot(&artifact("html-report.png")).await;

    // Filtering by severity hides those findings and updates the count.
    d.click("[data-filter-severity=medium]").await;
    assert_eq!(d.visible_rows().await, 7);
    assert_eq!(
        d.js("return document.getElementById('shown-count').textContent")
            .await,
        "7"
    );
    assert_eq!(
        d.js("return Array.from(document.querySelectorAll('section.rule[data-severity=medium]')).every(function (s) { return s.hidden; })").await,
        true
    );
    d.click("[data-filter-severity=medium]").await;
    assert_eq!(d.visible_rows().await, 14);

    // Filtering by rule.
    d.click("#rule-filter option[value=stale-sign-in]").await;
    assert_eq!(d.visible_rows().await, 2);
    d.click("#rule-filter option[value='']").await;
    assert_eq!(d.visible_rows().await, 14);

    // Sorting a table by a column, both ways.
    let order = "return Array.from(document.querySelectorAll('#rule-duplicate-email tr.finding td:first-child')).map(function (c) { return c.textContent.trim().slice(0, 4); }).join(',')";
    d.click("#rule-duplicate-email th.sortable").await;
    let asc = d.js(order).await;
    d.click("#rule-duplicate-email th.sortable").await;
    let desc = d.js(order).await;
    assert_ne!(asc, desc);
    assert_eq!(asc, "Judy,judy");

    // Accessibility: axe-core (from the npm registry; .ci/run installs it) finds no serious or
    // critical violation, on this page and on one with every section a history adds (verdict,
    // overdue, trend chart, changes, not-evaluated controls).
    check_accessibility(&d, "the example's report").await;

    // No request besides the page itself.
    assert_eq!(
        d.js("return performance.getEntriesByType('resource').length")
            .await,
        0
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);

    let rich = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(history_report_html(), "text/html; charset=utf-8"),
        )
        .mount(&rich)
        .await;
    d.post(
        "/url",
        json!({"url": format!("{}/report.html", rich.uri())}),
    )
    .await;
    assert_eq!(
        d.js("return document.querySelectorAll('[data-trend-day]').length")
            .await,
        2
    );
    check_accessibility(&d, "a report with a history").await;
    // The waived filter hides waived findings; the rules table lists the most severe first.
    let before = d.visible_rows().await;
    d.click("[data-filter-waived]").await;
    assert_eq!(d.visible_rows().await, before - 1);
    d.click("[data-filter-waived]").await;
    assert_eq!(d.visible_rows().await, before);
    assert_eq!(
        d.js("return document.querySelector('#rules tbody tr').dataset.outcome + ' ' + document.querySelector('#rules tbody tr code').textContent").await,
        "failed owner-sso-bypass"
    );
    d.call(reqwest::Method::DELETE, "", None).await;
}

/// Runs axe-core in the page and fails on any serious or critical violation.
async fn check_accessibility(d: &Driver, what: &str) {
    match axe_source() {
        Some(axe) => {
            d.js(&axe).await;
            let found = d
                .post(
                    "/execute/async",
                    json!({"script": "var done = arguments[arguments.length - 1]; axe.run(document, {resultTypes: ['violations']}).then(function (r) { done(r.violations.map(function (v) { return {id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(function (n) { return n.target.join(' ') + ': ' + n.failureSummary; })}; })); }, function (e) { done([{id: 'axe-error', impact: 'critical', nodes: [String(e)]}]); });", "args": []}),
                )
                .await;
            let serious: Vec<&Value> = found
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
                .collect();
            assert!(
                serious.is_empty(),
                "{what}: accessibility violations: {serious:#?}"
            );
        }
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "axe-core is missing: set AXE_CORE_JS (.ci/run installs it)"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the accessibility check needs axe-core: npm install axe-core and set AXE_CORE_JS"
            );
        }
    }
}

/// The example audited a week after its last-week report, into a history, with a gate, SLAs
/// and a waiver: every section a history adds.
fn history_report_html() -> String {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let cfg = dir.path().join("c.yaml");
    let waivers = dir.path().join("w.yaml");
    std::fs::write(
        &waivers,
        "waivers:\n  - {rule: stale-sign-in, subject: frank@acme.example, reason: on leave, approved_by: ciso, expires: 2026-12-05}\n",
    )
    .unwrap();
    std::fs::write(
        &cfg,
        format!(
            "history: '{}'\nsla: {{critical: 1, high: 1}}\nwaivers: '{}'\n",
            db.display(),
            waivers.display()
        ),
    )
    .unwrap();
    let example = |name: &str| format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let run = |input: String, now: &str| {
        Command::new(env!("CARGO_BIN_EXE_orgaudit"))
            .args(["audit", "--input", &input, "--now", now, "--config"])
            .arg(&cfg)
            .args([
                "--fail-on",
                "high",
                "--set",
                "added-to-watched-group.watched_groups=[Admins]",
                "--format",
                "html",
            ])
            .output()
            .unwrap()
    };
    run(
        example("acme-users-groups.last-week.json"),
        "2026-11-22T00:00:00Z",
    );
    let out = run(example("acme-users-groups.json"), "2026-11-29T00:00:00Z");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
