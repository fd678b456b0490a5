//! Rule tests: YAML files of test cases kept next to the rules (`NAME.test.yaml` beside
//! `NAME.yaml`). Each case gives a small report, a `now`, optional parameters, and the exact
//! findings expected; `orgaudit rules test` runs them like a test runner.
//!
//! ```yaml
//! # rules/stale-sign-in.test.yaml (tests rules/stale-sign-in.yaml unless `rules:` names others)
//! now: 2026-06-01T00:00:00Z
//! defaults:                      # merged into every inline user
//!   record_type: organization_sub_user
//!   user_status: enabled
//!   created_at: 2024-01-01T00:00:00Z
//!   groups: []
//! tests:
//!   - name: a sign-in exactly 90 days ago does not fire
//!     report:
//!       - { id: u1, email: a@acme.example, last_sign_in_at: 2026-03-03T00:00:00Z }
//!     expect: []
//!   - name: a lower threshold
//!     params: { stale-sign-in.stale_after_days: 60 }
//!     report:
//!       - { id: u1, email: a@acme.example, last_sign_in_at: 2026-03-03T00:00:00Z }
//!     expect:
//!       - { rule: stale-sign-in, subject: u1 }
//! ```

use std::path::{Path, PathBuf};

use crate::diag::Reader;
use crate::model::{normalize_email, Timestamp};
use crate::rules::{RuleError, RuleErrors, RuleSet};
use crate::yaml::{self, Node, NodeKind, Pos};

const FILE_KEYS: &[&str] = &["rules", "now", "defaults", "tests"];
const CASE_KEYS: &[&str] = &[
    "name",
    "now",
    "params",
    "report",
    "report_file",
    "previous",
    "expect",
];

/// A finding a case expects: a rule id and a subject (id, email, or group name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub rule: String,
    pub subject: String,
    /// `fix: ACTION`: the finding's fix must be this (`manual`: none proposed).
    pub fix: Option<crate::rules::FixAction>,
}

#[derive(Debug, Clone)]
pub enum ReportInput {
    /// The report as JSON text, built from the inline users.
    Inline(String),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    pub pos: Pos,
    pub now: Timestamp,
    /// `(rule id, param, value)`.
    pub params: Vec<(String, String, serde_json::Value)>,
    pub report: ReportInput,
    /// The previous snapshot (inline users, as JSON text) that change-detection fields compare
    /// with; without one they are unknown.
    pub previous: Option<String>,
    pub expect: Vec<Expected>,
}

#[derive(Debug, Clone)]
pub struct TestFile {
    pub path: String,
    pub rule_files: Vec<PathBuf>,
    pub cases: Vec<TestCase>,
}

/// What a case came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    /// Expected but not found, and found but not expected, as `rule subject` lines.
    Fail {
        missing: Vec<String>,
        unexpected: Vec<String>,
    },
    /// The case could not run (a bad parameter, a report that does not parse).
    Error(String),
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub place: String,
    pub outcome: Outcome,
}

/// Test files under the given paths: `*.test.yaml` / `*.test.yml` in folders (recursively, in
/// name order); a file named directly is taken as it is.
pub fn find(paths: &[PathBuf]) -> Result<Vec<PathBuf>, RuleErrors> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_file() {
            out.push(p.clone());
            continue;
        }
        if !p.is_dir() {
            return Err(RuleError::file(&p.display().to_string(), "no such file or folder").into());
        }
        let mut stack = vec![p.clone()];
        let mut found = Vec::new();
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| {
                RuleErrors::from(RuleError::file(
                    &dir.display().to_string(),
                    format!("cannot read folder: {e}"),
                ))
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if path.is_dir() {
                    stack.push(path);
                } else if name.ends_with(".test.yaml") || name.ends_with(".test.yml") {
                    found.push(path);
                }
            }
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn get<'n>(entries: &'n [(yaml::Key, Node)], key: &str) -> Option<&'n Node> {
    entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
}

