//! The typed model of a Telnyx organization users groups report: plain data, no I/O.
//!
//! Group ids and names are interned once per report (`GroupTable`), so a user holds only small
//! indices and a million users with a few hundred groups stay compact in memory.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A point in time, always UTC.
pub type Timestamp = DateTime<Utc>;

/// `user_status`: known values are typed; any other value is kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Enabled,
    Disabled,
    Blocked,
    Other(Box<str>),
}

impl UserStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "enabled" => Self::Enabled,
            "disabled" => Self::Disabled,
            "blocked" => Self::Blocked,
            other => Self::Other(other.into()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
            Self::Blocked => "blocked",
            Self::Other(s) => s,
        }
    }
    pub const KNOWN: &'static [&'static str] = &["enabled", "disabled", "blocked"];
}

/// `record_type`: known values are typed; any other value is kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordType {
    Owner,
    SubUser,
    Other(Box<str>),
}

impl RecordType {
    pub fn parse(s: &str) -> Self {
        match s {
            "organization_owner" => Self::Owner,
            "organization_sub_user" => Self::SubUser,
            other => Self::Other(other.into()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::Owner => "organization_owner",
            Self::SubUser => "organization_sub_user",
            Self::Other(s) => s,
        }
    }
    pub const KNOWN: &'static [&'static str] = &["organization_owner", "organization_sub_user"];
}

/// The index of a group in its report's [`GroupTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupIx(pub u32);

/// One user record.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: Box<str>,
    pub record_type: RecordType,
    pub email: Box<str>,
    pub user_status: UserStatus,
    /// `organization_user_bypasses_sso`; absent in the source means false.
    pub bypasses_sso: bool,
    pub created_at: Timestamp,
    /// `None`: never signed in.
    pub last_sign_in_at: Option<Timestamp>,
    /// Memberships in source order.
    pub groups: Box<[GroupIx]>,
    /// What changed since the previous snapshot ([`crate::changes::compare`]); `Unknown`
    /// without one.
    pub change: Change,
}

/// What changed for a user since the previous snapshot of the organization.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Change {
    /// No previous snapshot to compare with.
    #[default]
    Unknown,
    /// In the previous snapshot, as it is now.
    Unchanged,
    Changed(Box<UserChange>),
}

/// How a user differs from the previous snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct UserChange {
    /// Not in the previous snapshot (every other field then compares with nothing).
    pub is_new: bool,
    /// `None` when new.
    pub previous_status: Option<UserStatus>,
    pub was_owner: bool,
    pub bypassed_sso: bool,
    /// Groups now that it was not in before (this report's groups).
    pub groups_added: Box<[GroupIx]>,
    /// Groups it was in before and is not now (the previous snapshot's groups,
    /// [`Compared::groups`]).
    pub groups_removed: Box<[GroupIx]>,
}

impl User {
    /// Active means `user_status == enabled`.
    pub fn is_active(&self) -> bool {
        self.user_status == UserStatus::Enabled
    }
    pub fn is_owner(&self) -> bool {
        self.record_type == RecordType::Owner
    }
    /// The email trimmed and lower-cased; borrowed when it already is.
    pub fn email_normalized(&self) -> Cow<'_, str> {
        normalize_email(&self.email)
    }
    /// What follows the last `@` of the normalized email; empty when there is no `@`.
    pub fn email_domain(&self) -> Cow<'_, str> {
        match self.email_normalized() {
            Cow::Borrowed(s) => Cow::Borrowed(s.rsplit_once('@').map_or("", |(_, d)| d)),
            Cow::Owned(s) => Cow::Owned(s.rsplit_once('@').map_or("", |(_, d)| d).to_owned()),
        }
    }
}

/// Trims and lower-cases an email address, without allocating when it already is normal.
pub fn normalize_email(email: &str) -> Cow<'_, str> {
    // The common case, checked on bytes: ASCII, no upper case, nothing to trim.
    let b = email.as_bytes();
    let plain = |c: &u8| c.is_ascii() && !c.is_ascii_uppercase();
    let edge = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_graphic());
    if edge(b.first()) && edge(b.last()) && b.iter().all(plain) {
        return Cow::Borrowed(email);
    }
    let trimmed = email.trim();
    if trimmed.chars().any(char::is_uppercase) {
        Cow::Owned(trimmed.to_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

/// The groups of a report, interned by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupTable {
    ids: Vec<Box<str>>,
    names: Vec<Box<str>>,
    by_id: rustc_hash::FxHashMap<Box<str>, GroupIx>,
}

/// What [`GroupTable::intern`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Interned {
    New(GroupIx),
    Known(GroupIx),
    /// The id is known under another name; the first name is kept.
    NameDiffers {
        ix: GroupIx,
        known_name: String,
    },
}

impl GroupTable {
    pub fn intern(&mut self, id: &str, name: &str) -> Interned {
        if let Some(&ix) = self.by_id.get(id) {
            let known = &self.names[ix.0 as usize];
            if **known == *name {
                return Interned::Known(ix);
            }
            return Interned::NameDiffers {
                ix,
                known_name: known.to_string(),
            };
        }
        let ix = GroupIx(self.ids.len() as u32);
        self.ids.push(id.into());
        self.names.push(name.into());
        self.by_id.insert(id.into(), ix);
        Interned::New(ix)
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    pub fn id(&self, ix: GroupIx) -> &str {
        &self.ids[ix.0 as usize]
    }
    pub fn name(&self, ix: GroupIx) -> &str {
        &self.names[ix.0 as usize]
    }
    pub fn get(&self, id: &str) -> Option<GroupIx> {
        self.by_id.get(id).copied()
    }
    pub fn iter(&self) -> impl Iterator<Item = GroupIx> {
        (0..self.ids.len() as u32).map(GroupIx)
    }
}

/// A whole report: users in source order and the groups they reference.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub users: Vec<User>,
    pub groups: GroupTable,
    /// With a previous snapshot: what the users' changes refer to.
    pub compared: Option<Box<Compared>>,
}

