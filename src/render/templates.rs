//! The template environment: templates from `templates/` (embedded) or from `--templates DIR`,
//! with escaping chosen by the template's extension: HTML for `.html`, XML (which also drops
//! characters XML cannot hold) for `.xml`, Markdown for `.md`, none for `.txt`.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, Value};

use super::safe;

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
            let path = confined(dir, name)?;
            if path.is_file() {
                return crate::diag::read_capped(&path, crate::defaults::text_max_bytes())
                    .and_then(|b| {
                        String::from_utf8(b).map_err(|_| {
                            std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")
                        })
                    })
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

    /// Compiles every template a run may render (those of the folder, and the embedded ones it
    /// falls back to): the errors, each naming its template and line.
    pub fn check(&self) -> Vec<TemplateError> {
        let mut env = environment();
        let this = self.clone();
        env.set_loader(move |n| {
            this.source(n)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
        });
        EMBEDDED
            .iter()
            .filter_map(|(name, _)| {
                env.get_template(name)
                    .err()
                    .map(|e| TemplateError::from_minijinja(name, &e))
            })
            .collect()
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
            // Not "not found": a refused or unreadable template says why.
            this.source(n)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
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

/// The file of template `name` in `dir`, which must stay inside `dir`: a relative name without
/// `..` (an include of `/proc/self/environ` or `../secret` is refused), and no link leading out
/// of the folder.
fn confined(dir: &Path, name: &str) -> Result<PathBuf, TemplateError> {
    let refused = |why: &str| TemplateError {
        name: name.to_string(),
        line: None,
        message: format!(
            "refused: {why}; a template may only load templates inside the templates folder"
        ),
    };
    let rel = Path::new(name);
    if rel.is_absolute()
        || !rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return Err(refused("an absolute path or a path with `..`"));
    }
    let path = dir.join(rel);
    if std::fs::symlink_metadata(&path).is_ok() {
        let real = path.canonicalize().map_err(|e| refused(&e.to_string()))?;
        let root = dir.canonicalize().map_err(|e| refused(&e.to_string()))?;
        if !real.starts_with(&root) {
            return Err(refused("a link that leads out of the folder"));
        }
    }
    Ok(path)
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
    env.add_filter("md", |s: String| safe::markdown(&s));
    // The Content-Security-Policy source of an inline script: `sha256-` and this.
    // Base64 only (`A-Z a-z 0-9 + / =`): safe as it is in an attribute, and written as it is,
    // so that the policy reads the same in the page's source.
    env.add_filter("csp_hash", |s: String| {
        use base64::Engine as _;
        use sha2::Digest as _;
        Value::from_safe_string(
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s.as_bytes())),
        )
    });
    // A web address as a Markdown link destination.
    env.add_filter("link", |s: String| {
        Value::from_safe_string(safe::markdown_link(&s))
    });
    // A value as a Markdown code span, safe whatever it holds.
    env.add_filter("code", |s: String| {
        Value::from_safe_string(safe::markdown_code(&s))
    });
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
        // HTML: minijinja escapes; invisible characters are shown first.
        AutoEscape::Html if !value.is_safe() => {
            return match value.as_str().map(safe::visible) {
                Some(std::borrow::Cow::Owned(shown)) => {
                    minijinja::escape_formatter(out, state, &Value::from(shown))
                }
                _ => minijinja::escape_formatter(out, state, value),
            }
        }
        _ => return minijinja::escape_formatter(out, state, value),
    };
    let text = if value.is_none() || value.is_undefined() {
        String::new()
    } else {
        value.to_string()
    };
    let escaped = match custom.as_str() {
        "xml" => safe::xml(&text),
        _ => safe::markdown(&text),
    };
    out.write_str(&escaped).map_err(Error::from)
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
