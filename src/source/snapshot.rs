//! The compact snapshot a history keeps of each run's report: the groups once, then one array
//! per user with its groups as indices into them. About two thirds of the API's JSON once
//! compressed, because group ids and names are not repeated for every membership. Read back
//! like any input: every index and time is checked, and a bad record is an error, never a
//! panic.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::model::{Change, GroupIx, GroupTable, RecordType, Report, User, UserStatus};

/// The format's version, the first thing in it.
const VERSION: u32 = 1;

fn time(t: crate::model::Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// `(id, record_type, email, user_status, bypasses_sso, created_at, last_sign_in_at, groups)`.
type Row<S> = (S, S, S, S, bool, S, Option<S>, Vec<u32>);

#[derive(Serialize)]
struct Out<'a> {
    v: u32,
    groups: Vec<(&'a str, &'a str)>,
    users: Vec<Row<std::borrow::Cow<'a, str>>>,
}

#[derive(Deserialize)]
struct In {
    v: u32,
    groups: Vec<(String, String)>,
    users: Vec<Row<String>>,
}

/// Writes `report` as a compact snapshot.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    use std::borrow::Cow::{Borrowed, Owned};
    let doc = Out {
        v: VERSION,
        groups: report
            .groups
            .iter()
            .map(|g| (report.groups.id(g), report.groups.name(g)))
            .collect(),
        users: report
            .users
            .iter()
            .map(|u| {
                (
                    Borrowed(&*u.id),
                    Borrowed(u.record_type.as_str()),
                    Borrowed(&*u.email),
                    Borrowed(u.user_status.as_str()),
                    u.bypasses_sso,
                    Owned(time(u.created_at)),
                    u.last_sign_in_at.map(|t| Owned(time(t))),
                    u.groups.iter().map(|g| g.0).collect(),
                )
            })
            .collect(),
    };
    serde_json::to_writer(&mut *out, &doc)?;
    Ok(())
}

/// Reads a compact snapshot back into a report; `origin` names it in errors.
pub fn parse(bytes: &[u8], origin: &str) -> Result<Report, String> {
    let doc: In = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "{origin}: not a snapshot (line {}, column {}): {e}",
            e.line(),
            e.column()
        )
    })?;
    if doc.v != VERSION {
        return Err(format!(
            "{origin}: snapshot version {} (this orgaudit reads {VERSION})",
            doc.v
        ));
    }
    let mut groups = GroupTable::default();
    for (id, name) in &doc.groups {
        groups.intern(id, name);
    }
    let n = groups.len();
    let mut users = Vec::with_capacity(doc.users.len());
    for (i, (id, record_type, email, status, bypass, created, last, gs)) in
        doc.users.into_iter().enumerate()
    {
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| format!("{origin}: user {}: time {s:?}: {e}", i + 1))
        };
        let mut ixs = Vec::with_capacity(gs.len());
        for g in gs {
            if g as usize >= n {
                return Err(format!("{origin}: user {}: group {g} of {n}", i + 1));
            }
            ixs.push(GroupIx(g));
        }
        users.push(User {
            id: id.into(),
            record_type: RecordType::parse(&record_type),
            email: email.into(),
            user_status: UserStatus::parse(&status),
            bypasses_sso: bypass,
            created_at: at(&created)?,
            last_sign_in_at: last.as_deref().map(at).transpose()?,
            groups: ixs.into(),
            change: Change::Unknown,
        });
    }
    Ok(Report {
        users,
        groups,
        compared: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_round_trips_and_bad_snapshots_are_errors() {
        let bytes = include_bytes!("../../examples/acme-users-groups.json");
        let report = crate::source::parse(bytes, "acme").unwrap().report;
        let mut out = Vec::new();
        write(&report, &mut out).unwrap();
        let back = parse(&out, "snap").unwrap();
        assert_eq!(back, report);
        for bad in [
            &br#"{"v":1,"groups":[],"users":[["u","organization_owner","e","enabled",false,"2024-01-01T00:00:00Z",null,[0]]]}"#[..],
            br#"{"v":1,"groups":[],"users":[["u","organization_owner","e","enabled",false,"yesterday",null,[]]]}"#,
            br#"{"v":2,"groups":[],"users":[]}"#,
            b"[",
        ] {
            assert!(parse(bad, "snap").is_err());
        }
    }
}
