//! The Telnyx API client: fetches the organization users groups report as robustly as Telnyx's
//! official SDKs do (same environment variables, retries, backoff and timeout), with a cap on the
//! body and without the API key ever reaching an output, a log line or an error.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

pub use crate::defaults::{API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL};
/// The path of the report below the base URL.
pub const REPORT_PATH: &str = "/organizations/users/users_groups_report";
/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

pub use crate::diag::redact_url;

/// An API key. It has no `Display`, and its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key from a string; surrounding white space (a file's trailing newline) is dropped.
    pub fn new(key: &str) -> Option<Self> {
        let k = key.trim();
        (!k.is_empty()).then(|| ApiKey(k.to_string()))
    }

    /// The key from an environment variable.
    pub fn from_env(var: &str) -> Result<Self, FetchError> {
        std::env::var(var)
            .ok()
            .and_then(|v| ApiKey::new(&v))
            .ok_or_else(|| FetchError::NoKey {
                var: var.to_string(),
            })
    }

    /// The key from a file (its first line).
    pub fn from_file(path: &Path) -> Result<Self, FetchError> {
        let text = std::fs::read_to_string(path).map_err(|e| FetchError::KeyFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        ApiKey::new(text.lines().next().unwrap_or("")).ok_or_else(|| FetchError::KeyFile {
            path: path.display().to_string(),
            message: "the file is empty".into(),
        })
    }

    /// The key itself, for the `Authorization` header of a request of this crate.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Removes the key from a text that might echo it (an error body, a library message).
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.0, "[redacted]")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// `Accept`: which body the API is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Json,
    Csv,
}

impl ReportFormat {
    pub fn mime(self) -> &'static str {
        match self {
            ReportFormat::Json => "application/json",
            ReportFormat::Csv => "text/csv",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Csv => "csv",
        }
    }
}

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub key: ApiKey,
    /// Including `/v2`; a trailing `/` is fine.
    pub base_url: String,
    pub format: ReportFormat,
    /// Retries after the first attempt.
    pub retries: u32,
    /// For each attempt, from sending the request to the last byte of the body.
    pub timeout: Duration,
    /// The largest body accepted.
    pub max_bytes: u64,
}

impl FetchOptions {
    /// The SDKs' defaults: base URL from `TELNYX_BASE_URL` or the default, 2 retries, 60 s,
    /// and a 1 GiB cap on the body.
    pub fn new(key: ApiKey) -> Self {
        FetchOptions {
            key,
            base_url: std::env::var(BASE_URL_ENV)
                .ok()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_string()),
            format: ReportFormat::Json,
            retries: crate::defaults::API_RETRIES,
            timeout: crate::defaults::API_TIMEOUT,
            max_bytes: crate::defaults::API_MAX_BYTES,
        }
    }

    /// The report's URL.
    pub fn url(&self) -> String {
        format!("{}{REPORT_PATH}", self.base_url.trim_end_matches('/'))
    }
}

/// What the client tells its caller while it works (the CLI shows progress and, with `-v`,
/// attempts). Nothing here holds the key.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchEvent {
    Attempt {
        n: u32,
        of: u32,
        url: String,
    },
    Response {
        status: u16,
    },
    /// Bytes received so far; `total` when the server announced the body's length.
    Body {
        bytes: u64,
        total: Option<u64>,
        elapsed: Duration,
    },
    Retry {
        after: Duration,
        reason: String,
    },
    Done {
        bytes: u64,
        elapsed: Duration,
    },
}

/// A fetched report: the body exactly as served.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub format: ReportFormat,
    /// When the response was complete, RFC 3339 UTC.
    pub fetched_at: String,
    pub base_url: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    #[error("no Telnyx API key: set the environment variable {var} (or use --api-key-file PATH)")]
    NoKey { var: String },
    #[error("{path}: cannot read the API key: {message}")]
    KeyFile { path: String, message: String },
    #[error("invalid base URL {url:?}: {message}")]
    BaseUrl { url: String, message: String },
    #[error("the Telnyx API answered {status}{}{}", .telnyx.as_deref().map(|t| format!(": {t}")).unwrap_or_default(), .hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Http {
        status: u16,
        /// Telnyx's error title and detail.
        telnyx: Option<String>,
        /// What to do about it.
        hint: Option<String>,
        attempts: u32,
    },
    #[error("cannot reach the Telnyx API at {url}: {message} (after {attempts} attempt{})", if *.attempts == 1 { "" } else { "s" })]
    Network {
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("the Telnyx API did not answer within {seconds} s (after {attempts} attempt{}); raise --timeout for a large organization", if *.attempts == 1 { "" } else { "s" })]
    Timeout { seconds: f64, attempts: u32 },
    #[error("the response body is larger than the cap of {max_bytes} bytes; raise --max-bytes if the organization is that large")]
    TooLarge { max_bytes: u64 },
}

