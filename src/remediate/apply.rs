//! `remediate apply`: a signed plan, checked, then carried out one user at a time.
//!
//! Before any call: the signature, the age, the selection (`--only`, `--exclude`), the cap on
//! removals, and the journal of earlier runs. Then the organization: every owner the plan
//! recorded must be known to the API with this key. Then, per user: read again, skipped when
//! anything changed since the plan, else (with `execute`) journalled, removed, journalled.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::SecondsFormat;
use serde::Serialize;

use super::api::{self, Client, Reply};
use super::journal::{self, Event, Journal, Record};
use super::{Action, Plan, PlanKey, UserRecord};
use crate::model::Timestamp;
use crate::rules::FixAction;
use crate::source::telnyx::FetchOptions;
use crate::Error;

/// How to apply a plan.
pub struct ApplyOptions {
    pub plan: PathBuf,
    /// Remove users; without it, a dry run that only reads.
    pub execute: bool,
    /// Users removed at most (`--max`); `None`: `remediate.max_removals` of the configuration,
    /// else the default.
    pub max_removals: Option<u32>,
    /// The oldest plan applied (`--max-age`); `None`: `remediate.max_age_days`, else the default.
    pub max_age: Option<chrono::Duration>,
    /// Only these users of the plan (ids); empty: all.
    pub only: Vec<String>,
    /// Not these users (ids).
    pub exclude: Vec<String>,
    pub approved_by: Option<String>,
    /// The journal (`--journal`); default: the plan's path and [`crate::defaults::JOURNAL_SUFFIX`].
    pub journal: Option<PathBuf>,
    /// `--history`: the history that keeps a copy of the journal (else `ORGAUDIT_HISTORY`, else
    /// the configuration's); `--no-history`: none.
    pub history: Option<String>,
    pub no_history: bool,
    /// The configuration (`--config`): its `telnyx` settings and `organizations` (the one named
    /// like the plan's organization key), `remediate` limits and `history`.
    pub config: Option<crate::config::Config>,
    /// How to reach the API, as the command line gave it (the key is looked up once the plan
    /// is known to be good).
    pub api: crate::config::FetchFlags,
    pub now: Timestamp,
    /// `ORGAUDIT_PLAN_KEY`.
    pub key: Option<PlanKey>,
    /// Asked once everything is checked, before the first removal (`None`: `--yes`). `false`
    /// refuses the run.
    pub confirm: Option<Confirm>,
    /// Hears each step, for standard error.
    pub on_event: Arc<dyn Fn(&str) + Send + Sync>,
}

/// The question asked before the first removal: `true` goes on.
pub type Confirm = Box<dyn FnOnce(&Preview) -> bool>;

/// What the confirmation shows.
#[derive(Debug, Clone)]
pub struct Preview {
    pub organization: String,
    pub removals: usize,
    pub users: Vec<(String, String)>,
}

/// What became of one planned user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Removed,
    /// A dry run's answer: the user is as planned.
    WouldRemove,
    /// An earlier run removed them (the journal says so).
    AlreadyRemoved,
    /// Left alone, with the reason (changed since the plan, excluded).
    Skipped,
    /// The pre-check found no such user.
    Absent,
    /// The plan refused them (an owner).
    Refused,
    /// The API refused or failed.
    Failed,
    /// The run stopped before them.
    NotAttempted,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Removed,
        Outcome::WouldRemove,
        Outcome::AlreadyRemoved,
        Outcome::Skipped,
        Outcome::Absent,
        Outcome::Refused,
        Outcome::Failed,
        Outcome::NotAttempted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Removed => "removed",
            Outcome::WouldRemove => "would remove",
            Outcome::AlreadyRemoved => "already removed",
            Outcome::Skipped => "skipped",
            Outcome::Absent => "absent (skipped)",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::NotAttempted => "not attempted",
        }
    }
}

/// One user's line of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct UserOutcome {
    pub user_id: String,
    pub email: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The result of `remediate apply`. [`ApplyOutcome::summary_table`] and
/// [`ApplyOutcome::to_json`] are what the CLI prints.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyOutcome {
    pub plan: String,
    pub organization: String,
    pub execute: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Written with `execute` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    pub users: Vec<UserOutcome>,
    /// Why the run stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub exit_code: u8,
}

