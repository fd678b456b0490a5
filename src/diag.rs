//! Diagnostics of every file orgaudit reads as YAML (rules, the configuration, waivers, rule
//! tests): what was found, what was expected, and where (`file:line:column`), with a help line
//! (the valid names, a did-you-mean). Readers collect them and report them together. The
//! shared pieces live here: the error type, unknown keys, did-you-mean, reading a source file,
//! and `Reader`, the typed value reader of a YAML mapping (crate-private).

use std::fmt;

use crate::yaml::{Key, Node, NodeKind, Scalar};

/// A 1-based line and column in a source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub(crate) fn min_by_line(self, other: Pos) -> Pos {
        if (self.line, self.column) <= (other.line, other.column) {
            self
        } else {
            other
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule file, `builtin:NAME`, or `None` for a command-line override.
    pub file: Option<String>,
    pub pos: Option<Pos>,
    pub message: String,
    /// A hint: the valid names, a did-you-mean.
    pub help: Option<String>,
}

impl RuleError {
    pub fn new(file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Self {
            file: Some(file.to_string()),
            pos: Some(pos),
            message: message.into(),
            help: None,
        }
    }
    pub fn file(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: Some(file.to_string()),
            pos: None,
            message: message.into(),
            help: None,
        }
    }
    pub fn plain(message: impl Into<String>) -> Self {
        Self {
            file: None,
            pos: None,
            message: message.into(),
            help: None,
        }
    }
    /// A file that is not valid YAML, at the place the YAML reader stopped.
    pub fn yaml_syntax(file: &str, e: &crate::yaml::SyntaxError) -> Self {
        RuleError::new(file, e.pos, format!("invalid YAML: {}", e.message))
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, &self.pos) {
            (Some(file), Some(pos)) => write!(f, "{file}:{pos}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            _ => {}
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// One or more rule errors, all reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleErrors(pub Vec<RuleError>);

impl From<RuleError> for RuleErrors {
    fn from(e: RuleError) -> Self {
        RuleErrors(vec![e])
    }
}

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

/// The error for a key a mapping does not have: the valid keys and, when one is close, a
/// did-you-mean. Rule files, the configuration, waivers and rule tests all report it this way.
pub fn unknown_key(file: &str, pos: Pos, key: &str, what: &str, valid: &[&str]) -> RuleError {
    let help = match did_you_mean(key, valid.iter().copied()) {
        Some(s) => format!("did you mean `{s}`? valid keys: {}", valid.join(", ")),
        None => format!("valid keys: {}", valid.join(", ")),
    };
    RuleError::new(file, pos, format!("unknown key `{key}` in {what}")).with_help(help)
}

/// Reads a text file for one of the YAML readers: `(name for messages, text)`, or an error that
/// names the file and says what it was meant to hold.
pub fn read_source(path: &std::path::Path, what: &str) -> Result<(String, String), RuleErrors> {
    let name = path.display().to_string();
    let text = read_capped(path, crate::defaults::text_max_bytes()).and_then(|b| {
        String::from_utf8(b)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
    });
    match text {
        Ok(text) => Ok((name, text)),
        Err(e) => Err(RuleError::file(&name, format!("cannot read {what}: {e}")).into()),
    }
}

/// Reads a file, or anything a path names (a device, a FIFO), up to `cap` bytes: one more is an
/// error naming the limit, so `/dev/zero` cannot fill the memory.
pub fn read_capped(path: &std::path::Path, cap: u64) -> std::io::Result<Vec<u8>> {
    read_all_capped(std::fs::File::open(path)?, cap)
}

/// Reads a stream to its end, up to `cap` bytes (see [`read_capped`]).
pub fn read_all_capped(r: impl std::io::Read, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    r.take(cap.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than the limit of {cap} bytes"),
        ));
    }
    Ok(buf)
}

/// A URL as it may be shown: a password written in it (`https://user:pass@host`) replaced by
/// `***`. What is not a URL is shown as `<invalid URL>`, never as it is.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string().trim_end_matches('/').to_string()
                + if url.ends_with('/') { "/" } else { "" }
        }
        Ok(_) => url.to_string(),
        Err(_) => "<invalid URL>".into(),
    }
}

/// Whether a URL carries a password, in its user part or as a `password` parameter: such URLs
/// are refused wherever a secret must come from elsewhere (the history's PostgreSQL URL).
pub fn url_has_password(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        u.password().is_some()
            || u.query_pairs()
                .any(|(k, _)| k.eq_ignore_ascii_case("password"))
    })
}

