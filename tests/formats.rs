//! Every output format: snapshots on the bundled example, safety on a hostile report, and the
//! JUnit output against a JUnit schema.

use std::path::Path;
use std::process::Command;

use orgaudit::findings::AuditReport;
use orgaudit::render::{self, Format, RenderOptions};
use orgaudit::rules::RuleSet;
use orgaudit::{audit, source};
use serde_json::json;

const NOW: &str = "2026-11-29T00:00:00Z";

fn example_report() -> AuditReport {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme-users-groups.json");
    let loaded = source::from_bytes(
        &std::fs::read(path).unwrap(),
        "examples/acme-users-groups.json",
    )
    .unwrap();
    let mut rules = RuleSet::builtin();
    rules
        .apply_set("external-email-domain.allowed_domains=[acme.example]")
        .unwrap();
    audit(&loaded, &rules, NOW.parse().unwrap()).unwrap()
}

fn render_to_string(report: &AuditReport, format: Format) -> String {
    let mut out = Vec::new();
    render::render(report, format, &RenderOptions::default(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn snapshots_of_every_format() {
    let report = example_report();
    for format in Format::ALL {
        let out = render_to_string(&report, format);
        insta::assert_snapshot!(format!("acme.{}", format.as_str()), out);
    }
}

/// A report whose values try every trick: markup, attribute breaking, formulas, control
/// characters, very long and non-ASCII text.
fn hostile_report() -> AuditReport {
    let long = "x".repeat(10_000);
    let evil_group = json!({"id": "g\"><img src=x onerror=alert(1)>", "name": "=HYPERLINK(\"http://evil.example\",\"click\")"});
    let users = json!({"data": [
        {"id": "u-<script>alert(1)</script>", "record_type": "organization_sub_user",
         "email": "<script>alert('pwn')</script>@evil.example", "user_status": "disabled",
         "created_at": "2020-01-01T00:00:00Z", "last_sign_in_at": null, "groups": [evil_group]},
        {"id": "u2", "record_type": "organization_sub_user",
         "email": "=cmd|' /C calc'!A0@evil.example", "user_status": "enabled",
         "organization_user_bypasses_sso": true,
         "created_at": "2020-01-01T00:00:00Z", "last_sign_in_at": "2020-01-02T00:00:00Z",
         "groups": [{"id": "g2", "name": "Jürgen's \"Team\" | 日本 \u{1b}[31m"}]},
        {"id": "u3", "record_type": "organization_owner",
         "email": format!("{long}@evil.example"), "user_status": "enabled",
         "organization_user_bypasses_sso": false,
         "created_at": "2020-01-01T00:00:00Z", "last_sign_in_at": "2026-11-01T00:00:00Z",
         "groups": [{"id": "g3", "name": "+SUM(1,2)"}]},
        {"id": "u4", "record_type": "organization_sub_user",
         "email": "@SUM(A1)+jürgen@例え.example", "user_status": "enabled",
         "created_at": "2020-01-01T00:00:00Z", "last_sign_in_at": null, "groups": []},
    ]});
    let loaded = source::from_bytes(users.to_string().as_bytes(), "hostile.json").unwrap();
    audit(&loaded, &RuleSet::builtin(), NOW.parse().unwrap()).unwrap()
}

#[test]
fn hostile_values_render_safely_in_html() {
    let report = hostile_report();
    assert!(report.findings.len() >= 5, "{}", report.findings.len());
    let html = render_to_string(&report, Format::Html);
    assert!(!html.contains("<script>alert"), "script injected");
    assert!(!html.contains("<img src=x"), "markup injected");
    assert!(!html.contains("\" onerror"), "attribute broken out of");
    assert!(html.contains("&lt;script&gt;alert("), "escaped text shown");
    assert!(html.contains("jürgen@例え.example"), "non-ASCII kept");
    assert_eq!(html.matches("<script>").count(), 1, "only our own script");
    // Nothing is loaded from anywhere: no URL in src or href, and a CSP forbidding requests.
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    assert!(html.contains("default-src 'none'"));
}

#[test]
fn hostile_values_render_safely_in_markdown() {
    let md = render_to_string(&hostile_report(), Format::Markdown);
    assert!(!md.contains("<script>"), "{md}");
    assert!(md.contains("&lt;script&gt;"));
    // Every row of a table has its header's columns: no value adds or ends a cell.
    let cells = |line: &str| {
        line.char_indices()
            .filter(|&(i, c)| c == '|' && (i == 0 || line.as_bytes()[i - 1] != b'\\'))
            .count()
    };
    let mut header = None;
    for line in md.lines() {
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        let n = cells(line);
        let want = *header.get_or_insert(n);
        assert_eq!(n, want, "a table row broke: {line}");
    }
    assert!(!md.contains('\u{1b}'));
    assert!(md.contains("… and") || md.len() < 40_000);
}

#[test]
fn hostile_values_render_safely_in_csv() {
    let csv_text = render_to_string(&hostile_report(), Format::Csv);
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        render::CSV_COLUMNS
    );
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        rows += 1;
        for cell in record.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a formula cell: {cell:?}"
            );
        }
        let evidence: serde_json::Value = serde_json::from_str(&record[10]).unwrap();
        assert!(evidence.is_object());
    }
    assert_eq!(rows, hostile_report().findings.len());
    assert!(csv_text.contains("'=cmd|' /C calc'!A0@evil.example"));
    assert!(csv_text.contains("'@SUM(A1)+jürgen@例え.example"));
}

