//! The interchange formats, driven through the binary: SARIF against the OASIS SARIF 2.1.0
//! schema (vendored under `tests/fixtures/sarif/`) and OCSF against the attributes OCSF 1.3.0
//! requires of a Compliance Finding (`tests/fixtures/ocsf/`).

mod common;

use std::path::Path;

use common::{example, root, run, NOW};
use serde_json::Value;

/// A custom rule, so that results point at a rule file of the repository.
const CUSTOM_RULE: &str = "\
# A rule of the team's own.
id: team-ungrouped
title: Active user in no group
severity: low
scope: user
remediation: Put the user in the group of their team.
references:
  - { framework: Internal, control: AR-1, url: \"https://wiki.example/ar-1\" }
when:
  all:
    - { field: active, equals: true }
    - { field: group_count, equals: 0 }
message: \"{{ user.email }} is in no group\"
";

const WAIVERS: &str = "\
waivers:
  - rule: owner-sso-bypass
    subject: bob@acme.example
    reason: Break-glass owner account
    approved_by: ciso@acme.example
    expires: 2027-03-31
    ticket: SEC-42
";

/// A checkout with a rule folder and a waivers file, and a baseline (last week's findings).
struct Checkout {
    dir: tempfile::TempDir,
}

impl Checkout {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/team.yaml"), CUSTOM_RULE).unwrap();
        std::fs::write(dir.path().join("waivers.yaml"), WAIVERS).unwrap();
        let c = Checkout { dir };
        // Last week: the audit of last week's report, the baseline of this one.
        let args = c.args(
            &example("acme-users-groups.last-week.json"),
            &["-f", "json", "-o", &c.path("baseline.json")],
        );
        let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(r.code, 0, "{}", r.stderr);
        c
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    fn args(&self, input: &Path, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = [
            "audit",
            "-i",
            input.to_str().unwrap(),
            "--now",
            NOW,
            "--rules",
            &self.path("rules"),
            "--waivers",
            &self.path("waivers.yaml"),
            "--set",
            "external-email-domain.allowed_domains=[acme.example]",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    /// This week's audit in `format` (with the baseline), and the same as JSON.
    fn audit(&self, format: &str, extra: &[&str]) -> (String, Value) {
        let base = ["--baseline".to_string(), self.path("baseline.json")];
        let mut args = self.args(&example("acme-users-groups.json"), &["-f", format]);
        args.extend(base.iter().cloned());
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["--report".into(), format!("json={}", self.path("now.json"))]);
        let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(r.code, 0, "{}", r.stderr);
        let json =
            serde_json::from_str(&std::fs::read_to_string(self.path("now.json")).unwrap()).unwrap();
        (r.stdout, json)
    }
}

fn sarif_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/sarif/sarif-schema-2.1.0.json"))
            .unwrap(),
    )
    .unwrap();
    // The published schema's `run.language` pattern has a stray `]` that the validator's check
    // of the schema itself rejects as a regular expression; it is corrected here, in memory
    // (orgaudit writes no `language`), and the file stays as published.
    fn correct(v: &mut Value, fixed: &mut usize) {
        match v {
            Value::Object(m) => {
                if m.get("pattern").and_then(Value::as_str)
                    == Some("^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$")
                {
                    m.insert("pattern".into(), "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$".into());
                    *fixed += 1;
                }
                m.values_mut().for_each(|v| correct(v, fixed));
            }
            Value::Array(l) => l.iter_mut().for_each(|v| correct(v, fixed)),
            _ => {}
        }
    }
    let mut schema = schema;
    let mut fixed = 0;
    correct(&mut schema, &mut fixed);
    assert_eq!(fixed, 2, "the run's and the tool component's `language`");
    jsonschema::validator_for(&schema).unwrap()
}

