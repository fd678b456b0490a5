//! Chat and webhook messages: a short summary of the run (organization, verdict, counts, top
//! rules, a link to the report) posted to Slack (Block Kit), Microsoft Teams (an Adaptive Card)
//! or any endpoint (a JSON document), and a short alert when the audit could not run.
//!
//! A webhook URL is a secret (whoever has it can post to the channel): it is read from an
//! environment variable, and no output, log line or error ever shows it; errors name the
//! variable instead. Requests are retried as the API client retries them (408, 409, 429, 5xx and
//! network errors, `Retry-After` honoured, the SDKs' backoff with its jitter).

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{NotifyService, NotifyWhen};
use crate::findings::{AuditReport, BySeverity, GateSpec};
use crate::render::{safe, top_rules};
use crate::rules::Severity;
use crate::source::telnyx::{backoff, jitter, retry_after, retryable};

use super::NotifyError;

/// Where to post, and when.
#[derive(Clone)]
pub struct Webhook {
    pub service: NotifyService,
    /// The variable the URL was read from: what messages name.
    pub url_env: String,
    url: url::Url,
    pub when: NotifyWhen,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("service", &self.service)
            .field("url_env", &self.url_env)
            .field("url", &"[redacted]")
            .field("when", &self.when)
            .finish()
    }
}

impl Webhook {
    /// The webhook whose URL `url_env` holds in `env`: an `https://` URL (`http://` only to a
    /// loopback address). Errors name the variable, never its value.
    pub fn from_env(
        service: NotifyService,
        url_env: &str,
        when: NotifyWhen,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, NotifyError> {
        let raw = env(url_env).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            NotifyError::Settings(format!(
                "{} notification: the environment variable {url_env} that should hold its URL is not set",
                service.as_str()
            ))
        })?;
        let bad = |what: &str| {
            NotifyError::Settings(format!(
                "{} notification: {url_env} {what}",
                service.as_str()
            ))
        };
        let url = url::Url::parse(raw.trim()).map_err(|_| bad("does not hold a URL"))?;
        let loopback = url.host_str().is_some_and(super::is_loopback);
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(bad("must hold an https:// URL")),
        }
        Ok(Webhook {
            service,
            url_env: url_env.to_string(),
            url,
            when,
        })
    }

    /// What messages call it: `slack (ORGAUDIT_SLACK_WEBHOOK_URL)`.
    pub fn name(&self) -> String {
        format!("{} ({})", self.service.as_str(), self.url_env)
    }
}

/// How webhooks are posted.
#[derive(Debug, Clone)]
pub struct PostSettings {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Each attempt, from the request to the reply.
    pub timeout: Duration,
    /// A link to the full report, shown in the message.
    pub report_url: Option<String>,
    /// The run's gate, for the verdict.
    pub gate: Option<GateSpec>,
}

impl Default for PostSettings {
    fn default() -> Self {
        PostSettings {
            retries: crate::defaults::API_RETRIES,
            timeout: crate::defaults::API_TIMEOUT,
            report_url: None,
            gate: None,
        }
    }
}

/// What a message says: the run's summary, or why the audit could not run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    Audit(Summary),
    Failure(Failure),
}

/// What the gate decided, as the generic webhook's `verdict` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum GateVerdict {
    #[serde(rename = "passed")]
    Passed,
    #[serde(rename = "failed")]
    Failed,
    #[serde(rename = "no gate")]
    NoGate,
}

/// The summary of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub tool: &'static str,
    pub version: &'static str,
    pub organization: String,
    pub audited_at: String,
    pub verdict: GateVerdict,
    /// The gate's threshold, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Severity>,
    /// Findings that trip the gate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gating: Option<usize>,
    pub findings: usize,
    pub unwaived_by_severity: BySeverity,
    pub waived: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<usize>,
    pub top_rules: Vec<TopRuleCount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopRuleCount {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub findings: usize,
}

/// An audit that could not run.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub tool: &'static str,
    pub version: &'static str,
    pub organization: String,
    /// When it was tried, RFC 3339 UTC.
    pub at: String,
    pub exit_code: u8,
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
}

impl Summary {
    pub fn of(report: &AuditReport, settings: &PostSettings) -> Self {
        let s = &report.summary;
        let gating = settings.gate.map(|g| g.count(&report.findings));
        Summary {
            tool: report.tool.name,
            version: report.tool.version,
            organization: report.label(),
            audited_at: report.audited_at.clone(),
            verdict: match gating {
                None => GateVerdict::NoGate,
                Some(0) => GateVerdict::Passed,
                Some(_) => GateVerdict::Failed,
            },
            threshold: settings.gate.map(|g| g.threshold),
            gating,
            findings: s.findings,
            unwaived_by_severity: s.unwaived_by_severity,
            waived: s.waived,
            new: s.new,
            resolved: s.resolved,
            top_rules: top_rules(&report.findings)
                .into_iter()
                .map(|t| TopRuleCount {
                    id: t.id,
                    title: t.title,
                    severity: t.severity,
                    findings: t.findings,
                })
                .collect(),
            report_url: settings.report_url.clone(),
        }
    }