#[test]
fn hostile_values_render_safely_in_text_and_json() {
    let report = hostile_report();
    let text = render_to_string(&report, Format::Text);
    assert!(
        !text.contains('\u{1b}'),
        "an escape sequence reached the terminal"
    );
    let json = render_to_string(&report, Format::Json);
    let back: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(back, serde_json::to_value(&report).unwrap());
}

fn xmllint() -> Option<&'static str> {
    let found = Command::new("xmllint").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "xmllint is missing; .ci/run installs libxml2-utils"
        );
        eprintln!("skipped: xmllint is not installed (apt-get install libxml2-utils)");
        return None;
    }
    Some("xmllint")
}

/// Validates XML against the JUnit schema; returns xmllint's verdict.
fn validate_junit(xml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, xml).unwrap();
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit.xsd");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd)
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn junit_output_is_valid_against_the_schema() {
    if xmllint().is_none() {
        return;
    }
    for report in [example_report(), hostile_report()] {
        let xml = render_to_string(&report, Format::Junit);
        let (ok, msg) = validate_junit(&xml);
        assert!(ok, "{msg}\n{xml}");
        assert_eq!(
            xml.matches("<testcase ").count(),
            report.rules.len(),
            "one test case per rule"
        );
        let failing = report.rules.iter().filter(|r| r.findings > 0).count();
        assert_eq!(xml.matches("<failure ").count(), failing);
    }
    // The validator does reject what the schema forbids.
    let xml = render_to_string(&example_report(), Format::Junit).replacen(
        "<testcase ",
        "<testcase bogus=\"1\" ",
        1,
    );
    assert!(!validate_junit(&xml).0);
}

#[test]
fn markdown_truncates_long_lists_with_a_count() {
    let mut users = Vec::new();
    for i in 0..30 {
        users.push(
            json!({"id": format!("u{i:02}"), "record_type": "organization_sub_user",
            "email": format!("u{i}@acme.example"), "user_status": "enabled",
            "created_at": "2020-01-01T00:00:00Z", "last_sign_in_at": "2020-01-02T00:00:00Z",
            "groups": [{"id": "g", "name": "G"}]}),
        );
    }
    let body = json!({ "data": users }).to_string();
    let loaded = source::from_bytes(body.as_bytes(), "many.json").unwrap();
    let report = audit(&loaded, &RuleSet::builtin(), NOW.parse().unwrap()).unwrap();
    let md = render_to_string(&report, Format::Markdown);
    assert!(md.contains("_… and 10 more._"), "{md}");
    assert_eq!(md.lines().filter(|l| l.starts_with("| u")).count(), 20);
}