/// The closest candidate to a misspelt name, if any is close enough.
pub fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Reads typed values out of a YAML mapping, collecting a positioned error for each value of
/// the wrong type or key that does not belong. `what` names the value in messages.
pub(crate) struct Reader<'a> {
    pub file: &'a str,
    pub errors: Vec<RuleError>,
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a str) -> Self {
        Reader {
            file,
            errors: Vec::new(),
        }
    }

    pub fn err_help(&mut self, pos: Pos, message: impl Into<String>, help: impl Into<String>) {
        self.errors
            .push(RuleError::new(self.file, pos, message).with_help(help));
    }

    /// An unknown key, with the valid ones and a did-you-mean.
    pub fn unknown_key(&mut self, pos: Pos, key: &str, what: &str, valid: &[&str]) {
        self.errors
            .push(unknown_key(self.file, pos, key, what, valid));
    }

    /// Any string (empty too); `what` is named as given.
    pub fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.scalar() {
            Some(Scalar::Str(s)) => Some(s.to_string()),
            _ => {
                self.err(
                    node.pos,
                    format!("{what} must be a string; found {}", node.describe()),
                );
                None
            }
        }
    }

    /// A list of strings; `what` is named as given.
    pub fn texts(&mut self, node: &Node, what: &str) -> Vec<String> {
        match &node.kind {
            NodeKind::Seq(items) => items.iter().filter_map(|i| self.text(i, what)).collect(),
            _ => {
                self.err(
                    node.pos,
                    format!(
                        "{what} must be a list of strings; found {}",
                        node.describe()
                    ),
                );
                Vec::new()
            }
        }
    }

    /// Reports every key of `entries` that is not in `valid`, with a did-you-mean.
    pub fn keys(&mut self, entries: &[(Key, Node)], valid: &[&str], what: &str) {
        for (k, _) in entries {
            if !valid.contains(&k.name.as_str()) {
                self.errors
                    .push(unknown_key(self.file, k.pos, &k.name, what, valid));
            }
        }
    }

    /// An RFC 3339 time, in UTC.
    pub fn time(&mut self, node: &Node) -> Option<crate::model::Timestamp> {
        let t = node
            .text()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        if t.is_none() {
            self.err(
                node.pos,
                "`now` must be an RFC 3339 time such as 2026-06-01T00:00:00Z",
            );
        }
        t.map(|t| t.with_timezone(&chrono::Utc))
    }

    pub fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(RuleError::new(self.file, pos, message));
    }

    pub fn map<'n>(&mut self, node: &'n Node, what: &str, valid: &[&str]) -> &'n [(Key, Node)] {
        let NodeKind::Map(entries) = &node.kind else {
            self.err(
                node.pos,
                format!("{what} must be a mapping; found {}", node.describe()),
            );
            return &[];
        };
        for (k, _) in entries {
            if !valid.contains(&k.name.as_str()) {
                self.errors
                    .push(unknown_key(self.file, k.pos, &k.name, what, valid));
            }
        }
        entries
    }

    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.scalar() {
            Some(Scalar::Str(s)) if !s.trim().is_empty() => Some(s.to_string()),
            _ => {
                self.err(
                    node.pos,
                    format!(
                        "`{what}` must be a non-empty string; found {}",
                        node.describe()
                    ),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.scalar() {
            Some(Scalar::Bool(b)) => Some(b),
            _ => {
                self.err(
                    node.pos,
                    format!("`{what}` must be true or false; found {}", node.describe()),
                );
                None
            }
        }
    }

    pub fn strings(&mut self, node: &Node, what: &str) -> Vec<String> {
        match &node.kind {
            NodeKind::Seq(items) => items.iter().filter_map(|i| self.string(i, what)).collect(),
            NodeKind::Scalar { .. } => self.string(node, what).into_iter().collect(),
            _ => {
                self.err(
                    node.pos,
                    format!(
                        "`{what}` must be a list of strings; found {}",
                        node.describe()
                    ),
                );
                Vec::new()
            }
        }
    }

    pub fn one_of(&mut self, node: &Node, what: &str, valid: &[&str]) -> Option<String> {
        let v = self.string(node, what)?;
        if valid.contains(&v.as_str()) {
            Some(v)
        } else {
            self.err(
                node.pos,
                format!("`{what}` must be one of {}; found {v:?}", valid.join(", ")),
            );
            None
        }
    }

    pub fn number(&mut self, node: &Node, what: &str, min: f64, max: f64) -> Option<f64> {
        let v = match node.scalar() {
            Some(Scalar::Int(i)) => i as f64,
            Some(Scalar::Float(f)) => f,
            _ => f64::NAN,
        };
        if v.is_nan() || v < min || v > max {
            self.err(
                node.pos,
                format!(
                    "`{what}` must be a number from {min} to {max}; found {}",
                    node.text().unwrap_or("a non-scalar")
                ),
            );
            return None;
        }
        Some(v)
    }
}

/// A `&'static str` field that a document read back fills through [`interned`] (a plain
/// reference type would make serde borrow from the input).
pub type StaticStr = &'static str;

/// Reads a string for a `&'static str` field of a document read back (a stored run re-rendered
/// by `history show`): each distinct value is kept once for the life of the process, so that
/// reading many documents does not grow memory.
pub fn interned<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let s = <String as serde::Deserialize>::deserialize(d)?;
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&known) = seen.get(s.as_str()) {
        return Ok(known);
    }
    let leaked: &'static str = Box::leak(s.into_boxed_str());
    seen.insert(leaked);
    Ok(leaked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let names = ["severity", "scope", "title"];
        assert_eq!(did_you_mean("severty", names.into_iter()), Some("severity"));
        assert_eq!(did_you_mean("xyz", names.into_iter()), None);
    }

    #[test]
    fn display_with_place_and_help() {
        let e = RuleError::new("r.yaml", Pos { line: 3, column: 5 }, "unknown key `x`")
            .with_help("valid keys: a, b");
        assert_eq!(
            e.to_string(),
            "r.yaml:3:5: unknown key `x`\n  help: valid keys: a, b"
        );
    }
}
