//! A YAML document as a tree in which every node remembers its line and column.
//!
//! Rule files must be validated with exact positions for semantic errors too (an unknown field
//! name, an undefined parameter, a duplicate id), which a serde deserializer cannot give. So YAML
//! is read into this small tree first, and the typed readers in `rules` walk it.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

pub use crate::diag::Pos;

/// One node of a YAML document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar with its text; `quoted` is true for any quoted or block style, which is always a
    /// string, never a number, boolean or null.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Entries in document order; keys are scalars (a non-scalar key is a parse error).
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub pos: Pos,
    pub name: String,
}

/// A scalar read with the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl Node {
    /// What kind of value this is, in words for error messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Scalar { .. } => match self.scalar() {
                Some(Scalar::Null) => "null".into(),
                Some(Scalar::Bool(_)) => "a boolean".into(),
                Some(Scalar::Int(_)) | Some(Scalar::Float(_)) => "a number".into(),
                _ => "a string".into(),
            },
            NodeKind::Seq(_) => "a list".into(),
            NodeKind::Map(_) => "a mapping".into(),
        }
    }

    /// The scalar's typed value, or `None` for a list or mapping.
    pub fn scalar(&self) -> Option<Scalar<'_>> {
        match &self.kind {
            NodeKind::Scalar { text, quoted: true } => Some(Scalar::Str(text)),
            NodeKind::Scalar {
                text,
                quoted: false,
            } => Some(plain_scalar(text)),
            _ => None,
        }
    }

    /// The text of any scalar (numbers and booleans included), or `None`.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.scalar(), Some(Scalar::Null))
    }

    /// The node as JSON, with scalars typed by the core schema.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.kind {
            NodeKind::Scalar { .. } => match self.scalar().expect("scalar") {
                Scalar::Null => J::Null,
                Scalar::Bool(b) => J::Bool(b),
                Scalar::Int(i) => J::from(i),
                Scalar::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
                Scalar::Str(s) => J::String(s.to_owned()),
            },
            NodeKind::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn plain_scalar(text: &str) -> Scalar<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        _ => {}
    }
    let looks_numeric = text
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'+' || b == b'.');
    if looks_numeric {
        if let Ok(i) = text.parse::<i64>() {
            return Scalar::Int(i);
        }
        if let Some(hex) = text.strip_prefix("0x") {
            if let Ok(i) = i64::from_str_radix(hex, 16) {
                return Scalar::Int(i);
            }
        }
        if text.bytes().any(|b| b.is_ascii_digit()) {
            if let Ok(f) = text.parse::<f64>() {
                return Scalar::Float(f);
            }
        }
    }
    Scalar::Str(text)
}

/// How deep lists and mappings may nest, block or flow style (the YAML reader's own limit for
/// flow style): every reader of the tree recurses, and nothing orgaudit reads needs more.
pub const MAX_DEPTH: usize = 255;

/// Parses every document of a YAML text. Anchors and aliases are rejected: rule files are small
/// and explicit, and aliases would make positions ambiguous.
pub fn parse(source: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source);
    // Events one by one (the parser's own `load` recurses once per nesting level): the tree is
    // built on a stack of our own, and the first error, of ours or of the parser, stops it.
    loop {
        let (event, mark) = parser.next_token().map_err(|e| SyntaxError {
            pos: pos(e.marker()),
            message: e.info().to_string(),
        })?;
        if event == Event::StreamEnd {
            break;
        }
        builder.on_event(event, mark);
        if let Some(err) = builder.error.take() {
            return Err(err);
        }
    }
    Ok(builder.docs)
}

fn pos(m: &Marker) -> Pos {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Pos {
        line: m.line(),
        column: m.col() + 1,
    }
}

