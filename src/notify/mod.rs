//! Email: the findings as a `multipart/alternative` message (plain text and HTML from templates)
//! with the full findings attached, sent over SMTP with lettre, or written as an `.eml` file.
//!
//! Credentials never travel in the clear to another host: an `smtp://` URL with credentials and
//! only opportunistic STARTTLS is refused unless the host is loopback or `insecure` is set.
//! The password never appears in an output, a log line or an error.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use flate2::write::GzEncoder;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use serde::Serialize;

#[cfg(feature = "network")]
pub mod webhook;

use crate::findings::AuditReport;
use crate::render::{self, Format, RenderOptions, Templates, View};

/// When to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendWhen {
    /// Every run: a weekly report that says "nothing found" is evidence too.
    #[default]
    Always,
    /// Only when there are findings.
    Findings,
    /// Only when something changed against the previous run or baseline: a finding new,
    /// reopened or overdue, or one resolved (always, when there is nothing to compare with).
    Changed,
}

/// What to attach besides the CSV of findings (always attached).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    Html,
    Json,
}

/// The message: who, what, and what to attach.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub from: String,
    /// A minijinja template; `None`: `orgaudit: N findings (...) in ORG`.
    pub subject: Option<String>,
    pub attach: Vec<Attach>,
    /// A link to the full report (e.g. a CI artifact).
    pub report_url: Option<String>,
    /// Attachments larger than this are gzip-compressed.
    pub max_attachment_bytes: usize,
    /// Findings listed per rule in the body.
    pub top_per_rule: usize,
    /// The run's gate, for the verdict at the top.
    pub gate: Option<crate::findings::GateSpec>,
    /// Waivers expiring within this many days are listed.
    pub waiver_warn_days: u32,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            to: Vec::new(),
            cc: Vec::new(),
            from: String::new(),
            subject: None,
            attach: Vec::new(),
            report_url: None,
            max_attachment_bytes: crate::defaults::EMAIL_ATTACHMENT_MAX_BYTES,
            top_per_rule: crate::defaults::EMAIL_TOP_PER_RULE,
            gate: None,
            waiver_warn_days: crate::defaults::WAIVER_WARN_DAYS,
        }
    }
}

/// How to reach the SMTP server.
#[derive(Clone)]
pub struct SmtpSettings {
    /// `smtp://host[:port][?tls=required]` or `smtps://host[:port]`, optional `user[:password]@`.
    pub url: String,
    /// Used when the URL has none (from `ORGAUDIT_SMTP_PASSWORD` or a file).
    pub password: Option<String>,
    /// Allow credentials over a connection that may stay unencrypted, to a non-loopback host.
    pub insecure: bool,
    /// Extra trusted CA certificates (PEM), for relays with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Retries after the first attempt, on 4xx replies and connection errors.
    pub retries: u32,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("insecure", &self.insecure)
            .field("ca_file", &self.ca_file)
            .field("retries", &self.retries)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Bad settings: exit status 2.
    #[error("{0}")]
    Settings(String),
    #[error("template {0}")]
    Template(#[from] render::TemplateError),
    /// Delivery failed: exit status 3.
    #[error("{0}")]
    Delivery(String),
}

impl NotifyError {
    pub fn exit_code(&self) -> u8 {
        match self {
            NotifyError::Delivery(_) => 3,
            _ => 2,
        }
    }
}

pub use crate::source::telnyx::redact_url;

use crate::render::safe::header as header_text;

/// The default subject: `orgaudit: 14 findings (1 critical, 1 high, 7 medium, 4 low, 1 info) in X`.
pub fn default_subject(report: &AuditReport) -> String {
    let s = &report.summary;
    let label = report.label();
    // What needs acting on: waived findings are accepted risks, counted apart.
    let unwaived = s.unwaived_by_severity.total();
    let waived = if s.waived > 0 {
        format!(", {} waived", s.waived)
    } else {
        String::new()
    };
    if s.findings == 0 {
        return format!("orgaudit: no findings in {label}");
    }
    if unwaived == 0 {
        return format!("orgaudit: no open findings in {label}{waived}");
    }
    let counts: Vec<String> = crate::rules::Severity::ALL
        .iter()
        .filter(|sev| s.unwaived_by_severity.get(**sev) > 0)
        .map(|sev| format!("{} {}", s.unwaived_by_severity.get(*sev), sev.as_str()))
        .collect();
    let mut out = format!(
        "orgaudit: {} finding{} ({}) in {label}",
        unwaived,
        if unwaived == 1 { "" } else { "s" },
        counts.join(", ")
    );
    if let Some(new) = s.new {
        out.push_str(&format!(", {new} new"));
    }
    out.push_str(&waived);
    out
}

#[derive(Serialize)]
struct AttachmentNote {
    name: String,
    bytes: usize,
    compressed: bool,
}

#[derive(Serialize)]
struct EmailView<'a> {
    #[serde(flatten)]
    view: View<'a>,
    report_url: Option<&'a str>,
    attachments: &'a [AttachmentNote],
    top: usize,
    subject: &'a str,
}