    /// One line: `failed: 3 at or above high` / `7 unwaived findings`.
    fn headline(&self) -> String {
        let unwaived = self.unwaived_by_severity.total();
        let counts = format!(
            "{unwaived} unwaived finding{}",
            if unwaived == 1 { "" } else { "s" }
        );
        match (self.verdict, self.threshold, self.gating) {
            (GateVerdict::Failed, Some(t), Some(n)) => {
                format!("Gate failed: {n} at or above {t} ({counts})")
            }
            (GateVerdict::Passed, Some(t), _) => {
                format!("Gate passed: none at or above {t} ({counts})")
            }
            (GateVerdict::NoGate, _, _)
            | (GateVerdict::Failed, _, _)
            | (GateVerdict::Passed, None, _) => counts,
        }
    }

    /// `2 critical, 1 high, ...; 1 waived; 2 new, 1 resolved`.
    fn counts(&self) -> String {
        let parts: Vec<String> = Severity::ALL
            .iter()
            .map(|s| format!("{} {s}", self.unwaived_by_severity.get(*s)))
            .collect();
        let mut out = parts.join(", ");
        out.push_str(&format!("; {} waived", self.waived));
        if let (Some(n), Some(r)) = (self.new, self.resolved) {
            out.push_str(&format!("; {n} new, {r} resolved"));
        }
        out
    }
}

/// Text from outside, safe in a chat message: one line with invisible characters shown (as an
/// email header gets it), at most `max` characters.
fn clean(s: &str, max: usize) -> String {
    let one = safe::header(s);
    match one.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &one[..cut]),
        None => one,
    }
}

/// Slack's text escapes (`&`, `<`, `>`): no link, mention or channel ping can be made from a
/// value.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A link's address for a chat message: `http(s)` only.
fn web_url(u: &str) -> Option<String> {
    url::Url::parse(u)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http"))
        .map(String::from)
}

/// The payload of `alert` in `service`'s own shape.
pub fn payload(service: NotifyService, alert: &Alert) -> Value {
    match service {
        NotifyService::Webhook => serde_json::to_value(alert).expect("an alert is JSON"),
        NotifyService::Slack => slack(alert),
        NotifyService::Teams => teams(alert),
    }
}

/// The title and lines of a message, before each service's shape.
struct Lines {
    title: String,
    headline: String,
    facts: Vec<(String, String)>,
    link: Option<String>,
}

fn lines(alert: &Alert) -> Lines {
    match alert {
        Alert::Audit(s) => {
            let mut facts = vec![
                ("Organization".to_string(), clean(&s.organization, 200)),
                ("Findings".to_string(), s.counts()),
            ];
            if !s.top_rules.is_empty() {
                let top: Vec<String> = s
                    .top_rules
                    .iter()
                    .map(|t| format!("{} ({}, {})", clean(&t.id, 100), t.severity, t.findings))
                    .collect();
                facts.push(("Top rules".to_string(), top.join("; ")));
            }
            facts.push(("Audited at".to_string(), s.audited_at.clone()));
            Lines {
                title: format!("Access review: {}", clean(&s.organization, 150)),
                headline: s.headline(),
                facts,
                link: s.report_url.as_deref().and_then(web_url),
            }
        }
        Alert::Failure(f) => Lines {
            title: format!(
                "Access review could not run: {}",
                clean(&f.organization, 150)
            ),
            headline: format!(
                "The audit stopped with exit status {}: {}",
                f.exit_code,
                clean(&f.error, 1500)
            ),
            facts: vec![
                ("Organization".to_string(), clean(&f.organization, 200)),
                ("Tried at".to_string(), f.at.clone()),
            ],
            link: f.report_url.as_deref().and_then(web_url),
        },
    }
}

/// Slack Block Kit: plain text everywhere a value goes, so nothing in it is markup.
fn slack(alert: &Alert) -> Value {
    let l = lines(alert);
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": clean(&l.title, 150) } }),
        json!({ "type": "section", "text": { "type": "plain_text", "text": l.headline } }),
        json!({
            "type": "section",
            "fields": l.facts.iter().map(|(k, v)| json!({
                "type": "plain_text",
                "text": format!("{k}: {v}"),
            })).collect::<Vec<_>>(),
        }),
    ];
    if let Some(u) = &l.link {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": { "type": "plain_text", "text": "Open the report" },
                "url": u,
            }],
        }));
    }
    json!({
        // The notification's text (and what clients without blocks show).
        "text": slack_escape(&format!("{}: {}", l.title, l.headline)),
        "blocks": blocks,
    })
}

