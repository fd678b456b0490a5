//! Change detection: a report compared with the previous snapshot of the same organization.
//! Each user gets its [`Change`] (what the change fields of rules read: `is_new_user`,
//! `groups_added`, `sso_bypass_turned_on`, ...), and the run gets [`Changes`], the "changes since
//! the last run" section of every output, whether or not a rule watches them.
//!
//! Users are matched by id. Plain data in, plain data out: no I/O.

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::model::{Change, Compared, GroupIx, GroupTable, Report, User, UserChange};

/// A user as the changes section names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Who {
    /// In a run over several organizations: which.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub organization: Option<String>,
    pub id: String,
    pub email: String,
}

/// A change of one value of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ValueChange {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub organization: Option<String>,
    pub id: String,
    pub email: String,
    pub from: String,
    pub to: String,
}

/// Group memberships a user gained or lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct GroupChange {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub organization: Option<String>,
    pub id: String,
    pub email: String,
    /// Group names.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub added: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub removed: Vec<String>,
}

/// What changed in the organization since the last run: the `changes` block of the JSON output,
/// and the section of every report.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Changes {
    /// The run compared with (its `audited_at`).
    pub since: String,
    pub users_added: Vec<Who>,
    pub users_removed: Vec<Who>,
    /// `user_status` changes.
    pub status_changed: Vec<ValueChange>,
    /// Group memberships gained or lost by users in both snapshots.
    pub groups_changed: Vec<GroupChange>,
    pub sso_bypass_turned_on: Vec<Who>,
    pub sso_bypass_turned_off: Vec<Who>,
    pub became_owner: Vec<Who>,
    pub no_longer_owner: Vec<Who>,
}

impl Changes {
    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        self.users_added.is_empty()
            && self.users_removed.is_empty()
            && self.status_changed.is_empty()
            && self.groups_changed.is_empty()
            && self.sso_bypass_turned_on.is_empty()
            && self.sso_bypass_turned_off.is_empty()
            && self.became_owner.is_empty()
            && self.no_longer_owner.is_empty()
    }

    /// Marks every change as one organization's (a run over several).
    pub fn of_organization(mut self, name: &str) -> Changes {
        let org = Some(name.to_string());
        for w in self
            .users_added
            .iter_mut()
            .chain(&mut self.users_removed)
            .chain(&mut self.sso_bypass_turned_on)
            .chain(&mut self.sso_bypass_turned_off)
            .chain(&mut self.became_owner)
            .chain(&mut self.no_longer_owner)
        {
            w.organization.clone_from(&org);
        }
        for c in &mut self.status_changed {
            c.organization.clone_from(&org);
        }
        for g in &mut self.groups_changed {
            g.organization.clone_from(&org);
        }
        self
    }

    /// Adds another organization's changes (a run over several): `since` is the earliest.
    pub fn extend(&mut self, other: Changes) {
        if other.since < self.since {
            self.since = other.since;
        }
        self.users_added.extend(other.users_added);
        self.users_removed.extend(other.users_removed);
        self.status_changed.extend(other.status_changed);
        self.groups_changed.extend(other.groups_changed);
        self.sso_bypass_turned_on.extend(other.sso_bypass_turned_on);
        self.sso_bypass_turned_off
            .extend(other.sso_bypass_turned_off);
        self.became_owner.extend(other.became_owner);
        self.no_longer_owner.extend(other.no_longer_owner);
    }

    /// How many changes, all kinds together.
    pub fn count(&self) -> usize {
        self.users_added.len()
            + self.users_removed.len()
            + self.status_changed.len()
            + self.groups_changed.len()
            + self.sso_bypass_turned_on.len()
            + self.sso_bypass_turned_off.len()
            + self.became_owner.len()
            + self.no_longer_owner.len()
    }
}

/// One kind of change as reports list it: a label, how many, and the first few, each a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeList {
    pub label: &'static str,
    pub count: usize,
    /// At most the limit given to [`Changes::lists`].
    pub items: Vec<String>,
}