impl FetchError {
    /// Usage problems (no key, bad URL) are exit status 2; failures of the network step, 3.
    pub fn exit_code(&self) -> u8 {
        match self {
            FetchError::NoKey { .. } | FetchError::KeyFile { .. } | FetchError::BaseUrl { .. } => 2,
            _ => 3,
        }
    }
}

fn hint(status: u16) -> Option<&'static str> {
    Some(match status {
        401 => "check the API key: it is missing, wrong, or revoked",
        403 => "the key's user lacks permission to read organization users; use a key of an organization owner or admin",
        404 => "check the base URL: it must include /v2",
        429 => "rate limited; try again later",
        500..=599 => "a problem on Telnyx's side; try again later",
        _ => return None,
    })
}

/// `{"errors": [{"title", "detail"}]}` to one line.
pub(crate) fn telnyx_error(body: &[u8], key: &ApiKey) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        code: Option<serde_json::Value>,
        title: Option<String>,
        detail: Option<String>,
    }
    let parsed: Body = serde_json::from_slice(body).ok()?;
    let parts: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| {
            let mut s = match (&e.title, &e.detail) {
                (Some(t), Some(d)) if t != d => format!("{t}: {d}"),
                (Some(t), _) => t.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => "error".into(),
            };
            if let Some(code) = &e.code {
                let code = code
                    .as_str()
                    .map_or_else(|| code.to_string(), str::to_string);
                s.push_str(&format!(" [code {code}]"));
            }
            key.redact(&s)
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Whether a status is worth another attempt (the SDKs' list).
pub fn retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || (500..=599).contains(&status)
}

/// The wait a response asks for: `retry-after-ms`, or `Retry-After` in seconds or as an HTTP
/// date; capped at [`RETRY_AFTER_CAP`].
pub fn retry_after(
    headers: &reqwest::header::HeaderMap,
    now: chrono::DateTime<Utc>,
) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let wait = if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        Duration::from_secs_f64((ms / 1000.0).max(0.0))
    } else {
        let v = get("retry-after")?;
        if let Ok(secs) = v.parse::<f64>() {
            Duration::from_secs_f64(secs.max(0.0))
        } else {
            let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
            (when.with_timezone(&Utc) - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(RETRY_AFTER_CAP))
}

/// The SDKs' backoff: 0.5 s doubling per retry, at most 8 s, less up to 25% jitter.
pub fn backoff(retry: u32, jitter: f64) -> Duration {
    let base = (0.5 * 2f64.powi(retry as i32)).min(8.0);
    Duration::from_secs_f64(base * (1.0 - 0.25 * jitter.clamp(0.0, 1.0)))
}

/// A jitter source without a dependency: the clock's nanoseconds, scrambled.
pub(crate) fn jitter() -> f64 {
    let mut x = Instant::now().elapsed().as_nanos() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % 1000) as f64 / 1000.0
}

/// The `User-Agent` of every request orgaudit sends.
pub const USER_AGENT: &str = concat!("orgaudit/", env!("CARGO_PKG_VERSION"));

/// The HTTP client of every request orgaudit sends (the API, webhooks): its user agent, a
/// timeout for the whole exchange when given, and redirects followed only when `redirects` (a
/// webhook's or a removal's answer is never taken from another place).
pub(crate) fn http_client(
    timeout: Option<Duration>,
    redirects: bool,
) -> reqwest::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder().user_agent(USER_AGENT);
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    if !redirects {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    b.build()
}

/// A runtime on the calling thread, for the blocking entry points.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The API's base URL, checked: http or https with a host.
pub(crate) fn base_url(base: &str) -> Result<reqwest::Url, FetchError> {
    let bad = |message: String| FetchError::BaseUrl {
        url: redact_url(base),
        message,
    };
    let parsed = reqwest::Url::parse(base.trim_end_matches('/')).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(bad(
            "expected an http or https URL, e.g. https://api.telnyx.com/v2".into(),
        ));
    }
    Ok(parsed)
}

