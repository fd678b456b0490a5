//! Strings from outside (report values, rule titles and messages, baseline and waiver values,
//! errors from servers and files) made safe for each place they are shown: a terminal,
//! Markdown, HTML and XML (through the template formatter), CSV, an email header. This module
//! is the one place that knows how; renderers call it and print nothing from outside raw.
//!
//! In every human-facing sink, bidirectional overrides and zero-width characters are shown as
//! `[U+202E]` (or `\u{202e}` on a terminal), so that `alice@acme.example` followed by a
//! right-to-left override can never read as another address.

use std::borrow::Cow;

/// Characters that change how text reads without being seen: bidirectional embeddings,
/// overrides, isolates and marks, zero-width spaces and joiners, the BOM.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{061C}'
            | '\u{FEFF}'
    )
}

/// Invisible characters shown as `[U+XXXX]`; borrowed when there are none.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_invisible) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_invisible(c) {
            out.push_str(&format!("[U+{:04X}]", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text for a terminal: control characters (an ANSI escape hidden in an email, a carriage
/// return that overwrites the line) and invisible ones shown as `\u{..}`.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || is_invisible(c)) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() || is_invisible(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Markdown inline text: markup characters escaped, HTML tags neutralised, one line, no
/// autolinks of URLs (a bare `scheme://` or `www.` in a name stays text; an email address may
/// still become a `mailto:` link), invisible characters shown.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev = '\0';
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // Enough to keep values inline: no emphasis, code, links, tables or strikethrough.
            // `(`, `#`, `+`, `!` only matter at a line start or after `]`, which cannot occur.
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' | '\t' => out.push(' '),
            // GitHub turns `scheme://` and `www.` into links: an escaped character in the
            // source stops it.
            ':' if chars.peek() == Some(&'/') => out.push_str("\\:"),
            '.' if prev == 'w' && out.ends_with("www") => out.push_str("\\."),
            c if is_invisible(c) => out.push_str(&format!("[U+{:04X}]", c as u32)),
            c if c.is_control() => {}
            c => out.push(c),
        }
        prev = c;
    }
    out
}

/// A Markdown link destination: only an `http(s)://` address passes (anything else becomes
/// `#`), with every character that could end or break the destination (spaces, parentheses,
/// angle brackets, pipes, quotes, backslashes, controls) percent-encoded.
pub fn markdown_link(url: &str) -> String {
    let web = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
    if !web {
        return "#".into();
    }
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            ' ' | '(' | ')' | '<' | '>' | '|' | '"' | '\\' | '`' | '[' | ']' => {
                out.push_str(&format!("%{:02X}", c as u32))
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A Markdown code span holding `s` as it is: a fence longer than any run of backticks in it,
/// one line, table pipes escaped, invisible characters shown.
pub fn markdown_code(s: &str) -> String {
    let text: String = visible(s)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// XML text: the five entities escaped, characters XML 1.0 cannot hold replaced by U+FFFD,
/// invisible characters shown.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if is_invisible(c) => out.push_str(&format!("[U+{:04X}]", c as u32)),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A CSV cell a spreadsheet may safely open: a leading `=`, `+`, `-`, `@`, tab or carriage
/// return would make it a formula, so such a cell gets a leading `'`; invisible characters
/// shown.
pub fn csv_cell(cell: &str) -> Cow<'_, str> {
    let cell = visible(cell);
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell,
    }
}

/// An email header's text: no line breaks or other control characters (which would start a
/// header of their own), white space folded, invisible characters shown.
pub fn header(s: &str) -> String {
    visible(s)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_links_are_web_addresses_that_cannot_break_out() {
        assert_eq!(
            super::markdown_link("https://x.example/a b)(c|d"),
            "https://x.example/a%20b%29%28c%7Cd"
        );
        assert_eq!(super::markdown_link("javascript:alert(1)"), "#");
        assert_eq!(super::markdown_link("x)y"), "#");
    }

    use super::*;

    #[test]
    fn every_sink_shows_what_would_hide() {
        let rlo = "alice\u{202E}moc.evil@acme.example\u{200B}";
        assert_eq!(visible(rlo), "alice[U+202E]moc.evil@acme.example[U+200B]");
        assert_eq!(
            terminal(rlo),
            "alice\\u{202e}moc.evil@acme.example\\u{200b}"
        );
        assert_eq!(terminal("a\x1b[31mb\rc"), "a\\u{1b}[31mb\\u{d}c");
        assert!(markdown(rlo).contains("[U+202E]"));
        assert!(xml(rlo).contains("[U+202E]"));
        assert!(csv_cell(rlo).contains("[U+202E]"));
        assert!(header(rlo).contains("[U+202E]"));
        assert_eq!(terminal("plain"), "plain");
    }

    #[test]
    fn markdown_has_no_markup_and_no_links() {
        assert_eq!(
            markdown("<script>|x*_\n[a](b)"),
            "&lt;script&gt;\\|x\\*\\_ \\[a\\](b)"
        );
        assert_eq!(
            markdown("see https://evil.example"),
            "see https\\://evil.example"
        );
        assert_eq!(markdown("www.evil.example"), "www\\.evil.example");
    }

    #[test]
    fn code_spans_cannot_be_broken_out_of() {
        assert_eq!(markdown_code("sso-bypass"), "`sso-bypass`");
        assert_eq!(markdown_code("a`b"), "``a`b``");
        assert_eq!(markdown_code("`x"), "`` `x ``");
        assert_eq!(markdown_code("a|b\nc"), "`a\\|b c`");
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@a"), "'@a");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("a=b"), "a=b");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn headers_are_one_line() {
        assert_eq!(header("a\r\nBcc: evil@x\t b"), "a Bcc: evil@x b");
    }

    #[test]
    fn xml_escapes() {
        assert_eq!(xml("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;&quot;&apos;\u{FFFD}");
    }
}
