//! Reading the fields of a subject through the registry's accessors, and their JSON form for
//! evidence, messages and `expr`. Every read goes through a field's [`Get`]: there is no table
//! of fields here to fall out of step with the registry.

use std::borrow::Cow;

use chrono::SecondsFormat;
use serde_json::{json, Map, Value as J};

use crate::model::{Change, GroupInfo, GroupIx, GroupTable, OrgStats, Report, Timestamp, User};
use crate::rules::registry::{fields_of, CountGet, FieldId, Get, GroupList, Membership, TextGet};
use crate::rules::Scope;

/// What a predicate is evaluated against.
#[derive(Debug, Clone, Copy)]
pub enum Subj<'a> {
    User(&'a User),
    Group(&'a GroupInfo),
    Org(&'a OrgStats),
}

impl<'a> Subj<'a> {
    pub fn scope(self) -> Scope {
        match self {
            Subj::User(_) => Scope::User,
            Subj::Group(_) => Scope::Group,
            Subj::Org(_) => Scope::Organization,
        }
    }

    // The validator keeps every field to its rule's scope (and quantifiers switch to users), so a
    // field of one scope is never read on a subject of another: these are assertions of that.

    pub(super) fn user(self) -> &'a User {
        match self {
            Subj::User(u) => u,
            Subj::Group(_) | Subj::Org(_) => unreachable!("a user field read on a {:?}", self),
        }
    }

    fn group(self) -> &'a GroupInfo {
        match self {
            Subj::Group(g) => g,
            Subj::User(_) | Subj::Org(_) => unreachable!("a group field read on a {:?}", self),
        }
    }

    fn org(self) -> &'a OrgStats {
        match self {
            Subj::Org(o) => o,
            Subj::User(_) | Subj::Group(_) => {
                unreachable!("an organization field read on a {:?}", self)
            }
        }
    }
}

pub fn time_json(t: Timestamp) -> J {
    J::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

pub fn text<'a>(report: &'a Report, s: Subj<'a>, get: TextGet) -> Cow<'a, str> {
    match get {
        TextGet::User(g) => g(s.user()),
        TextGet::Group(key) => Cow::Borrowed(key.of(&report.groups, s.group().ix)),
    }
}

pub fn count(s: Subj<'_>, get: CountGet) -> usize {
    match get {
        CountGet::User(g) => g(s.user()),
        CountGet::Group(g) => g(s.group()),
        CountGet::Org(g) => g(s.org()),
    }
}

pub fn time(s: Subj<'_>, get: fn(&User) -> Option<Timestamp>) -> Option<Timestamp> {
    get(s.user())
}

pub fn bool_of(s: Subj<'_>, get: fn(&User) -> bool) -> bool {
    get(s.user())
}

/// A list of the user's groups, without collecting it.
pub fn groups<'a>(
    report: &'a Report,
    s: Subj<'a>,
    list: GroupList,
) -> impl Iterator<Item = &'a str> + 'a {
    let u = s.user();
    let changed = match &u.change {
        Change::Changed(c) => Some(&**c),
        Change::Unknown | Change::Unchanged => None,
    };
    let (ixs, table): (&[GroupIx], &GroupTable) = match (list.of, changed, &report.compared) {
        (Membership::Current, _, _) => (&u.groups, &report.groups),
        (Membership::Added, Some(c), _) => (&c.groups_added, &report.groups),
        (Membership::Removed, Some(c), Some(before)) => (&c.groups_removed, &before.groups),
        (Membership::Added | Membership::Removed, _, _) => (&[], &report.groups),
    };
    ixs.iter().map(move |&g| list.key.of(table, g))
}

/// A time field's value, for `days_since_<field>`: `None` when null, or when `f` is not a time.
pub fn time_of(s: Subj<'_>, f: FieldId) -> Option<Timestamp> {
    match f.def().get {
        Get::Time(g) => g(s.user()),
        Get::Text(..) | Get::Bool(_) | Get::Count(_) | Get::Groups(_) => None,
    }
}

/// Whether a field has a value: not null, not an empty string or list.
pub fn present(report: &Report, s: Subj<'_>, get: Get) -> bool {
    match get {
        Get::Text(t, _) => !text(report, s, t).is_empty(),
        Get::Bool(_) | Get::Count(_) => true,
        Get::Time(g) => g(s.user()).is_some(),
        Get::Groups(list) => groups(report, s, list).next().is_some(),
    }
}

/// A field's value as JSON.
pub fn field_json(report: &Report, s: Subj<'_>, f: FieldId) -> J {
    match f.def().get {
        Get::Text(t, _) => J::String(text(report, s, t).into_owned()),
        Get::Bool(g) => J::Bool(g(s.user())),
        Get::Count(c) => json!(count(s, c)),
        Get::Time(g) => g(s.user()).map_or(J::Null, time_json),
        Get::Groups(key) => J::Array(
            groups(report, s, key)
                .map(|v| J::String(v.to_owned()))
                .collect(),
        ),
    }
}

/// Every field of the subject's scope, as a JSON object (templates and `expr`).
pub fn subject_json(report: &Report, s: Subj<'_>) -> Map<String, J> {
    fields_of(s.scope())
        .map(|d| (d.name.to_string(), field_json(report, s, d.id)))
        .collect()
}

/// A short description of a user for evidence lists.
pub fn user_brief(u: &User) -> J {
    json!({ "id": &*u.id, "email": &*u.email, "user_status": u.user_status.as_str() })
}
