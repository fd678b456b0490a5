//! What the history knows of an organization's findings between runs, one record per
//! organization, replaced at each run: every fingerprint ever seen (when it was first seen,
//! when it was last seen, whether it is open, and since when), and each rule's count and total
//! time of resolved findings. Lifecycles (new, unchanged, reopened, resolved, first seen) and
//! mean times to resolve read it; nothing grows with the number of runs.
//!
//! Stored compressed in a small binary layout, read back like any input: lengths and indices
//! are checked, and a damaged record is an error, never a panic.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

/// What is known of one fingerprint. Its strings (rule, times) are indices into the state's
/// string table ([`State::text`]): a hundred thousand entries share a handful of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub rule: u32,
    /// `audited_at` of the first run that had it.
    pub first_seen: u32,
    /// `audited_at` of the last run that had it.
    pub last_seen: u32,
    /// Since when it has been open (its current episode, or its last one when resolved).
    pub opened: u32,
    /// Not resolved: in the last run that evaluated its rule.
    pub open: bool,
}

/// Resolved findings of one rule: how many, and their open time summed, in days.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Resolved {
    pub count: u64,
    pub days: f64,
}

/// The state of one organization.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    strings: Vec<String>,
    index: FxHashMap<String, u32>,
    pub entries: FxHashMap<Box<str>, Entry>,
    pub resolved: BTreeMap<String, Resolved>,
}

/// What a run changed: the fingerprints resolved by it (they were open, their rule was
/// evaluated, they are gone), and those kept open because their rule was not evaluated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advanced {
    pub resolved: Vec<String>,
    pub not_rechecked: Vec<String>,
}

fn days_between(from: &str, to: &str) -> f64 {
    match (
        chrono::DateTime::parse_from_rfc3339(from),
        chrono::DateTime::parse_from_rfc3339(to),
    ) {
        (Ok(a), Ok(b)) => ((b - a).num_seconds().max(0) as f64) / 86_400.0,
        _ => 0.0,
    }
}

impl State {
    /// A string of the table (a rule id or a time).
    pub fn text(&self, i: u32) -> &str {
        self.strings.get(i as usize).map_or("", String::as_str)
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }

