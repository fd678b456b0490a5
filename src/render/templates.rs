//! The template environment: templates from `templates/` (embedded) or from `--templates DIR`,
//! with escaping chosen by the template's extension: HTML for `.html`, XML (which also drops
//! characters XML cannot hold) for `.xml`, Markdown for `.md`, none for `.txt`.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, Value};

/// The embedded defaults: `(name, source)`.
pub(crate) static EMBEDDED: &[(&str, &str)] = &[
    ("report.html", include_str!("../../templates/report.html")),
    ("report.md", include_str!("../../templates/report.md")),
    ("junit.xml", include_str!("../../templates/junit.xml")),
    ("email.txt", include_str!("../../templates/email.txt")),
    ("email.html", include_str!("../../templates/email.html")),
];

/// A template that failed, with its name and line.
#[derive(Debug, thiserror::Error)]
#[error("template {name}{}: {message}", .line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct TemplateError {
    pub name: String,
    pub line: Option<usize>,
    pub message: String,
}

impl TemplateError {
    fn from_minijinja(name: &str, e: &Error) -> Self {
        let mut message = e
            .detail()
            .map_or_else(|| e.kind().to_string(), str::to_string);
        if let Some(src) = std::error::Error::source(e) {
            message.push_str(&format!(": {src}"));
        }
        TemplateError {
            name: e.name().unwrap_or(name).to_string(),
            line: e.line(),
            message,
        }
    }
}

/// Where templates come from: a folder first (when given), then the embedded defaults.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    dir: Option<PathBuf>,
}

impl Templates {
    /// The embedded templates only.
    pub fn embedded() -> Self {
        Templates { dir: None }
    }

    /// Templates from `dir`, falling back to the embedded ones for names it does not have.
    pub fn from_dir(dir: &Path) -> Result<Self, TemplateError> {
        if !dir.is_dir() {
            return Err(TemplateError {
                name: dir.display().to_string(),
                line: None,
                message:
                    "not a folder; --templates takes a folder holding templates such as report.html"
                        .into(),
            });
        }
        Ok(Templates {
            dir: Some(dir.to_path_buf()),
        })
    }

    fn source(&self, name: &str) -> Result<Option<String>, TemplateError> {
        if let Some(dir) = &self.dir {
            let path = dir.join(name);
            if path.is_file() {
                return std::fs::read_to_string(&path)
                    .map(Some)
                    .map_err(|e| TemplateError {
                        name: path.display().to_string(),
                        line: None,
                        message: format!("cannot read: {e}"),
                    });
            }
        }
        Ok(EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.to_string()))
    }

    /// Renders a template given as text (e.g. a subject line); `name` identifies it in errors.
    /// Nothing is escaped.
    pub fn render_str(
        &self,
        name: &str,
        source: &str,
        ctx: Value,
    ) -> Result<String, TemplateError> {
        environment()
            .render_named_str(name, source, ctx)
            .map_err(|e| TemplateError::from_minijinja(name, &e))
    }

    /// Renders template `name` with `ctx`.
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, TemplateError> {
        let mut out = Vec::new();
        self.render_to(name, ctx, &mut out)?;
        Ok(String::from_utf8(out).expect("templates render UTF-8"))
    }

    /// Renders template `name` with `ctx` straight into `out`, without holding the whole text
    /// in memory (an HTML report of a million findings is hundreds of megabytes).
    pub fn render_to(
        &self,
        name: &str,
        ctx: Value,
        out: &mut dyn std::io::Write,
    ) -> Result<(), TemplateError> {
        let mut env = environment();
        let this = self.clone();
        env.set_loader(move |n| {
            this.source(n)
                .map_err(|e| Error::new(ErrorKind::TemplateNotFound, e.to_string()))
        });
        let tmpl = env
            .get_template(name)
            .map_err(|e| TemplateError::from_minijinja(name, &e))?;
        // Templates write many small pieces; a buffer of a concrete type takes them without a
        // dynamic call each.
        let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
        tmpl.render_captured_to(ctx, &mut out)
            .map_err(|e| TemplateError::from_minijinja(name, &e))?;
        std::io::Write::flush(&mut out).map_err(|e| TemplateError {
            name: name.to_string(),
            line: None,
            message: format!("cannot write the output: {e}"),
        })
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| match name.rsplit('.').next() {
        Some("html" | "htm") => AutoEscape::Html,
        Some("xml") => AutoEscape::Custom("xml".into()),
        Some("md") => AutoEscape::Custom("markdown".into()),
        _ => AutoEscape::None,
    });
    env.set_formatter(format_value);
    env.add_filter("brief", |v: Value| brief(&v));
    env.add_filter("md", |s: String| escape_markdown(&s));
    env.add_filter("truncate_chars", |s: String, n: usize| {
        if s.chars().count() > n {
            s.chars().take(n).collect::<String>() + "…"
        } else {
            s
        }
    });
    env
}

fn format_value(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    let custom = match state.auto_escape() {
        AutoEscape::Custom(kind) if !value.is_safe() => kind.to_string(),
        _ => return minijinja::escape_formatter(out, state, value),
    };
    let text = if value.is_none() || value.is_undefined() {
        String::new()
    } else {
        value.to_string()
    };
    let escaped = match custom.as_str() {
        "xml" => escape_xml(&text),
        _ => escape_markdown(&text),
    };
    out.write_str(&escaped).map_err(Error::from)
}

/// XML text: the five entities escaped, characters XML 1.0 cannot hold replaced by U+FFFD.
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Markdown inline text: markup characters escaped, HTML tags neutralised, one line.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
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
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A value in a few words: strings bare, lists shortened, users by email.
pub fn brief(v: &Value) -> String {
    let json: serde_json::Value = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
    super::text::brief(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapers() {
        assert_eq!(
            escape_xml("a<b>&\"'\u{1}"),
            "a&lt;b&gt;&amp;&quot;&apos;\u{FFFD}"
        );
        assert_eq!(
            escape_markdown("<script>|x*_\n[a](b)"),
            "&lt;script&gt;\\|x\\*\\_ \\[a\\](b)"
        );
    }

    #[test]
    fn broken_templates_name_the_template_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("report.md"),
            "ok\n{{ report.summary.findings }\n",
        )
        .unwrap();
        let t = Templates::from_dir(dir.path()).unwrap();
        let e = t.render("report.md", Value::from(())).unwrap_err();
        assert_eq!(e.name, "report.md");
        assert_eq!(e.line, Some(2));
        assert!(
            e.to_string().starts_with("template report.md, line 2: "),
            "{e}"
        );
        let e = t.render("nope.html", Value::from(())).unwrap_err();
        assert!(e.to_string().contains("nope.html"), "{e}");
        assert!(Templates::from_dir(&dir.path().join("missing")).is_err());
    }
}
