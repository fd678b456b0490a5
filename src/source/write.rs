//! Writing a report back out in the shapes it is read in: the API's JSON (`{"data": [...]}`)
//! and CSV with one row per user. What the history keeps as a run's snapshot, and what
//! `history snapshot` gives an auditor: a file that orgaudit (or a spreadsheet) reads again.

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::model::{Report, User};

fn time(t: crate::model::Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn record(report: &Report, u: &User) -> Value {
    json!({
        "id": &*u.id,
        "record_type": u.record_type.as_str(),
        "email": &*u.email,
        "user_status": u.user_status.as_str(),
        "organization_user_bypasses_sso": u.bypasses_sso,
        "created_at": time(u.created_at),
        "last_sign_in_at": u.last_sign_in_at.map(time),
        "groups": u.groups.iter().map(|&g| json!({
            "id": report.groups.id(g),
            "name": report.groups.name(g),
        })).collect::<Vec<_>>(),
    })
}

/// The report as the API serves it: `{"data": [users...]}`.
pub fn write_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let data: Vec<Value> = report.users.iter().map(|u| record(report, u)).collect();
    serde_json::to_writer(&mut *out, &json!({ "data": data }))?;
    out.write_all(b"\n")
}

/// The report as CSV, one row per user (`groups` and `group_ids` separated by `;`); cells a
/// spreadsheet would run as a formula are neutralised.
pub fn write_csv(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "id",
        "record_type",
        "email",
        "user_status",
        "organization_user_bypasses_sso",
        "created_at",
        "last_sign_in_at",
        "groups",
        "group_ids",
    ])?;
    for u in &report.users {
        let names: Vec<&str> = report.group_names(u).collect();
        let ids: Vec<&str> = report.group_ids(u).collect();
        let row = [
            u.id.to_string(),
            u.record_type.as_str().to_string(),
            u.email.to_string(),
            u.user_status.as_str().to_string(),
            u.bypasses_sso.to_string(),
            time(u.created_at),
            u.last_sign_in_at.map(time).unwrap_or_default(),
            names.join(";"),
            ids.join(";"),
        ];
        w.write_record(row.iter().map(|c| crate::safe::csv_cell(c).into_owned()))?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_written_reads_the_same() {
        let bytes = include_bytes!("../../examples/acme-users-groups.json");
        let report = crate::source::parse(bytes, "acme.json").unwrap().report;
        let mut json = Vec::new();
        write_json(&report, &mut json).unwrap();
        assert_eq!(
            crate::source::parse(&json, "again.json").unwrap().report,
            report
        );
        let mut csv = Vec::new();
        write_csv(&report, &mut csv).unwrap();
        assert_eq!(
            crate::source::parse(&csv, "again.csv").unwrap().report,
            report
        );
    }
}