enum Attempt {
    Done(Vec<u8>),
    Retry {
        reason: String,
        wait: Option<Duration>,
        last: FetchError,
    },
    Fail(FetchError),
}

/// Fetches the report, retrying as the SDKs do. `on_event` hears what happens.
pub async fn fetch(
    opts: &FetchOptions,
    on_event: &(dyn Fn(FetchEvent) + Send + Sync),
) -> Result<Fetched, FetchError> {
    let url = opts.url();
    base_url(&opts.base_url)?;
    let client = http_client(None, true).map_err(|e| FetchError::Network {
        url: redact_url(&url),
        message: opts.key.redact(&e.to_string()),
        attempts: 0,
    })?;
    let total = opts.retries + 1;
    let mut n = 0;
    loop {
        n += 1;
        on_event(FetchEvent::Attempt {
            n,
            of: total,
            url: redact_url(&url),
        });
        let started = Instant::now();
        let attempt =
            tokio::time::timeout(opts.timeout, attempt(&client, opts, &url, n, on_event)).await;
        let outcome = match attempt {
            Ok(a) => a,
            Err(_) => Attempt::Retry {
                reason: format!("no complete answer within {} s", opts.timeout.as_secs_f64()),
                wait: None,
                last: FetchError::Timeout {
                    seconds: opts.timeout.as_secs_f64(),
                    attempts: n,
                },
            },
        };
        match outcome {
            Attempt::Done(body) => {
                on_event(FetchEvent::Done {
                    bytes: body.len() as u64,
                    elapsed: started.elapsed(),
                });
                return Ok(Fetched {
                    body,
                    format: opts.format,
                    fetched_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
                    base_url: redact_url(&opts.base_url),
                    attempts: n,
                });
            }
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry { reason, wait, last } => {
                if n >= total {
                    return Err(last);
                }
                let after = wait.unwrap_or_else(|| backoff(n - 1, jitter()));
                on_event(FetchEvent::Retry { after, reason });
                tokio::time::sleep(after).await;
            }
        }
    }
}

async fn attempt(
    client: &reqwest::Client,
    opts: &FetchOptions,
    url: &str,
    n: u32,
    on_event: &(dyn Fn(FetchEvent) + Send + Sync),
) -> Attempt {
    let request = client
        .get(url)
        .bearer_auth(&opts.key.0)
        .header(reqwest::header::ACCEPT, opts.format.mime());
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => return network_failure(opts, url, n, &e),
    };
    let status = response.status().as_u16();
    on_event(FetchEvent::Response { status });
    if let Some(len) = response.content_length() {
        if len > opts.max_bytes {
            return Attempt::Fail(FetchError::TooLarge {
                max_bytes: opts.max_bytes,
            });
        }
    }
    if !response.status().is_success() {
        let wait = retry_after(response.headers(), Utc::now());
        // Error bodies are small; read at most 64 KiB of one.
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk[..chunk.len().min(65536 - body.len().min(65536))]);
            if body.len() >= 65536 {
                break;
            }
        }
        let err = FetchError::Http {
            status,
            telnyx: telnyx_error(&body, &opts.key),
            hint: hint(status).map(str::to_string),
            attempts: n,
        };
        return if retryable(status) {
            Attempt::Retry {
                reason: format!("HTTP {status}"),
                wait,
                last: err,
            }
        } else {
            Attempt::Fail(err)
        };
    }
    let started = Instant::now();
    let total = response.content_length();
    // What the server announces is not believed before the bytes arrive: at most 1 MiB is
    // reserved up front, and the body grows as it comes (under the cap checked per chunk).
    let mut body = Vec::with_capacity(
        response
            .content_length()
            .map_or(1 << 16, |l| l.min(opts.max_bytes).min(1 << 20)) as usize,
    );
    let mut last_event = Instant::now();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() as u64 + chunk.len() as u64 > opts.max_bytes {
                    return Attempt::Fail(FetchError::TooLarge {
                        max_bytes: opts.max_bytes,
                    });
                }
                body.extend_from_slice(&chunk);
                if last_event.elapsed() >= Duration::from_millis(100) {
                    last_event = Instant::now();
                    on_event(FetchEvent::Body {
                        bytes: body.len() as u64,
                        total,
                        elapsed: started.elapsed(),
                    });
                }
            }
            Ok(None) => return Attempt::Done(body),
            Err(e) => return network_failure(opts, url, n, &e),
        }
    }
}

