//! `history forget --user EMAIL`: a person's data taken out of a stored JSON output. Their
//! findings go (from `findings`, `resolved` and `not_rechecked`), and every other string that
//! holds their address (evidence, messages, changes) is replaced by a marker. (Their record
//! leaves the snapshot in the store, through the report model.)

use serde_json::Value;

/// What replaces a forgotten address.
pub const MARKER: &str = "[forgotten]";

fn is(email: &str, want: &str) -> bool {
    crate::model::normalize_email(email) == want
}

/// Replaces every string that mentions `want` (case-insensitively) with [`MARKER`].
fn scrub(v: &mut Value, want: &str) {
    match v {
        Value::String(s) => {
            if s.to_lowercase().contains(want) {
                *s = MARKER.to_string();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| scrub(i, want)),
        Value::Object(map) => map.values_mut().for_each(|i| scrub(i, want)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A stored JSON output without the person: the new bytes, and the fingerprints of the
/// findings that were about them.
pub fn output(bytes: &[u8], want: &str) -> Result<(Vec<u8>, Vec<String>), serde_json::Error> {
    let original: Value = serde_json::from_slice(bytes)?;
    let mut doc = original.clone();
    let mut gone = Vec::new();
    for list in ["findings", "resolved", "not_rechecked"] {
        if let Some(Value::Array(items)) = doc.get_mut(list) {
            items.retain(|f| {
                let about = f
                    .pointer("/subject/email")
                    .and_then(Value::as_str)
                    .is_some_and(|e| is(e, want));
                if about {
                    if let Some(fp) = f.get("fingerprint").and_then(Value::as_str) {
                        gone.push(fp.to_string());
                    }
                }
                !about
            });
        }
    }
    scrub(&mut doc, want);
    if doc == original {
        return Ok((bytes.to_vec(), gone));
    }
    let mut out = serde_json::to_vec_pretty(&doc)?;
    out.push(b'\n');
    Ok((out, gone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_leaves_findings_resolved_evidence_and_the_snapshot() {
        let doc = serde_json::json!({
            "findings": [
                {"subject": {"email": "Ann@X.io"}, "fingerprint": "f1", "message": "Ann@X.io"},
                {"subject": {"email": "bob@x.io"}, "fingerprint": "f2",
                 "evidence": {"users": [{"email": "ann@x.io"}]}}
            ],
            "resolved": [{"subject": {"email": "ann@x.io"}, "fingerprint": "f3"}]
        });
        let bytes = serde_json::to_vec_pretty(&doc).unwrap();
        let (out, gone) = output(&bytes, "ann@x.io").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(gone, ["f1", "f3"]);
        assert!(!text.to_lowercase().contains("ann@x.io"), "{text}");
        assert!(text.contains("bob@x.io") && text.contains(MARKER));
        // Nobody to forget: the bytes stay as they were.
        assert_eq!(output(&bytes, "zed@x.io").unwrap().0, bytes);
    }
}
