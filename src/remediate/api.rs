//! The calls `remediate apply` makes: read one user (`GET /organizations/users/{id}`) and
//! remove one (`POST /organizations/users/{id}/actions/remove`), retried as the report fetch
//! is (connection errors, 408, 409, 429 and 5xx; `Retry-After`; backoff with jitter), every
//! reply bounded, the key never in a message.
//!
//! A removal whose answer was lost (a timeout, a dropped connection, a 5xx) may still have
//! happened: before sending it again, the user is read; a user who is gone was removed.

use std::time::Duration;

use chrono::Utc;

use super::{time_text, GroupRef, UserRecord};
use crate::source::telnyx::{
    backoff, base_url, describe, http_client, jitter, retry_after, retryable, runtime,
    telnyx_error, ApiKey, FetchOptions,
};

/// What a call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    Done(T),
    /// 404: no such user (with this key).
    NotFound,
    Err(CallError),
}

/// A call that did not do its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// 401 or 403: the key is wrong or may not do this. The run stops.
    Denied { status: u16, detail: String },
    /// Another 4xx: the API refused this request; the run goes on with the next user.
    Refused { status: u16, detail: String },
    /// No answer, or 5xx, after every retry. The run stops.
    Failed { detail: String },
}

impl CallError {
    /// The error in words, after `what` the call was doing.
    pub fn describe(&self, what: &str) -> String {
        match self {
            CallError::Denied { status: 401, detail } => format!(
                "{what}: HTTP 401: {detail} (check the API key: it is missing, wrong, or revoked)"
            ),
            CallError::Denied { status, detail } => format!(
                "{what}: HTTP {status}: {detail} (the key may not manage this organization's users: use an owner's or admin's key)"
            ),
            CallError::Refused { status, detail } => format!("{what}: HTTP {status}: {detail}"),
            CallError::Failed { detail } => format!("{what}: {detail}"),
        }
    }

    /// The exit status of a run that stops at it (nothing after it would fare better); `None`:
    /// the run goes on.
    pub fn stops(&self) -> Option<u8> {
        match self {
            CallError::Denied { .. } | CallError::Failed { .. } => Some(3),
            CallError::Refused { .. } => None,
        }
    }
}

/// A removal that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The removed user as the API returned it, when it did.
    pub returned: Option<UserRecord>,
    /// How it is known, when not from the answer to the call (a re-read after a lost answer).
    pub confirmed_by: Option<String>,
}

/// One HTTP exchange: a status and the (bounded) body, or why there is none.
enum Exchange {
    Answer {
        status: u16,
        body: Vec<u8>,
        wait: Option<Duration>,
    },
    Lost(String),
}

/// The API client of `remediate apply`.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: reqwest::Url,
    key: ApiKey,
    retries: u32,
    timeout: Duration,
    /// The largest reply read: one user's record, at most `--max-bytes`.
    max_bytes: usize,
    on_event: Box<dyn Fn(&str) + Send + Sync>,
}

