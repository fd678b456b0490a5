//! CSV reports, read by header name, never by position. Two shapes are accepted:
//! one row per user with `;`-separated `groups` (and optionally `group_ids` in the same order),
//! or one row per membership with `group_id` and `group_name` (empty both for a user without
//! groups). Column names are the JSON field names.

use std::collections::HashMap;

use super::{Format, Location, Parsed, SourceError};
use crate::model::{GroupIx, Interned, RecordType, Report, Timestamp, User, UserStatus, Warning};

const REQUIRED: &[&str] = &[
    "id",
    "record_type",
    "email",
    "user_status",
    "created_at",
    "last_sign_in_at",
];
const OPTIONAL: &[&str] = &["organization_user_bypasses_sso"];

enum Shape {
    PerUser {
        groups: usize,
        group_ids: Option<usize>,
    },
    PerMembership {
        group_id: usize,
        group_name: usize,
    },
}

struct Columns {
    required: [usize; 6],
    bypass: Option<usize>,
    shape: Shape,
    names: Vec<String>,
}

pub(super) fn parse(body: &[u8], origin: &str) -> Result<Parsed, SourceError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| csv_error(origin, body, &e))?
        .clone();
    let cols = columns(&headers, origin)?;
    let mut warnings = Vec::new();
    let known: Vec<&str> = REQUIRED
        .iter()
        .chain(OPTIONAL)
        .chain(&["groups", "group_ids", "group_id", "group_name"])
        .copied()
        .collect();
    let ignored: Vec<&str> = cols
        .names
        .iter()
        .map(String::as_str)
        .filter(|n| !known.contains(n))
        .collect();
    if !ignored.is_empty() {
        warnings.push(Warning {
            code: "ignored-csv-columns",
            message: format!(
                "{origin}: columns not used by orgaudit: {}",
                ignored.join(", ")
            ),
        });
    }

    let mut report = Report::default();
    let mut by_id: HashMap<Box<str>, (usize, u64)> = HashMap::new();
    let mut memberships: Vec<Vec<GroupIx>> = Vec::new();
    let mut records = 0usize;
    let mut record = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(origin, body, &e)),
        }
        records += 1;
        let line = record.position().map_or(0, |p| line_of(p, body));
        let row = Row {
            origin,
            line,
            record: &record,
            cols: &cols,
        };
        let user = row.user(&mut warnings)?;
        let groups = row.groups(&mut report, &mut warnings)?;
        match cols.shape {
            Shape::PerUser { .. } => {
                memberships.push(groups);
                report.users.push(user);
            }
            Shape::PerMembership { .. } => match by_id.get(&user.id) {
                Some(&(ix, first_line)) => {
                    row.same_user(&report.users[ix], &user, first_line)?;
                    for g in groups {
                        if !memberships[ix].contains(&g) {
                            memberships[ix].push(g);
                        }
                    }
                }
                None => {
                    by_id.insert(user.id.clone(), (report.users.len(), line));
                    memberships.push(groups);
                    report.users.push(user);
                }
            },
        }
    }
    for (user, groups) in report.users.iter_mut().zip(memberships) {
        user.groups = groups.into();
    }
    Ok(Parsed {
        report,
        format: Format::Csv,
        records,
        warnings,
    })
}

/// The 1-based line of a record. After a CRLF the reader reports a record as starting at the
/// LF, one line early; a record starts after it.
fn line_of(pos: &::csv::Position, body: &[u8]) -> u64 {
    let at_lf = body.get(pos.byte() as usize) == Some(&b'\n');
    pos.line() + at_lf as u64
}

fn csv_error(origin: &str, body: &[u8], e: &::csv::Error) -> SourceError {
    let line = e.position().map_or(1, |p| line_of(p, body));
    let message = match e.kind() {
        ::csv::ErrorKind::Utf8 { err, .. } => format!(
            "field {} is not valid UTF-8; expected UTF-8 text",
            err.field() + 1
        ),
        ::csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("this row has {len} fields but the header has {expected_len}"),
        _ => e.to_string(),
    };
    SourceError::Malformed {
        origin: origin.to_string(),
        location: Location::Csv { line, column: None },
        message,
    }
}