/// Markdown-significant characters escaped, for an Adaptive Card's text.
fn card_text(s: &str) -> String {
    safe::markdown(s)
}

/// A Microsoft Teams message: an Adaptive Card, as Teams workflow webhooks take it.
fn teams(alert: &Alert) -> Value {
    let l = lines(alert);
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            { "type": "TextBlock", "text": card_text(&l.title), "weight": "Bolder", "size": "Medium", "wrap": true },
            { "type": "TextBlock", "text": card_text(&l.headline), "wrap": true },
            { "type": "FactSet", "facts": l.facts.iter().map(|(k, v)| json!({
                "title": k,
                "value": card_text(v),
            })).collect::<Vec<_>>() },
        ],
    });
    if let Some(u) = &l.link {
        card["actions"] =
            json!([{ "type": "Action.OpenUrl", "title": "Open the report", "url": u }]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": card,
        }],
    })
}

/// Whether a summary goes to `hook` after this run.
pub fn should_post(hook: &Webhook, report: &AuditReport) -> bool {
    match hook.when {
        NotifyWhen::Always => true,
        NotifyWhen::Findings => report.summary.unwaived_by_severity.total() > 0,
    }
}

/// Posts `alert` to `hook`, retrying as the API client does. Errors name the variable, never
/// the URL.
pub fn post(hook: &Webhook, alert: &Alert, settings: &PostSettings) -> Result<(), NotifyError> {
    let body = serde_json::to_vec(&payload(hook.service, alert)).expect("a payload is JSON");
    let fail = |what: String| NotifyError::Delivery(format!("{}: {what}", hook.name()));
    let runtime = crate::source::telnyx::runtime().map_err(|e| fail(e.to_string()))?;
    runtime.block_on(async {
        let client = crate::source::telnyx::http_client(Some(settings.timeout), false)
            .map_err(|e| fail(e.without_url().to_string()))?;
        let attempts = settings.retries + 1;
        let mut n = 0;
        loop {
            n += 1;
            let sent = client
                .post(hook.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let (problem, wait) = match sent {
                Ok(mut reply) => {
                    let status = reply.status().as_u16();
                    if reply.status().is_success() {
                        return Ok(());
                    }
                    let wait = retry_after(reply.headers(), chrono::Utc::now());
                    // A short excerpt of the reply, made safe; never more is read.
                    let mut excerpt = Vec::new();
                    while excerpt.len() < crate::defaults::WEBHOOK_REPLY_MAX_BYTES {
                        match reply.chunk().await {
                            Ok(Some(c)) => excerpt.extend_from_slice(&c),
                            _ => break,
                        }
                    }
                    excerpt.truncate(crate::defaults::WEBHOOK_REPLY_MAX_BYTES);
                    let said = clean(&String::from_utf8_lossy(&excerpt), 200);
                    let problem = if said.trim().is_empty() {
                        format!("HTTP {status}")
                    } else {
                        format!("HTTP {status}: {said}")
                    };
                    if !retryable(status) {
                        return Err(fail(problem));
                    }
                    (problem, wait)
                }
                Err(e) => (e.without_url().to_string(), None),
            };
            if n >= attempts {
                return Err(fail(format!(
                    "{problem} (after {n} attempt{})",
                    if n == 1 { "" } else { "s" }
                )));
            }
            let wait = wait.unwrap_or_else(|| backoff(n - 1, jitter()));
            tokio::time::sleep(wait).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
        move |k| (k == var).then(|| value.to_string())
    }

    #[test]
    fn urls_come_from_the_environment_and_never_show() {
        let w = Webhook::from_env(
            NotifyService::Slack,
            "HOOK",
            NotifyWhen::Always,
            env("HOOK", "https://hooks.example/T0/B0/secret"),
        )
        .unwrap();
        assert!(!format!("{w:?}").contains("secret"));
        let e = Webhook::from_env(
            NotifyService::Slack,
            "HOOK",
            NotifyWhen::Always,
            env("HOOK", "http://hooks.example/secret"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("HOOK must hold an https:// URL") && !e.contains("secret"),
            "{e}"
        );
        let e = Webhook::from_env(
            NotifyService::Teams,
            "MISSING",
            NotifyWhen::Always,
            env("HOOK", "x"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("MISSING"), "{e}");
        // Plain HTTP to this machine only.
        assert!(Webhook::from_env(
            NotifyService::Webhook,
            "HOOK",
            NotifyWhen::Always,
            env("HOOK", "http://127.0.0.1:9/x"),
        )
        .is_ok());
    }

    #[test]
    fn slack_values_cannot_ping_or_link() {
        assert_eq!(
            slack_escape("<!channel> <https://evil|x> & co"),
            "&lt;!channel&gt; &lt;https://evil|x&gt; &amp; co"
        );
        assert_eq!(clean("a\nb\u{202e}c", 100), "a b[U+202E]c");
    }
}