impl Client {
    /// A client with the fetch's settings (base URL, key, retries, timeout); `on_event` hears
    /// each retry (for `-v`).
    pub fn new(
        opts: &FetchOptions,
        on_event: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Client, String> {
        let base = base_url(&opts.base_url).map_err(|e| e.to_string())?;
        let runtime = runtime().map_err(|e| e.to_string())?;
        let http = http_client(None, false).map_err(|e| opts.key.redact(&describe(&e)))?;
        Ok(Client {
            runtime,
            http,
            base,
            key: opts.key.clone(),
            retries: opts.retries,
            timeout: opts.timeout,
            max_bytes: usize::try_from(opts.max_bytes).unwrap_or(usize::MAX),
            on_event,
        })
    }

    fn url(&self, id: &str, remove: bool) -> reqwest::Url {
        let mut u = self.base.clone();
        {
            let mut path = u.path_segments_mut().expect("an http URL has a path");
            path.pop_if_empty().extend(["organizations", "users", id]);
            if remove {
                path.extend(["actions", "remove"]);
            }
        }
        if !remove {
            u.query_pairs_mut().append_pair("include_groups", "true");
        }
        u
    }

    /// One request, within the timeout, its body read up to the cap.
    fn exchange(&self, url: &reqwest::Url, post: bool) -> Exchange {
        let request = if post {
            self.http.post(url.clone())
        } else {
            self.http.get(url.clone())
        }
        .bearer_auth(self.key.expose())
        .header(reqwest::header::ACCEPT, "application/json");
        let cap = crate::defaults::USER_REPLY_MAX_BYTES.min(self.max_bytes);
        let work = async {
            let mut response = request.send().await.map_err(|e| describe(&e))?;
            let status = response.status().as_u16();
            let wait = retry_after(response.headers(), Utc::now());
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
                if body.len() + chunk.len() > cap {
                    return Err(format!("the reply is larger than {cap} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, String>((status, body, wait))
        };
        match self
            .runtime
            .block_on(async { tokio::time::timeout(self.timeout, work).await })
        {
            Ok(Ok((status, body, wait))) => Exchange::Answer { status, body, wait },
            Ok(Err(e)) => Exchange::Lost(self.key.redact(&e)),
            Err(_) => Exchange::Lost(format!(
                "no complete answer within {} s",
                self.timeout.as_secs_f64()
            )),
        }
    }

    fn detail(&self, status: u16, body: &[u8]) -> String {
        telnyx_error(body, &self.key).unwrap_or_else(|| format!("HTTP {status}"))
    }

    fn wait(&self, what: &str, attempt: u32, reason: &str, asked: Option<Duration>) {
        let after = asked.unwrap_or_else(|| backoff(attempt, jitter()));
        (self.on_event)(&format!(
            "{what}: {reason}; trying again in {:.1} s",
            after.as_secs_f64()
        ));
        std::thread::sleep(after);
    }

    /// The user's current record (with groups).
    pub fn get_user(&self, id: &str) -> Reply<UserRecord> {
        let url = self.url(id, false);
        let what = format!("reading user {id}");
        let mut last = String::new();
        let mut asked = None;
        for attempt in 0..=self.retries {
            if attempt > 0 {
                self.wait(&what, attempt - 1, &last, asked.take());
            }
            let (status, body) = match self.exchange(&url, false) {
                Exchange::Lost(e) => {
                    last = e;
                    continue;
                }
                Exchange::Answer { status, body, wait } => {
                    asked = wait;
                    (status, body)
                }
            };
            match status {
                200..=299 => {
                    return match parse_user(&body) {
                        Ok(u) if u.id == id => Reply::Done(u),
                        Ok(u) => Reply::Err(CallError::Failed {
                            detail: format!(
                                "the API answered for user {id} with the record of user {}",
                                crate::safe::visible(&u.id)
                            ),
                        }),
                        Err(e) => Reply::Err(CallError::Failed {
                            detail: format!("the API's reply for user {id}: {e}"),
                        }),
                    }
                }
                404 => return Reply::NotFound,
                401 | 403 => {
                    return Reply::Err(CallError::Denied {
                        status,
                        detail: self.detail(status, &body),
                    })
                }
                s if retryable(s) => last = self.detail(status, &body),
                _ => {
                    return Reply::Err(CallError::Refused {
                        status,
                        detail: self.detail(status, &body),
                    })
                }
            }
        }
        Reply::Err(CallError::Failed {
            detail: format!(
                "{last} (after {} attempt{})",
                self.retries + 1,
                if self.retries == 0 { "" } else { "s" }
            ),
        })
    }

    /// Removes the user. A lost answer is followed by a read of the user: gone means removed;
    /// still there means the removal is sent again (within the retries).
    pub fn remove_user(&self, id: &str) -> Reply<Removed> {
        let url = self.url(id, true);
        let what = format!("removing user {id}");
        let mut last;
        let mut attempt = 0;
        loop {
            let (reason, asked, ambiguous) = match self.exchange(&url, true) {
                Exchange::Answer { status, body, wait } => match status {
                    200..=299 => {
                        return Reply::Done(Removed {
                            returned: parse_user(&body).ok(),
                            confirmed_by: None,
                        })
                    }
                    404 => return Reply::NotFound,
                    401 | 403 => {
                        return Reply::Err(CallError::Denied {
                            status,
                            detail: self.detail(status, &body),
                        })
                    }
                    // Not done: the server turned the request away before acting on it.
                    408 | 409 | 429 => (self.detail(status, &body), wait, false),
                    s if retryable(s) => (self.detail(status, &body), wait, true),
                    _ => {
                        return Reply::Err(CallError::Refused {
                            status,
                            detail: self.detail(status, &body),
                        })
                    }
                },
                Exchange::Lost(e) => (e, None, true),
            };
            last = reason;
            if attempt >= self.retries {
                break;
            }
            self.wait(&what, attempt, &last, asked);
            attempt += 1;
            if ambiguous {
                match self.get_user(id) {
                    Reply::NotFound => {
                        return Reply::Done(Removed {
                            returned: None,
                            confirmed_by: Some(format!(
                                "the answer to the removal was lost ({last}); reading the user again found it gone"
                            )),
                        })
                    }
                    Reply::Done(_) => {}
                    Reply::Err(e @ CallError::Denied { .. }) => return Reply::Err(e),
                    Reply::Err(CallError::Refused { detail, .. } | CallError::Failed { detail }) => {
                        return Reply::Err(CallError::Failed {
                            detail: format!(
                                "{last}; then the user could not be read to see whether the removal happened: {detail}"
                            ),
                        })
                    }
                }
            }
        }
        Reply::Err(CallError::Failed {
            detail: format!(
                "{last} (after {} attempt{})",
                attempt + 1,
                if attempt == 0 { "" } else { "s" }
            ),
        })
    }
}

/// `{"data": USER}` to a [`UserRecord`]: times normalised, groups required.
pub(crate) fn parse_user(body: &[u8]) -> Result<UserRecord, String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        data: ApiUser,
    }
    #[derive(serde::Deserialize)]
    struct ApiUser {
        id: String,
        email: String,
        record_type: String,
        user_status: String,
        created_at: String,
        last_sign_in_at: Option<String>,
        groups: Option<Vec<ApiGroup>>,
    }
    #[derive(serde::Deserialize)]
    struct ApiGroup {
        id: String,
        #[serde(default)]
        name: Option<String>,
    }
    let e: Envelope = serde_json::from_slice(body).map_err(|e| {
        format!(
            "not a user record: {}",
            crate::safe::visible(&e.to_string())
        )
    })?;
    let time = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| time_text(&t.with_timezone(&Utc)))
            .map_err(|_| format!("not an RFC 3339 time: {:?}", crate::safe::visible(t)))
    };
    let u = e.data;
    let groups = u
        .groups
        .ok_or("the record has no `groups` (asked for with include_groups=true)")?;
    Ok(UserRecord {
        created_at: time(&u.created_at)?,
        last_sign_in_at: u.last_sign_in_at.as_deref().map(time).transpose()?,
        id: u.id,
        email: u.email,
        record_type: u.record_type,
        user_status: u.user_status,
        groups: groups
            .into_iter()
            .map(|g| GroupRef {
                name: g.name.unwrap_or_default(),
                id: g.id,
            })
            .collect(),
    })
}