fn columns(headers: &::csv::StringRecord, origin: &str) -> Result<Columns, SourceError> {
    let names: Vec<String> = headers.iter().map(|h| h.trim().to_string()).collect();
    // Two columns of one name: which one holds the data is anybody's guess.
    for (i, n) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|m| m == n) {
            return Err(SourceError::Malformed {
                origin: origin.to_string(),
                location: Location::Csv {
                    line: 1,
                    column: Some((i + 1, n.clone())),
                },
                message: format!(
                    "the column `{n}` appears twice (columns {} and {}); a CSV report names each column once",
                    j + 1,
                    i + 1
                ),
            });
        }
    }
    let find = |name: &str| names.iter().position(|n| n == name);
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|c| find(c).is_none())
        .collect();
    let shape = match (
        find("groups"),
        find("group_ids"),
        find("group_id"),
        find("group_name"),
    ) {
        (Some(groups), group_ids, None, None) => Some(Shape::PerUser { groups, group_ids }),
        (None, None, Some(group_id), Some(group_name)) => Some(Shape::PerMembership {
            group_id,
            group_name,
        }),
        _ => None,
    };
    let (Some(shape), true) = (shape, missing.is_empty()) else {
        let mut what = Vec::new();
        if !missing.is_empty() {
            what.push(format!("missing column(s) {}", missing.join(", ")));
        }
        what.push("found columns: ".to_string() + &names.join(", "));
        return Err(SourceError::Malformed {
            origin: origin.to_string(),
            location: Location::Csv {
                line: 1,
                column: None,
            },
            message: format!(
                "unrecognised CSV header ({}); expected the columns {}, optionally {}, and either `groups` (with optional `group_ids`) for one row per user or `group_id` and `group_name` for one row per membership",
                what.join("; "),
                REQUIRED.join(", "),
                OPTIONAL.join(", ")
            ),
        });
    };
    let mut required = [0; 6];
    for (slot, name) in required.iter_mut().zip(REQUIRED) {
        *slot = find(name).expect("checked above");
    }
    Ok(Columns {
        required,
        bypass: find("organization_user_bypasses_sso"),
        shape,
        names,
    })
}

struct Row<'a> {
    origin: &'a str,
    line: u64,
    record: &'a ::csv::StringRecord,
    cols: &'a Columns,
}