fn schema_errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn sarif_output_is_valid_against_the_oasis_schema() {
    let c = Checkout::new();
    let (out, json) = c.audit("sarif", &["--sarif-root", &c.path("")]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let validator = sarif_validator();
    let errors = schema_errors(&validator, &doc);
    assert!(errors.is_empty(), "{errors:#?}");
    // The SARIF snapshots too (with and without a gate, baseline and waivers).
    let mut snapshots = 0;
    for entry in std::fs::read_dir(root().join("tests/snapshots")).unwrap() {
        let p = entry.unwrap().path();
        if p.to_string_lossy().ends_with(".sarif.snap") {
            let text = std::fs::read_to_string(&p).unwrap();
            let body = text.splitn(3, "---\n").nth(2).unwrap();
            let errors = schema_errors(&validator, &serde_json::from_str(body).unwrap());
            assert!(errors.is_empty(), "{}: {errors:#?}", p.display());
            snapshots += 1;
        }
    }
    assert_eq!(snapshots, 2);
    // The schema is not a rubber stamp.
    let mut bad = doc.clone();
    bad["runs"][0]["results"][0]["level"] = "urgent".into();
    bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"] =
        serde_json::json!({ "startLine": 0 });
    assert_eq!(validator.iter_errors(&bad).count(), 2);

    let run = &doc["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    // One descriptor per rule of the audit, one result per finding.
    assert_eq!(rules.len(), json["rules"].as_array().unwrap().len());
    assert_eq!(results.len(), json["findings"].as_array().unwrap().len());
    for (r, f) in results.iter().zip(json["findings"].as_array().unwrap()) {
        assert_eq!(r["ruleId"], f["rule_id"]);
        assert_eq!(
            r["partialFingerprints"]["orgauditFingerprint/v1"],
            f["fingerprint"]
        );
        let sev = f["severity"].as_str().unwrap();
        let (level, score) = match sev {
            "critical" => ("error", "9.5"),
            "high" => ("error", "7.5"),
            "medium" => ("warning", "5.0"),
            "low" => ("note", "2.0"),
            _ => ("note", "0.0"),
        };
        assert_eq!(r["level"], level, "{r}");
        let descriptor = &rules[r["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(descriptor["id"], f["rule_id"]);
        assert_eq!(descriptor["properties"]["security-severity"], score);
        // The subject, as a logical location.
        let logical = &r["locations"][0]["logicalLocations"][0];
        assert_eq!(
            logical["fullyQualifiedName"],
            format!("user/{}", f["subject"]["id"].as_str().unwrap()).replace(
                "user/",
                &format!("{}/", f["subject"]["kind"].as_str().unwrap())
            )
        );
        // Waived findings are suppressed with the waiver's reason; others are not.
        if f["waived"] == true {
            assert_eq!(
                r["suppressions"][0]["justification"],
                "Break-glass owner account"
            );
            assert_eq!(r["suppressions"][0]["status"], "accepted");
        } else {
            assert!(r.get("suppressions").is_none());
        }
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        if f["rule_id"] == "team-ungrouped" {
            // A custom rule: its file, relative to --sarif-root, at the rule's first line.
            assert_eq!(uri, "rules/team.yaml");
            assert_eq!(
                r["locations"][0]["physicalLocation"]["region"]["startLine"],
                2
            );
        } else {
            // A built-in rule: the input file (outside the root here: an absolute URI).
            assert!(uri.starts_with("file:///"), "{uri}");
            assert!(uri.ends_with("/examples/acme-users-groups.json"), "{uri}");
        }
    }
    assert!(results.iter().any(|r| r["ruleId"] == "team-ungrouped"));
    assert!(results.iter().any(|r| r.get("suppressions").is_some()));
    assert!(results.iter().any(|r| r["baselineState"] == "new"));
    assert!(results.iter().any(|r| r["baselineState"] == "unchanged"));
    // Help carries the remediation, and references as links.
    let custom = rules.iter().find(|r| r["id"] == "team-ungrouped").unwrap();
    assert_eq!(custom["helpUri"], "https://wiki.example/ar-1");
    assert!(custom["help"]["markdown"]
        .as_str()
        .unwrap()
        .contains("[Internal AR-1](https://wiki.example/ar-1)"));
    let sso = rules.iter().find(|r| r["id"] == "sso-bypass").unwrap();
    assert!(sso["help"]["text"]
        .as_str()
        .unwrap()
        .starts_with("Fix: Turn off SSO bypass"));
    assert!(sso["properties"]["tags"]
        .as_array()
        .unwrap()
        .contains(&"NIST SP 800-53".into()));
}

#[test]
fn sarif_results_are_capped_with_a_notification() {
    let c = Checkout::new();
    let (out, json) = c.audit("sarif", &["--sarif-max-results", "2"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(schema_errors(&sarif_validator(), &doc).is_empty());
    let run = &doc["runs"][0];
    assert_eq!(run["results"].as_array().unwrap().len(), 2);
    // The most severe first, as the findings are sorted.
    assert_eq!(run["results"][0]["ruleId"], json["findings"][0]["rule_id"]);
    let notes = run["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap();
    let total = json["findings"].as_array().unwrap().len();
    assert!(
        notes.iter().any(|n| n["message"]["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("2 of {total} results written"))),
        "{notes:#?}"
    );
    // A built-in rule with the current folder as the root: the input file's path from it.
    let r = run_in(
        root(),
        &[
            "audit",
            "-i",
            "examples/acme-users-groups.json",
            "--now",
            NOW,
            "-f",
            "sarif",
        ],
    );
    let doc: Value = serde_json::from_str(&r).unwrap();
    assert_eq!(
        doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "examples/acme-users-groups.json"
    );
}

fn run_in(dir: &Path, args: &[&str]) -> String {
    let out = assert_cmd::Command::cargo_bin("orgaudit")
        .unwrap()
        .env_remove("ORGAUDIT_HISTORY")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The attribute at a dotted path (`a.b`), if any.
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

#[test]
fn ocsf_events_have_every_attribute_the_class_requires() {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/ocsf/compliance_finding-1.3.0.json"))
            .unwrap(),
    )
    .unwrap();
    let c = Checkout::new();
    let (out, json) = c.audit("ocsf", &[]);
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let findings = json["findings"].as_array().unwrap();
    let resolved = json["resolved"].as_array().unwrap();
    assert!(
        !resolved.is_empty(),
        "the baseline has findings that are gone"
    );
    assert_eq!(events.len(), findings.len() + resolved.len());

    let problems = |e: &Value| -> Vec<String> {
        let mut p = Vec::new();
        for a in spec["required"].as_array().unwrap() {
            let a = a.as_str().unwrap();
            if e.get(a).is_none_or(Value::is_null) {
                p.push(format!("missing {a}"));
            }
        }
        for (obj, rule) in spec["objects"].as_object().unwrap() {
            let targets: Vec<&Value> = match obj.strip_suffix("[]") {
                Some(list) => at(e, list)
                    .and_then(Value::as_array)
                    .map(|l| l.iter().collect())
                    .unwrap_or_default(),
                None => at(e, obj).into_iter().collect(),
            };
            for t in targets {
                for a in rule["required"].as_array().unwrap() {
                    if t.get(a.as_str().unwrap()).is_none_or(Value::is_null) {
                        p.push(format!("missing {obj}.{a}"));
                    }
                }
                if let Some(any) = rule.get("at_least_one") {
                    if !any
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|a| t.get(a.as_str().unwrap()).is_some())
                    {
                        p.push(format!("{obj} has none of {any}"));
                    }
                }
            }
        }
        for a in spec["integers"].as_array().unwrap() {
            let a = a.as_str().unwrap();
            if let Some(v) = e.get(a) {
                if !v.is_i64() {
                    p.push(format!("{a} is not an integer: {v}"));
                }
            }
        }
        for (path, allowed) in spec["enums"].as_object().unwrap() {
            if let Some(v) = at(e, path) {
                if !allowed.as_array().unwrap().contains(v) {
                    p.push(format!("{path} = {v} is not in {allowed}"));
                }
            }
        }
        let class = &spec["class"];
        if e["class_uid"] != class["uid"] || e["category_uid"] != class["category_uid"] {
            p.push("not a Compliance Finding".into());
        }
        if e["type_uid"].as_i64() != Some(2003 * 100 + e["activity_id"].as_i64().unwrap_or(-1)) {
            p.push("type_uid is not class_uid * 100 + activity_id".into());
        }
        if e["metadata"]["version"] != spec["version"] {
            p.push("metadata.version is not the pinned version".into());
        }
        p
    };
    for e in &events {
        let p = problems(e);
        assert!(p.is_empty(), "{p:?} in {e:#}");
    }
    // The check is not a rubber stamp.
    let mut bad = events[0].clone();
    bad.as_object_mut().unwrap().remove("finding_info");
    bad["compliance"]
        .as_object_mut()
        .unwrap()
        .remove("standards");
    bad["severity_id"] = 7.into();
    assert_eq!(problems(&bad).len(), 3, "{:?}", problems(&bad));

    // Findings and their events, in order: uid, severity, status.
    for (e, f) in events.iter().zip(findings) {
        assert_eq!(e["finding_info"]["uid"], f["fingerprint"]);
        assert_eq!(e["finding_info"]["analytic"]["uid"], f["rule_id"]);
        assert_eq!(e["resources"][0]["uid"], f["subject"]["id"]);
        let sev = match f["severity"].as_str().unwrap() {
            "critical" => 5,
            "high" => 4,
            "medium" => 3,
            "low" => 2,
            _ => 1,
        };
        assert_eq!(e["severity_id"], sev);
        if f["waived"] == true {
            assert_eq!(e["status_id"], 3, "waived: Suppressed");
            assert!(e["status_detail"].as_str().unwrap().contains("Break-glass"));
        } else {
            assert_eq!(e["status_id"], 1);
        }
        let activity = if f["baseline_status"] == "unchanged" {
            2
        } else {
            1
        };
        assert_eq!(e["activity_id"], activity, "{e}");
        assert_eq!(e["compliance"]["status"], "Fail");
    }
    // The resolved: closed.
    for (e, f) in events[findings.len()..].iter().zip(resolved) {
        assert_eq!(e["finding_info"]["uid"], f["fingerprint"]);
        assert_eq!(
            (e["activity_id"].as_i64(), e["status_id"].as_i64()),
            (Some(3), Some(4))
        );
    }
    // Standards, controls and remediation come from the rule.
    let sso = events
        .iter()
        .find(|e| e["finding_info"]["analytic"]["uid"] == "sso-bypass")
        .unwrap();
    assert!(sso["compliance"]["standards"]
        .as_array()
        .unwrap()
        .contains(&"NIST SP 800-53".into()));
    assert!(sso["compliance"]["control"]
        .as_str()
        .unwrap()
        .contains("NIST SP 800-53 IA-2"));
    assert!(sso["remediation"]["desc"]
        .as_str()
        .unwrap()
        .starts_with("Turn off SSO bypass"));
}
