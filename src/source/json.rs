//! JSON reports: `{"data": [users]}` or a bare array of users, parsed in one pass straight into
//! the typed model (no intermediate value tree), with group ids and names interned as they come.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Format, Location, Parsed, SourceError};
use crate::model::{GroupIx, Interned, RecordType, Report, Timestamp, User, UserStatus, Warning};

/// Where the parser is, read back when an error surfaces.
#[derive(Default)]
struct Cursor {
    record: Cell<Option<usize>>,
    field: Cell<Option<&'static str>>,
}

struct Ctx<'o> {
    origin: &'o str,
    report: Report,
    warnings: Vec<Warning>,
    cursor: Cursor,
    records: usize,
}

/// Reports at least this large are parsed on several cores when they have them.
const PARALLEL_MIN_BYTES: usize = 4 << 20;

pub(super) fn parse(body: &[u8], origin: &str) -> Result<Parsed, SourceError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if threads > 1 && body.len() >= PARALLEL_MIN_BYTES {
        if let Some(parsed) = parse_parallel(body, origin, threads) {
            return Ok(parsed);
        }
    }
    parse_sequential(body, origin)
}

/// One pass over the whole document: the reference behaviour, and the one that reports errors.
fn parse_sequential(body: &[u8], origin: &str) -> Result<Parsed, SourceError> {
    let mut ctx = Ctx {
        origin,
        report: Report::default(),
        warnings: Vec::new(),
        cursor: Cursor::default(),
        records: 0,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = TopSeed(&mut ctx)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Err(e) = result {
        return Err(to_source_error(&e, &ctx));
    }
    Ok(Parsed {
        report: ctx.report,
        format: Format::Json,
        records: ctx.records,
        warnings: ctx.warnings,
    })
}

/// The records located by a structural scan, then parsed in contiguous parts on `threads`
/// cores and joined in order: the same report and warnings as [`parse_sequential`]. `None`
/// whenever anything is off (a syntax error, a record that does not parse, a group named
/// differently in two parts); the sequential parser then runs and says what and where.
fn parse_parallel(body: &[u8], origin: &str, threads: usize) -> Option<Parsed> {
    let layout = super::scan::layout(body)?;
    for other in &layout.others {
        serde_json::from_slice::<IgnoredAny>(&body[other.clone()]).ok()?;
    }
    let elements = &layout.elements;
    let per = elements.len().div_ceil(threads).max(1);
    let parts: Vec<Option<Ctx<'_>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = elements
            .chunks(per)
            .enumerate()
            .map(|(k, part)| {
                scope.spawn(move || {
                    let mut ctx = Ctx {
                        origin,
                        report: Report::default(),
                        warnings: Vec::new(),
                        cursor: Cursor::default(),
                        records: k * per,
                    };
                    ctx.report.users.reserve(part.len());
                    for range in part {
                        let mut de = serde_json::Deserializer::from_slice(&body[range.clone()]);
                        let user = UserSeed(&mut ctx).deserialize(&mut de).ok()?;
                        de.end().ok()?;
                        ctx.report.users.push(user);
                        ctx.records += 1;
                    }
                    Some(ctx)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a parsing thread does not panic"))
            .collect()
    });
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        // No records at all.
        return Some(Parsed {
            report: Report::default(),
            format: Format::Json,
            records: 0,
            warnings: Vec::new(),
        });
    };
    let mut joined = first?;
    for part in parts {
        let mut part = part?;
        // Group indices are per part: intern the part's groups in its order of first
        // appearance (the order one pass would have met them) and renumber its users.
        let table = &part.report.groups;
        let mut renumber = Vec::with_capacity(table.len());
        for ix in table.iter() {
            match joined.report.groups.intern(table.id(ix), table.name(ix)) {
                Interned::New(g) | Interned::Known(g) => renumber.push(g),
                Interned::NameDiffers { .. } => return None,
            }
        }
        for u in &mut part.report.users {
            for g in u.groups.iter_mut() {
                *g = renumber[g.0 as usize];
            }
        }
        joined.report.users.append(&mut part.report.users);
        joined.warnings.append(&mut part.warnings);
        joined.records = part.records;
    }
    Some(Parsed {
        report: joined.report,
        format: Format::Json,
        records: joined.records,
        warnings: joined.warnings,
    })
}

fn to_source_error(e: &serde_json::Error, ctx: &Ctx<'_>) -> SourceError {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let mut message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    if e.is_eof() {
        message = format!("{message}: the JSON ends early (truncated file?)");
    }
    SourceError::Malformed {
        origin: ctx.origin.to_string(),
        location: Location::Json {
            line: e.line(),
            column: e.column(),
            record: ctx.cursor.record.get(),
            field: ctx.cursor.field.get(),
        },
        message,
    }
}

/// The document: an envelope object with `data`, or a bare array.
struct TopSeed<'c, 'o>(&'c mut Ctx<'o>);

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with a `data` array of users, or an array of users")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        UsersSeed(self.0).visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen_data = false;
        while let Some(key) = map.next_key::<KeyName>()? {
            if key.0 == "data" {
                if seen_data {
                    return Err(de::Error::duplicate_field("data"));
                }
                seen_data = true;
                map.next_value_seed(UsersSeed(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !seen_data {
            return Err(de::Error::custom(
                "expected an object with a `data` array of users (the API's envelope), or an array of users; found an object without `data`",
            ));
        }
        Ok(())
    }
}

struct UsersSeed<'c, 'o>(&'c mut Ctx<'o>);

impl<'de> DeserializeSeed<'de> for UsersSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for UsersSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of user records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ctx = self.0;
        if let Some(n) = seq.size_hint() {
            ctx.report.users.reserve(n);
        }
        loop {
            let index = ctx.records;
            ctx.cursor.record.set(Some(index));
            match seq.next_element_seed(UserSeed(&mut *ctx))? {
                Some(user) => {
                    ctx.report.users.push(user);
                    ctx.records += 1;
                }
                None => break,
            }
        }
        ctx.cursor.record.set(None);
        Ok(())
    }
}

/// A key, borrowed from the input when it can be.
struct KeyName<'de>(std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for KeyName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(KeyName(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KeyName(v.to_owned().into()))
            }
        }
        d.deserialize_str(V)
    }
}