/// Reads a test file; errors (with file:line:column) are all reported together.
pub fn load(path: &Path) -> Result<TestFile, RuleErrors> {
    let (name, text) = crate::diag::read_source(path, "the rule tests")?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let docs =
        yaml::parse(&text).map_err(|e| RuleErrors::from(RuleError::yaml_syntax(&name, &e)))?;
    let mut r = Reader::new(&name);
    let Some(NodeKind::Map(entries)) = docs.first().map(|d| &d.kind) else {
        return Err(RuleError::file(&name, "expected a mapping with `tests:`").into());
    };
    r.keys(entries, FILE_KEYS, "a test file");
    let rule_files: Vec<PathBuf> = match get(entries, "rules") {
        Some(n) => match &n.kind {
            NodeKind::Seq(items) => items
                .iter()
                .filter_map(|i| i.text())
                .map(|t| dir.join(t))
                .collect(),
            _ => n.text().map(|t| vec![dir.join(t)]).unwrap_or_default(),
        },
        None => {
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            let stem = file
                .trim_end_matches(".yml")
                .trim_end_matches(".yaml")
                .trim_end_matches(".test");
            ["yaml", "yml"]
                .iter()
                .map(|ext| dir.join(format!("{stem}.{ext}")))
                .filter(|p| p.is_file())
                .take(1)
                .collect()
        }
    };
    if rule_files.is_empty() {
        r.errors.push(RuleError::file(&name, "no rules to test: name the rule files with `rules:`, or keep NAME.yaml beside NAME.test.yaml"));
    }
    let default_now = get(entries, "now").and_then(|n| r.time(n));
    let defaults = match get(entries, "defaults").map(|n| (n, n.to_json())) {
        Some((_, serde_json::Value::Object(m))) => m,
        Some((n, _)) => {
            r.err(n.pos, "`defaults` must be a mapping of user fields");
            Default::default()
        }
        None => Default::default(),
    };
    let mut cases = Vec::new();
    match get(entries, "tests").map(|n| (n, &n.kind)) {
        Some((_, NodeKind::Seq(items))) => {
            for item in items {
                if let Some(c) = case(&mut r, item, default_now, &defaults, dir) {
                    cases.push(c);
                }
            }
        }
        Some((n, _)) => r.err(n.pos, "`tests` must be a list of test cases"),
        None => r
            .errors
            .push(RuleError::file(&name, "no `tests:` in this file")),
    }
    if r.errors.is_empty() {
        Ok(TestFile {
            path: name,
            rule_files,
            cases,
        })
    } else {
        Err(RuleErrors(r.errors))
    }
}