impl ApplyOutcome {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.users.iter().filter(|u| u.outcome == outcome).count()
    }

    /// The summary as JSON: this outcome with `counts` by outcome.
    pub fn to_json(&self) -> serde_json::Value {
        let mut doc = serde_json::to_value(self).expect("an outcome is JSON");
        doc["counts"] = serde_json::Value::Object(self.counts());
        doc
    }

    /// The summary table for a terminal or a log: one line per user, then the counts; every
    /// value from the plan or the API made safe for a terminal.
    pub fn summary_table(&self) -> String {
        let t = |s: &str| crate::safe::terminal(s).into_owned();
        let mut out = format!(
            "{} of the plan for {} ({}):\n",
            if self.execute {
                "Applied"
            } else {
                "Dry run (nothing changed)"
            },
            t(&self.organization),
            &self.plan[..self.plan.len().min(12)]
        );
        let width = self
            .users
            .iter()
            .map(|u| t(&u.email).chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        out.push_str(&format!(
            "  {:<width$}  {:<16}  {}\n",
            "USER", "OUTCOME", "REASON"
        ));
        for u in &self.users {
            out.push_str(&format!(
                "  {:<width$}  {:<16}  {}\n",
                t(&u.email),
                u.outcome.as_str(),
                t(u.reason.as_deref().unwrap_or(""))
            ));
        }
        // The four the issue names always; the others when they happened.
        let counts: Vec<String> = Outcome::ALL
            .iter()
            .filter(|&&c| {
                self.count(c) > 0
                    || matches!(
                        c,
                        Outcome::Removed | Outcome::Skipped | Outcome::Refused | Outcome::Failed
                    )
            })
            .map(|&c| format!("{} {}", self.count(c), c.as_str()))
            .collect();
        out.push_str(&counts.join(", "));
        out.push('\n');
        if let Some(why) = &self.stopped {
            out.push_str(&format!("stopped: {}\n", t(why)));
        }
        if let Some(j) = &self.journal {
            out.push_str(&format!("journal: {}\n", t(j)));
        }
        out
    }

    /// The counts by outcome, for the JSON summary.
    pub fn counts(&self) -> serde_json::Map<String, serde_json::Value> {
        Outcome::ALL
            .iter()
            .map(|&o| {
                (
                    serde_json::to_value(o)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    self.count(o).into(),
                )
            })
            .collect()
    }
}

fn at() -> String {
    chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses `--max-age`: days (`7`, `7d`), hours (`12h`), minutes (`30m`) or seconds (`45s`).
pub fn parse_age(s: &str) -> Option<chrono::Duration> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| (0..=36_500 * 86_400).contains(n))?;
    match unit {
        "" | "d" => chrono::Duration::try_days(n),
        "h" => chrono::Duration::try_hours(n),
        "m" => chrono::Duration::try_minutes(n),
        "s" => chrono::Duration::try_seconds(n),
        _ => None,
    }
}