/// An RFC 3339 timestamp.
struct Rfc3339(Timestamp);

impl<'de> de::Deserialize<'de> for Rfc3339 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rfc3339;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp such as \"2018-02-02T22:25:27.521Z\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Rfc3339, E> {
                super::time::parse_rfc3339(v).map(Rfc3339).ok_or_else(|| {
                    E::custom(format!(
                        "invalid timestamp {v:?}: expected RFC 3339 such as \"2018-02-02T22:25:27.521Z\""
                    ))
                })
            }
        }
        d.deserialize_str(V)
    }
}

struct UserSeed<'c, 'o>(&'c mut Ctx<'o>);

impl<'de> DeserializeSeed<'de> for UserSeed<'_, '_> {
    type Value = User;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<User, D::Error> {
        d.deserialize_map(self)
    }
}

const USER_FIELDS: &[&str] = &[
    "id",
    "record_type",
    "email",
    "user_status",
    "organization_user_bypasses_sso",
    "created_at",
    "last_sign_in_at",
    "groups",
];

impl<'de> Visitor<'de> for UserSeed<'_, '_> {
    type Value = User;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a user record (an object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<User, A::Error> {
        let ctx = self.0;
        let mut id: Option<String> = None;
        let mut record_type: Option<String> = None;
        let mut email: Option<String> = None;
        let mut status: Option<String> = None;
        let mut bypass: Option<Option<bool>> = None;
        let mut created: Option<Rfc3339> = None;
        let mut last: Option<Option<Rfc3339>> = None;
        let mut groups: Option<Vec<GroupIx>> = None;

        fn set<'de, A: MapAccess<'de>, T: de::Deserialize<'de>>(
            map: &mut A,
            cursor: &Cursor,
            slot: &mut Option<T>,
            name: &'static str,
        ) -> Result<(), A::Error> {
            if slot.is_some() {
                return Err(de::Error::duplicate_field(name));
            }
            cursor.field.set(Some(name));
            *slot = Some(map.next_value()?);
            cursor.field.set(None);
            Ok(())
        }

        while let Some(key) = map.next_key::<KeyName>()? {
            let cur = &ctx.cursor;
            match &*key.0 {
                "id" => set(&mut map, cur, &mut id, "id")?,
                "record_type" => set(&mut map, cur, &mut record_type, "record_type")?,
                "email" => set(&mut map, cur, &mut email, "email")?,
                "user_status" => set(&mut map, cur, &mut status, "user_status")?,
                "organization_user_bypasses_sso" => {
                    set(&mut map, cur, &mut bypass, "organization_user_bypasses_sso")?
                }
                "created_at" => set(&mut map, cur, &mut created, "created_at")?,
                "last_sign_in_at" => set(&mut map, cur, &mut last, "last_sign_in_at")?,
                "groups" => {
                    if groups.is_some() {
                        return Err(de::Error::duplicate_field("groups"));
                    }
                    ctx.cursor.field.set(Some("groups"));
                    groups = Some(map.next_value_seed(GroupsSeed(&mut *ctx))?);
                    ctx.cursor.field.set(None);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = |name: &'static str| {
            de::Error::custom(format!(
                "missing field `{name}`; a user record has {}",
                USER_FIELDS.join(", ")
            ))
        };
        let id = id.ok_or_else(|| missing("id"))?;
        let record_type = RecordType::parse(&record_type.ok_or_else(|| missing("record_type"))?);
        let user_status = UserStatus::parse(&status.ok_or_else(|| missing("user_status"))?);
        let email = email.ok_or_else(|| missing("email"))?;
        let created_at = created.ok_or_else(|| missing("created_at"))?.0;
        let index = ctx.records;
        super::warn_unknown_values(
            &mut ctx.warnings,
            ctx.origin,
            &format!("user record {index} (id {id})"),
            &record_type,
            &user_status,
        );
        Ok(User {
            id: id.into(),
            record_type,
            email: email.into(),
            user_status,
            bypasses_sso: bypass.flatten().unwrap_or(false),
            created_at,
            last_sign_in_at: last.flatten().map(|t| t.0),
            groups: groups.unwrap_or_default().into(),
            change: crate::model::Change::Unknown,
        })
    }
}

/// `groups`: an array of `{id, name}`, interned into the report's group table. `null` is empty.
struct GroupsSeed<'c, 'o>(&'c mut Ctx<'o>);

impl<'de> DeserializeSeed<'de> for GroupsSeed<'_, '_> {
    type Value = Vec<GroupIx>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for GroupsSeed<'_, '_> {
    type Value = Vec<GroupIx>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of groups, each {\"id\": ..., \"name\": ...}")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        #[derive(serde::Deserialize)]
        struct Group<'a> {
            #[serde(borrow)]
            id: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            name: std::borrow::Cow<'a, str>,
        }
        let ctx = self.0;
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(g) = seq.next_element::<Group>()? {
            let ix = match ctx.report.groups.intern(&g.id, &g.name) {
                Interned::New(ix) | Interned::Known(ix) => ix,
                Interned::NameDiffers { ix, known_name } => {
                    ctx.warnings.push(Warning {
                        code: "group-name-differs",
                        message: format!(
                            "{}: user record {}: group {} is named {:?} here but {:?} earlier; the first name is used",
                            ctx.origin, ctx.records, g.id, g.name, known_name
                        ),
                    });
                    ix
                }
            };
            out.push(ix);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse as parse_any;
    use super::{parse_parallel, parse_sequential};

    /// `n` records with groups from a pool, some odd values (warnings), escapes and nulls.
    fn records(n: usize, rename_at: Option<usize>) -> String {
        let mut out = String::from("{\"meta\": {\"total\": 1, \"x\": [true, null]}, \"data\": [\n");
        for i in 0..n {
            let status = ["enabled", "disabled", "retired"][i % 3];
            let g = |k: usize| {
                let name = if Some(i) == rename_at { "renamed" } else { "G" };
                format!(
                    "{{\"id\": \"g{}\", \"name\": \"{name} {}\"}}",
                    (i * 7 + k) % 13,
                    (i * 7 + k) % 13
                )
            };
            let groups: Vec<String> = (0..i % 4).map(g).collect();
            let last = if i % 5 == 0 {
                "null".to_string()
            } else {
                "\"2024-02-03T04:05:06.789Z\"".into()
            };
            out.push_str(&format!(
                "  {{\"id\": \"u{i}\", \"record_type\": \"organization_sub_user\", \"email\": \"a\\\"{i}@x.io\", \"user_status\": \"{status}\", \"created_at\": \"2023-01-01T00:00:00Z\", \"last_sign_in_at\": {last}, \"groups\": [{}]}}{}\n",
                groups.join(", "),
                if i + 1 < n { "," } else { "" }
            ));
        }
        out.push_str("], \"page\": 1}");
        out
    }

    #[test]
    fn parallel_parsing_is_one_pass_joined() {
        for (n, threads) in [(1, 2), (2, 4), (1000, 2), (1001, 3)] {
            let body = records(n, None);
            let one = parse_sequential(body.as_bytes(), "r.json").unwrap();
            let many = parse_parallel(body.as_bytes(), "r.json", threads).unwrap();
            assert_eq!(many.report, one.report, "{n} records on {threads}");
            assert_eq!(many.records, one.records);
            assert_eq!(many.warnings, one.warnings);
        }
        // A rename inside the first part warns the same way; across parts, one pass decides.
        let body = records(1000, Some(501));
        let one = parse_sequential(body.as_bytes(), "r.json").unwrap();
        assert!(one.warnings.iter().any(|w| w.code == "group-name-differs"));
        assert!(parse_parallel(body.as_bytes(), "r.json", 2).is_none());
        let many = parse_parallel(body.as_bytes(), "r.json", 1).unwrap();
        assert_eq!(many.warnings, one.warnings);
    }

    /// Whatever the bytes, the parallel parser gives one pass's report or steps aside.
    #[test]
    fn parallel_parsing_never_differs_from_one_pass() {
        let good = records(40, None).into_bytes();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"{}[],:\"\\ 0a\n";
        for _ in 0..3000 {
            let mut doc = good.clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() % doc.len() as u64) as usize;
                match next() % 3 {
                    0 => doc[at] = alphabet[(next() % alphabet.len() as u64) as usize],
                    1 => {
                        doc.remove(at);
                    }
                    _ => doc.insert(at, alphabet[(next() % alphabet.len() as u64) as usize]),
                }
            }
            let Some(many) = parse_parallel(&doc, "r.json", 3) else {
                continue;
            };
            let one = parse_sequential(&doc, "r.json")
                .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&doc)));
            assert_eq!(many.report, one.report);
            assert_eq!(many.warnings, one.warnings);
            assert_eq!(many.records, one.records);
        }
    }

    #[test]
    fn parallel_parsing_leaves_every_error_to_one_pass() {
        let good = records(10, None);
        for bad in [
            good.replace("\"page\": 1", "\"page\": tru"),
            good.replace("\"u3\"", "3"),
            good.replace("2023-01-01T00:00:00Z", "2023-13-01T00:00:00Z"),
            good.replacen("}, \"data\"", "}, \"data\": [], \"data\"", 1),
            good.replace("\"email\"", "\"id\""),
            good.replace("\"page\"", "\"pa\u{1}ge\""),
        ] {
            assert!(
                parse_parallel(bad.as_bytes(), "r.json", 2).is_none(),
                "{bad}"
            );
            assert!(parse_sequential(bad.as_bytes(), "r.json").is_err());
        }
    }

    #[test]
    fn envelope_and_bare_array_are_the_same() {
        let user = r#"{"id":"u1","record_type":"organization_owner","email":"a@b.c","user_status":"enabled","created_at":"2018-01-01T00:00:00Z","last_sign_in_at":null,"groups":[{"id":"g","name":"G"}]}"#;
        let a = parse_any(
            format!("{{\"data\":[{user}],\"meta\":{{}}}}").as_bytes(),
            "a",
        )
        .unwrap();
        let b = parse_any(format!("[{user}]").as_bytes(), "b").unwrap();
        assert_eq!(a.report, b.report);
        assert_eq!(a.records, 1);
        assert!(!a.report.users[0].bypasses_sso);
        assert_eq!(a.report.groups.name(a.report.users[0].groups[0]), "G");
    }

    #[test]
    fn errors_name_record_field_line_and_column() {
        let body = "{\"data\": [\n {\"id\":\"u1\",\"record_type\":\"organization_owner\",\"email\":\"a@b.c\",\"user_status\":\"enabled\",\"created_at\":\"2018-13-01T00:00:00Z\"}\n]}";
        let e = parse_any(body.as_bytes(), "r.json")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "r.json:2:122: user record 0, field `created_at`: invalid timestamp \"2018-13-01T00:00:00Z\": expected RFC 3339 such as \"2018-02-02T22:25:27.521Z\""
        );
    }

    #[test]
    fn wrong_type_missing_field_and_truncation() {
        let e = parse_any(br#"[{"id": 5}]"#, "r.json")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "r.json:1:9: user record 0, field `id`: invalid type: integer `5`, expected a string"
        );
        let e = parse_any(br#"[{"id": "x"}]"#, "r.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("r.json:1:12: user record 0: missing field `record_type`"),
            "{e}"
        );
        let e = parse_any(br#"{"data": [{"id": "x""#, "r.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("the JSON ends early"), "{e}");
        let e = parse_any(br#"{"users": []}"#, "r.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("without `data`"), "{e}");
        let e = parse_any(br#"[] []"#, "r.json").unwrap_err().to_string();
        assert_eq!(e, "r.json:1:4: trailing characters");
    }
}