fn parse_mailbox(s: &str, what: &str) -> Result<Mailbox, NotifyError> {
    s.parse::<Mailbox>().map_err(|e| {
        NotifyError::Settings(format!(
            "{what} {:?} is not an email address: {e}",
            header_text(s)
        ))
    })
}

fn attachment(
    name: &str,
    mime: &str,
    body: Vec<u8>,
    max: usize,
) -> Result<(SinglePart, AttachmentNote), NotifyError> {
    if body.len() <= max {
        let note = AttachmentNote {
            name: name.into(),
            bytes: body.len(),
            compressed: false,
        };
        let ct = ContentType::parse(mime).expect("a valid content type");
        return Ok((Attachment::new(name.into()).body(body, ct), note));
    }
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body)
        .map_err(|e| NotifyError::Settings(format!("cannot compress {name}: {e}")))?;
    let packed = gz
        .finish()
        .map_err(|e| NotifyError::Settings(format!("cannot compress {name}: {e}")))?;
    let gz_name = format!("{name}.gz");
    let note = AttachmentNote {
        name: gz_name.clone(),
        bytes: packed.len(),
        compressed: true,
    };
    let ct = ContentType::parse("application/gzip").expect("a valid content type");
    Ok((Attachment::new(gz_name).body(packed, ct), note))
}

/// Builds the message: subject, text and HTML bodies from templates (`email.txt`,
/// `email.html`), the CSV of findings and the requested attachments.
pub fn build(
    report: &AuditReport,
    settings: &EmailSettings,
    templates: &Templates,
) -> Result<Message, NotifyError> {
    let builder = addressed(settings, &report.audited_at)?;

    let opts = RenderOptions {
        templates: templates.clone(),
        ..Default::default()
    };
    let render_to = |format: Format| -> Result<Vec<u8>, NotifyError> {
        let mut out = Vec::new();
        render::render(report, format, &opts, &mut out).map_err(|e| match e {
            render::RenderError::Template(t) => NotifyError::Template(t),
            render::RenderError::Io(e) => NotifyError::Settings(e.to_string()),
        })?;
        Ok(out)
    };
    let mut parts = Vec::new();
    let mut notes = Vec::new();
    let mut add = |name: &str, mime: &str, body: Vec<u8>| -> Result<(), NotifyError> {
        let (part, note) = attachment(name, mime, body, settings.max_attachment_bytes)?;
        parts.push(part);
        notes.push(note);
        Ok(())
    };
    add(
        "findings.csv",
        "text/csv; charset=utf-8",
        render_to(Format::Csv)?,
    )?;
    for a in &settings.attach {
        match a {
            Attach::Html => add(
                "orgaudit-report.html",
                "text/html; charset=utf-8",
                render_to(Format::Html)?,
            )?,
            Attach::Json => add(
                "findings.json",
                "application/json",
                render_to(Format::Json)?,
            )?,
        }
    }

    let view = View::new(report, settings.top_per_rule)
        .with_gate(settings.gate)
        .with_waiver_warning(settings.waiver_warn_days);
    let base = EmailView {
        view,
        report_url: settings.report_url.as_deref(),
        attachments: &notes,
        top: settings.top_per_rule,
        subject: "",
    };
    let subject = match &settings.subject {
        None => default_subject(report),
        Some(t) => templates.render_str(
            "--email-subject",
            t,
            minijinja::Value::from(minijinja::value::Serde(&base)),
        )?,
    };
    let subject = header_text(&subject);
    let ctx = EmailView {
        subject: &subject,
        ..base
    };
    let ctx = minijinja::Value::from(minijinja::value::Serde(&ctx));
    let text = templates.render("email.txt", ctx.clone())?;
    let html = templates.render("email.html", ctx)?;

    let mut mixed = MultiPart::mixed().multipart(MultiPart::alternative_plain_html(text, html));
    for p in parts {
        mixed = mixed.singlepart(p);
    }
    builder
        .subject(subject)
        .multipart(mixed)
        .map_err(|e| NotifyError::Settings(format!("cannot build the message: {e}")))
}