enum Frame {
    Seq(Pos, Vec<Node>),
    Map(Pos, Vec<(Key, Node)>, Option<Key>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    error: Option<SyntaxError>,
}

impl Builder {
    fn fail(&mut self, pos: Pos, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(SyntaxError {
                pos,
                message: message.into(),
            });
        }
    }

    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, pending)) => match pending.take() {
                Some(key) => {
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == key.name) {
                        let (name, first) = (key.name.clone(), first.pos);
                        self.fail(
                            key.pos,
                            format!("duplicate key `{name}` (first given at {first})"),
                        );
                        return;
                    }
                    entries.push((key, node));
                }
                None => match node.kind {
                    NodeKind::Scalar { text, .. } => {
                        *pending = Some(Key {
                            pos: node.pos,
                            name: text,
                        })
                    }
                    _ => self.fail(node.pos, "a mapping key must be a plain value"),
                },
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let at = pos(&mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 {
                    return self.fail(at, "anchors and aliases are not supported here");
                }
                let mut quoted = style != TScalarStyle::Plain;
                // The core schema's tags are honoured: `!!str true` is a string. A value its
                // tag does not describe, or another tag, is an error rather than ignored.
                if let Some(tag) = tag {
                    let core = (tag.handle == "tag:yaml.org,2002:").then_some(tag.suffix.as_str());
                    let fits = match (core, plain_scalar(&text)) {
                        (Some("str"), _) => {
                            quoted = true;
                            true
                        }
                        (Some("int"), Scalar::Int(_)) | (Some("bool"), Scalar::Bool(_)) => !quoted,
                        (Some("float"), Scalar::Float(_) | Scalar::Int(_)) => !quoted,
                        (Some("null"), Scalar::Null) => !quoted,
                        _ => false,
                    };
                    if !fits {
                        return self.fail(
                            at,
                            format!(
                                "the tag `{}{}` does not fit {text:?}; only !!str, !!int, !!float, !!bool and !!null are read, on values they describe",
                                if core.is_some() { "!!" } else { tag.handle.as_str() },
                                tag.suffix
                            ),
                        );
                    }
                }
                self.push_node(Node {
                    pos: at,
                    kind: NodeKind::Scalar { text, quoted },
                });
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) if anchor != 0 => {
                self.fail(at, "anchors and aliases are not supported here")
            }
            Event::Alias(_) => self.fail(at, "anchors and aliases are not supported here"),
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.fail(
                    at,
                    format!(
                        "nested deeper than {MAX_DEPTH} levels, the limit of every YAML file orgaudit reads"
                    ),
                )
            }
            Event::SequenceStart(..) => self.stack.push(Frame::Seq(at, Vec::new())),
            Event::MappingStart(..) => self.stack.push(Frame::Map(at, Vec::new(), None)),
            Event::SequenceEnd => {
                if let Some(Frame::Seq(p, items)) = self.stack.pop() {
                    self.push_node(Node {
                        pos: p,
                        kind: NodeKind::Seq(items),
                    });
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(p, entries, _)) = self.stack.pop() {
                    // A block mapping's start mark lies past its first key; point at that key.
                    let p = entries.first().map_or(p, |(k, _)| k.pos.min_by_line(p));
                    self.push_node(Node {
                        pos: p,
                        kind: NodeKind::Map(entries),
                    });
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let docs = parse("id: x\nwhen:\n  field: email\n").unwrap();
        let NodeKind::Map(entries) = &docs[0].kind else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.pos, Pos { line: 1, column: 1 });
        let NodeKind::Map(inner) = &entries[1].1.kind else {
            panic!("not a map")
        };
        assert_eq!(inner[0].0.pos, Pos { line: 3, column: 3 });
        assert_eq!(
            inner[0].1.pos,
            Pos {
                line: 3,
                column: 10
            }
        );
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let docs = parse("[1, -2.5, true, null, '1', abc, ~]").unwrap();
        let NodeKind::Seq(items) = &docs[0].kind else {
            panic!()
        };
        let got: Vec<_> = items.iter().map(|n| n.scalar().unwrap()).collect();
        assert_eq!(
            got,
            vec![
                Scalar::Int(1),
                Scalar::Float(-2.5),
                Scalar::Bool(true),
                Scalar::Null,
                Scalar::Str("1"),
                Scalar::Str("abc"),
                Scalar::Null
            ]
        );
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_have_positions() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 3, column: 1 });
        assert!(err.message.contains("duplicate key `a`"), "{}", err.message);
        let err = parse("a: [1, 2\n").unwrap_err();
        assert!(err.pos.line >= 1);
    }

    #[test]
    fn deep_nesting_is_an_error_not_an_overflow() {
        let deep = format!("a:\n{}1\n", "- ".repeat(100_000));
        let e = parse(&deep).unwrap_err();
        assert_eq!(e.pos.line, 2);
        assert_eq!(
            e.message,
            "nested deeper than 255 levels, the limit of every YAML file orgaudit reads"
        );
        let ok = format!("{}1\n", "- ".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn core_tags_are_honoured_and_others_refused() {
        let docs = parse("[!!str true, !!int 3, !!bool false, !!null null, !!str 5]").unwrap();
        let NodeKind::Seq(items) = &docs[0].kind else {
            panic!()
        };
        let got: Vec<_> = items.iter().map(|n| n.scalar().unwrap()).collect();
        assert_eq!(
            got,
            [
                Scalar::Str("true"),
                Scalar::Int(3),
                Scalar::Bool(false),
                Scalar::Null,
                Scalar::Str("5")
            ]
        );
        for bad in ["a: !!int x", "a: !custom 1", "a: !!bool yes"] {
            let e = parse(bad).unwrap_err();
            assert!(e.message.starts_with("the tag `!"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn several_documents() {
        assert_eq!(parse("a: 1\n---\nb: 2\n").unwrap().len(), 2);
    }
}
