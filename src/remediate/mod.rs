//! Remediation: from findings to a reviewed plan, and from the plan to API calls.
//!
//! `remediate plan` ([`build`]) turns an audit's findings into a [`Plan`]: the users to remove
//! (from rules that declare `fix: remove_user` and whose `fix.when` held), the users refused
//! (owners, ambiguous records), and a checklist of what stays manual. The plan is signed
//! ([`Plan::sign`]: a sha256 of its canonical JSON, or an HMAC-SHA256 with `ORGAUDIT_PLAN_KEY`)
//! and rendered for review ([`markdown`]). `remediate apply` ([`apply`]) checks the signature,
//! the age and the organization, re-reads every user before touching it, and journals every
//! step ([`journal`]) so that a run that stopped half-way resumes without repeating a removal.
//!
//! This module reads findings and writes its own records; nothing before it depends on it.

pub mod api;
pub mod apply;
pub mod build;
pub mod journal;
pub mod markdown;

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

use crate::findings::Subject;
use crate::model::Timestamp;
use crate::rules::{FixAction, Severity};

pub use apply::{apply, ApplyOptions, ApplyOutcome};
pub use build::build;

/// What a plan file says it is, so that no other JSON is mistaken for one.
pub const PLAN_KIND: &str = "orgaudit-remediation-plan";
/// The plan format this orgaudit writes and reads.
pub const PLAN_FORMAT: u32 = 1;

/// A remediation plan: what `remediate apply` may do, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub kind: String,
    pub format: u32,
    pub tool: PlanTool,
    pub organization: PlanOrganization,
    /// When the plan was made (RFC 3339 UTC): `--max-age` counts from it.
    pub created_at: String,
    /// The audit's time (`--now`).
    pub audited_at: String,
    /// The sha256 of the report audited.
    pub report_sha256: String,
    /// Users to remove, in report order.
    pub actions: Vec<Action>,
    /// Users a rule proposed removing that orgaudit will not remove, with the reason.
    pub refused: Vec<Refusal>,
    /// Findings a person acts on, as a checklist, by rule.
    pub manual: Vec<ManualItem>,
    /// Findings left out because a waiver covers them.
    pub waived: usize,
    #[serde(skip_serializing_if = "Signature::is_pending")]
    pub signature: Signature,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanTool {
    pub name: String,
    pub version: String,
}

/// The organization a plan is for, and how `apply` recognises it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanOrganization {
    /// Its key (`--org-id`).
    pub key: String,
    /// What reports call it.
    pub label: String,
    /// The ids of its owners in the report: `apply` checks that the API knows them with the key
    /// it is given, so that a plan is never applied to another organization.
    pub owner_ids: Vec<String>,
}

/// A user's record as planned, or as the API returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    pub record_type: String,
    pub user_status: String,
    pub created_at: String,
    pub last_sign_in_at: Option<String>,
    pub groups: Vec<GroupRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
}

impl UserRecord {
    /// The state a removal depends on, hashed: status, owner or not, last sign-in, the group
    /// ids and the email. Any change between plan and apply skips the removal.
    pub fn digest(&self) -> String {
        let mut groups: Vec<&str> = self.groups.iter().map(|g| g.id.as_str()).collect();
        groups.sort_unstable();
        let state = serde_json::json!({
            "id": self.id,
            "email": crate::model::normalize_email(&self.email),
            "record_type": self.record_type,
            "user_status": self.user_status,
            "last_sign_in_at": self.last_sign_in_at,
            "group_ids": groups,
        });
        crate::source::sha256_hex(crate::source::canonical_json(&state).as_bytes())
    }