    /// The state after a run at `now` with these findings `(fingerprint, rule)`; `evaluated`
    /// says whether a rule was evaluated in it (an open finding of a rule that was not stays
    /// open: it was not checked).
    pub fn advance<'a>(
        &mut self,
        now: &str,
        findings: impl IntoIterator<Item = (&'a str, &'a str)>,
        evaluated: impl Fn(&str) -> bool,
    ) -> Advanced {
        let t = self.intern(now);
        let mut present: FxHashSet<&str> = FxHashSet::default();
        let mut last_rule: Option<(&str, u32)> = None;
        for (fp, rule) in findings {
            present.insert(fp);
            // Findings come grouped by rule: one lookup per rule, not per finding.
            let r = match last_rule {
                Some((name, ix)) if name == rule => ix,
                _ => {
                    let ix = self.intern(rule);
                    last_rule = Some((rule, ix));
                    ix
                }
            };
            match self.entries.get_mut(fp) {
                Some(e) => {
                    if !e.open {
                        e.open = true;
                        e.opened = t;
                    }
                    e.last_seen = t;
                    e.rule = r;
                }
                None => {
                    self.entries.insert(
                        fp.into(),
                        Entry {
                            rule: r,
                            first_seen: t,
                            last_seen: t,
                            opened: t,
                            open: true,
                        },
                    );
                }
            }
        }
        let mut out = Advanced::default();
        let mut closed: Vec<(u32, u32)> = Vec::new();
        for (fp, e) in self.entries.iter_mut() {
            if !e.open || present.contains(&**fp) {
                continue;
            }
            if evaluated(self.strings.get(e.rule as usize).map_or("", String::as_str)) {
                e.open = false;
                closed.push((e.rule, e.opened));
                out.resolved.push(fp.to_string());
            } else {
                out.not_rechecked.push(fp.to_string());
            }
        }
        for (rule, opened) in closed {
            let days = days_between(self.text(opened), now);
            let r = self
                .resolved
                .entry(self.text(rule).to_string())
                .or_default();
            r.count += 1;
            r.days += days;
        }
        out.resolved.sort();
        out.not_rechecked.sort();
        out
    }

    /// Forgets fingerprints (a person's findings).
    pub fn forget<'a>(&mut self, fps: impl IntoIterator<Item = &'a str>) {
        for fp in fps {
            self.entries.remove(fp);
        }
    }

    /// Open findings per rule.
    pub fn open_by_rule(&self) -> BTreeMap<&str, usize> {
        let mut out = BTreeMap::new();
        for e in self.entries.values().filter(|e| e.open) {
            *out.entry(self.text(e.rule)).or_default() += 1;
        }
        out
    }

    /// The binary layout: `OAS1`, the string table (rules and times), the entries (each a
    /// fingerprint and indices into the table), the resolved counts; integers little-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 56 + 1024);
        out.extend_from_slice(b"OAS1");
        out.extend_from_slice(&(self.strings.len() as u32).to_le_bytes());
        for s in &self.strings {
            put_str(&mut out, s);
        }
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        let mut keys: Vec<&Box<str>> = self.entries.keys().collect();
        keys.sort_unstable();
        for fp in keys {
            let e = &self.entries[fp];
            put_str(&mut out, fp);
            for i in [e.rule, e.first_seen, e.last_seen, e.opened] {
                out.extend_from_slice(&i.to_le_bytes());
            }
            out.push(e.open as u8);
        }
        out.extend_from_slice(&(self.resolved.len() as u32).to_le_bytes());
        for (rule, r) in &self.resolved {
            put_str(&mut out, rule);
            out.extend_from_slice(&r.count.to_le_bytes());
            out.extend_from_slice(&r.days.to_le_bytes());
        }
        out
    }

    /// Reads [`State::encode`]'s layout back.
    pub fn decode(bytes: &[u8]) -> Result<State, String> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(4)? != b"OAS1" {
            return Err("not a findings state (bad magic)".into());
        }
        let mut state = State::default();
        let n = r.u32()?;
        for _ in 0..n {
            let s = r.str()?;
            state
                .index
                .insert(s.to_string(), state.strings.len() as u32);
            state.strings.push(s.to_string());
        }
        let strings = state.strings.len() as u32;
        let ix = |r: &mut Reader<'_>| -> Result<u32, String> {
            let i = r.u32()?;
            if i < strings {
                Ok(i)
            } else {
                Err(format!("string {i} of {strings}"))
            }
        };
        let n = r.u32()? as usize;
        state.entries.reserve(n.min(1 << 22));
        for _ in 0..n {
            let fp: Box<str> = r.str()?.into();
            let e = Entry {
                rule: ix(&mut r)?,
                first_seen: ix(&mut r)?,
                last_seen: ix(&mut r)?,
                opened: ix(&mut r)?,
                open: r.take(1)?[0] != 0,
            };
            state.entries.insert(fp, e);
        }
        let n = r.u32()?;
        for _ in 0..n {
            let rule = r.str()?.to_string();
            let count = u64::from_le_bytes(r.take(8)?.try_into().map_err(|_| "short")?);
            let days = f64::from_le_bytes(r.take(8)?.try_into().map_err(|_| "short")?);
            state.resolved.insert(rule, Resolved { count, days });
        }
        if r.at != bytes.len() {
            return Err("trailing bytes after the findings state".into());
        }
        Ok(state)
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("the findings state is cut short")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| "short")?,
        ))
    }
    fn str(&mut self) -> Result<&'a str, String> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycles_advance_and_the_state_round_trips() {
        let mut s = State::default();
        let a = s.advance("2026-11-01T00:00:00Z", [("f1", "r1"), ("f2", "r2")], |_| {
            true
        });
        assert_eq!(a, Advanced::default());
        // f1 resolved after 7 days; f2's rule did not run: kept open.
        let a = s.advance("2026-11-08T00:00:00Z", [], |r| r == "r1");
        assert_eq!(a.resolved, ["f1"]);
        assert_eq!(a.not_rechecked, ["f2"]);
        assert!(s.entries["f2"].open && !s.entries["f1"].open);
        assert_eq!(s.text(s.entries["f2"].rule), "r2");
        assert_eq!(
            s.resolved["r1"],
            Resolved {
                count: 1,
                days: 7.0
            }
        );
        // f1 back: reopened, first seen unchanged, a new episode.
        s.advance("2026-11-15T00:00:00Z", [("f1", "r1"), ("f2", "r2")], |_| {
            true
        });
        let f1 = s.entries["f1"];
        assert!(f1.open);
        assert_eq!(
            (s.text(f1.first_seen), s.text(f1.opened)),
            ("2026-11-01T00:00:00Z", "2026-11-15T00:00:00Z")
        );
        let bytes = s.encode();
        assert_eq!(State::decode(&bytes).unwrap(), s);
        for cut in [0, 3, 4, 10, bytes.len() - 1] {
            assert!(State::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad.push(0);
        assert!(State::decode(&bad).is_err());
        s.forget(["f1"]);
        assert!(!s.entries.contains_key("f1"));
        assert_eq!(s.open_by_rule()["r2"], 1);
    }
}
