//! Setting up: `orgaudit init`, the configuration `audit` finds in the current folder (and what
//! it may not set), and `config check` (every problem in one pass; `--connect`).

mod common;

use std::path::Path;
use std::process::Command;

use common::{example_arg as example, run_isolated as orgaudit_in};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NOW: &str = "2026-11-29T00:00:00Z";

#[test]
fn init_writes_a_setup_that_checks_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = orgaudit_in(d, &["init"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in [
        "orgaudit.yaml",
        "waivers.yaml",
        "rules/owner-inactive.yaml",
        "rules/owner-inactive.test.yaml",
    ] {
        assert!(d.join(f).is_file(), "{f}");
        assert!(r.stdout.contains(&format!("wrote ./{f}")), "{}", r.stdout);
    }
    // Never overwritten.
    std::fs::write(d.join("waivers.yaml"), "waivers: []  # mine\n").unwrap();
    let r = orgaudit_in(d, &["init"], &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("already exist; nothing was written"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(d.join("waivers.yaml")).unwrap(),
        "waivers: []  # mine\n"
    );

    // What it wrote checks, its rule's tests pass, and an audit uses it.
    let r = orgaudit_in(d, &["config", "check"], &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("ok: everything it names loads"),
        "{}",
        r.stdout
    );
    let r = orgaudit_in(d, &["rules", "test", "rules"], &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = orgaudit_in(
        d,
        &[
            "audit",
            "-i",
            &example("acme-users-groups.json"),
            "--now",
            NOW,
            "-q",
        ],
        &[],
    );
    assert_eq!(
        r.code, 1,
        "fail_on: high, and the example has high findings\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "orgaudit: using orgaudit.yaml from the current folder (--no-config skips it)"
        ),
        "{}",
        r.stderr
    );
    assert!(d.join("reports/access-review.html").is_file());
    assert!(d.join("reports/findings.json").is_file());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("reports/findings.json")).unwrap())
            .unwrap();
    assert!(json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == "owner-inactive"));
    // --no-config: nothing of it applies.
    let r = orgaudit_in(
        d,
        &[
            "audit",
            "--no-config",
            "-i",
            &example("acme-users-groups.json"),
            "--now",
            NOW,
            "-q",
            "-f",
            "json",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "no fail_on without the file\n{}", r.stderr);
    assert!(!r.stderr.contains("using orgaudit.yaml"));
    // init into another folder.
    let r = orgaudit_in(d, &["init", "team"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(d.join("team/rules/owner-inactive.yaml").is_file());
}

#[test]
fn a_configuration_found_in_the_folder_cannot_redirect_secrets_or_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("orgaudit.yaml"),
        "telnyx:\n  base_url: https://collector.evil.example/v2\n\
         email:\n  to: [attacker@evil.example]\n  from: x@evil.example\n  smtp_url: smtp://evil.example\n\
         organizations:\n  - { name: prod, api_key_env: TELNYX_API_KEY }\n\
         history: postgres://evil.example/loot\n\
         outputs:\n  - { format: text, path: ../../.bashrc }\n  - { format: html, path: reports/ok.html }\n",
    )
    .unwrap();
    let r = orgaudit_in(
        d,
        &["audit", "--fetch", "--now", NOW],
        &[("TELNYX_API_KEY", "KEY123")],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    for key in [
        "telnyx.base_url",
        "organizations[prod].api_key_env (line 8)",
        "email.smtp_url",
        "email.to",
        "history",
        "outputs (../../.bashrc is outside the file's folder)",
    ] {
        assert!(r.stderr.contains(key), "{key} not named:\n{}", r.stderr);
    }
    assert!(!r.stderr.contains("reports/ok.html"), "{}", r.stderr);
    assert!(
        r.stderr.contains("name it with --config to trust it"),
        "{}",
        r.stderr
    );
    // config check says the same, as a problem.
    let r = orgaudit_in(d, &["config", "check"], &[("TELNYX_API_KEY", "KEY123")]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("audit will not trust it with: telnyx.base_url"),
        "{}",
        r.stderr
    );
    // Named with --config, it is the operator's own.
    std::fs::write(
        d.join("orgaudit.yaml"),
        "telnyx:\n  base_url: http://127.0.0.1:9/v2\nfail_on: critical\n",
    )
    .unwrap();
    let r = orgaudit_in(
        d,
        &[
            "audit",
            "--config",
            "orgaudit.yaml",
            "-i",
            &example("acme-users-groups.json"),
            "--now",
            NOW,
            "-q",
            "-f",
            "json",
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    // --config and --no-config exclude each other.
    let r = orgaudit_in(
        d,
        &[
            "audit",
            "--config",
            "orgaudit.yaml",
            "--no-config",
            "-i",
            "x",
        ],
        &[],
    );
    assert_eq!(r.code, 2);
}

#[test]
fn config_check_reports_every_problem_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("rules")).unwrap();
    std::fs::write(
        d.join("rules/bad.yaml"),
        "id: bad\ntitle: Bad\nseverity: urgent\nscope: user\nwhen: { field: nope, equals: 1 }\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("tpl")).unwrap();
    std::fs::write(d.join("tpl/report.md"), "{% if %}\n").unwrap();
    std::fs::write(d.join("blocked"), "").unwrap();
    std::fs::write(
        d.join("team.yaml"),
        "organizations:\n  - { name: prod, api_key_env: KEY_PROD }\n\
         rules: { paths: [rules] }\n\
         waivers: missing-waivers.yaml\n\
         baseline: missing-baseline.json\n\
         templates: tpl\n\
         outputs:\n  - { format: html, path: blocked/r.html }\n\
         notify:\n  - { service: slack }\n\
         email:\n  to: [sec@acme.example]\n",
    )
    .unwrap();
    let r = orgaudit_in(d, &["config", "check", "--config", "team.yaml"], &[]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    for expected in [
        "error: rules: ",
        "bad.yaml",
        "error: waivers: ",
        "missing-waivers.yaml",
        "error: baseline: ",
        "error: templates: ",
        "report.md",
        "error: organization prod: its API key variable KEY_PROD is not set",
        "error: output ",
        "blocked is not a folder",
        "ORGAUDIT_SLACK_WEBHOOK_URL",
        "error: email: no sender (email.from)",
        "error: email: no server (email.smtp_url)",
    ] {
        assert!(
            r.stderr.contains(expected),
            "{expected:?} missing:\n{}",
            r.stderr
        );
    }
    assert!(r.stderr.contains(" problems in team.yaml"), "{}", r.stderr);
}

#[tokio::test]
async fn config_check_connect_reaches_the_api_with_one_small_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/organizations/users"))
        .and(query_param("page[size]", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"data\": []}"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    std::fs::write(
        d.join("prod.yaml"),
        format!(
            "telnyx: {{ base_url: '{}/v2' }}\norganizations:\n  - {{ name: prod, api_key_env: KEY_PROD }}\n  - {{ name: dev, api_key_env: KEY_DEV, base_url: 'http://127.0.0.1:9/v2' }}\n",
            server.uri()
        ),
    )
    .unwrap();
    let r = tokio::task::spawn_blocking(move || {
        orgaudit_in(
            &d,
            &["config", "check", "--config", "prod.yaml", "--connect"],
            &[
                ("KEY_PROD", "KEYprod0123SECRET"),
                ("KEY_DEV", "KEYdev0123SECRET"),
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("reached: organization prod: ")
            && r.stdout.contains("answered 200 with this key"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("error: organization dev: cannot reach the Telnyx API"),
        "{}",
        r.stderr
    );
    assert!(!format!("{}{}", r.stdout, r.stderr).contains("SECRET"));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "one request, for one user");
    assert_eq!(
        requests[0]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        "Bearer KEYprod0123SECRET"
    );
}

/// The words of a command line written in an example (no quoting in them).
fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// The crontab line and the systemd unit's command, run as written against the bundled
/// example (paths of this machine swapped in, the email written instead of sent): the first run
/// works, and the second, with nothing changed, sends nothing.
#[test]
fn the_scheduled_commands_run_from_their_first_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crontab = std::fs::read_to_string(root.join("examples/schedule/crontab")).unwrap();
    let cron_line = crontab
        .lines()
        .find(|l| l.starts_with("0 6 * * 1"))
        .unwrap();
    let cron_cmd = &cron_line[cron_line.find("orgaudit audit").unwrap()..];
    let unit = std::fs::read_to_string(root.join("examples/schedule/orgaudit.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/"))
        .unwrap();
    assert!(unit.contains("SuccessExitStatus=1"), "exit 1 is a result");
    for (name, command) in [("crontab", cron_cmd), ("systemd", exec)] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let config = d.join("orgaudit.yaml");
        std::fs::write(
            &config,
            format!(
                "input: {}\nwaivers: {}\nemail:\n  to: [security@acme.example]\n  from: orgaudit@acme.example\n",
                example("acme-users-groups.json"),
                example("waivers.yaml")
            ),
        )
        .unwrap();
        let history = d.join("history.db");
        let mut args: Vec<String> = words(command)
            .into_iter()
            .skip(1) // orgaudit
            .map(|w| match w.as_str() {
                "/etc/orgaudit/orgaudit.yaml" => config.to_str().unwrap().to_string(),
                "/var/lib/orgaudit/history.db" => history.to_str().unwrap().to_string(),
                _ => w,
            })
            .collect();
        assert!(args.iter().any(|a| a == "--history"), "{name}: {command}");
        let eml = d.join("week.eml");
        args.extend(["--email-dry-run".into(), eml.to_str().unwrap().into()]);
        for (week, now) in ["2026-11-23T06:00:00Z", "2026-11-30T06:00:00Z"]
            .iter()
            .enumerate()
        {
            let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
            a.extend(["--now", now]);
            let r = orgaudit_in(d, &a, &[]);
            assert_eq!(r.code, 0, "{name}, week {week}: {}", r.stderr);
            if week == 0 {
                assert!(eml.is_file(), "{name}: the first run emails");
                std::fs::remove_file(&eml).unwrap();
            } else {
                assert!(
                    !eml.exists(),
                    "{name}: nothing changed, no email (--email-when changed)"
                );
            }
        }
    }
}

/// The Kubernetes manifest parses, runs the image as the user the Dockerfile sets, and passes
/// arguments `audit` takes.
#[test]
fn the_kubernetes_manifest_parses_and_matches_the_image() {
    use yaml_rust2::YamlLoader;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(root.join("examples/schedule/kubernetes-cronjob.yaml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    assert_eq!(docs.len(), 2);
    let job = &docs[0];
    assert_eq!(job["kind"].as_str(), Some("CronJob"));
    let pod = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"].as_i64(), Some(65532));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER 65532:65532"));
    let container = &pod["containers"][0];
    assert!(container["image"].as_str().unwrap().contains("/orgaudit:"));
    let args: Vec<&str> = container["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "audit");
    // What the manifest asks of `audit` parses (the configuration it names is mounted there).
    let mut check = args.clone();
    check.push("--help");
    let r = orgaudit_in(root, &check, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(docs[1]["kind"].as_str(), Some("PersistentVolumeClaim"));
}

/// The timer fires the service weekly (`systemd-analyze` checks the calendar where it exists),
/// and the example report in the shape of Telnyx's API reference audits.
#[test]
fn the_timer_and_the_api_reference_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let timer = std::fs::read_to_string(root.join("examples/schedule/orgaudit.timer")).unwrap();
    let calendar = timer
        .lines()
        .find_map(|l| l.strip_prefix("OnCalendar="))
        .expect("a calendar");
    assert!(timer.contains("[Timer]") && timer.contains("WantedBy=timers.target"));
    // orgaudit.timer starts orgaudit.service (the same name, systemd's default).
    assert!(root.join("examples/schedule/orgaudit.service").is_file());
    if let Ok(out) = Command::new("systemd-analyze")
        .args(["calendar", calendar])
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let r = orgaudit_in(
        root,
        &[
            "audit",
            "-i",
            &example("telnyx-api-reference-example.json"),
            "--now",
            NOW,
            "-f",
            "json",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["summary"]["users"], 2);
}

/// Every file in examples/ is exercised: named by a test, by .ci/, or written by `init`.
#[test]
fn every_example_is_exercised() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut users = String::new();
    for dir in ["tests", ".ci"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                users.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    users.push_str(&std::fs::read_to_string(root.join("src/init.rs")).unwrap());
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root.join("examples"), &mut files);
    let unused: Vec<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(root.join("examples"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|rel| {
            let name = Path::new(rel)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            !users.contains(rel.as_str()) && !users.contains(&format!("\"{name}\""))
        })
        .collect();
    assert!(unused.is_empty(), "examples no test exercises: {unused:?}");
}