    /// How `now` differs from this planned record, in words (empty: it does not).
    pub fn changes_to(&self, now: &UserRecord) -> Vec<String> {
        let mut out = Vec::new();
        if self.record_type != now.record_type {
            out.push(if now.record_type == "organization_owner" {
                "became an owner".to_string()
            } else {
                format!("record type {} -> {}", self.record_type, now.record_type)
            });
        }
        if self.user_status != now.user_status {
            out.push(if now.user_status == "enabled" {
                format!("re-enabled (was {})", self.user_status)
            } else {
                format!("status {} -> {}", self.user_status, now.user_status)
            });
        }
        if self.last_sign_in_at != now.last_sign_in_at {
            out.push(format!(
                "signed in since the plan (last sign-in {})",
                now.last_sign_in_at.as_deref().unwrap_or("none")
            ));
        }
        let ids = |u: &UserRecord| -> Vec<String> {
            let mut v: Vec<String> = u.groups.iter().map(|g| g.id.clone()).collect();
            v.sort();
            v
        };
        let (before, after) = (ids(self), ids(now));
        if before != after {
            let added: Vec<&String> = after.iter().filter(|g| !before.contains(g)).collect();
            let removed: Vec<&String> = before.iter().filter(|g| !after.contains(g)).collect();
            out.push(format!(
                "moved groups ({} added, {} removed)",
                added.len(),
                removed.len()
            ));
        }
        if crate::model::normalize_email(&self.email) != crate::model::normalize_email(&now.email) {
            out.push("email changed".to_string());
        }
        out
    }

    pub fn is_owner(&self) -> bool {
        self.record_type == "organization_owner"
    }
}

/// A timestamp as plans and digests write it (whole seconds kept as given, UTC).
pub(crate) fn time_text(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A finding that justifies an action or a refusal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Justification {
    pub rule_id: String,
    /// The sha256 of the rule's definition, parameters and severity at planning time.
    pub rule_version: String,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    pub fingerprint: String,
}

/// One planned action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub action: FixAction,
    pub user: UserRecord,
    /// [`UserRecord::digest`] at planning time.
    pub state_digest: String,
    pub findings: Vec<Justification>,
}

/// A removal a rule proposed and orgaudit refuses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    pub user: UserRecord,
    pub reason: String,
    pub findings: Vec<Justification>,
}

/// A rule whose findings a person fixes: the steps once, then each finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualItem {
    pub rule_id: String,
    pub severity: Severity,
    pub title: String,
    /// What to do, in order: where to go in the portal, the rule's remediation, how to confirm.
    pub steps: Vec<String>,
    pub findings: Vec<ManualFinding>,
}

/// One finding of a [`ManualItem`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualFinding {
    pub subject: Subject,
    pub message: String,
    pub fingerprint: String,
}

/// How a plan's content is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureAlgorithm {
    /// Detects accidental edits: anyone can recompute it.
    Sha256,
    /// Detects deliberate edits too: only holders of `ORGAUDIT_PLAN_KEY` can make it.
    HmacSha256,
}

impl SignatureAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::Sha256 => "sha256",
            SignatureAlgorithm::HmacSha256 => "hmac-sha256",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub algorithm: SignatureAlgorithm,
    /// Hex, over the plan's compact JSON without `signature`.
    pub value: String,
}

impl Signature {
    /// Not signed yet: the state in which the content is hashed.
    fn is_pending(&self) -> bool {
        self.value.is_empty()
    }
}

/// A key that signs plans. No `Display`; its `Debug` hides it.
#[derive(Clone)]
pub struct PlanKey(Vec<u8>);

impl std::fmt::Debug for PlanKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanKey([redacted])")
    }
}

impl PlanKey {
    /// `ORGAUDIT_PLAN_KEY`, when set and not empty.
    pub fn from_env() -> Option<PlanKey> {
        std::env::var(crate::defaults::PLAN_KEY_ENV)
            .ok()
            .filter(|k| !k.trim().is_empty())
            .map(|k| PlanKey(k.trim().as_bytes().to_vec()))
    }

    pub fn new(key: &[u8]) -> PlanKey {
        PlanKey(key.to_vec())
    }
}

/// Why a plan file cannot be applied (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PlanError {
    pub path: String,
    pub message: String,
}

