//! Loading a users groups report: from a file or standard input, as JSON or CSV.
//!
//! The format is detected from the content, never from the file name. Parsing goes straight into
//! the typed [`Report`]; every error names the origin and the place.

mod csv;
mod error;
mod json;
mod scan;
pub mod snapshot;
#[cfg(feature = "network")]
pub mod telnyx;
mod time;
mod write;

pub use write::{write_csv, write_json};

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::model::{Report, SourceInfo, Warning};

pub use error::{Location, SourceError};

/// The formats a report can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

/// Where to read a report from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Path(PathBuf),
    Stdin,
}

impl Input {
    /// `-` means standard input; anything else is a path.
    pub fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::Path(arg.into())
        }
    }

    /// The name used in messages.
    pub fn origin(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Stdin => "<stdin>".to_string(),
        }
    }
}

/// A parsed report with what was noticed while parsing it.
#[derive(Debug)]
pub struct Parsed {
    pub report: Report,
    pub format: Format,
    /// Records in the source: array elements in JSON, data rows in CSV.
    pub records: usize,
    pub warnings: Vec<Warning>,
}

/// A loaded report with its provenance.
#[derive(Debug)]
pub struct Loaded {
    pub report: Report,
    pub source: SourceInfo,
    pub warnings: Vec<Warning>,
}

/// Reads and parses a report from a file or standard input.
///
/// ```
/// use orgaudit::source::{load, Input};
///
/// let loaded = load(&Input::from_arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme-users-groups.json"))).unwrap();
/// assert_eq!(loaded.report.users.len(), 14);
/// assert_eq!(loaded.source.format, "json");
/// let e = load(&Input::from_arg("/no/such/report.json")).unwrap_err();
/// assert!(e.to_string().starts_with("/no/such/report.json: cannot read the report: "));
/// ```
pub fn load(input: &Input) -> Result<Loaded, SourceError> {
    load_capped(input, crate::defaults::API_MAX_BYTES)
}

/// [`load`], reading at most `max_bytes` (the cap a fetched report has, `--max-bytes`): a
/// device such as `/dev/zero` ends in an error naming the limit, not in running out of memory.
pub fn load_capped(input: &Input, max_bytes: u64) -> Result<Loaded, SourceError> {
    let origin = input.origin();
    let bytes = match input {
        Input::Path(p) => crate::diag::read_capped(p, max_bytes),
        Input::Stdin => crate::diag::read_all_capped(std::io::stdin().lock(), max_bytes),
    }
    .map_err(|source| SourceError::Io {
        origin: origin.clone(),
        source,
    })?;
    let (kind, path) = match input {
        Input::Path(p) => ("file", Some(p.display().to_string())),
        Input::Stdin => ("stdin", None),
    };
    loaded(&bytes, &origin, kind, path)
}

/// Parses a report fetched from the Telnyx API; errors name the report's URL.
#[cfg(feature = "network")]
pub fn from_fetched(fetched: &telnyx::Fetched) -> Result<Loaded, SourceError> {
    let origin = format!(
        "{}{}",
        fetched.base_url.trim_end_matches('/'),
        telnyx::REPORT_PATH
    );
    let mut loaded = loaded(&fetched.body, &origin, "telnyx-api", None)?;
    loaded.source.base_url = Some(fetched.base_url.clone());
    loaded.source.fetched_at = Some(fetched.fetched_at.clone());
    Ok(loaded)
}

/// Parses a report held in memory as if read from the file `name`.
pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Loaded, SourceError> {
    loaded(bytes, name, "file", Some(name.to_string()))
}

fn loaded(
    bytes: &[u8],
    origin: &str,
    kind: &'static str,
    path: Option<String>,
) -> Result<Loaded, SourceError> {
    // The digest is computed on another core while the report is parsed.
    let (parsed, sha256) = std::thread::scope(|scope| {
        let digest = scope.spawn(|| sha256_hex(bytes));
        let parsed = parse(bytes, origin);
        (parsed, digest.join().expect("hashing does not panic"))
    });
    let parsed = parsed?;
    Ok(Loaded {
        source: SourceInfo {
            kind,
            path,
            organization: None,
            base_url: None,
            fetched_at: None,
            format: parsed.format.as_str(),
            sha256,
            records: parsed.records,
            organizations: Vec::new(),
        },
        report: parsed.report,
        warnings: parsed.warnings,
    })
}