impl Row<'_> {
    fn err(&self, col: usize, message: String) -> SourceError {
        SourceError::Malformed {
            origin: self.origin.to_string(),
            location: Location::Csv {
                line: self.line,
                column: Some((col + 1, self.cols.names[col].clone())),
            },
            message,
        }
    }

    fn cell(&self, col: usize) -> &str {
        self.record.get(col).unwrap_or("").trim()
    }

    fn required(&self, slot: usize) -> Result<&str, SourceError> {
        let col = self.cols.required[slot];
        let v = self.cell(col);
        if v.is_empty() && slot != 5 {
            return Err(self.err(
                col,
                format!("`{}` is empty; a value is required", REQUIRED[slot]),
            ));
        }
        Ok(v)
    }

    fn time(&self, slot: usize) -> Result<Option<Timestamp>, SourceError> {
        let v = self.required(slot)?;
        if v.is_empty() || v.eq_ignore_ascii_case("null") {
            return Ok(None);
        }
        super::time::parse_csv(v).map(Some).ok_or_else(|| {
            self.err(
                self.cols.required[slot],
                format!("invalid timestamp {v:?}: expected RFC 3339 such as \"2018-02-02T22:25:27.521Z\" or \"2018-02-02 22:25:27.521\" (UTC)"),
            )
        })
    }

    fn user(&self, warnings: &mut Vec<Warning>) -> Result<User, SourceError> {
        let id = self.required(0)?;
        let record_type = RecordType::parse(self.required(1)?);
        let email = self.required(2)?;
        let user_status = UserStatus::parse(self.required(3)?);
        let created_at = self.time(4)?.expect("required is non-empty");
        let last_sign_in_at = self.time(5)?;
        let bypasses_sso = match self.cols.bypass {
            None => false,
            Some(col) => match self.cell(col).to_ascii_lowercase().as_str() {
                "" | "false" | "0" => false,
                "true" | "1" => true,
                other => {
                    return Err(self.err(
                        col,
                        format!("invalid boolean {other:?}: expected true, false, 1, 0 or empty"),
                    ))
                }
            },
        };
        super::warn_unknown_values(
            warnings,
            self.origin,
            &format!("CSV line {} (id {id})", self.line),
            &record_type,
            &user_status,
        );
        Ok(User {
            id: id.into(),
            record_type,
            email: email.into(),
            user_status,
            bypasses_sso,
            created_at,
            last_sign_in_at,
            groups: Box::new([]),
            change: crate::model::Change::Unknown,
        })
    }

    fn groups(
        &self,
        report: &mut Report,
        warnings: &mut Vec<Warning>,
    ) -> Result<Vec<GroupIx>, SourceError> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        match self.cols.shape {
            Shape::PerUser { groups, group_ids } => {
                let names = split_list(self.cell(groups));
                if let Some(ids_col) = group_ids {
                    let ids = split_list(self.cell(ids_col));
                    if ids.len() != names.len() {
                        return Err(self.err(
                            ids_col,
                            format!(
                                "{} group id(s) for {} group name(s); `group_ids` must list one id per name in `groups`, in the same order",
                                ids.len(),
                                names.len()
                            ),
                        ));
                    }
                    pairs.extend(ids.into_iter().zip(names));
                } else {
                    pairs.extend(names.into_iter().map(|n| (n, n)));
                }
            }
            Shape::PerMembership {
                group_id,
                group_name,
            } => match (self.cell(group_id), self.cell(group_name)) {
                ("", "") => {}
                ("", _) => {
                    return Err(self.err(
                        group_id,
                        "empty `group_id` beside a `group_name`; both or neither".into(),
                    ))
                }
                (_, "") => {
                    return Err(self.err(
                        group_name,
                        "empty `group_name` beside a `group_id`; both or neither".into(),
                    ))
                }
                (id, name) => pairs.push((id, name)),
            },
        }
        let mut out = Vec::with_capacity(pairs.len());
        for (id, name) in pairs {
            out.push(match report.groups.intern(id, name) {
                Interned::New(ix) | Interned::Known(ix) => ix,
                Interned::NameDiffers { ix, known_name } => {
                    warnings.push(Warning {
                        code: "group-name-differs",
                        message: format!(
                            "{}: CSV line {}: group {id} is named {name:?} here but {known_name:?} earlier; the first name is used",
                            self.origin, self.line
                        ),
                    });
                    ix
                }
            });
        }
        Ok(out)
    }

    /// In the per-membership shape, every row of one user must agree on the user's fields.
    fn same_user(&self, first: &User, this: &User, first_line: u64) -> Result<(), SourceError> {
        let checks: [(usize, bool); 5] = [
            (1, first.record_type == this.record_type),
            (2, first.email == this.email),
            (3, first.user_status == this.user_status),
            (4, first.created_at == this.created_at),
            (5, first.last_sign_in_at == this.last_sign_in_at),
        ];
        for (slot, same) in checks {
            if !same {
                let col = self.cols.required[slot];
                return Err(self.err(
                    col,
                    format!(
                        "user {} has a different `{}` here than on CSV line {first_line}; rows of one user must agree",
                        this.id, REQUIRED[slot]
                    ),
                ));
            }
        }
        if first.bypasses_sso != this.bypasses_sso {
            let col = self.cols.bypass.expect("only differs when present");
            return Err(self.err(
                col,
                format!(
                    "user {} has a different `organization_user_bypasses_sso` here than on CSV line {first_line}; rows of one user must agree",
                    this.id
                ),
            ));
        }
        Ok(())
    }
}

