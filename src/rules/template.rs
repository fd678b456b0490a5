//! What a message template or an `expr` uses besides variables: the filters and tests it calls.
//! minijinja only finds an unknown filter when it renders, so the validator looks for them
//! itself: a small scan of the expression parts of a template (strings skipped), and minijinja's
//! own `is filter` / `is test` to tell whether a name exists.

/// A filter or a test that a template calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Call {
    Filter(String),
    Test(String),
}

impl Call {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Call::Filter(_) => "filter",
            Call::Test(_) => "test",
        }
    }
    pub(super) fn name(&self) -> &str {
        match self {
            Call::Filter(n) | Call::Test(n) => n,
        }
    }
}

/// Names minijinja may know, offered as suggestions when they exist in this build.
const CANDIDATES: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
    "zip",
    "defined",
    "undefined",
    "none",
    "escaped",
    "boolean",
    "odd",
    "even",
    "divisibleby",
    "number",
    "integer",
    "sequence",
    "iterable",
    "mapping",
    "startingwith",
    "endingwith",
    "sameas",
    "eq",
    "equalto",
    "ne",
    "lt",
    "lessthan",
    "le",
    "gt",
    "greaterthan",
    "ge",
    "in",
    "true",
    "false",
    "filter",
    "test",
];

/// Whether minijinja's environment knows a filter or test of that name.
pub(super) fn exists(call: &Call) -> bool {
    let env = minijinja::Environment::new();
    let probe = format!("name is {}", call.kind());
    env.compile_expression(&probe)
        .and_then(|e| e.eval(minijinja::context! { name => call.name() }))
        .is_ok_and(|v| v.is_true())
}

/// The filters or tests (as `like`'s kind) that exist, for a did-you-mean.
pub(super) fn known(like: &Call) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = CANDIDATES
        .iter()
        .copied()
        .filter(|n| {
            exists(&match like {
                Call::Filter(_) => Call::Filter(n.to_string()),
                Call::Test(_) => Call::Test(n.to_string()),
            })
        })
        .collect();
    names.sort_unstable();
    names
}

#[derive(Debug, PartialEq)]
enum Tok<'a> {
    Ident(&'a str),
    Pipe,
    Other,
}

/// The tokens of one expression: identifiers and `|`; strings and everything else are `Other`.
fn tokens(expr: &str) -> Vec<Tok<'_>> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(Tok::Other);
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(&expr[start..i]));
        } else if c == b'|' {
            out.push(Tok::Pipe);
            i += 1;
        } else {
            if !c.is_ascii_whitespace() {
                out.push(Tok::Other);
            }
            i += 1;
        }
    }
    out
}

/// The filters and tests of one expression (`block`: a `{% ... %}` tag, where `filter NAME`
/// opens a filter block).
fn calls_in(expr: &str, block: bool, out: &mut Vec<Call>) {
    let toks = tokens(expr);
    let mut push = |c: Call| {
        if !out.contains(&c) {
            out.push(c);
        }
    };
    for (i, t) in toks.iter().enumerate() {
        match (t, toks.get(i + 1), toks.get(i + 2)) {
            (Tok::Pipe, Some(Tok::Ident(name)), _) => push(Call::Filter(name.to_string())),
            (Tok::Ident("filter"), Some(Tok::Ident(name)), _) if block && i == 0 => {
                push(Call::Filter(name.to_string()))
            }
            (Tok::Ident("is"), Some(Tok::Ident("not")), Some(Tok::Ident(name)))
            | (Tok::Ident("is"), Some(Tok::Ident(name)), _)
                if *name != "not" =>
            {
                push(Call::Test(name.to_string()))
            }
            _ => {}
        }
    }
}

/// The filters and tests a template (or, with `in_expr`, an expression) calls, in order.
pub(super) fn calls(source: &str, in_expr: bool) -> Vec<Call> {
    let mut out = Vec::new();
    if in_expr {
        calls_in(source, false, &mut out);
        return out;
    }
    let mut rest = source;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let (close, block) = match after.as_bytes().first() {
            Some(b'{') => ("}}", false),
            Some(b'%') => ("%}", true),
            Some(b'#') => ("#}", false),
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        // The end of the tag, outside strings.
        let mut end = None;
        let bytes = body.as_bytes();
        let mut i = 0;
        let mut quote = None;
        while i + 1 < bytes.len() {
            match (quote, bytes[i]) {
                (Some(_), b'\\') => i += 1,
                (Some(q), c) if c == q => quote = None,
                (None, b'\'' | b'"') if close != "#}" => quote = Some(bytes[i]),
                (None, _) if body[i..].starts_with(close) => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let Some(end) = end else { break };
        let inner = body[..end].trim_matches(|c| c == '-' || c == '+' || c == '~');
        if close != "#}" {
            if block && inner.trim() == "raw" {
                // Nothing is an expression until `endraw`.
                match body[end..].find("endraw") {
                    Some(r) => {
                        rest = &body[end + r..];
                        continue;
                    }
                    None => break,
                }
            }
            calls_in(inner, block, &mut out);
        }
        rest = &body[end + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_filters_and_tests_outside_strings() {
        let got = calls(
            "{{ a | upper | joinn(', ') }} {{ 'x | nope' }} {% if b is not odd %}{% endif %}{% filter title %}t{% endfilter %}{# c | nothere #}{% raw %}{{ d | inraw }}{% endraw %}{{ e is defined }}",
            false,
        );
        let want = [
            Call::Filter("upper".into()),
            Call::Filter("joinn".into()),
            Call::Test("odd".into()),
            Call::Filter("title".into()),
            Call::Test("defined".into()),
        ];
        assert_eq!(got, want);
        assert_eq!(
            calls("user.groups | select('startingwith', 'x') | list", true),
            [Call::Filter("select".into()), Call::Filter("list".into())]
        );
    }

    #[test]
    fn minijinja_tells_what_exists() {
        assert!(exists(&Call::Filter("upper".into())));
        assert!(!exists(&Call::Filter("joinn".into())));
        assert!(exists(&Call::Test("startingwith".into())));
        assert!(!exists(&Call::Test("startswith".into())));
        assert!(known(&Call::Filter(String::new())).contains(&"join"));
    }
}