/// Parses a report held in memory; `origin` names it in errors and warnings.
pub fn parse(bytes: &[u8], origin: &str) -> Result<Parsed, SourceError> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Some(first) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(SourceError::Empty {
            origin: origin.to_string(),
        });
    };
    let sniff = &body[..body.len().min(first + 8192)];
    if let Some(offset) = sniff.iter().position(|&b| b == 0) {
        return Err(SourceError::Binary {
            origin: origin.to_string(),
            offset: offset + (bytes.len() - body.len()),
        });
    }
    let mut parsed = match body[first] {
        b'{' | b'[' => json::parse(body, origin)?,
        _ => csv::parse(body, origin)?,
    };
    finish(&mut parsed, origin);
    Ok(parsed)
}

/// Checks that span records (duplicate ids, a user listed twice in a group) and caps repeated
/// warnings.
fn finish(parsed: &mut Parsed, origin: &str) {
    // A membership given twice counts once, whatever the input format.
    let mut twice = Vec::new();
    for (i, u) in parsed.report.users.iter_mut().enumerate() {
        let g = &u.groups;
        if g.len() > 1 && (1..g.len()).any(|k| g[..k].contains(&g[k])) {
            let mut seen = Vec::with_capacity(g.len());
            for &ix in g.iter() {
                if !seen.contains(&ix) {
                    seen.push(ix);
                }
            }
            u.groups = seen.into();
            twice.push(Warning {
                code: "duplicate-membership",
                message: format!(
                    "{origin}: user record {i} ({}) lists a group more than once; counted once",
                    u.id
                ),
            });
        }
    }
    parsed.warnings.extend(twice);
    let mut seen: rustc_hash::FxHashMap<&str, usize> = rustc_hash::FxHashMap::default();
    seen.reserve(parsed.report.users.len());
    let mut dups = Vec::new();
    for (i, u) in parsed.report.users.iter().enumerate() {
        if let Some(first) = seen.insert(&u.id, i) {
            seen.insert(&u.id, first);
            dups.push(Warning {
                code: "duplicate-user-id",
                message: format!(
                    "{origin}: user record {i} has the id {} of user record {first}; both are audited",
                    u.id
                ),
            });
        }
    }
    parsed.warnings.extend(dups);
    parsed.warnings = cap_warnings(std::mem::take(&mut parsed.warnings), 20);
}

/// Keeps the first `max` warnings of each code and says how many more there were.
fn cap_warnings(warnings: Vec<Warning>, max: usize) -> Vec<Warning> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    let mut out = Vec::new();
    for w in warnings {
        let n = match counts.iter_mut().find(|(c, _)| *c == w.code) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                counts.push((w.code, 1));
                1
            }
        };
        if n <= max {
            out.push(w);
        }
    }
    for (code, n) in counts {
        if n > max {
            out.push(Warning {
                code,
                message: format!("{} more `{code}` warnings not shown", n - max),
            });
        }
    }
    out
}

/// Warns about `record_type` and `user_status` values this version does not know; they are kept.
fn warn_unknown_values(
    warnings: &mut Vec<Warning>,
    origin: &str,
    what: &str,
    record_type: &crate::model::RecordType,
    status: &crate::model::UserStatus,
) {
    use crate::model::{RecordType, UserStatus};
    if let RecordType::Other(v) = record_type {
        warnings.push(Warning {
            code: "unknown-record-type",
            message: format!(
                "{origin}: {what}: unknown record_type {v:?} (known: {}); kept as it is",
                RecordType::KNOWN.join(", ")
            ),
        });
    }
    if let UserStatus::Other(v) = status {
        warnings.push(Warning {
            code: "unknown-user-status",
            message: format!(
                "{origin}: {what}: unknown user_status {v:?} (known: {}); kept as it is, and not active",
                UserStatus::KNOWN.join(", ")
            ),
        });
    }
}

/// A JSON value as canonical text: object keys sorted (by their UTF-8 bytes) at every depth,
/// no white space; what is hashed where a value's hash must not depend on key order.
pub fn canonical_json(v: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&map[k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// The lower-case hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Bytes as lower-case hex (a digest, a MAC).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn empty_and_binary_inputs_are_errors() {
        let e = parse(b"  \n\t", "r.json").unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.json: the input is empty; expected a users groups report as JSON or CSV"
        );
        let e = parse(b"\x7fELF\x00\x01", "a.out").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.out: byte 4: binary data; expected a users groups report as JSON or CSV text"
        );
    }

    #[test]
    fn repeated_warnings_are_capped_with_a_count() {
        let ws = (0..25)
            .map(|i| Warning {
                code: "x",
                message: i.to_string(),
            })
            .collect();
        let out = cap_warnings(ws, 20);
        assert_eq!(out.len(), 21);
        assert_eq!(out[20].message, "5 more `x` warnings not shown");
    }
}