impl Plan {
    /// The signature of the plan's content: its compact JSON as orgaudit writes it (fields in
    /// their declared order) without `signature`, streamed into a sha256 or an HMAC-SHA256
    /// (`None`: an HMAC without a key).
    fn compute(&mut self, algorithm: SignatureAlgorithm, key: Option<&PlanKey>) -> Option<String> {
        use sha2::Digest;
        /// Feeds what is written to a digest.
        struct Feed<F: FnMut(&[u8])>(F);
        impl<F: FnMut(&[u8])> std::io::Write for Feed<F> {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (self.0)(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        // Without its signature (an empty one is not written).
        let signature = std::mem::replace(
            &mut self.signature,
            Signature {
                algorithm,
                value: String::new(),
            },
        );
        let out = match (algorithm, key) {
            (SignatureAlgorithm::Sha256, _) => {
                let mut h = sha2::Sha256::new();
                serde_json::to_writer(Feed(|b: &[u8]| h.update(b)), &*self)
                    .expect("a plan is JSON");
                Some(crate::source::hex(&h.finalize()))
            }
            (SignatureAlgorithm::HmacSha256, Some(k)) => {
                use hmac::{KeyInit, Mac};
                let mut mac =
                    hmac::Hmac::<sha2::Sha256>::new_from_slice(&k.0).expect("any key length");
                serde_json::to_writer(Feed(|b: &[u8]| mac.update(b)), &*self)
                    .expect("a plan is JSON");
                Some(crate::source::hex(&mac.finalize().into_bytes()))
            }
            (SignatureAlgorithm::HmacSha256, None) => None,
        };
        self.signature = signature;
        out
    }

    /// Signs the plan: an HMAC-SHA256 with `key`, else a sha256.
    pub fn sign(&mut self, key: Option<&PlanKey>) {
        let algorithm = match key {
            Some(_) => SignatureAlgorithm::HmacSha256,
            None => SignatureAlgorithm::Sha256,
        };
        let value = self.compute(algorithm, key).expect("a key for an HMAC");
        self.signature = Signature { algorithm, value };
    }

    /// The plan's identity in journals: its signature's value.
    pub fn id(&self) -> &str {
        &self.signature.value
    }

    /// Checks the signature. With a key, only an HMAC made with it is accepted (a plan with a
    /// bare sha256 could have been written by anyone); without one, an HMAC cannot be checked.
    pub fn verify(&mut self, key: Option<&PlanKey>) -> Result<(), String> {
        let env = crate::defaults::PLAN_KEY_ENV;
        match (self.signature.algorithm, key) {
            (SignatureAlgorithm::Sha256, Some(_)) => {
                return Err(format!(
                    "{env} is set but the plan carries only a sha256: it was not made with the key; make it again with `orgaudit remediate plan` and {env} set"
                ))
            }
            (SignatureAlgorithm::HmacSha256, None) => {
                return Err(format!(
                    "the plan is signed with an HMAC: set {env} to the key it was made with"
                ))
            }
            _ => {}
        }
        let want = self
            .compute(self.signature.algorithm, key)
            .expect("checked above");
        if !constant_time_eq(want.as_bytes(), self.signature.value.as_bytes()) {
            return Err(format!(
                "the plan's content does not match its {} signature: it was edited after `remediate plan` wrote it; make it again with `orgaudit remediate plan`",
                self.signature.algorithm.as_str()
            ));
        }
        Ok(())
    }

    /// Reads a plan file: bounded, strictly shaped, of this format; the signature is checked by
    /// [`Plan::verify`].
    pub fn load(path: &std::path::Path) -> Result<Plan, PlanError> {
        let name = path.display().to_string();
        let bytes =
            crate::diag::read_capped(path, crate::defaults::PLAN_MAX_BYTES).map_err(|e| {
                PlanError {
                    path: name.clone(),
                    message: format!("cannot read the plan: {e}"),
                }
            })?;
        Plan::parse(&bytes, &name)
    }

    /// A plan from its bytes; `name` names it in errors.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Plan, PlanError> {
        let bad = |message: String| PlanError {
            path: name.to_string(),
            message,
        };
        let invalid = |e: serde_json::Error| {
            bad(format!(
                "not a remediation plan: invalid JSON at line {}, column {}: {}",
                e.line(),
                e.column(),
                crate::safe::visible(&e.to_string())
            ))
        };
        // What the file says it is, first (every other value skipped, not built).
        #[derive(Deserialize)]
        struct Header {
            kind: Option<serde_json::Value>,
            format: Option<serde_json::Value>,
        }
        let header: Header = serde_json::from_slice(bytes).map_err(invalid)?;
        if header.kind.as_ref().and_then(|k| k.as_str()) != Some(PLAN_KIND) {
            return Err(bad(format!(
                "not a remediation plan (no \"kind\": \"{PLAN_KIND}\"); `orgaudit remediate plan` writes one"
            )));
        }
        let format = header.format.as_ref().and_then(|f| f.as_u64());
        if format != Some(u64::from(PLAN_FORMAT)) {
            return Err(bad(format!(
                "plan format {} is not the one this orgaudit reads ({PLAN_FORMAT})",
                format.map_or_else(|| "(none)".to_string(), |f| f.to_string())
            )));
        }
        serde_json::from_slice(bytes).map_err(|e| {
            bad(format!(
                "not a valid plan: {}",
                crate::safe::visible(&e.to_string())
            ))
        })
    }
}

/// What `remediate plan` made and wrote.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub json: std::path::PathBuf,
    pub markdown: std::path::PathBuf,
    /// Failures of the audit that did not stop it (a history that could not open).
    pub failures: Vec<crate::Error>,
}