fn case(
    r: &mut Reader<'_>,
    item: &Node,
    default_now: Option<Timestamp>,
    defaults: &serde_json::Map<String, serde_json::Value>,
    dir: &Path,
) -> Option<TestCase> {
    let NodeKind::Map(entries) = &item.kind else {
        r.err(
            item.pos,
            "a test case is a mapping with name, report and expect",
        );
        return None;
    };
    r.keys(entries, CASE_KEYS, "a test case");
    let before = r.errors.len();
    let name = match get(entries, "name").and_then(|n| n.text()) {
        Some(n) => n.to_string(),
        None => {
            r.err(item.pos, "a test case needs a `name`");
            String::new()
        }
    };
    let now = match get(entries, "now") {
        Some(n) => r.time(n),
        None if default_now.is_some() => default_now,
        None => {
            r.err(
                item.pos,
                "a test case needs `now` (here or at the top of the file)",
            );
            None
        }
    };
    let mut params = Vec::new();
    if let Some(p) = get(entries, "params") {
        match &p.kind {
            NodeKind::Map(ps) => {
                for (k, v) in ps {
                    match k.name.split_once('.') {
                        Some((rule, param)) => {
                            params.push((rule.to_string(), param.to_string(), v.to_json()))
                        }
                        None => r.err(
                            k.pos,
                            format!("`{}`: params are named RULE_ID.PARAM", k.name),
                        ),
                    }
                }
            }
            _ => r.err(
                p.pos,
                "`params` must be a mapping of RULE_ID.PARAM to values",
            ),
        }
    }
    let report = match (get(entries, "report"), get(entries, "report_file")) {
        (Some(n), None) => inline_users(r, n, defaults, "report").map(ReportInput::Inline),
        (None, Some(f)) => f.text().map(|t| ReportInput::File(dir.join(t))),
        _ => {
            r.err(
                item.pos,
                "a test case needs `report` (inline users) or `report_file` (a path), not both",
            );
            None
        }
    };
    let previous = get(entries, "previous").and_then(|n| inline_users(r, n, defaults, "previous"));
    let mut expect = Vec::new();
    match get(entries, "expect").map(|n| (n, &n.kind)) {
        Some((_, NodeKind::Seq(items))) => {
            for e in items {
                let NodeKind::Map(kv) = &e.kind else {
                    r.err(
                        e.pos,
                        "an expected finding is {rule: ID, subject: ID-OR-EMAIL}",
                    );
                    continue;
                };
                let fix = match get(kv, "fix") {
                    None => None,
                    Some(n) => match n.text().and_then(crate::rules::FixAction::parse) {
                        Some(a) => Some(a),
                        None => {
                            let names: Vec<&str> = crate::rules::FixAction::ALL
                                .iter()
                                .map(|a| a.as_str())
                                .collect();
                            r.err(n.pos, format!("`fix` is one of {}", names.join(", ")));
                            None
                        }
                    },
                };
                match (
                    get(kv, "rule").and_then(|n| n.text()),
                    get(kv, "subject").and_then(|n| n.text()),
                ) {
                    (Some(rule), Some(subject)) => expect.push(Expected {
                        rule: rule.into(),
                        subject: subject.into(),
                        fix,
                    }),
                    _ => r.err(
                        e.pos,
                        "an expected finding is {rule: ID, subject: ID-OR-EMAIL}",
                    ),
                }
            }
        }
        Some((n, _)) if !n.is_null() => r.err(
            n.pos,
            "`expect` is a list of {rule, subject}; [] expects no finding",
        ),
        Some(_) => {}
        None => r.err(
            item.pos,
            "a test case needs `expect` (use [] to expect no finding)",
        ),
    }
    if r.errors.len() > before {
        return None;
    }
    Some(TestCase {
        name,
        pos: item.pos,
        now: now?,
        params,
        report: report?,
        previous,
        expect,
    })
}

