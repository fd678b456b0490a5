//! The GitHub Action's scripts (`.github/action/`), run as the runner runs them: the installer
//! against a local release server (the sha256 checked, a tampered archive refused) and the
//! audit step (outputs, the appended job summary, the exit status kept for the gate).

mod common;

use std::path::Path;
use std::process::Command;

use common::root;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn bash(script: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(root().join(".github/action").join(script))
        .current_dir(root());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `orgaudit-vX-ARCH.tar.gz` holding the binary under test, and its sha256 file's text.
fn release_asset(dir: &Path, tag: &str) -> (String, Vec<u8>, String) {
    let arch = format!("{}-linux", std::env::consts::ARCH);
    let name = format!("orgaudit-{tag}-{arch}.tar.gz");
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_orgaudit"), stage.join("orgaudit")).unwrap();
    let status = Command::new("tar")
        .args([
            "-czf",
            dir.join(&name).to_str().unwrap(),
            "-C",
            stage.to_str().unwrap(),
            "orgaudit",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(dir.join(&name)).unwrap();
    let sum = Command::new("sha256sum")
        .arg(&name)
        .current_dir(dir)
        .output()
        .unwrap();
    (name, bytes, String::from_utf8(sum.stdout).unwrap())
}

/// A release server holding `archive` under `name` and `sum` as its sha256 file.
async fn release_server(name: &str, archive: Vec<u8>, sum: String) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v9.9.9/{name}")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(archive))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v9.9.9/{name}.sha256")))
        .respond_with(ResponseTemplate::new(200).set_body_string(sum))
        .mount(&server)
        .await;
    server
}

// Several workers: the installer runs on this one while the server answers on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_installer_checks_the_release_binary() {
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes, sum) = release_asset(dir.path(), "v9.9.9");
    let server = release_server(&name, bytes.clone(), sum.clone()).await;
    let runner = tempfile::tempdir().unwrap();
    let github_path = runner.path().join("github_path");
    let base = server.uri();
    let env = [
        ("REPO", "owner/orgaudit"),
        ("REF", "v9.9.9"),
        ("ORGAUDIT_RELEASE_BASE", base.as_str()),
        ("RUNNER_TEMP", runner.path().to_str().unwrap()),
        ("GITHUB_PATH", github_path.to_str().unwrap()),
    ];
    let r = bash("install.sh", &env);
    assert_eq!(r.0, 0, "{}{}", r.1, r.2);
    assert!(r.1.contains(": OK"), "sha256sum checked it: {}", r.1);
    assert!(
        r.1.contains(&format!("orgaudit {}", env!("CARGO_PKG_VERSION"))),
        "{}",
        r.1
    );
    let added = std::fs::read_to_string(&github_path).unwrap();
    assert_eq!(
        added.trim(),
        runner.path().join("orgaudit/bin").to_str().unwrap()
    );

    // An archive that is not the one the sha256 file names is refused, not installed.
    let mut tampered = bytes;
    let n = tampered.len();
    tampered[n - 10] ^= 0xff;
    let server = release_server(&name, tampered, sum).await;
    let runner = tempfile::tempdir().unwrap();
    let base = server.uri();
    let r = bash(
        "install.sh",
        &[
            ("REPO", "owner/orgaudit"),
            ("REF", "v9.9.9"),
            ("ORGAUDIT_RELEASE_BASE", base.as_str()),
            ("RUNNER_TEMP", runner.path().to_str().unwrap()),
        ],
    );
    assert_ne!(r.0, 0, "a tampered archive was accepted:\n{}{}", r.1, r.2);
    assert!(
        r.1.contains("FAILED") || r.2.contains("FAILED"),
        "{}{}",
        r.1,
        r.2
    );
    assert!(!runner.path().join("orgaudit/bin/orgaudit").exists());
}

#[test]
fn the_audit_step_sets_outputs_and_appends_the_summary() {
    let runner = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_orgaudit")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let summary = runner.path().join("summary.md");
    std::fs::write(&summary, "# Build\n").unwrap();
    let output = runner.path().join("output");
    let sarif = runner.path().join("o.sarif");
    let input = root().join("examples/acme-users-groups.json");
    let r = bash(
        "audit.sh",
        &[
            ("PATH", path.as_str()),
            ("RUNNER_TEMP", runner.path().to_str().unwrap()),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_OUTPUT", output.to_str().unwrap()),
            ("IN_INPUT", input.to_str().unwrap()),
            ("IN_FAIL_ON", "high"),
            ("IN_SUMMARY", "true"),
            ("IN_SARIF", sarif.to_str().unwrap()),
            (
                "IN_WAIVERS",
                root().join("examples/waivers.yaml").to_str().unwrap(),
            ),
            ("IN_ARGS", "--now\n2026-11-29T00:00:00Z\n-q"),
        ],
    );
    // The step itself succeeds; the gate step exits with the recorded status.
    assert_eq!(r.0, 0, "{}{}", r.1, r.2);
    assert!(r.1.contains("::error title="), "annotations: {}", r.1);
    let outputs = std::fs::read_to_string(&output).unwrap();
    for line in [
        "exit-code=1",
        "findings=13",
        "unwaived=11",
        "critical=0",
        "high=1",
    ] {
        assert!(
            outputs.lines().any(|l| l == line),
            "{line} not in {outputs}"
        );
    }
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("# Build\n## orgaudit:"),
        "appended: {text}"
    );
    assert!(std::fs::read_to_string(&sarif)
        .unwrap()
        .contains("\"version\": \"2.1.0\""));
}