/// What a report was compared with ([`crate::changes::compare`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Compared {
    /// The previous snapshot's groups (a user's `groups_removed` index them).
    pub groups: GroupTable,
    /// Users in the previous snapshot and not in this one.
    pub removed_users: usize,
    /// Users in this report and not in the previous snapshot.
    pub new_users: usize,
}

impl Report {
    /// Group names of a user, in membership order.
    pub fn group_names<'a>(&'a self, user: &'a User) -> impl Iterator<Item = &'a str> + 'a {
        user.groups.iter().map(|&g| self.groups.name(g))
    }
    pub fn group_ids<'a>(&'a self, user: &'a User) -> impl Iterator<Item = &'a str> + 'a {
        user.groups.iter().map(|&g| self.groups.id(g))
    }
}

/// Counts over a whole report: what organization rules test.
#[derive(Debug, Default, Clone)]
pub struct OrgStats {
    /// Users gone since the previous snapshot (0 without one).
    pub removed_user_count: usize,
    /// Users not in the previous snapshot (0 without one).
    pub new_user_count: usize,
    pub user_count: usize,
    pub active_user_count: usize,
    pub owner_count: usize,
    pub active_owner_count: usize,
    pub group_count: usize,
}

impl OrgStats {
    pub fn of(report: &Report) -> Self {
        let mut s = OrgStats {
            removed_user_count: report.compared.as_ref().map_or(0, |c| c.removed_users),
            new_user_count: report.compared.as_ref().map_or(0, |c| c.new_users),
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

/// A group with its members (user indices in report order, each once): what group rules test.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    pub ix: GroupIx,
    pub members: Vec<u32>,
    pub active_members: usize,
}

impl GroupInfo {
    /// Every group of a report with its members, indexed by group.
    pub fn all(report: &Report) -> Vec<GroupInfo> {
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
}

/// A problem in the input that does not stop the audit: reported on stderr and in the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Warning {
    /// A stable, machine-readable kind, e.g. `unknown-user-status`.
    #[serde(deserialize_with = "crate::diag::interned")]
    pub code: crate::diag::StaticStr,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warning[{}]: {}", self.code, self.message)
    }
}

/// Where a report came from, as recorded in the output.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SourceInfo {
    /// `file`, `stdin` or `telnyx-api`.
    #[serde(deserialize_with = "crate::diag::interned")]
    pub kind: crate::diag::StaticStr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The organization's name, when several are audited together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The API's base URL (never the key), for `telnyx-api`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// When the report was fetched, RFC 3339 UTC, for `telnyx-api`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched_at: Option<String>,
    /// `json` or `csv`.
    #[serde(deserialize_with = "crate::diag::interned")]
    pub format: crate::diag::StaticStr,
    /// Of the raw bytes; for several organizations, of their `name:sha256` lines.
    pub sha256: String,
    /// Records in the source: array elements in JSON, data rows in CSV.
    pub records: usize,
    /// One entry per organization when several are audited together.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub organizations: Vec<SourceInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_normalization_and_domain() {
        assert_eq!(normalize_email("  Alice@Example.COM "), "alice@example.com");
        assert!(matches!(normalize_email("a@b.c"), Cow::Borrowed(_)));
        // Past the ASCII fast path: other whitespace, non-ASCII upper case, empty.
        assert_eq!(normalize_email("\ta@b.c\u{a0}"), "a@b.c");
        assert_eq!(normalize_email("ÉLODIE@exemple.fr"), "élodie@exemple.fr");
        assert!(matches!(
            normalize_email("élodie@exemple.fr"),
            Cow::Borrowed(_)
        ));
        assert_eq!(normalize_email(""), "");
        assert_eq!(normalize_email("   "), "");
        let u = User {
            id: "1".into(),
            record_type: RecordType::SubUser,
            email: "x@y@Corp.io".into(),
            user_status: UserStatus::Enabled,
            bypasses_sso: false,
            created_at: Utc::now(),
            last_sign_in_at: None,
            groups: Box::new([]),
            change: Change::Unknown,
        };
        assert_eq!(u.email_domain(), "corp.io");
    }

    #[test]
    fn interning_keeps_the_first_name() {
        let mut t = GroupTable::default();
        assert_eq!(t.intern("g1", "Eng"), Interned::New(GroupIx(0)));
        assert_eq!(t.intern("g1", "Eng"), Interned::Known(GroupIx(0)));
        assert_eq!(
            t.intern("g1", "Engineering"),
            Interned::NameDiffers {
                ix: GroupIx(0),
                known_name: "Eng".into()
            }
        );
        assert_eq!(t.name(GroupIx(0)), "Eng");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn unknown_enum_values_are_kept() {
        assert_eq!(UserStatus::parse("suspended").as_str(), "suspended");
        assert_eq!(RecordType::parse("organization_owner"), RecordType::Owner);
    }
}