/// Inline users (a list, or `{data: [users]}`), each completed from `defaults`, as the JSON
/// text of a report.
fn inline_users(
    r: &mut crate::diag::Reader<'_>,
    n: &Node,
    defaults: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<String> {
    let users = match n.to_json() {
        serde_json::Value::Array(users) => users,
        serde_json::Value::Object(mut o) => match o.remove("data") {
            Some(serde_json::Value::Array(users)) => users,
            _ => {
                r.err(
                    n.pos,
                    format!("`{key}` is a list of users, or {{data: [users]}}"),
                );
                return None;
            }
        },
        _ => {
            r.err(
                n.pos,
                format!("`{key}` is a list of users, or {{data: [users]}}"),
            );
            return None;
        }
    };
    let users: Vec<serde_json::Value> = users
        .into_iter()
        .map(|u| match u {
            serde_json::Value::Object(m) => {
                let mut full = defaults.clone();
                full.extend(m);
                serde_json::Value::Object(full)
            }
            other => other,
        })
        .collect();
    Some(serde_json::json!({ "data": users }).to_string())
}

fn matches(e: &Expected, f: &crate::findings::Finding) -> bool {
    e.rule == f.rule_id
        && e.fix.is_none_or(|want| f.fix.unwrap_or_default() == want)
        && (e.subject == f.subject.id
            || f.subject.name.as_deref() == Some(e.subject.as_str())
            || f.subject
                .email
                .as_deref()
                .is_some_and(|m| normalize_email(m) == normalize_email(&e.subject)))
}

/// Runs every case of a test file against the rules it names.
pub fn run(file: &TestFile) -> Result<Vec<CaseResult>, RuleErrors> {
    let mut rules = RuleSet::new();
    rules.add_paths(&file.rule_files)?;
    Ok(file
        .cases
        .iter()
        .map(|c| run_case(file, &rules, c))
        .collect())
}

fn run_case(file: &TestFile, rules: &RuleSet, c: &TestCase) -> CaseResult {
    let place = format!("{}:{}", file.path, c.pos);
    let result = |outcome| CaseResult {
        name: c.name.clone(),
        place: place.clone(),
        outcome,
    };
    let mut rules = rules.clone();
    for (rule, param, value) in &c.params {
        if let Err(e) = rules.set_param(rule, param, value.clone()) {
            return result(Outcome::Error(e.to_string()));
        }
    }
    let loaded = match &c.report {
        ReportInput::Inline(json) => {
            crate::source::from_bytes(json.as_bytes(), &format!("{place} (inline report)"))
        }
        ReportInput::File(p) => crate::source::load(&crate::source::Input::Path(p.clone())),
    };
    let mut loaded = match loaded {
        Ok(l) => l,
        Err(e) => return result(Outcome::Error(e.to_string())),
    };
    if let Some(previous) = &c.previous {
        match crate::source::from_bytes(previous.as_bytes(), &format!("{place} (previous)")) {
            Ok(p) => {
                crate::changes::compare(&mut loaded.report, p.report, "previous");
            }
            Err(e) => return result(Outcome::Error(e.to_string())),
        }
    }
    let report = match crate::audit(&loaded, &rules, c.now) {
        Ok(r) => r,
        Err(e) => return result(Outcome::Error(e.to_string())),
    };
    let mut unmatched: Vec<&crate::findings::Finding> = report.findings.iter().collect();
    let mut missing = Vec::new();
    for e in &c.expect {
        match unmatched.iter().position(|f| matches(e, f)) {
            Some(i) => {
                unmatched.remove(i);
            }
            None => missing.push(match e.fix {
                Some(fix) => format!("{} {} (fix: {})", e.rule, e.subject, fix.as_str()),
                None => format!("{} {}", e.rule, e.subject),
            }),
        }
    }
    let unexpected: Vec<String> = unmatched
        .iter()
        .map(|f| {
            let fix = f.fix.map(|a| format!(" (fix: {})", a.as_str()));
            match &f.subject.email {
                Some(m) => format!(
                    "{} {} ({m}){}",
                    f.rule_id,
                    f.subject.id,
                    fix.unwrap_or_default()
                ),
                None => format!("{} {}{}", f.rule_id, f.subject.id, fix.unwrap_or_default()),
            }
        })
        .collect();
    if missing.is_empty() && unexpected.is_empty() {
        result(Outcome::Pass)
    } else {
        result(Outcome::Fail {
            missing,
            unexpected,
        })
    }
}

/// Writes results like a test runner; returns `(passed, failed)`.
pub fn report(
    results: &[(String, Vec<CaseResult>)],
    out: &mut dyn std::io::Write,
) -> std::io::Result<(usize, usize)> {
    let (mut passed, mut failed) = (0, 0);
    for (file, cases) in results {
        writeln!(out, "{file}")?;
        for c in cases {
            match &c.outcome {
                Outcome::Pass => {
                    passed += 1;
                    writeln!(out, "  ok    {}", c.name)?;
                }
                Outcome::Fail {
                    missing,
                    unexpected,
                } => {
                    failed += 1;
                    writeln!(out, "  FAIL  {} ({})", c.name, c.place)?;
                    writeln!(out, "        - expected, not found   + found, not expected")?;
                    for m in missing {
                        writeln!(out, "        - {m}")?;
                    }
                    for u in unexpected {
                        writeln!(out, "        + {u}")?;
                    }
                }
                Outcome::Error(e) => {
                    failed += 1;
                    writeln!(out, "  ERROR {} ({})", c.name, c.place)?;
                    for line in e.lines() {
                        writeln!(out, "        {line}")?;
                    }
                }
            }
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok((passed, failed))
}