/// Checks the plan and carries it out (or, without `execute`, says what it would do).
/// `Err` is a run refused before any removal (exit status 2, or 3 when the API could not be
/// reached for the organization check); a run that started ends in an [`ApplyOutcome`] whose
/// `exit_code` says how it went.
pub fn apply(opts: ApplyOptions) -> Result<ApplyOutcome, Error> {
    let name = opts.plan.display().to_string();
    let refuse = |m: String| Error::Usage(format!("{name}: {m}"));
    let settings = opts
        .config
        .as_ref()
        .map(|c| c.remediate)
        .unwrap_or_default();
    let max_removals = opts
        .max_removals
        .or(settings.max_removals)
        .unwrap_or(crate::defaults::REMEDIATE_MAX_REMOVALS);
    let max_age = opts.max_age.unwrap_or_else(|| {
        chrono::Duration::days(i64::from(
            settings
                .max_age_days
                .unwrap_or(crate::defaults::REMEDIATE_MAX_AGE_DAYS),
        ))
    });
    let mut plan = Plan::load(&opts.plan).map_err(|e| Error::Usage(e.to_string()))?;
    plan.verify(opts.key.as_ref()).map_err(refuse)?;
    let created: Timestamp = plan
        .created_at
        .parse()
        .map_err(|_| refuse(format!("invalid created_at {:?}", plan.created_at)))?;
    let age = opts.now - created;
    if age > max_age {
        return Err(refuse(format!(
            "the plan was made at {} ({} ago), more than --max-age {} ago: the organization may have changed; make a new plan with `orgaudit remediate plan`",
            plan.created_at,
            words(age),
            words(max_age)
        )));
    }
    if age < -chrono::Duration::minutes(5) {
        return Err(refuse(format!(
            "the plan is dated {}, in the future: check the clock",
            plan.created_at
        )));
    }
    // Only what apply knows how to do; a manual item has no business among the actions.
    for a in &plan.actions {
        match a.action {
            FixAction::RemoveUser => {}
            FixAction::Manual => {
                return Err(refuse(format!(
                    "the action for user {} is `manual`: apply carries out automatic fixes only",
                    a.user.id
                )))
            }
        }
    }
    // The selection: ids the plan does not hold are typos, and refused.
    let ids: std::collections::HashSet<&str> =
        plan.actions.iter().map(|a| a.user.id.as_str()).collect();
    for (flag, list) in [("--only", &opts.only), ("--exclude", &opts.exclude)] {
        if let Some(bad) = list.iter().find(|id| !ids.contains(id.as_str())) {
            let hint = crate::diag::did_you_mean(bad, ids.iter().copied())
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            return Err(refuse(format!(
                "{flag} {bad}: the plan has no removal of that user{hint}"
            )));
        }
    }
    let journal_path = opts.journal.clone().unwrap_or_else(|| {
        let mut p = opts.plan.clone().into_os_string();
        p.push(crate::defaults::JOURNAL_SUFFIX);
        PathBuf::from(p)
    });
    let earlier = journal::earlier(&journal_path, plan.id()).map_err(Error::Usage)?;
    let mut users: Vec<UserOutcome> = Vec::new();
    let mut todo: Vec<&Action> = Vec::new();
    for a in &plan.actions {
        let line = |outcome, reason: &str| UserOutcome {
            user_id: a.user.id.clone(),
            email: a.user.email.clone(),
            outcome,
            reason: Some(reason.to_string()),
        };
        if (!opts.only.is_empty() && !opts.only.contains(&a.user.id))
            || opts.exclude.contains(&a.user.id)
        {
            users.push(line(Outcome::Skipped, "not selected (--only / --exclude)"));
        } else if earlier.removed.contains(&a.user.id) {
            users.push(line(
                Outcome::AlreadyRemoved,
                "removed by an earlier run of this plan (journal)",
            ));
        } else {
            todo.push(a);
        }
    }
    for r in &plan.refused {
        users.push(UserOutcome {
            user_id: r.user.id.clone(),
            email: r.user.email.clone(),
            outcome: Outcome::Refused,
            reason: Some(r.reason.clone()),
        });
    }
    if todo.len() > max_removals as usize {
        return Err(refuse(format!(
            "the plan would remove {} users, more than --max {} (remediate.max_removals): nothing was done; raise --max after review, or apply part of the plan with --only",
            todo.len(),
            max_removals
        )));
    }
    if plan.organization.owner_ids.is_empty() {
        return Err(refuse(
            "the plan names no owner to recognise the organization by; it cannot be applied safely"
                .to_string(),
        ));
    }
    // The key is looked up now, after everything the plan alone can tell.
    let (targets, _) = crate::config::fetch_targets(&opts.api, opts.config.as_ref())?;
    let api = target(&targets, &plan.organization.key).map_err(refuse)?;
    let history = crate::plan::history_location(
        opts.no_history,
        opts.history.clone(),
        opts.config.as_ref().and_then(|c| c.history.clone()),
    )?;
    let on_event = opts.on_event.clone();
    let client = Client::new(api, Box::new(move |m: &str| on_event(m))).map_err(Error::Usage)?;
    let say = |m: String| (opts.on_event)(&m);
    // The organization: every owner of the plan must be known to this key.
    for owner in &plan.organization.owner_ids {
        match client.get_user(owner) {
            Reply::Done(_) => {}
            Reply::NotFound => {
                return Err(refuse(format!(
                    "the plan's owner {owner} is unknown to the API with this key: the key is another organization's (or the owner was removed); nothing was done"
                )))
            }
            Reply::Err(e) => return Err(Error::Api(e.describe("checking the organization"))),
        }
    }
    let organization = plan.organization.label.clone();
    if opts.execute && !todo.is_empty() {
        if let Some(confirm) = opts.confirm {
            let preview = Preview {
                organization: organization.clone(),
                removals: todo.len(),
                users: todo
                    .iter()
                    .map(|a| (a.user.id.clone(), a.user.email.clone()))
                    .collect(),
            };
            if !confirm(&preview) {
                return Err(Error::Usage("not confirmed: nothing was done".to_string()));
            }
        }
    }
    let mut journal = if opts.execute {
        let store = match &history {
            Some(location) => Some(location.open()?),
            None => None,
        };
        Some(Journal::open(&journal_path, store).map_err(Error::Usage)?)
    } else {
        None
    };
    let base = |event: Event| Record {
        at: at(),
        plan: plan.id().to_string(),
        organization: plan.organization.key.clone(),
        event,
        user_id: None,
        email: None,
        reason: None,
        user: None,
        approved_by: None,
        detail: None,
    };
    // Writes a record; a journal that cannot be written stops the run before the next call.
    let mut write = |record: Record| -> Result<(), String> {
        match journal.as_mut() {
            Some(j) => j.write(&record),
            None => Ok(()),
        }
    };
    let started = Record {
        approved_by: opts.approved_by.clone(),
        detail: Some(serde_json::json!({
            "tool_version": env!("CARGO_PKG_VERSION"),
            "plan_file": name,
            "only": opts.only,
            "exclude": opts.exclude,
            "max_removals": max_removals,
            "removals_to_attempt": todo.len(),
            "earlier_records": earlier.records,
        })),
        ..base(Event::RunStarted)
    };
    let mut stopped: Option<(String, u8)> = None;
    if let Err(e) = write(started) {
        return Err(Error::Usage(e));
    }
    let mut absent = 0usize;
    let mut refused_by_api = false;
    for (i, a) in todo.iter().enumerate() {
        let u = &a.user;
        let rec = |event: Event, reason: Option<String>, user: Option<UserRecord>| Record {
            user_id: Some(u.id.clone()),
            email: Some(u.email.clone()),
            reason,
            user,
            ..base(event)
        };
        let mut outcome = |o: Outcome, reason: Option<String>| {
            say(format!(
                "{}: {} ({}){}",
                o.as_str(),
                crate::safe::terminal(&u.email),
                u.id,
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
            users.push(UserOutcome {
                user_id: u.id.clone(),
                email: u.email.clone(),
                outcome: o,
                reason,
            });
        };
        let step = (|| -> Result<(), Stop> {
            let jerr = |e: String| Stop::Run(e, 3);
            write(rec(Event::Planned, None, Some(u.clone()))).map_err(jerr)?;
            let sent_before = earlier.sent.contains(&u.id);
            let current = match client.get_user(&u.id) {
                Reply::Done(current) => current,
                Reply::NotFound if sent_before => {
                    let why = "an earlier run sent the removal and stopped before recording the answer; the user is gone".to_string();
                    write(rec(Event::Removed, Some(why.clone()), Some(u.clone()))).map_err(jerr)?;
                    outcome(Outcome::Removed, Some(why));
                    return Ok(());
                }
                Reply::NotFound => {
                    let why = "no such user now (404 on the pre-check): not removed by this run"
                        .to_string();
                    write(rec(Event::Absent, Some(why.clone()), None)).map_err(jerr)?;
                    outcome(Outcome::Absent, Some(why));
                    absent += 1;
                    if absent > crate::defaults::REMEDIATE_MAX_ABSENT {
                        return Err(Stop::Run(format!(
                            "{absent} planned users are missing: the plan may be another organization's; stopped"
                        ), 2));
                    }
                    return Ok(());
                }
                Reply::Err(e) => return Err(Stop::Call(e, "reading the user")),
            };
            if current.digest() != a.state_digest {
                let changes = u.changes_to(&current);
                let why = if changes.is_empty() {
                    "the user's state changed since the plan".to_string()
                } else {
                    format!("changed since the plan: {}", changes.join("; "))
                };
                write(rec(Event::Skipped, Some(why.clone()), Some(current))).map_err(jerr)?;
                outcome(Outcome::Skipped, Some(why));
                return Ok(());
            }
            if current.is_owner() {
                let why = "an organization owner: never removed".to_string();
                write(rec(Event::Skipped, Some(why.clone()), Some(current))).map_err(jerr)?;
                outcome(Outcome::Skipped, Some(why));
                return Ok(());
            }
            if !opts.execute {
                outcome(Outcome::WouldRemove, None);
                return Ok(());
            }
            write(rec(Event::Sending, None, None)).map_err(jerr)?;
            match client.remove_user(&u.id) {
                Reply::Done(removed) => {
                    let why = removed.confirmed_by.clone();
                    let mut r = rec(Event::Removed, why.clone(), Some(current));
                    if let Some(returned) = removed.returned {
                        r.detail = Some(serde_json::json!({ "returned": returned }));
                    }
                    write(r).map_err(jerr)?;
                    outcome(Outcome::Removed, why);
                }
                Reply::NotFound => {
                    let why =
                        "the removal answered 404 after the pre-check found the user: already gone"
                            .to_string();
                    write(rec(Event::Removed, Some(why.clone()), Some(current))).map_err(jerr)?;
                    outcome(Outcome::Removed, Some(why));
                }
                Reply::Err(e) => return Err(Stop::Call(e, "the removal")),
            }
            Ok(())
        })();
        // A call that failed: journalled; the run stops (401/403, no answer) or goes on with the
        // next user (another 4xx).
        let stop = match step {
            Ok(()) => None,
            Err(Stop::Run(why, code)) => Some((why, code)),
            Err(Stop::Call(e, what)) => {
                let why = e.describe(what);
                match write(rec(Event::Failed, Some(why.clone()), None)) {
                    Err(j) => Some((j, 3)),
                    Ok(()) => {
                        outcome(Outcome::Failed, Some(why.clone()));
                        match e.stops() {
                            Some(code) => Some((format!("{why}; stopped"), code)),
                            None => {
                                refused_by_api = true;
                                None
                            }
                        }
                    }
                }
            }
        };
        if let Some(stop) = stop {
            for rest in &todo[i + 1..] {
                users.push(UserOutcome {
                    user_id: rest.user.id.clone(),
                    email: rest.user.email.clone(),
                    outcome: Outcome::NotAttempted,
                    reason: Some("the run stopped before this user".to_string()),
                });
            }
            let _ = write(Record {
                reason: Some(stop.0.clone()),
                ..base(Event::Stopped)
            });
            stopped = Some(stop);
            break;
        }
    }
    let exit_code = match &stopped {
        Some((_, code)) => *code,
        None if refused_by_api => 1,
        None => 0,
    };
    let mut out = ApplyOutcome {
        plan: plan.id().to_string(),
        organization,
        execute: opts.execute,
        approved_by: opts.approved_by.clone(),
        journal: opts.execute.then(|| journal_path.display().to_string()),
        users,
        stopped: stopped.map(|(why, _)| why),
        exit_code,
    };
    // Plan order for the summary (an id's first place).
    let mut order: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let ids = plan.actions.iter().map(|a| a.user.id.as_str());
    for (i, id) in ids
        .chain(plan.refused.iter().map(|r| r.user.id.as_str()))
        .enumerate()
    {
        order.entry(id).or_insert(i);
    }
    out.users
        .sort_by_key(|u| order.get(u.user_id.as_str()).copied().unwrap_or(usize::MAX));
    let finished = Record {
        detail: Some(serde_json::json!({
            "counts": out.counts(),
            "exit_code": out.exit_code,
            "stopped": out.stopped,
        })),
        ..base(Event::RunFinished)
    };
    if let Err(e) = write(finished) {
        out.stopped.get_or_insert(e);
        out.exit_code = out.exit_code.max(3);
    }
    Ok(out)
}

/// Why a user's step ended early: a call that failed, or a reason to stop the run.
enum Stop {
    Call(api::CallError, &'static str),
    Run(String, u8),
}

/// The API settings for the plan's organization: the only one, or the one of that name.
fn target<'t>(targets: &'t [crate::FetchTarget], key: &str) -> Result<&'t FetchOptions, String> {
    match targets {
        [one] if one.organization.is_none() => Ok(&one.options),
        _ => targets
            .iter()
            .find(|t| t.organization.as_deref() == Some(key))
            .map(|t| &t.options)
            .ok_or_else(|| {
                let names: Vec<&str> = targets
                    .iter()
                    .filter_map(|t| t.organization.as_deref())
                    .collect();
                format!(
                    "the plan is for the organization `{key}`, which the configuration does not name (it names: {})",
                    names.join(", ")
                )
            }),
    }
}

/// A duration in words: days, hours or minutes.
fn words(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    if s >= 86_400 {
        format!("{} days", s / 86_400)
    } else if s >= 3_600 {
        format!("{} hours", s / 3_600)
    } else if s >= 60 {
        format!("{} minutes", s / 60)
    } else {
        format!("{s} seconds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("7"), chrono::Duration::try_days(7));
        assert_eq!(parse_age("7d"), chrono::Duration::try_days(7));
        assert_eq!(parse_age("12h"), chrono::Duration::try_hours(12));
        assert_eq!(parse_age("0s"), chrono::Duration::try_seconds(0));
        assert_eq!(parse_age("7w"), None);
        assert_eq!(parse_age("-1"), None);
        assert_eq!(parse_age("99999999999999"), None);
    }
}
