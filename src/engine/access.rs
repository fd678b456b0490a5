//! Typed access to the fields of a subject, and their JSON form for evidence and templates.

use std::borrow::Cow;

use chrono::SecondsFormat;
use serde_json::{json, Map, Value as J};

use crate::model::{GroupIx, Report, Timestamp, User};
use crate::rules::registry::{fields_of, FieldId, FieldType};
use crate::rules::Scope;

/// Counts over the whole report, for organization rules.
#[derive(Debug, Default, Clone)]
pub struct OrgStats {
    pub user_count: usize,
    pub active_user_count: usize,
    pub owner_count: usize,
    pub active_owner_count: usize,
    pub group_count: usize,
}

impl OrgStats {
    pub fn of(report: &Report) -> Self {
        let mut s = OrgStats {
            user_count: report.users.len(),
            group_count: report.groups.len(),
            ..Default::default()
        };
        for u in &report.users {
            let active = u.is_active();
            s.active_user_count += active as usize;
            s.owner_count += u.is_owner() as usize;
            s.active_owner_count += (active && u.is_owner()) as usize;
        }
        s
    }
}

/// A group with its members (user indices in report order).
#[derive(Debug, Clone)]
pub struct GroupInfo {
    pub ix: GroupIx,
    pub members: Vec<u32>,
    pub active_members: usize,
}

/// Members of every group, indexed by group.
pub fn group_infos(report: &Report) -> Vec<GroupInfo> {
    let mut out: Vec<GroupInfo> = report
        .groups
        .iter()
        .map(|ix| GroupInfo {
            ix,
            members: Vec::new(),
            active_members: 0,
        })
        .collect();
    for (i, u) in report.users.iter().enumerate() {
        for g in u.groups.iter() {
            let info = &mut out[g.0 as usize];
            if info.members.last() != Some(&(i as u32)) {
                info.members.push(i as u32);
                info.active_members += u.is_active() as usize;
            }
        }
    }
    out
}

/// What a predicate is evaluated against.
#[derive(Clone, Copy)]
pub enum Subj<'a> {
    User(&'a User),
    Group(&'a GroupInfo),
    Org(&'a OrgStats),
}

pub fn time_json(t: Timestamp) -> J {
    J::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

pub fn user_str<'a>(report: &'a Report, u: &'a User, f: FieldId) -> Cow<'a, str> {
    let _ = report;
    match f {
        FieldId::UserId => Cow::Borrowed(&u.id),
        FieldId::Email => Cow::Borrowed(&u.email),
        FieldId::EmailNormalized => u.email_normalized(),
        FieldId::EmailDomain => u.email_domain(),
        FieldId::RecordType => Cow::Borrowed(u.record_type.as_str()),
        FieldId::UserStatus => Cow::Borrowed(u.user_status.as_str()),
        _ => Cow::Borrowed(""),
    }
}

pub fn str_field<'a>(report: &'a Report, s: Subj<'a>, f: FieldId) -> Cow<'a, str> {
    match (s, f) {
        (Subj::User(u), _) => user_str(report, u, f),
        (Subj::Group(g), FieldId::GroupId) => Cow::Borrowed(report.groups.id(g.ix)),
        (Subj::Group(g), FieldId::GroupName) => Cow::Borrowed(report.groups.name(g.ix)),
        _ => Cow::Borrowed(""),
    }
}

pub fn bool_field(s: Subj<'_>, f: FieldId) -> bool {
    match (s, f) {
        (Subj::User(u), FieldId::Active) => u.is_active(),
        (Subj::User(u), FieldId::IsOwner) => u.is_owner(),
        (Subj::User(u), FieldId::BypassesSso) => u.bypasses_sso,
        _ => false,
    }
}

pub fn num_field(s: Subj<'_>, f: FieldId) -> f64 {
    let n = match (s, f) {
        (Subj::User(u), FieldId::GroupCount) => u.groups.len(),
        (Subj::Group(g), FieldId::MemberCount) => g.members.len(),
        (Subj::Group(g), FieldId::ActiveMemberCount) => g.active_members,
        (Subj::Org(o), FieldId::UserCount) => o.user_count,
        (Subj::Org(o), FieldId::ActiveUserCount) => o.active_user_count,
        (Subj::Org(o), FieldId::OwnerCount) => o.owner_count,
        (Subj::Org(o), FieldId::ActiveOwnerCount) => o.active_owner_count,
        (Subj::Org(o), FieldId::OrgGroupCount) => o.group_count,
        _ => 0,
    };
    n as f64
}

pub fn time_field(s: Subj<'_>, f: FieldId) -> Option<Timestamp> {
    match (s, f) {
        (Subj::User(u), FieldId::CreatedAt) => Some(u.created_at),
        (Subj::User(u), FieldId::LastSignInAt) => u.last_sign_in_at,
        _ => None,
    }
}

/// The elements of a list field, without collecting them.
pub fn list_field<'a>(
    report: &'a Report,
    s: Subj<'a>,
    f: FieldId,
) -> impl Iterator<Item = &'a str> + 'a {
    let groups: &[GroupIx] = match s {
        Subj::User(u) => &u.groups,
        _ => &[],
    };
    let ids = f == FieldId::GroupIds;
    groups.iter().map(move |&g| {
        if ids {
            report.groups.id(g)
        } else {
            report.groups.name(g)
        }
    })
}

/// Whether a field has a value: not null, not an empty string or list.
pub fn present(report: &Report, s: Subj<'_>, f: FieldId) -> bool {
    match f.def().ty {
        FieldType::Timestamp => time_field(s, f).is_some(),
        FieldType::Str | FieldType::Enum(_) => !str_field(report, s, f).is_empty(),
        FieldType::List => match s {
            Subj::User(u) => !u.groups.is_empty(),
            _ => false,
        },
        FieldType::Bool | FieldType::Number => true,
    }
}

/// A field's value as JSON.
pub fn field_json(report: &Report, s: Subj<'_>, f: FieldId) -> J {
    match f.def().ty {
        FieldType::Str | FieldType::Enum(_) => J::String(str_field(report, s, f).into_owned()),
        FieldType::Bool => J::Bool(bool_field(s, f)),
        FieldType::Number => json!(num_field(s, f) as u64),
        FieldType::Timestamp => time_field(s, f).map_or(J::Null, time_json),
        FieldType::List => J::Array(
            list_field(report, s, f)
                .map(|v| J::String(v.to_owned()))
                .collect(),
        ),
    }
}

/// Every field of the subject's scope, as a JSON object (templates and `expr`).
pub fn subject_json(report: &Report, s: Subj<'_>) -> Map<String, J> {
    let scope = match s {
        Subj::User(_) => Scope::User,
        Subj::Group(_) => Scope::Group,
        Subj::Org(_) => Scope::Organization,
    };
    fields_of(scope)
        .map(|d| (d.name.to_string(), field_json(report, s, d.id)))
        .collect()
}

/// A short description of a user for evidence lists.
pub fn user_brief(u: &User) -> J {
    json!({ "id": &*u.id, "email": &*u.email, "user_status": u.user_status.as_str() })
}