#[test]
fn custom_templates_replace_the_built_in_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("report.md"),
        "{{ report.summary.findings }} findings for {{ report.findings[0].subject.email }}\n",
    )
    .unwrap();
    let opts = RenderOptions {
        templates: render::Templates::from_dir(dir.path()).unwrap(),
        ..Default::default()
    };
    let mut out = Vec::new();
    render::render(&hostile_report(), Format::Markdown, &opts, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("6 findings for "), "{text}");
    assert!(
        !text.contains("<script>"),
        "custom templates escape too: {text}"
    );
    // A name the folder lacks falls back to the built-in template.
    let mut out = Vec::new();
    render::render(&example_report(), Format::Html, &opts, &mut out).unwrap();
    assert!(String::from_utf8(out)
        .unwrap()
        .starts_with("<!doctype html>"));
}

/// The published schema is the one generated from the types.
#[test]
fn the_published_json_schema_is_current() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema/orgaudit-output.schema.json");
    let published = std::fs::read_to_string(&path).unwrap();
    let generated =
        serde_json::to_string_pretty(&orgaudit::findings::output_schema()).unwrap() + "\n";
    assert!(
        published == generated,
        "docs/schema/orgaudit-output.schema.json is out of date: run `orgaudit schema > docs/schema/orgaudit-output.schema.json`"
    );
}

/// Every JSON output validates against the published schema: the snapshot, a hostile report,
/// one with waivers, a baseline, resolved findings and severity overrides.
#[test]
fn json_outputs_validate_against_the_schema() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema/orgaudit-output.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let check = |name: &str, doc: &serde_json::Value| {
        let errors: Vec<String> = validator
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    };
    // Every JSON snapshot.
    let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let mut checked = 0;
    for entry in std::fs::read_dir(snapshots).unwrap() {
        let p = entry.unwrap().path();
        if !p.to_string_lossy().ends_with(".json.snap") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        // An insta snapshot: a header between `---` lines, then the content.
        let body = text.splitn(3, "---\n").nth(2).unwrap();
        check(
            &p.display().to_string(),
            &serde_json::from_str(body).unwrap(),
        );
        checked += 1;
    }
    assert!(checked > 0);
    // The schema is not a rubber stamp.
    let mut bad = serde_json::to_value(example_report()).unwrap();
    bad["findings"][0]["severity"] = json!("urgent");
    bad["rules"][0]["outcome"] = json!("fine");
    assert_eq!(validator.iter_errors(&bad).count(), 2);
    check("hostile", &serde_json::to_value(hostile_report()).unwrap());
    let mut report = example_report();
    let mut rules = RuleSet::builtin();
    rules.apply_set("sso-bypass.severity=critical").unwrap();
    let loaded = source::from_bytes(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme-users-groups.json"),
        )
        .unwrap(),
        "acme.json",
    )
    .unwrap();
    let overridden = audit(&loaded, &rules, NOW.parse().unwrap()).unwrap();
    check("overridden", &serde_json::to_value(&overridden).unwrap());
    let baseline = orgaudit::baseline::parse(
        serde_json::to_string(&overridden).unwrap().as_bytes(),
        "b.json",
    )
    .unwrap();
    report.findings.pop();
    orgaudit::baseline::apply(&mut report, &baseline);
    let waivers = orgaudit::waivers::parse(
        "w.yaml",
        "waivers:\n  - {rule: '*', all_subjects: true, reason: r, approved_by: a, expires: 2026-12-31, ticket: T-1}\n",
        NOW.parse().unwrap(),
        365,
    )
    .unwrap();
    orgaudit::waivers::apply(&mut report, &waivers, NOW.parse().unwrap());
    check(
        "baseline and waivers",
        &serde_json::to_value(&report).unwrap(),
    );
}

/// The HTML page allows its one inline script by hash, not `unsafe-inline`.
#[test]
fn the_html_page_allows_its_script_by_hash() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let html = render_to_string(&example_report(), Format::Html);
    assert!(!html.contains("script-src 'unsafe-inline'"));
    let start = html.find("<script>").unwrap() + "<script>".len();
    let end = html[start..].find("</script>").unwrap() + start;
    let hash = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(&html.as_bytes()[start..end]));
    assert!(
        html.contains(&format!("script-src 'sha256-{hash}'")),
        "the policy names the script's hash"
    );
    assert_eq!(html.matches("<script").count(), 1);
}