/// A message from the sender to the recipients of `settings`, dated and identified (`salt`
/// makes the id unique to what it reports).
fn addressed(
    settings: &EmailSettings,
    salt: &str,
) -> Result<lettre::message::MessageBuilder, NotifyError> {
    if settings.to.is_empty() {
        return Err(NotifyError::Settings(
            "no recipient: give --email-to ADDR (or email.to in the configuration)".into(),
        ));
    }
    let from = parse_mailbox(&settings.from, "the sender")?;
    let mut builder = stamped(Message::builder(), &from, salt).from(from);
    for to in &settings.to {
        builder = builder.to(parse_mailbox(to, "the recipient")?);
    }
    for cc in &settings.cc {
        builder = builder.cc(parse_mailbox(cc, "the cc recipient")?);
    }
    Ok(builder)
}

/// A message's `Date` (now) and a `Message-ID` unique to it, in the sender's domain: mail
/// filters count a message without them against it.
fn stamped(
    builder: lettre::message::MessageBuilder,
    from: &Mailbox,
    salt: &str,
) -> lettre::message::MessageBuilder {
    use sha2::{Digest, Sha256};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(now.as_nanos().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(salt.as_bytes());
    let unique = crate::source::hex(&h.finalize()[..12]);
    builder.date_now().message_id(Some(format!(
        "<orgaudit.{}.{unique}@{}>",
        now.as_secs(),
        from.email.domain()
    )))
}

/// The alert sent when the audit could not run (exit status 2 or 3): to the usual
/// recipients, plain text, with the error, so a missed weekly review does not go unnoticed.
pub fn failure_message(
    settings: &EmailSettings,
    organization: &str,
    error: &str,
    exit_code: u8,
    at: &str,
) -> Result<Message, NotifyError> {
    let builder = addressed(settings, at)?;
    let organization = header_text(organization);
    // The error as lines of visible text: what a reader needs, nothing a mail client runs.
    let error: String = error
        .lines()
        .map(|l| format!("  {}", crate::safe::terminal(l)))
        .collect::<Vec<_>>()
        .join("\n");
    let mut body = format!(
        "The access review of {organization} could not run.\n\n\
         orgaudit stopped at {at} with exit status {exit_code} ({}):\n\n{error}\n\n\
         No findings were produced by this run: the last report you received is the latest.\n\
         Fix the cause above and run the audit again.\n",
        match exit_code {
            2 => "bad input, rules or configuration",
            _ => "network, SMTP or storage failure",
        }
    );
    if let Some(u) = &settings.report_url {
        body.push_str(&format!("\nRun: {u}\n"));
    }
    builder
        .subject(header_text(&format!(
            "orgaudit: the audit of {organization} could not run"
        )))
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| NotifyError::Settings(format!("cannot build the message: {e}")))
}

