//! Email end to end against a real SMTP server (Python's aiosmtpd, started by each test): the
//! received message is parsed and checked; STARTTLS with a test CA, authentication, a 4xx then
//! success, a 5xx, TLS failures. Also snapshots of the bodies and header-injection safety.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{root, NOW};
use mailparse::{MailHeaderMap, ParsedMail};
use serde_json::Value;

const PASSWORD: &str = "s3cret-SMTP-pass";

fn example() -> String {
    common::example("acme-users-groups.json")
        .display()
        .to_string()
}

/// aiosmtpd and trustme, or a skip outside CI (where .ci/run installs them).
fn smtp_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd, trustme"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with aiosmtpd and trustme is missing; .ci/run installs them"
        );
        eprintln!("skipped: pip install aiosmtpd trustme to run the SMTP tests");
    }
    ok
}

struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    ca: Option<PathBuf>,
}

impl Server {
    fn start(mode: &str, tls: bool, auth: bool) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let mut cmd = Command::new("python3");
        cmd.arg(root().join("tests/fixtures/smtp_server.py"))
            .arg(port.to_string())
            .arg(dir.path())
            .arg(mode);
        if tls {
            cmd.arg("--tls").arg(&ca);
        }
        if auth {
            cmd.arg("--auth").arg(format!("auditor:{PASSWORD}"));
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let started = Instant::now();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "the SMTP server did not start");
        assert!(started.elapsed() < Duration::from_secs(30));
        Server {
            child,
            port,
            dir,
            ca: tls.then_some(ca),
        }
    }

    /// The messages received: (raw message, envelope).
    fn received(&self) -> Vec<(Vec<u8>, Value)> {
        let mut out = Vec::new();
        for n in 1.. {
            let eml = self.dir.path().join(format!("{n}.eml"));
            if !eml.exists() {
                break;
            }
            let env = std::fs::read_to_string(self.dir.path().join(format!("{n}.json"))).unwrap();
            out.push((
                std::fs::read(eml).unwrap(),
                serde_json::from_str(&env).unwrap(),
            ));
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn orgaudit(args: &[&str], password: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orgaudit"));
    cmd.args(args).env_remove("ORGAUDIT_SMTP_PASSWORD");
    if let Some(p) = password {
        cmd.env("ORGAUDIT_SMTP_PASSWORD", p);
    }
    let out = cmd.output().unwrap();
    let r = Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in [PASSWORD, "wrong-password-123"] {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "the SMTP password leaked:\n{}{}",
            r.stdout,
            r.stderr
        );
    }
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r
}

fn audit_and_mail(extra: &[&str], password: Option<&str>) -> Run {
    let input = example();
    let mut args = vec![
        "audit",
        "-i",
        &input,
        "--now",
        NOW,
        "-q",
        "--set",
        "external-email-domain.allowed_domains=[acme.example]",
        "--email-to",
        "security@acme.example",
        "--email-from",
        "orgaudit <orgaudit@acme.example>",
    ];
    args.extend_from_slice(extra);
    orgaudit(&args, password)
}

fn part<'a>(mail: &'a ParsedMail<'a>, mime: &str, filename: Option<&str>) -> &'a ParsedMail<'a> {
    fn walk<'a>(m: &'a ParsedMail<'a>, out: &mut Vec<&'a ParsedMail<'a>>) {
        out.push(m);
        for s in &m.subparts {
            walk(s, out);
        }
    }
    let mut all = Vec::new();
    walk(mail, &mut all);
    all.into_iter()
        .find(|p| {
            p.ctype.mimetype == mime
                && p.get_content_disposition()
                    .params
                    .get("filename")
                    .map(String::as_str)
                    == filename
        })
        .unwrap_or_else(|| panic!("no {mime} part named {filename:?}"))
}