/// A rule that was not evaluated is never a pass in JUnit: its test case is skipped with the
/// reason; one whose evaluation failed is an error.
#[test]
fn junit_skips_rules_that_were_not_evaluated() {
    let mut report = example_report();
    let xml = render_to_string(&report, Format::Junit);
    let case = xml
        .split("<testsuite name=\"added-to-watched-group\"")
        .nth(1)
        .unwrap()
        .split("</testsuite>")
        .next()
        .unwrap();
    assert!(case.contains("skipped=\"1\""), "{case}");
    assert!(
        case.contains("<skipped message=\"not evaluated: the parameter `watched_groups` it requires is empty\"/>"),
        "{case}"
    );
    let r = report
        .rules
        .iter_mut()
        .find(|r| r.id == "stale-sign-in")
        .unwrap();
    r.outcome = orgaudit::findings::RuleStatus::Error;
    r.outcome_reason = Some("`expr` failed for user u1: boom".into());
    let xml = render_to_string(&report, Format::Junit);
    assert!(
        xml.contains("<testsuites name=\"orgaudit\" tests=\"14\""),
        "{}",
        &xml[..200]
    );
    assert!(xml.contains("errors=\"1\" time=\"0\">"));
    assert!(xml.contains(
        "<error type=\"rule-error\" message=\"the rule could not be evaluated: `expr` failed for user u1: boom\"/>"
    ));
    if xmllint().is_some() {
        let (valid, why) = validate_junit(&xml);
        assert!(valid, "{why}");
    }
}

/// `docs/outputs.md` describes every format and every notification service: a new one without
/// its documentation fails here.
#[test]
fn the_outputs_document_covers_every_format_and_service() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/outputs.md"))
            .unwrap();
    for f in Format::ALL {
        let heading = format!("\n## `{}`\n", f.as_str());
        assert!(
            doc.contains(&heading),
            "docs/outputs.md has no section {heading:?}"
        );
    }
    for s in orgaudit::config::NotifyService::ALL {
        let row = format!("| `{}` | `{}` |", s.as_str(), s.default_env());
        assert!(doc.contains(&row), "docs/outputs.md has no row {row:?}");
    }
    assert!(doc.contains(&format!("**{}**", orgaudit::render::OCSF_VERSION)));
    // The README's list of extensions that choose a format is the renderers' own.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for f in Format::ALL {
        for ext in f.extensions() {
            assert!(
                readme.contains(&format!("`.{ext}")) || readme.contains(&format!(" .{ext}")),
                "README.md does not list .{ext} ({})",
                f.as_str()
            );
        }
    }
}

/// Every format of a week with a gate, a baseline and waivers: the verdict, new and resolved
/// counts, waived findings apart, expiring waivers, remediation (text with `-v`) and coverage.
#[test]
fn snapshots_of_every_format_with_a_gate_a_baseline_and_waivers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let last_week = source::from_bytes(
        &std::fs::read(root.join("examples/acme-users-groups.last-week.json")).unwrap(),
        "examples/acme-users-groups.last-week.json",
    )
    .unwrap();
    let before = audit(
        &last_week,
        &RuleSet::builtin(),
        "2026-11-22T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let baseline = orgaudit::baseline::parse(
        serde_json::to_string(&before).unwrap().as_bytes(),
        "last-week.json",
    )
    .unwrap();
    let mut report = example_report();
    report.organization_name = Some("Acme production".into());
    orgaudit::baseline::apply(&mut report, &baseline);
    let waivers = orgaudit::waivers::parse(
        "examples/waivers.yaml",
        &std::fs::read_to_string(root.join("examples/waivers.yaml")).unwrap(),
        NOW.parse().unwrap(),
        365,
    )
    .unwrap();
    orgaudit::waivers::apply(&mut report, &waivers, NOW.parse().unwrap());
    let gate = Some(orgaudit::findings::GateSpec {
        threshold: orgaudit::rules::Severity::High,
        only_new: false,
    });
    let mut opts = RenderOptions {
        gate,
        waiver_warn_days: 60,
        ..Default::default()
    };
    opts.text.gate = gate;
    opts.text.remediation = true;
    opts.text.waiver_warn_days = 60;
    for format in Format::ALL {
        let mut out = Vec::new();
        render::render(&report, format, &opts, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        insta::assert_snapshot!(format!("acme-gated.{}", format.as_str()), out);
    }
}