/// Opens a connection to the SMTP server (TLS and login as configured) and closes it: nothing is
/// sent. For `config check --connect`.
pub fn reach(smtp: &SmtpSettings) -> Result<(), NotifyError> {
    let transport = transport(smtp)?;
    match transport.test_connection() {
        Ok(true) => Ok(()),
        Ok(false) => Err(NotifyError::Delivery(format!(
            "{} did not accept a connection",
            redact_url(&smtp.url)
        ))),
        Err(e) => Err(NotifyError::Delivery(describe(&e, smtp))),
    }
}

/// Whether to send at all.
pub fn should_send(report: &AuditReport, when: SendWhen) -> bool {
    use crate::findings::BaselineStatus;
    match when {
        SendWhen::Always => true,
        SendWhen::Findings => report.summary.findings > 0,
        SendWhen::Changed => {
            let compared = report.baseline.is_some()
                || report
                    .history
                    .as_ref()
                    .is_some_and(|h| h.previous_run.is_some());
            !compared
                || report.findings.iter().any(|f| {
                    f.overdue == Some(true)
                        || matches!(
                            f.baseline_status,
                            Some(BaselineStatus::New | BaselineStatus::Reopened)
                        )
                })
                || report.resolved.as_ref().is_some_and(|r| !r.is_empty())
                || report.changes.as_ref().is_some_and(|c| !c.is_empty())
        }
    }
}

pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The transport the settings describe, checked before anything is sent.
pub fn transport(smtp: &SmtpSettings) -> Result<SmtpTransport, NotifyError> {
    let bad =
        |m: String| NotifyError::Settings(format!("--smtp-url {}: {m}", redact_url(&smtp.url)));
    let url = reqwest::Url::parse(&smtp.url).map_err(|e| bad(e.to_string()))?;
    let host = url
        .host_str()
        .ok_or_else(|| bad("no host".into()))?
        .to_string();
    let tls_param = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let mut params =
        TlsParameters::builder(host.trim_matches(|c| c == '[' || c == ']').to_string());
    if let Some(ca) = &smtp.ca_file {
        let pem = std::fs::read(ca).map_err(|e| {
            NotifyError::Settings(format!(
                "{}: cannot read the CA certificate: {e}",
                ca.display()
            ))
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            NotifyError::Settings(format!("{}: not a PEM certificate: {e}", ca.display()))
        })?;
        params = params.add_root_certificate(cert);
    }
    let params = params
        .build_rustls()
        .map_err(|e| bad(format!("TLS setup failed: {e}")))?;
    let (tls, default_port, encrypted) = match (url.scheme(), tls_param.as_deref()) {
        ("smtps", None | Some("required") | Some("wrapper")) => (Tls::Wrapper(params), 465, true),
        ("smtp", Some("required")) => (Tls::Required(params), 587, true),
        ("smtp", None | Some("opportunistic")) => (Tls::Opportunistic(params), 25, false),
        ("smtp" | "smtps", Some(other)) => {
            return Err(bad(format!(
                "unknown tls={other}; use tls=required (smtp://) or smtps:// for implicit TLS"
            )))
        }
        (other, _) => {
            return Err(bad(format!(
                "unknown scheme `{other}`; use smtp://host:port (STARTTLS when offered; add ?tls=required to insist) or smtps://host:465"
            )))
        }
    };
    let user = percent_decode(url.username());
    let password = url
        .password()
        .map(percent_decode)
        .or_else(|| smtp.password.clone());
    let mut builder = SmtpTransport::builder_dangerous(host.trim_matches(|c| c == '[' || c == ']'))
        .port(url.port().unwrap_or(default_port))
        .tls(tls)
        .timeout(Some(smtp.timeout));
    if !user.is_empty() {
        let Some(password) = password else {
            return Err(NotifyError::Settings(format!(
                "--smtp-url names the user {user:?} but no password: set ORGAUDIT_SMTP_PASSWORD or use --smtp-password-file PATH"
            )));
        };
        if !encrypted && !is_loopback(&host) && !smtp.insecure {
            return Err(NotifyError::Settings(format!(
                "refusing to send the SMTP password to {host} over a connection that may stay unencrypted: use smtps://{host} or smtp://{host}?tls=required, or --smtp-insecure if you accept the risk"
            )));
        }
        builder = builder.credentials(Credentials::new(user, password));
    }
    Ok(builder.build())
}