#[test]
fn the_message_arrives_whole_with_its_attachments() {
    if !smtp_available() {
        return;
    }
    let server = Server::start("accept", false, false);
    let url = format!("smtp://127.0.0.1:{}", server.port);
    let r = audit_and_mail(
        &[
            "--email-cc",
            "auditors@acme.example",
            "--smtp-url",
            &url,
            "--email-attach",
            "html,json",
            "--report-url",
            "https://ci.example/runs/42/report.html",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let received = server.received();
    assert_eq!(received.len(), 1);
    let (raw, envelope) = &received[0];
    assert_eq!(envelope["mail_from"], "orgaudit@acme.example");
    assert_eq!(
        envelope["rcpt_tos"],
        serde_json::json!(["security@acme.example", "auditors@acme.example"])
    );
    let mail = mailparse::parse_mail(raw).unwrap();
    let h = &mail.headers;
    assert_eq!(h.get_first_value("Subject").unwrap(), "orgaudit: 14 findings (1 critical, 1 high, 7 medium, 4 low, 1 info) in acme-users-groups.json");
    assert_eq!(h.get_first_value("To").unwrap(), "security@acme.example");
    assert_eq!(h.get_first_value("Cc").unwrap(), "auditors@acme.example");
    assert_eq!(mail.ctype.mimetype, "multipart/mixed");
    let alt = &mail.subparts[0];
    assert_eq!(alt.ctype.mimetype, "multipart/alternative");
    let text = alt.subparts[0].get_body().unwrap();
    let html = alt.subparts[1].get_body().unwrap();
    assert_eq!(alt.subparts[0].ctype.mimetype, "text/plain");
    assert_eq!(alt.subparts[1].ctype.mimetype, "text/html");
    assert!(
        text.contains("14 findings: 1 critical, 1 high, 7 medium, 4 low, 1 info."),
        "{text}"
    );
    assert!(text.contains("Full report: https://ci.example/runs/42/report.html"));
    assert!(
        html.contains("href=\"https:&#x2f;&#x2f;ci.example&#x2f;runs&#x2f;42&#x2f;report.html\"")
            || html.contains("https://ci.example/runs/42/report.html"),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("<svg"),
        "email clients drop scripts and SVG"
    );

    // The attachments parse back to the same findings as the JSON output.
    let json: Value = serde_json::from_slice(
        &part(&mail, "application/json", Some("findings.json"))
            .get_body_raw()
            .unwrap(),
    )
    .unwrap();
    let direct: Value = serde_json::from_str(
        &orgaudit(
            &[
                "audit",
                "-i",
                &example(),
                "--now",
                NOW,
                "-f",
                "json",
                "--set",
                "external-email-domain.allowed_domains=[acme.example]",
            ],
            None,
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(json["findings"], direct["findings"]);
    let csv_bytes = part(&mail, "text/csv", Some("findings.csv"))
        .get_body_raw()
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv_bytes.as_slice());
    let fingerprints: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[8].to_string())
        .collect();
    let want: Vec<String> = direct["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fingerprint"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fingerprints, want);
    let report = part(&mail, "text/html", Some("orgaudit-report.html"))
        .get_body()
        .unwrap();
    assert!(report.starts_with("<!doctype html>"));
}

#[test]
fn starttls_with_authentication() {
    if !smtp_available() {
        return;
    }
    let server = Server::start("accept", true, true);
    let url = format!("smtp://auditor@127.0.0.1:{}?tls=required", server.port);
    let ca = server.ca.clone().unwrap();
    let r = audit_and_mail(
        &["--smtp-url", &url, "--smtp-ca-file", ca.to_str().unwrap()],
        Some(PASSWORD),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].1["tls"], true);
    assert_eq!(received[0].1["auth"], true);

    // A wrong password: exit 3, the server's reply, what to check; no password in the output.
    let r = audit_and_mail(
        &["--smtp-url", &url, "--smtp-ca-file", ca.to_str().unwrap()],
        Some("wrong-password-123"),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("535"), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "authentication failed: check the user in --smtp-url and ORGAUDIT_SMTP_PASSWORD"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(server.received().len(), 1);

    // An untrusted certificate: exit 3 naming the TLS problem.
    let r = audit_and_mail(&["--smtp-url", &url], Some(PASSWORD));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("--smtp-ca-file"), "{}", r.stderr);
    assert!(
        r.stderr.contains("after 1 attempt:"),
        "a certificate problem is not retried: {}",
        r.stderr
    );
    assert_eq!(server.received().len(), 1);
}

#[test]
fn a_4xx_reply_is_retried_and_a_5xx_is_final() {
    if !smtp_available() {
        return;
    }
    let server = Server::start("tempfail-once", false, false);
    let url = format!("smtp://127.0.0.1:{}", server.port);
    let r = audit_and_mail(&["--smtp-url", &url], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].1["data_calls"], 2,
        "delivered on the second attempt"
    );

    let server = Server::start("reject", false, false);
    let url = format!("smtp://127.0.0.1:{}", server.port);
    let r = audit_and_mail(&["--smtp-url", &url, "--fail-on", "critical"], None);
    assert_eq!(
        r.code, 3,
        "a failed delivery is exit 3, before the gate: {}",
        r.stderr
    );
    assert!(r.stderr.contains("after 1 attempt"), "{}", r.stderr);
    assert!(r.stderr.contains("554"), "{}", r.stderr);
    assert!(
        r.stderr.contains("Message rejected: policy violation"),
        "{}",
        r.stderr
    );
}