fn split_list(cell: &str) -> Vec<&str> {
    cell.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::parse as parse_any;

    const HEAD: &str =
        "id,record_type,email,user_status,organization_user_bypasses_sso,created_at,last_sign_in_at";

    #[test]
    fn both_shapes_give_the_same_report() {
        let per_user = format!(
            "\u{feff}{HEAD},groups,group_ids\r\nu1,organization_sub_user,a@b.c,enabled,true,2018-02-02 22:25:27.521,,Eng;Sales,g1;g2\r\nu2,organization_owner,o@b.c,enabled,,2018-01-01T00:00:00Z,2018-02-02T22:25:27Z,,\r\n"
        );
        let per_membership = format!(
            "{HEAD},group_id,group_name\nu1,organization_sub_user,a@b.c,enabled,true,2018-02-02T22:25:27.521Z,,g1,Eng\nu2,organization_owner,o@b.c,enabled,false,2018-01-01T00:00:00Z,2018-02-02T22:25:27Z,,\nu1,organization_sub_user,a@b.c,enabled,true,2018-02-02T22:25:27.521Z,,g2,Sales\n"
        );
        let a = parse_any(per_user.as_bytes(), "a.csv").unwrap();
        let b = parse_any(per_membership.as_bytes(), "b.csv").unwrap();
        assert_eq!(a.report, b.report);
        assert_eq!((a.records, b.records), (2, 3));
        assert!(a.report.users[0].bypasses_sso);
        assert_eq!(a.report.users[0].groups.len(), 2);
        assert_eq!(a.report.users[0].last_sign_in_at, None);
    }

    #[test]
    fn unknown_header_lists_found_and_expected() {
        let e = parse_any(b"user,mail\nx,y\n", "r.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("r.csv: CSV line 1: unrecognised CSV header (missing column(s) id, record_type, email, user_status, created_at, last_sign_in_at; found columns: user, mail); expected the columns id,"),
            "{e}"
        );
    }

    #[test]
    fn bad_cells_name_line_and_column() {
        let body = format!(
            "{HEAD},groups\nu1,organization_owner,a@b.c,enabled,maybe,2018-01-01T00:00:00Z,,\n"
        );
        let e = parse_any(body.as_bytes(), "r.csv").unwrap_err().to_string();
        assert_eq!(
            e,
            "r.csv: CSV line 2, column 5 (`organization_user_bypasses_sso`): invalid boolean \"maybe\": expected true, false, 1, 0 or empty"
        );
        let body = format!("{HEAD},groups\nu1,organization_owner,a@b.c,enabled,,yesterday,,\n");
        let e = parse_any(body.as_bytes(), "r.csv").unwrap_err().to_string();
        assert!(
            e.starts_with(
                "r.csv: CSV line 2, column 6 (`created_at`): invalid timestamp \"yesterday\""
            ),
            "{e}"
        );
        let body = format!("{HEAD},groups\nu1,organization_owner\n");
        let e = parse_any(body.as_bytes(), "r.csv").unwrap_err().to_string();
        assert_eq!(
            e,
            "r.csv: CSV line 2: this row has 2 fields but the header has 8"
        );
    }

    #[test]
    fn membership_rows_must_agree() {
        let body = format!("{HEAD},group_id,group_name\nu1,organization_owner,a@b.c,enabled,,2018-01-01T00:00:00Z,,g1,G\nu1,organization_owner,x@b.c,enabled,,2018-01-01T00:00:00Z,,g2,H\n");
        let e = parse_any(body.as_bytes(), "r.csv").unwrap_err().to_string();
        assert_eq!(e, "r.csv: CSV line 3, column 3 (`email`): user u1 has a different `email` here than on CSV line 2; rows of one user must agree");
    }
}