/// Sends the message, retrying 4xx replies and connection errors with backoff (1 s, 2 s, 4 s,
/// ...). 5xx replies, TLS and authentication failures are final.
pub fn send(message: &Message, smtp: &SmtpSettings) -> Result<(), NotifyError> {
    let transport = transport(smtp)?;
    let target = redact_url(&smtp.url);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match transport.send(message) {
            Ok(_) => return Ok(()),
            Err(e) => {
                let detail = describe(&e, smtp);
                // A certificate problem surfaces as an I/O error during the handshake.
                let tls_problem = e.is_tls() || detail.contains("certificate");
                let retryable = e.is_transient()
                    || (!e.is_permanent() && !tls_problem && !e.is_response() && !e.is_client());
                if !retryable || attempt > smtp.retries {
                    let hint = if tls_problem {
                        " (check that the server's certificate is valid for its name, or trust its CA with --smtp-ca-file)"
                    } else if e.status().is_some_and(|c| c.to_string().starts_with("535")) {
                        " (authentication failed: check the user in --smtp-url and ORGAUDIT_SMTP_PASSWORD)"
                    } else if e.is_permanent() {
                        " (the server refused the message; check the sender and recipient addresses)"
                    } else {
                        ""
                    };
                    return Err(NotifyError::Delivery(format!(
                        "email not sent via {target} after {attempt} attempt{}: {detail}{hint}",
                        if attempt == 1 { "" } else { "s" }
                    )));
                }
                std::thread::sleep(Duration::from_secs(1 << (attempt - 1).min(5)));
            }
        }
    }
}

/// A lettre error with its causes, the password removed.
fn describe(e: &lettre::transport::smtp::Error, smtp: &SmtpSettings) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(c) = source {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        source = c.source();
    }
    let mut secrets: Vec<String> = smtp.password.iter().cloned().collect();
    if let Ok(u) = reqwest::Url::parse(&smtp.url) {
        if let Some(p) = u.password() {
            secrets.push(p.to_string());
            secrets.push(percent_decode(p));
        }
    }
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        s = s.replace(secret.as_str(), "[redacted]");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(url: &str) -> SmtpSettings {
        SmtpSettings {
            url: url.into(),
            password: None,
            insecure: false,
            ca_file: None,
            retries: 0,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn credentials_never_go_in_the_clear_to_another_host() {
        let e = transport(&smtp("smtp://bob:pw@mail.example.com:587")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("refusing to send the SMTP password to mail.example.com"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
        assert!(transport(&smtp("smtp://bob:pw@mail.example.com:587?tls=required")).is_ok());
        assert!(transport(&smtp("smtps://bob:pw@mail.example.com")).is_ok());
        assert!(transport(&smtp("smtp://bob:pw@127.0.0.1:2525")).is_ok());
        assert!(
            transport(&smtp("smtp://mail.example.com")).is_ok(),
            "no credentials, no risk"
        );
        let mut s = smtp("smtp://bob:pw@mail.example.com");
        s.insecure = true;
        assert!(transport(&s).is_ok());
    }

    #[test]
    fn urls_are_checked_and_passwords_redacted() {
        let e = transport(&smtp("http://secretpw@x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown scheme `http`"), "{e}");
        let e = transport(&smtp("smtp://u:secretpw@x?tls=maybe"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secretpw") && e.contains("***"), "{e}");
        let e = transport(&smtp("smtp://u@x?tls=required"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ORGAUDIT_SMTP_PASSWORD"), "{e}");
        assert!(!format!("{:?}", smtp("smtp://u:secretpw@x")).contains("secretpw"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("p%40ss%3Aw"), "p@ss:w");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