impl Changes {
    /// The kinds of change that happened, in a fixed order, each with its first `limit` items:
    /// what the text, HTML, Markdown and email reports show.
    pub fn lists(&self, limit: usize) -> Vec<ChangeList> {
        fn list<T>(
            label: &'static str,
            all: &[T],
            limit: usize,
            line: impl Fn(&T) -> String,
        ) -> Option<ChangeList> {
            (!all.is_empty()).then(|| ChangeList {
                label,
                count: all.len(),
                items: all.iter().take(limit).map(line).collect(),
            })
        }
        let org = |o: &Option<String>| o.as_ref().map(|o| format!("[{o}] ")).unwrap_or_default();
        let email = |w: &Who| format!("{}{}", org(&w.organization), w.email);
        [
            list("Users added", &self.users_added, limit, email),
            list("Users removed", &self.users_removed, limit, email),
            list(
                "SSO bypass turned on",
                &self.sso_bypass_turned_on,
                limit,
                email,
            ),
            list("Became owner", &self.became_owner, limit, email),
            list("Group memberships", &self.groups_changed, limit, |g| {
                let mut parts: Vec<String> = g.added.iter().map(|n| format!("+{n}")).collect();
                parts.extend(g.removed.iter().map(|n| format!("-{n}")));
                format!("{}{}: {}", org(&g.organization), g.email, parts.join(" "))
            }),
            list("Status changed", &self.status_changed, limit, |c| {
                format!(
                    "{}{}: {} to {}",
                    org(&c.organization),
                    c.email,
                    c.from,
                    c.to
                )
            }),
            list(
                "SSO bypass turned off",
                &self.sso_bypass_turned_off,
                limit,
                email,
            ),
            list("No longer owner", &self.no_longer_owner, limit, email),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

fn who(u: &User) -> Who {
    Who {
        organization: None,
        id: u.id.to_string(),
        email: u.email.to_string(),
    }
}

/// Compares `current` with `previous` (the snapshot of the organization's previous run, taken
/// at `since`): every user of `current` gets its [`Change`], and the report records what it was
/// compared with. Users with the same id are the same user; a user listed twice is compared
/// with the first record of that id.
pub fn compare(current: &mut Report, previous: Report, since: &str) -> Changes {
    let mut out = Changes {
        since: since.to_string(),
        ..Default::default()
    };
    let mut before: FxHashMap<&str, &User> = FxHashMap::default();
    for u in &previous.users {
        before.entry(&u.id).or_insert(u);
    }
    // Each previous group's index in this report's table, by id (groups that still exist).
    let now_ix: Vec<Option<GroupIx>> = previous
        .groups
        .iter()
        .map(|g| current.groups.get(previous.groups.id(g)))
        .collect();
    let mut present: FxHashSet<&str> = FxHashSet::default();
    let mut new_users = 0;
    for u in current.users.iter_mut() {
        let Some(old) = before.get(&*u.id) else {
            new_users += 1;
            out.users_added.push(who(u));
            if u.bypasses_sso {
                out.sso_bypass_turned_on.push(who(u));
            }
            if u.is_owner() {
                out.became_owner.push(who(u));
            }
            u.change = Change::Changed(Box::new(UserChange {
                is_new: true,
                previous_status: None,
                was_owner: false,
                bypassed_sso: false,
                groups_added: u.groups.clone(),
                groups_removed: Box::new([]),
            }));
            continue;
        };
        present.insert(old.id.as_ref());
        let was: FxHashSet<Option<GroupIx>> =
            old.groups.iter().map(|g| now_ix[g.0 as usize]).collect();
        let added: Box<[GroupIx]> = u
            .groups
            .iter()
            .copied()
            .filter(|g| !was.contains(&Some(*g)))
            .collect();
        let removed: Box<[GroupIx]> = old
            .groups
            .iter()
            .copied()
            .filter(|g| now_ix[g.0 as usize].is_none_or(|ix| !u.groups.contains(&ix)))
            .collect();
        let status = old.user_status != u.user_status;
        let bypass = old.bypasses_sso != u.bypasses_sso;
        let owner = old.is_owner() != u.is_owner();
        if !(status || bypass || owner || !added.is_empty() || !removed.is_empty()) {
            u.change = Change::Unchanged;
            continue;
        }
        if status {
            out.status_changed.push(ValueChange {
                organization: None,
                id: u.id.to_string(),
                email: u.email.to_string(),
                from: old.user_status.as_str().to_string(),
                to: u.user_status.as_str().to_string(),
            });
        }
        if !added.is_empty() || !removed.is_empty() {
            out.groups_changed.push(GroupChange {
                organization: None,
                id: u.id.to_string(),
                email: u.email.to_string(),
                added: added
                    .iter()
                    .map(|&g| current.groups.name(g).to_string())
                    .collect(),
                removed: removed
                    .iter()
                    .map(|&g| previous.groups.name(g).to_string())
                    .collect(),
            });
        }
        match (bypass, u.bypasses_sso) {
            (true, true) => out.sso_bypass_turned_on.push(who(u)),
            (true, false) => out.sso_bypass_turned_off.push(who(u)),
            (false, _) => {}
        }
        match (owner, u.is_owner()) {
            (true, true) => out.became_owner.push(who(u)),
            (true, false) => out.no_longer_owner.push(who(u)),
            (false, _) => {}
        }
        u.change = Change::Changed(Box::new(UserChange {
            is_new: false,
            previous_status: Some(old.user_status.clone()),
            was_owner: old.is_owner(),
            bypassed_sso: old.bypasses_sso,
            groups_added: added,
            groups_removed: removed,
        }));
    }
    let mut removed_users = 0;
    let mut listed: FxHashSet<&str> = FxHashSet::default();
    for u in &previous.users {
        if !present.contains(&*u.id) && listed.insert(&u.id) {
            removed_users += 1;
            out.users_removed.push(who(u));
        }
    }
    let groups: GroupTable = previous.groups.clone();
    current.compared = Some(Box::new(Compared {
        groups,
        removed_users,
        new_users,
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: serde_json::Value) -> Report {
        crate::source::parse(json.to_string().as_bytes(), "t")
            .unwrap()
            .report
    }

    fn u(
        id: &str,
        status: &str,
        owner: bool,
        bypass: bool,
        groups: &[(&str, &str)],
    ) -> serde_json::Value {
        let groups: Vec<_> = groups
            .iter()
            .map(|(id, name)| serde_json::json!({"id": id, "name": name}))
            .collect();
        serde_json::json!({"id": id, "email": format!("{id}@x.io"), "user_status": status,
            "record_type": if owner { "organization_owner" } else { "organization_sub_user" },
            "organization_user_bypasses_sso": bypass, "created_at": "2024-01-01T00:00:00Z",
            "last_sign_in_at": null, "groups": groups})
    }

    #[test]
    fn every_kind_of_change_is_found() {
        let admin = ("g-admin", "Admin");
        let eng = ("g-eng", "Eng");
        let old = report(serde_json::json!({"data": [
            u("same", "enabled", false, false, &[eng]),
            u("moved", "enabled", false, false, &[eng]),
            u("flags", "enabled", false, false, &[]),
            u("gone", "enabled", false, false, &[("g-old", "Old")]),
            u("off", "enabled", true, true, &[]),
        ]}));
        let mut now = report(serde_json::json!({"data": [
            u("same", "enabled", false, false, &[eng]),
            u("moved", "enabled", false, false, &[admin]),
            u("flags", "disabled", true, true, &[]),
            u("off", "enabled", false, false, &[]),
            u("new", "enabled", false, true, &[admin]),
        ]}));
        let c = compare(&mut now, old, "2026-11-01T00:00:00Z");
        assert_eq!(
            c.users_added,
            [Who {
                organization: None,
                id: "new".into(),
                email: "new@x.io".into()
            }]
        );
        assert_eq!(c.users_removed[0].id, "gone");
        assert_eq!(
            c.groups_changed,
            [GroupChange {
                organization: None,
                id: "moved".into(),
                email: "moved@x.io".into(),
                added: vec!["Admin".into()],
                removed: vec!["Eng".into()]
            }]
        );
        assert_eq!(c.status_changed[0].from, "enabled");
        assert_eq!(c.status_changed[0].to, "disabled");
        let ids = |w: &[Who]| w.iter().map(|w| w.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&c.sso_bypass_turned_on), ["flags", "new"]);
        assert_eq!(ids(&c.sso_bypass_turned_off), ["off"]);
        assert_eq!(ids(&c.became_owner), ["flags"]);
        assert_eq!(ids(&c.no_longer_owner), ["off"]);
        assert_eq!(now.users[0].change, Change::Unchanged);
        let Change::Changed(moved) = &now.users[1].change else {
            panic!("moved changed")
        };
        assert_eq!(now.groups.name(moved.groups_added[0]), "Admin");
        let compared = now.compared.as_ref().unwrap();
        assert_eq!(compared.groups.name(moved.groups_removed[0]), "Eng");
        assert_eq!((compared.removed_users, compared.new_users), (1, 1));
        assert_eq!(c.count(), 9);
    }
}