#[test]
fn email_when_findings_sends_nothing_for_a_clean_audit() {
    if !smtp_available() {
        return;
    }
    let server = Server::start("accept", false, false);
    let url = format!("smtp://127.0.0.1:{}", server.port);
    let input = example();
    let clean = |extra: &[&str]| {
        let mut args = vec![
            "audit",
            "-i",
            &input,
            "--no-builtin",
            "-q",
            "--smtp-url",
            &url,
            "--email-to",
            "security@acme.example",
            "--email-from",
            "orgaudit@acme.example",
        ];
        args.extend_from_slice(extra);
        orgaudit(&args, None)
    };
    let r = clean(&["--email-when", "findings"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(server.received().is_empty());
    let r = clean(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let received = server.received();
    assert_eq!(
        received.len(),
        1,
        "a weekly report that says nothing was found is evidence too"
    );
    let mail = mailparse::parse_mail(&received[0].0).unwrap();
    assert_eq!(
        mail.headers.get_first_value("Subject").unwrap(),
        "orgaudit: no findings in acme-users-groups.json"
    );
}

#[test]
fn unsafe_or_incomplete_settings_are_exit_2_before_the_audit() {
    let r = audit_and_mail(
        &["--smtp-url", "smtp://auditor@mail.acme.example:587"],
        Some(PASSWORD),
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("refusing to send the SMTP password to mail.acme.example over a connection that may stay unencrypted"), "{}", r.stderr);
    let r = audit_and_mail(&[], None);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--email-to needs --smtp-url URL"),
        "{}",
        r.stderr
    );
    let r = audit_and_mail(&["--smtp-url", "smtp://auditor@127.0.0.1:2525"], None);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no password: set ORGAUDIT_SMTP_PASSWORD"),
        "{}",
        r.stderr
    );
    let r = orgaudit(
        &[
            "audit",
            "-i",
            &example(),
            "--email-to",
            "a@b.example\r\nBcc: x@evil.example",
            "--email-from",
            "o@acme.example",
            "--email-dry-run",
            "/dev/null",
        ],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is not an email address"), "{}", r.stderr);
}

#[test]
fn dry_run_writes_the_message_and_headers_cannot_be_injected() {
    let dir = tempfile::tempdir().unwrap();
    // A report whose file name carries a header of its own.
    let evil = dir.path().join("acme\r\nBcc: attacker@evil.example.json");
    std::fs::copy(example(), &evil).unwrap();
    let eml = dir.path().join("message.eml");
    let r = orgaudit(
        &[
            "audit",
            "-i",
            evil.to_str().unwrap(),
            "--now",
            NOW,
            "-q",
            "--email-to",
            "security@acme.example",
            "--email-from",
            "orgaudit@acme.example",
            "--email-subject",
            "Weekly review of {{ label }}: {{ report.summary.findings }} findings",
            "--email-dry-run",
            eml.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let raw = std::fs::read(&eml).unwrap();
    let mail = mailparse::parse_mail(&raw).unwrap();
    assert!(
        mail.headers.get_first_value("Bcc").is_none(),
        "a header was injected"
    );
    assert_eq!(
        mail.headers.get_first_value("Subject").unwrap(),
        "Weekly review of acme Bcc: attacker@evil.example.json: 13 findings"
    );
}

fn bodies(
    report: &orgaudit::findings::AuditReport,
    settings: &orgaudit::notify::EmailSettings,
) -> (String, String) {
    let msg = orgaudit::notify::build(report, settings, &orgaudit::render::Templates::embedded())
        .unwrap();
    let raw = msg.formatted();
    let mail = mailparse::parse_mail(&raw).unwrap();
    let alt = &mail.subparts[0];
    (
        alt.subparts[0].get_body().unwrap(),
        alt.subparts[1].get_body().unwrap(),
    )
}

fn settings() -> orgaudit::notify::EmailSettings {
    orgaudit::notify::EmailSettings {
        to: vec!["security@acme.example".into()],
        from: "orgaudit@acme.example".into(),
        report_url: Some("https://ci.example/runs/42/report.html".into()),
        ..Default::default()
    }
}

#[test]
fn snapshots_of_the_email_bodies() {
    let bytes = std::fs::read(example()).unwrap();
    let loaded = orgaudit::source::from_bytes(&bytes, "examples/acme-users-groups.json").unwrap();
    let mut rules = orgaudit::rules::RuleSet::builtin();
    rules
        .apply_set("external-email-domain.allowed_domains=[acme.example]")
        .unwrap();
    let report = orgaudit::audit(&loaded, &rules, NOW.parse().unwrap()).unwrap();
    let (text, html) = bodies(&report, &settings());
    insta::assert_snapshot!("email.txt", text);
    insta::assert_snapshot!("email.html", html);
}

#[test]
fn hostile_values_are_safe_in_the_email() {
    let users = serde_json::json!({"data": [
        {"id": "u1", "record_type": "organization_sub_user", "email": "<script>alert(1)</script>@evil.example",
         "user_status": "enabled", "organization_user_bypasses_sso": true, "created_at": "2020-01-01T00:00:00Z",
         "last_sign_in_at": "2026-11-01T00:00:00Z", "groups": [{"id": "g", "name": "x".repeat(5000)}]}]});
    let loaded =
        orgaudit::source::from_bytes(users.to_string().as_bytes(), "hostile.json").unwrap();
    let report = orgaudit::audit(
        &loaded,
        &orgaudit::rules::RuleSet::builtin(),
        NOW.parse().unwrap(),
    )
    .unwrap();
    let (_, html) = bodies(&report, &settings());
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;@evil.example"));
    // A large attachment is compressed and the body says so.
    let small = orgaudit::notify::EmailSettings {
        max_attachment_bytes: 100,
        ..settings()
    };
    let (text, _) = bodies(&report, &small);
    assert!(text.contains("findings.csv.gz ("), "{text}");
    assert!(
        text.contains("gzip-compressed because it is large"),
        "{text}"
    );
}

fn spamassassin() -> Option<&'static str> {
    let found = Command::new("spamassassin")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "spamassassin is missing; .ci/run installs Debian's spamassassin package"
        );
        eprintln!("skipped: spamassassin is not installed (apt-get install spamassassin)");
        return None;
    }
    Some("spamassassin")
}

/// The weekly message as a mail filter sees it: dated, with a Message-ID, a subject that counts
/// what is open (waived findings apart), expired waivers listed, a line on standard error, and
/// a SpamAssassin score (local rules) of at most 1.0.
#[test]
fn the_message_is_dated_identified_and_not_spam() {
    let dir = tempfile::tempdir().unwrap();
    let waivers = dir.path().join("waivers.yaml");
    std::fs::write(
        &waivers,
        "waivers:\n\
         \x20 - { rule: owner-sso-bypass, subject: bob@acme.example, reason: break-glass, approved_by: ciso@acme.example, expires: 2027-03-31 }\n\
         \x20 - { rule: sso-bypass, subject: carol@acme.example, reason: old, approved_by: ciso@acme.example, expires: 2026-01-01 }\n",
    )
    .unwrap();
    let eml = dir.path().join("weekly.eml");
    let r = audit_and_mail(
        &[
            "--waivers",
            waivers.to_str().unwrap(),
            "--smtp-timeout",
            "5",
            "--email-dry-run",
            eml.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let raw = std::fs::read(&eml).unwrap();
    assert!(
        r.stderr.contains(&format!(
            "orgaudit: email written to {} (dry run), addressed to security@acme.example: \"orgaudit: 13 findings (1 high, 7 medium, 4 low, 1 info) in acme-users-groups.json, 1 waived\" ({} bytes)",
            eml.display(),
            raw.len()
        )),
        "{}",
        r.stderr
    );
    let mail = mailparse::parse_mail(&raw).unwrap();
    let id = mail.headers.get_first_value("Message-ID").unwrap();
    assert!(
        id.starts_with("<orgaudit.") && id.ends_with("@acme.example>"),
        "{id}"
    );
    let date = mail.headers.get_first_value("Date").unwrap();
    assert!(mailparse::dateparse(&date).is_ok(), "{date}");
    let text = part(&mail, "text/plain", None).get_body().unwrap();
    assert!(
        text.contains("Expired waivers (no longer applied: renew or remove them):"),
        "{text}"
    );
    assert!(text.contains("expired on 2026-01-01"), "{text}");
    let html = part(&mail, "text/html", None).get_body().unwrap();
    assert!(html.contains("<b>Expired waivers</b>"), "{html}");
    // Two messages never share an id.
    let again = dir.path().join("again.eml");
    let r = audit_and_mail(&["--email-dry-run", again.to_str().unwrap()], None);
    assert_eq!(r.code, 0);
    let other = std::fs::read(&again).unwrap();
    let other = mailparse::parse_mail(&other).unwrap();
    assert_ne!(other.headers.get_first_value("Message-ID").unwrap(), id);

    if let Some(sa) = spamassassin() {
        let out = Command::new(sa)
            .args(["-L", "-t"])
            .stdin(std::fs::File::open(&eml).unwrap())
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        let score: f64 = report
            .lines()
            .find_map(|l| l.strip_prefix("X-Spam-Status: "))
            .and_then(|l| l.split("score=").nth(1))
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no score in SpamAssassin's report:\n{report}"));
        assert!(score <= 1.0, "SpamAssassin scores it {score}:\n{report}");
        for rule in ["MISSING_MID", "MISSING_DATE"] {
            assert!(!report.contains(rule), "{rule} hit:\n{report}");
        }
    }
}

/// `config check --connect` opens the SMTP connection (STARTTLS and login as configured) and
/// sends nothing; a wrong password is exit 3, named, never shown.
#[test]
fn config_check_connect_logs_in_and_sends_nothing() {
    if !smtp_available() {
        return;
    }
    let server = Server::start("accept", true, true);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("weekly.yaml");
    std::fs::write(
        &cfg,
        format!(
            "input: {}\nemail:\n  to: [security@acme.example]\n  from: orgaudit@acme.example\n  smtp_url: smtp://auditor@127.0.0.1:{}?tls=required\n  ca_file: {}\n",
            example(),
            server.port,
            server.ca.as_ref().unwrap().display()
        ),
    )
    .unwrap();
    let check = |password| {
        orgaudit(
            &[
                "config",
                "check",
                "--config",
                cfg.to_str().unwrap(),
                "--connect",
            ],
            password,
        )
    };
    let r = check(Some(PASSWORD));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("reached: SMTP: smtp://auditor@127.0.0.1:")
            && r.stdout
                .contains("accepted a connection (nothing was sent)"),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("ok: everything it names loads, and every connection opens"));
    let r = check(Some("wrong-password-123"));
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("error: SMTP: ") && r.stderr.contains("535"),
        "{}",
        r.stderr
    );
    assert!(server.received().is_empty(), "nothing is sent");
}