impl Planned {
    /// What `remediate plan` prints: where the plan is, the removals and refusals, and how to
    /// go on; every value made safe for a terminal.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let t = |s: &str| crate::safe::terminal(s).into_owned();
        let p = &self.plan;
        let n = p.actions.len();
        let manual: usize = p.manual.iter().map(|m| m.findings.len()).sum();
        let s = |n: usize| if n == 1 { "" } else { "s" };
        let mut out = format!(
            "plan written to {} (review {}): {n} user{} to remove, {} refused, {manual} finding{} to fix by hand, {} waived finding{} left out; signed with {}\n",
            t(&self.json.display().to_string()),
            t(&self.markdown.display().to_string()),
            s(n),
            p.refused.len(),
            s(manual),
            p.waived,
            s(p.waived),
            p.signature.algorithm.as_str(),
        );
        for a in &p.actions {
            let rules: Vec<&str> = a.findings.iter().map(|f| f.rule_id.as_str()).collect();
            let _ = writeln!(
                out,
                "  remove {} ({}): {}",
                t(&a.user.email),
                t(&a.user.id),
                rules.join(", ")
            );
        }
        for r in &p.refused {
            let _ = writeln!(
                out,
                "  refused {} ({}): {}",
                t(&r.user.email),
                t(&r.user.id),
                r.reason
            );
        }
        if n > 0 {
            let _ = writeln!(
                out,
                "Removal is irreversible. Dry run: orgaudit remediate apply {}",
                t(&self.json.display().to_string())
            );
        }
        out
    }
}

/// `remediate plan` in one call: the audit of `run` (its input, rules, waivers, baseline and
/// history; no output, email or history record), the plan built from it, signed with `key`
/// (`ORGAUDIT_PLAN_KEY`) or a sha256, written as JSON to `json` and as Markdown to `markdown`
/// (default: `json` with the extension `.md`).
pub fn write_plan(
    run: &crate::plan::Plan,
    json: &std::path::Path,
    markdown: Option<&std::path::Path>,
    key: Option<&PlanKey>,
) -> Result<Planned, crate::Error> {
    let assessed = crate::run::assess(run)?;
    let created_at = crate::plan::now();
    let plan = build(&assessed, &run.org_id, created_at, key)?;
    let md_path = markdown.map_or_else(|| json.with_extension("md"), std::path::Path::to_path_buf);
    if md_path == json {
        return Err(crate::Error::Usage(format!(
            "{}: the plan and its Markdown view need two files",
            json.display()
        )));
    }
    let name = json.display().to_string();
    let write = |path: &std::path::Path,
                 produce: &dyn Fn(&mut dyn std::io::Write) -> std::io::Result<()>| {
        crate::output::write(crate::output::Target::File(path), run.file_mode, |out| {
            produce(out)
        })
        .map_err(|e| match e {
            crate::output::OutputError::Io { path, source } => {
                crate::Error::Output { path, source }
            }
            crate::output::OutputError::Produce(source) => crate::Error::Output {
                path: path.display().to_string(),
                source,
            },
        })
    };
    write(json, &|out| {
        serde_json::to_writer_pretty(&mut *out, &plan)?;
        out.write_all(b"\n")
    })?;
    write(&md_path, &|out| markdown::write(&plan, &name, out))?;
    Ok(Planned {
        plan,
        json: json.to_path_buf(),
        markdown: md_path,
        failures: assessed.failures,
    })
}