/// A connection or transfer failure: worth another attempt; the key is redacted from it.
fn network_failure(opts: &FetchOptions, url: &str, n: u32, e: &reqwest::Error) -> Attempt {
    let message = opts.key.redact(&describe(e));
    Attempt::Retry {
        reason: message.clone(),
        wait: None,
        last: FetchError::Network {
            url: redact_url(url),
            message,
            attempts: n,
        },
    }
}

/// A reqwest error with its causes, in one line.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

/// Checks that the API answers this key: one request for one user
/// (`GET /organizations/users?page[size]=1`), its body dropped; the status on success. For
/// `config check --connect`: no report is fetched.
pub fn probe_blocking(base_url: &str, key: &ApiKey, timeout: Duration) -> Result<u16, FetchError> {
    let url = format!(
        "{}/organizations/users?page%5Bsize%5D=1",
        base_url.trim_end_matches('/')
    );
    let network = |message: String| FetchError::Network {
        url: redact_url(base_url),
        message: key.redact(&message),
        attempts: 1,
    };
    self::base_url(base_url)?;
    let runtime = runtime().map_err(|e| network(e.to_string()))?;
    runtime.block_on(async {
        let client = http_client(Some(timeout), true).map_err(|e| network(describe(&e)))?;
        let mut response = client
            .get(&url)
            .bearer_auth(&key.0)
            .send()
            .await
            .map_err(|e| network(describe(&e)))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= 65536 {
                break;
            }
        }
        if (200..300).contains(&status) {
            Ok(status)
        } else {
            Err(FetchError::Http {
                status,
                telnyx: telnyx_error(&body, key),
                hint: hint(status).map(str::to_string),
                attempts: 1,
            })
        }
    })
}

/// [`fetch`] on a runtime of its own, for callers that are not async.
pub fn fetch_blocking(
    opts: &FetchOptions,
    on_event: &(dyn Fn(FetchEvent) + Send + Sync),
) -> Result<Fetched, FetchError> {
    runtime()
        .map_err(|e| FetchError::Network {
            url: redact_url(&opts.url()),
            message: e.to_string(),
            attempts: 0,
        })?
        .block_on(fetch(opts, on_event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn keys_never_show() {
        let k = ApiKey::new(" KEYabc123\n").unwrap();
        assert_eq!(format!("{k:?}"), "ApiKey([redacted])");
        assert_eq!(k.redact("bad key KEYabc123!"), "bad key [redacted]!");
        assert!(ApiKey::new("  ").is_none());
    }

    #[test]
    fn urls_and_trailing_slashes() {
        let mut o = FetchOptions::new(ApiKey::new("k").unwrap());
        o.base_url = "https://api.telnyx.com/v2/".into();
        assert_eq!(
            o.url(),
            "https://api.telnyx.com/v2/organizations/users/users_groups_report"
        );
    }

    #[test]
    fn retry_after_forms_and_cap() {
        let now: chrono::DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(2)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Thu, 01 Jan 2026 00:00:05 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(5)));
        h.insert("retry-after", HeaderValue::from_static("86400"));
        assert_eq!(retry_after(&h, now), Some(RETRY_AFTER_CAP));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(250)));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_ceiling() {
        assert_eq!(backoff(0, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(10, 0.0), Duration::from_secs(8));
        assert_eq!(backoff(0, 1.0), Duration::from_millis(375));
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert!(retryable(s), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert!(!retryable(s), "{s}");
        }
    }

    #[test]
    fn telnyx_error_bodies() {
        let k = ApiKey::new("sekrit").unwrap();
        let body = br#"{"errors":[{"code":"10009","title":"Authentication failed","detail":"The API key sekrit is invalid."}]}"#;
        assert_eq!(
            telnyx_error(body, &k).unwrap(),
            "Authentication failed: The API key [redacted] is invalid. [code 10009]"
        );
        assert_eq!(telnyx_error(b"<html>", &k), None);
    }
}
