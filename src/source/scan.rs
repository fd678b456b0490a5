//! A structural scan of a JSON report: where the users array is and where each of its elements
//! starts and ends, without parsing them, so that elements can be parsed on several cores.
//!
//! The scan only finds extents. It answers `None` for anything it does not expect, and every
//! byte it skips is validated by serde_json afterwards: elements when they are parsed, other
//! values of the envelope as a whole. Errors are always reported by the sequential parser.

use std::ops::Range;

/// The byte ranges of the user records, in order; `None` when the document is not a plain
/// `{"data": [...], ...}` envelope or bare array of objects (the sequential parser decides).
pub(super) struct Layout {
    pub elements: Vec<Range<usize>>,
    /// The envelope's keys and other values, for serde_json to validate.
    pub others: Vec<Range<usize>>,
}

pub(super) fn layout(body: &[u8]) -> Option<Layout> {
    let mut s = Scanner { body, pos: 0 };
    let mut out = Layout {
        elements: Vec::new(),
        others: Vec::new(),
    };
    s.ws();
    match s.peek()? {
        b'[' => s.elements(&mut out.elements)?,
        b'{' => {
            s.pos += 1;
            let mut seen_data = false;
            s.ws();
            if s.peek()? != b'}' {
                loop {
                    s.ws();
                    let key = s.string()?;
                    if body[key.clone()].contains(&b'\\') {
                        return None; // an escaped key might spell `data`
                    }
                    out.others.push(key.clone()); // validated like the values
                    s.ws();
                    s.expect(b':')?;
                    s.ws();
                    if &body[key.start + 1..key.end - 1] == b"data" {
                        if seen_data {
                            return None;
                        }
                        seen_data = true;
                        s.elements(&mut out.elements)?;
                    } else {
                        let start = s.pos;
                        s.value()?;
                        out.others.push(start..s.pos);
                    }
                    s.ws();
                    match s.next()? {
                        b',' => continue,
                        b'}' => break,
                        _ => return None,
                    }
                }
            } else {
                s.pos += 1;
            }
            if !seen_data {
                return None;
            }
        }
        _ => return None,
    }
    s.ws();
    (s.pos == body.len()).then_some(out)
}

/// Deeper nesting is left to the sequential parser: serde_json limits recursion (128 levels) per
/// document, and a record parsed on its own sits two levels higher than in the document.
const MAX_DEPTH: usize = 100;

struct Scanner<'a> {
    body: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.body.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// `[ {..}, {..} ]`: the extent of each element, which must be an object.
    fn elements(&mut self, out: &mut Vec<Range<usize>>) -> Option<()> {
        self.expect(b'[')?;
        self.ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(());
        }
        // A guess of the element count, from the first element's size.
        let mut first = true;
        loop {
            self.ws();
            if self.peek()? != b'{' {
                return None;
            }
            let start = self.pos;
            self.value()?;
            out.push(start..self.pos);
            if first {
                first = false;
                let per = (self.pos - start).max(16);
                out.reserve((self.body.len() - start) / per);
            }
            self.ws();
            match self.next()? {
                b',' => continue,
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A string, quotes included; escapes are skipped, not checked.
    fn string(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        self.expect(b'"')?;
        loop {
            let at = memchr::memchr2(b'"', b'\\', &self.body[self.pos..])? + self.pos;
            self.pos = at + 1;
            if self.body[at] == b'"' {
                return Some(start..self.pos);
            }
            self.pos += 1; // the escaped byte
        }
    }

    /// Any value: strings and nesting are followed; scalars run to the next delimiter.
    fn value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return None; // near serde_json's recursion limit: one pass decides
                    }
                    self.pos += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.pos += 1;
                }
                b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' if depth > 0 => self.pos += 1,
                b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' => return Some(()),
                _ => {
                    // A scalar: up to the next delimiter.
                    while let Some(b) = self.peek() {
                        if matches!(
                            b,
                            b',' | b':' | b'}' | b']' | b'"' | b' ' | b'\t' | b'\n' | b'\r'
                        ) {
                            break;
                        }
                        self.pos += 1;
                    }
                    if depth == 0 {
                        return Some(());
                    }
                    continue;
                }
            }
            if depth == 0 {
                return Some(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extents(doc: &str) -> Option<(Vec<&str>, Vec<&str>)> {
        let l = layout(doc.as_bytes())?;
        Some((
            l.elements.into_iter().map(|r| &doc[r]).collect(),
            l.others.into_iter().map(|r| &doc[r]).collect(),
        ))
    }

    #[test]
    fn finds_each_record_and_the_envelope_values() {
        let (els, others) = extents(
            r#" {"meta": {"a": [1, {"b": "}"}]}, "data" : [ {"x": "a\"},{"}, {"y": [1,2], "z": null}
              ], "n": -1.5e3 } "#,
        )
        .unwrap();
        assert_eq!(els, [r#"{"x": "a\"},{"}"#, r#"{"y": [1,2], "z": null}"#]);
        assert_eq!(
            others,
            [
                r#""meta""#,
                r#"{"a": [1, {"b": "}"}]}"#,
                r#""data""#,
                r#""n""#,
                "-1.5e3"
            ]
        );
        let (els, others) = extents(r#"[{"a":1},{"b":"\\"}]"#).unwrap();
        assert_eq!(els, [r#"{"a":1}"#, r#"{"b":"\\"}"#]);
        assert!(others.is_empty());
        assert_eq!(extents("[]").unwrap().0.len(), 0);
        assert_eq!(extents(r#"{"data": []}"#).unwrap().0.len(), 0);
    }

    #[test]
    fn anything_unexpected_is_left_to_the_parser() {
        for doc in [
            "",
            "{}",
            r#"{"users": []}"#,
            r#"{"data": [], "data": []}"#,
            r#"[1, {"a": 1}]"#,
            r#"[{"a": 1}"#,
            r#"[{"a": "1}]"#,
            r#"[{"a": 1}] []"#,
            r#"[{"a": 1}}]"#,
            r#"[{"a": 1} {"b": 2}]"#,
            r#"{"data": [{"a": 1}], "x": }"#,
            "{\"d\\u0061ta\": []}",
            &format!("[{{\"a\": {}1{}}}]", "[".repeat(100), "]".repeat(100)),
            r#"{"data": [], "d\u0061ta": []}"#,
        ] {
            assert!(extents(doc).is_none(), "{doc}");
        }
    }
}