/// Compares two byte strings in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            kind: PLAN_KIND.into(),
            format: PLAN_FORMAT,
            tool: PlanTool {
                name: "orgaudit".into(),
                version: "0".into(),
            },
            organization: PlanOrganization {
                key: "default".into(),
                label: "acme".into(),
                owner_ids: vec!["o1".into()],
            },
            created_at: "2026-01-01T00:00:00Z".into(),
            audited_at: "2026-01-01T00:00:00Z".into(),
            report_sha256: "00".into(),
            actions: vec![],
            refused: vec![],
            manual: vec![],
            waived: 0,
            signature: Signature {
                algorithm: SignatureAlgorithm::Sha256,
                value: String::new(),
            },
        }
    }

    #[test]
    fn a_signature_covers_every_field_and_a_key_is_required_both_ways() {
        let mut p = plan();
        p.sign(None);
        assert_eq!(p.verify(None), Ok(()));
        let key = PlanKey::new(b"k1");
        assert!(p.verify(Some(&key)).unwrap_err().contains("only a sha256"));
        let mut edited = p.clone();
        edited.organization.owner_ids.push("o2".into());
        assert!(edited.verify(None).unwrap_err().contains("was edited"));

        p.sign(Some(&key));
        assert_eq!(p.signature.algorithm, SignatureAlgorithm::HmacSha256);
        assert_eq!(p.verify(Some(&key)), Ok(()));
        assert!(p
            .verify(None)
            .unwrap_err()
            .contains("set ORGAUDIT_PLAN_KEY"));
        assert!(p
            .verify(Some(&PlanKey::new(b"k2")))
            .unwrap_err()
            .contains("was edited"));
        assert_eq!(format!("{key:?}"), "PlanKey([redacted])");
    }

    proptest::proptest! {
        /// Any bytes spliced into a real plan: an error or a plan, never a panic; a plan that
        /// parses verifies or is refused, never a panic either.
        #[test]
        fn a_damaged_plan_is_refused_never_a_panic(
            at in 0usize..2000,
            cut in 0usize..40,
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let mut p = plan();
            p.sign(None);
            let mut bytes = serde_json::to_vec_pretty(&p).unwrap();
            let at = at.min(bytes.len());
            let end = (at + cut).min(bytes.len());
            bytes.splice(at..end, junk);
            if let Ok(mut parsed) = Plan::parse(&bytes, "fuzz.json") {
                let _ = parsed.verify(None);
                let _ = parsed.verify(Some(&PlanKey::new(b"k")));
            }
        }
    }

    #[test]
    fn changes_are_named() {
        let u = UserRecord {
            id: "u1".into(),
            email: "a@x".into(),
            record_type: "organization_sub_user".into(),
            user_status: "disabled".into(),
            created_at: "2020-01-01T00:00:00Z".into(),
            last_sign_in_at: None,
            groups: vec![GroupRef {
                id: "g1".into(),
                name: "G".into(),
            }],
        };
        let mut now = u.clone();
        assert!(u.changes_to(&now).is_empty());
        assert_eq!(u.digest(), now.digest());
        now.user_status = "enabled".into();
        now.record_type = "organization_owner".into();
        now.last_sign_in_at = Some("2026-01-01T00:00:00Z".into());
        now.groups.clear();
        assert_eq!(
            u.changes_to(&now),
            [
                "became an owner",
                "re-enabled (was disabled)",
                "signed in since the plan (last sign-in 2026-01-01T00:00:00Z)",
                "moved groups (0 added, 1 removed)"
            ]
        );
        assert_ne!(u.digest(), now.digest());
    }
}
