//! The one registry of rule fields, operators, condition forms and template variables. Long by
//! design: every fact of the rule vocabulary is one table entry here, and validation,
//! evaluation, the reference (`orgaudit rules reference`, docs/rules.md) are made from it.

use std::borrow::Cow;

use super::Scope;
use crate::model::{
    Change, GroupInfo, GroupIx, GroupTable, OrgStats, RecordType, Timestamp, User, UserChange,
    UserStatus,
};

/// Every field a condition can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldId {
    UserId,
    Email,
    EmailNormalized,
    EmailDomain,
    RecordType,
    UserStatus,
    Active,
    IsOwner,
    BypassesSso,
    CreatedAt,
    LastSignInAt,
    Groups,
    GroupIds,
    GroupCount,
    IsNewUser,
    PreviousUserStatus,
    SsoBypassTurnedOn,
    BecameOwner,
    GroupsAdded,
    GroupIdsAdded,
    GroupsRemoved,
    GroupIdsRemoved,
    GroupId,
    GroupName,
    MemberCount,
    ActiveMemberCount,
    UserCount,
    ActiveUserCount,
    OwnerCount,
    ActiveOwnerCount,
    OrgGroupCount,
    NewUserCount,
    RemovedUserCount,
}

/// The type of a field, which decides the operators that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Str,
    /// A string with known values (others are kept and compare as strings).
    Enum(&'static [&'static str]),
    Bool,
    Number,
    Timestamp,
    /// A list of strings.
    List,
}

impl FieldType {
    pub fn describe(self) -> &'static str {
        match self {
            FieldType::Str => "string",
            FieldType::Enum(_) => "enum",
            FieldType::Bool => "boolean",
            FieldType::Number => "number",
            FieldType::Timestamp => "timestamp",
            FieldType::List => "list of strings",
        }
    }
    fn class(self) -> TypeClass {
        match self {
            FieldType::Str | FieldType::Enum(_) => TypeClass::Text,
            FieldType::Bool => TypeClass::Bool,
            FieldType::Number => TypeClass::Number,
            FieldType::Timestamp => TypeClass::Timestamp,
            FieldType::List => TypeClass::List,
        }
    }
}

/// Which string of a group a field reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKey {
    Id,
    Name,
}

impl GroupKey {
    pub fn of(self, groups: &GroupTable, ix: GroupIx) -> &str {
        match self {
            GroupKey::Id => groups.id(ix),
            GroupKey::Name => groups.name(ix),
        }
    }
}

/// Which list of groups a list field reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// The user's groups now.
    Current,
    /// Groups joined since the previous snapshot.
    Added,
    /// Groups left since the previous snapshot (named as they were then).
    Removed,
}

/// A list of a user's groups: which list, and which string of each group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupList {
    pub of: Membership,
    pub key: GroupKey,
}

/// How a text field is read.
#[derive(Debug, Clone, Copy)]
pub enum TextGet {
    User(for<'a> fn(&'a User) -> Cow<'a, str>),
    Group(GroupKey),
}

/// How a count is read.
#[derive(Debug, Clone, Copy)]
pub enum CountGet {
    User(fn(&User) -> usize),
    Group(fn(&GroupInfo) -> usize),
    Org(fn(&OrgStats) -> usize),
}

/// How a field is read from its subject: the accessor every use of the field goes through
/// (conditions, evidence, messages, `expr`). A field's type and scope follow from it, so that
/// a field cannot be declared without a way to read it, nor read as another type.
#[derive(Debug, Clone, Copy)]
pub enum Get {
    /// A string; with `known`, an enum of those values (others are kept).
    Text(TextGet, Option<&'static [&'static str]>),
    Bool(fn(&User) -> bool),
    Count(CountGet),
    /// A time, `None` when null.
    Time(fn(&User) -> Option<Timestamp>),
    /// A list of the user's groups, by id or by name, in membership order.
    Groups(GroupList),
}

impl Get {
    pub fn ty(self) -> FieldType {
        match self {
            Get::Text(_, None) => FieldType::Str,
            Get::Text(_, Some(known)) => FieldType::Enum(known),
            Get::Bool(_) => FieldType::Bool,
            Get::Count(_) => FieldType::Number,
            Get::Time(_) => FieldType::Timestamp,
            Get::Groups(_) => FieldType::List,
        }
    }

    pub fn scope(self) -> Scope {
        match self {
            Get::Text(TextGet::User(_), _)
            | Get::Bool(_)
            | Get::Count(CountGet::User(_))
            | Get::Time(_)
            | Get::Groups(_) => Scope::User,
            Get::Text(TextGet::Group(_), _) | Get::Count(CountGet::Group(_)) => Scope::Group,
            Get::Count(CountGet::Org(_)) => Scope::Organization,
        }
    }
}

#[derive(Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub id: FieldId,
    pub get: Get,
    /// Can be null (only `last_sign_in_at`).
    pub nullable: bool,
    /// Compares with the previous snapshot: unknown without one (a rule that reads it is then
    /// not evaluated).
    pub change: bool,
    /// Values are lower-case; constants compared with it are lower-cased too.
    pub lowercase: bool,
    pub doc: &'static str,
}

impl FieldDef {
    pub fn ty(&self) -> FieldType {
        self.get.ty()
    }
    pub fn scope(&self) -> Scope {
        self.get.scope()
    }
}

const fn f(name: &'static str, id: FieldId, get: Get, doc: &'static str) -> FieldDef {
    FieldDef {
        name,
        id,
        get,
        nullable: false,
        change: false,
        lowercase: false,
        doc,
    }
}

/// A change-detection field ([`FieldDef::change`]).
const fn changed(name: &'static str, id: FieldId, get: Get, doc: &'static str) -> FieldDef {
    FieldDef {
        change: true,
        ..f(name, id, get, doc)
    }
}

/// The user's change, when something changed.
fn change(u: &User) -> Option<&UserChange> {
    match &u.change {
        Change::Changed(c) => Some(c),
        Change::Unknown | Change::Unchanged => None,
    }
}

use FieldId as F;
use Scope::{Group as G, Organization as O, User as U};

/// Every field, in [`FieldId`] order (a test checks it), so that a field's definition is an
/// index away.
pub static FIELDS: &[FieldDef] = &[
    f(
        "id",
        F::UserId,
        Get::Text(TextGet::User(|u| Cow::Borrowed(&u.id)), None),
        "the user's id",
    ),
    f(
        "email",
        F::Email,
        Get::Text(TextGet::User(|u| Cow::Borrowed(&u.email)), None),
        "the email as given in the report",
    ),
    FieldDef {
        lowercase: true,
        ..f(
            "email_normalized",
            F::EmailNormalized,
            Get::Text(TextGet::User(User::email_normalized), None),
            "the email trimmed and lower-cased",
        )
    },
    FieldDef {
        lowercase: true,
        ..f(
            "email_domain",
            F::EmailDomain,
            Get::Text(TextGet::User(User::email_domain), None),
            "what follows the last `@` of the normalized email",
        )
    },
    f(
        "record_type",
        F::RecordType,
        Get::Text(
            TextGet::User(|u| Cow::Borrowed(u.record_type.as_str())),
            Some(RecordType::KNOWN),
        ),
        "`organization_owner` or `organization_sub_user` (other values are kept)",
    ),
    f(
        "user_status",
        F::UserStatus,
        Get::Text(
            TextGet::User(|u| Cow::Borrowed(u.user_status.as_str())),
            Some(UserStatus::KNOWN),
        ),
        "`enabled`, `disabled` or `blocked` (other values are kept)",
    ),
    f(
        "active",
        F::Active,
        Get::Bool(User::is_active),
        "true when `user_status` is `enabled`",
    ),
    f(
        "is_owner",
        F::IsOwner,
        Get::Bool(User::is_owner),
        "true when `record_type` is `organization_owner`",
    ),
    f(
        "organization_user_bypasses_sso",
        F::BypassesSso,
        Get::Bool(|u| u.bypasses_sso),
        "may sign in with a password instead of SSO (absent means false)",
    ),
    f(
        "created_at",
        F::CreatedAt,
        Get::Time(|u| Some(u.created_at)),
        "when the user was created (UTC)",
    ),
    FieldDef {
        nullable: true,
        ..f(
            "last_sign_in_at",
            F::LastSignInAt,
            Get::Time(|u| u.last_sign_in_at),
            "the last portal sign-in (UTC); null when the user never signed in",
        )
    },
    f(
        "groups",
        F::Groups,
        Get::Groups(GroupList {
            of: Membership::Current,
            key: GroupKey::Name,
        }),
        "the names of the user's groups",
    ),
    f(
        "group_ids",
        F::GroupIds,
        Get::Groups(GroupList {
            of: Membership::Current,
            key: GroupKey::Id,
        }),
        "the ids of the user's groups",
    ),
    f(
        "group_count",
        F::GroupCount,
        Get::Count(CountGet::User(|u| u.groups.len())),
        "how many groups the user is in",
    ),
    changed(
        "is_new_user",
        F::IsNewUser,
        Get::Bool(|u| change(u).is_some_and(|c| c.is_new)),
        "change: the user was not in the previous snapshot",
    ),
    FieldDef {
        nullable: true,
        ..changed(
            "previous_user_status",
            F::PreviousUserStatus,
            Get::Text(
                TextGet::User(|u| match &u.change {
                    Change::Unknown => Cow::Borrowed(""),
                    Change::Unchanged => Cow::Borrowed(u.user_status.as_str()),
                    Change::Changed(c) => {
                        Cow::Borrowed(c.previous_status.as_ref().map_or("", |s| s.as_str()))
                    }
                }),
                Some(UserStatus::KNOWN),
            ),
            "change: `user_status` in the previous snapshot; empty for a new user",
        )
    },
    changed(
        "sso_bypass_turned_on",
        F::SsoBypassTurnedOn,
        Get::Bool(|u| u.bypasses_sso && change(u).is_some_and(|c| !c.bypassed_sso)),
        "change: the user may bypass SSO and could not before (or is new and may)",
    ),
    changed(
        "became_owner",
        F::BecameOwner,
        Get::Bool(|u| u.is_owner() && change(u).is_some_and(|c| !c.was_owner)),
        "change: the user is an owner and was not before (or is a new owner)",
    ),
    changed(
        "groups_added",
        F::GroupsAdded,
        Get::Groups(GroupList {
            of: Membership::Added,
            key: GroupKey::Name,
        }),
        "change: names of the groups the user joined (all of a new user's groups)",
    ),
    changed(
        "group_ids_added",
        F::GroupIdsAdded,
        Get::Groups(GroupList {
            of: Membership::Added,
            key: GroupKey::Id,
        }),
        "change: ids of the groups the user joined",
    ),
    changed(
        "groups_removed",
        F::GroupsRemoved,
        Get::Groups(GroupList {
            of: Membership::Removed,
            key: GroupKey::Name,
        }),
        "change: names (as they were) of the groups the user left",
    ),
    changed(
        "group_ids_removed",
        F::GroupIdsRemoved,
        Get::Groups(GroupList {
            of: Membership::Removed,
            key: GroupKey::Id,
        }),
        "change: ids of the groups the user left",
    ),
    f(
        "id",
        F::GroupId,
        Get::Text(TextGet::Group(GroupKey::Id), None),
        "the group's id",
    ),
    f(
        "name",
        F::GroupName,
        Get::Text(TextGet::Group(GroupKey::Name), None),
        "the group's name",
    ),
    f(
        "member_count",
        F::MemberCount,
        Get::Count(CountGet::Group(|g| g.members.len())),
        "users in the group",
    ),
    f(
        "active_member_count",
        F::ActiveMemberCount,
        Get::Count(CountGet::Group(|g| g.active_members)),
        "active users in the group",
    ),
    f(
        "user_count",
        F::UserCount,
        Get::Count(CountGet::Org(|o| o.user_count)),
        "users in the report",
    ),
    f(
        "active_user_count",
        F::ActiveUserCount,
        Get::Count(CountGet::Org(|o| o.active_user_count)),
        "active users",
    ),
    f(
        "owner_count",
        F::OwnerCount,
        Get::Count(CountGet::Org(|o| o.owner_count)),
        "users whose `record_type` is `organization_owner`",
    ),
    f(
        "active_owner_count",
        F::ActiveOwnerCount,
        Get::Count(CountGet::Org(|o| o.active_owner_count)),
        "active owners",
    ),
    f(
        "group_count",
        F::OrgGroupCount,
        Get::Count(CountGet::Org(|o| o.group_count)),
        "distinct groups (by id) in the report",
    ),
    changed(
        "new_user_count",
        F::NewUserCount,
        Get::Count(CountGet::Org(|o| o.new_user_count)),
        "change: users not in the previous snapshot",
    ),
    changed(
        "removed_user_count",
        F::RemovedUserCount,
        Get::Count(CountGet::Org(|o| o.removed_user_count)),
        "change: users in the previous snapshot and gone from this report",
    ),
];

impl FieldId {
    pub fn def(self) -> &'static FieldDef {
        &FIELDS[self as usize]
    }
    pub fn name(self) -> &'static str {
        self.def().name
    }
}

/// Looks a field up by name within a scope.
pub fn field(scope: Scope, name: &str) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|d| d.scope() == scope && d.name == name)
}

pub fn fields_of(scope: Scope) -> impl Iterator<Item = &'static FieldDef> {
    FIELDS.iter().filter(move |d| d.scope() == scope)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeClass {
    Text,
    Bool,
    Number,
    Timestamp,
    List,
    Any,
}

/// A comparison of two numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    pub fn test(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Gt => a > b,
            Cmp::Gte => a >= b,
            Cmp::Lt => a < b,
            Cmp::Lte => a <= b,
        }
    }
}

/// Every operator of a field condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Equals,
    NotEquals,
    In,
    NotIn,
    Matches,
    Contains,
    ContainsAny,
    StartsWith,
    EndsWith,
    Present,
    /// `gt`, `gte`, `lt`, `lte` on numbers.
    Compare(Cmp),
    OlderThanDays,
    NewerThanDays,
    Before,
    After,
    Shared,
    MatchesGlob,
}

#[derive(Debug)]
pub struct OpDef {
    pub name: &'static str,
    pub kind: OpKind,
    pub applies: &'static [TypeClass],
    /// What the operand is, in words.
    pub operand: &'static str,
    pub doc: &'static str,
}

use TypeClass as C;

pub static OPERATORS: &[OpDef] = &[
    OpDef { name: "equals", kind: OpKind::Equals, applies: &[C::Text, C::Bool, C::Number], operand: "a value", doc: "the field equals the value" },
    OpDef { name: "not_equals", kind: OpKind::NotEquals, applies: &[C::Text, C::Bool, C::Number], operand: "a value", doc: "the field does not equal the value" },
    OpDef { name: "in", kind: OpKind::In, applies: &[C::Text, C::Number], operand: "a list of values", doc: "the field equals one of the values" },
    OpDef { name: "not_in", kind: OpKind::NotIn, applies: &[C::Text, C::Number], operand: "a list of values", doc: "the field equals none of the values" },
    OpDef { name: "matches", kind: OpKind::Matches, applies: &[C::Text, C::List], operand: "a regular expression", doc: "the regex matches somewhere in the value (anchor with `^...$`); for a list, in any element" },
    OpDef { name: "contains", kind: OpKind::Contains, applies: &[C::Text, C::List], operand: "a string", doc: "a string field contains the substring; a list holds the element (group membership by name)" },
    OpDef { name: "contains_any", kind: OpKind::ContainsAny, applies: &[C::List], operand: "a list of strings", doc: "the list holds at least one of the strings" },
    OpDef { name: "starts_with", kind: OpKind::StartsWith, applies: &[C::Text], operand: "a string", doc: "the value starts with the string" },
    OpDef { name: "ends_with", kind: OpKind::EndsWith, applies: &[C::Text], operand: "a string", doc: "the value ends with the string" },
    OpDef { name: "present", kind: OpKind::Present, applies: &[C::Any], operand: "true or false", doc: "`true`: the field has a value (not null, not an empty string or list); `false`: it has none" },
    OpDef { name: "gt", kind: OpKind::Compare(Cmp::Gt), applies: &[C::Number], operand: "a number", doc: "greater than" },
    OpDef { name: "gte", kind: OpKind::Compare(Cmp::Gte), applies: &[C::Number], operand: "a number", doc: "greater than or equal" },
    OpDef { name: "lt", kind: OpKind::Compare(Cmp::Lt), applies: &[C::Number], operand: "a number", doc: "less than" },
    OpDef { name: "lte", kind: OpKind::Compare(Cmp::Lte), applies: &[C::Number], operand: "a number", doc: "less than or equal" },
    OpDef { name: "older_than_days", kind: OpKind::OlderThanDays, applies: &[C::Timestamp], operand: "a number of days (>= 0)", doc: "strictly before `now - n days` (`t < now - n*86400 s`); false when the field is null" },
    OpDef { name: "newer_than_days", kind: OpKind::NewerThanDays, applies: &[C::Timestamp], operand: "a number of days (>= 0)", doc: "strictly after `now - n days`; false when the field is null" },
    OpDef { name: "before", kind: OpKind::Before, applies: &[C::Timestamp], operand: "another timestamp field's name", doc: "strictly earlier than the other field; false when either is null" },
    OpDef { name: "after", kind: OpKind::After, applies: &[C::Timestamp], operand: "another timestamp field's name", doc: "strictly later than the other field; false when either is null" },
    OpDef { name: "matches_glob", kind: OpKind::MatchesGlob, applies: &[C::Text, C::List], operand: "a glob or a list of globs (`*` any run of characters, `?` one)", doc: "the whole value matches one of the globs (case-sensitive); for a list, any element does" },
    OpDef { name: "shared", kind: OpKind::Shared, applies: &[C::Text], operand: "true", doc: "user rules: another user record has the same value (evidence lists those records); empty values are never shared" },
];

impl OpDef {
    pub fn applies_to(&self, ty: FieldType) -> bool {
        self.applies
            .iter()
            .any(|c| *c == C::Any || *c == ty.class())
    }
}

/// The names of the operators that apply to a field type.
pub fn operators_for(ty: FieldType) -> Vec<&'static str> {
    OPERATORS
        .iter()
        .filter(|o| o.applies_to(ty))
        .map(|o| o.name)
        .collect()
}

pub fn operator(name: &str) -> Option<&'static OpDef> {
    OPERATORS.iter().find(|o| o.name == name)
}

/// How a quantifier over users combines its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
    None,
}

/// What a condition form is; the parser reads each kind with an exhaustive match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    All,
    Any,
    Not,
    Field,
    Param,
    /// Over a group's members or the organization's users.
    Quant(Quantifier),
    /// How many members or users satisfy a user condition, compared with a number.
    Count,
    Expr,
}

/// The comparisons of a `count` condition: (name, comparison). `gte`/`lte` are accepted too,
/// as the field operators spell them.
pub static COUNT_OPS: &[(&str, Cmp)] = &[
    ("gt", Cmp::Gt),
    ("ge", Cmp::Gte),
    ("gte", Cmp::Gte),
    ("lt", Cmp::Lt),
    ("le", Cmp::Lte),
    ("lte", Cmp::Lte),
    ("eq", Cmp::Eq),
];

/// What a `count` condition counts in a rule of `scope`: `members` of a group, `users` of the
/// organization.
pub fn count_of(scope: Scope) -> Option<&'static str> {
    match scope {
        Scope::Group => Some("members"),
        Scope::Organization => Some("users"),
        Scope::User => None,
    }
}

/// The forms of a condition: one key each.
pub struct FormDef {
    pub key: &'static str,
    pub kind: FormKind,
    pub scopes: &'static [Scope],
    pub syntax: &'static str,
    pub doc: &'static str,
}

pub static FORMS: &[FormDef] = &[
    FormDef { key: "all", kind: FormKind::All, scopes: &[U, G, O], syntax: "all: [CONDITION, ...]", doc: "every condition holds (a plain list is the same as `all`)" },
    FormDef { key: "any", kind: FormKind::Any, scopes: &[U, G, O], syntax: "any: [CONDITION, ...]", doc: "at least one condition holds" },
    FormDef { key: "not", kind: FormKind::Not, scopes: &[U, G, O], syntax: "not: CONDITION", doc: "the condition does not hold" },
    FormDef { key: "field", kind: FormKind::Field, scopes: &[U, G, O], syntax: "field: NAME, OPERATOR: VALUE", doc: "tests one field of the subject with one operator" },
    FormDef { key: "param", kind: FormKind::Param, scopes: &[U, G, O], syntax: "param: NAME, empty: BOOL", doc: "tests a parameter's value: `empty: false` holds when the list or string is not empty" },
    FormDef { key: "any_member", kind: FormKind::Quant(Quantifier::Any), scopes: &[G], syntax: "any_member: USER-CONDITION", doc: "at least one member of the group satisfies the user condition" },
    FormDef { key: "all_members", kind: FormKind::Quant(Quantifier::All), scopes: &[G], syntax: "all_members: USER-CONDITION", doc: "every member satisfies it (true for a group without members)" },
    FormDef { key: "no_member", kind: FormKind::Quant(Quantifier::None), scopes: &[G], syntax: "no_member: USER-CONDITION", doc: "no member satisfies it" },
    FormDef { key: "any_user", kind: FormKind::Quant(Quantifier::Any), scopes: &[O], syntax: "any_user: USER-CONDITION", doc: "at least one user of the report satisfies the user condition" },
    FormDef { key: "all_users", kind: FormKind::Quant(Quantifier::All), scopes: &[O], syntax: "all_users: USER-CONDITION", doc: "every user satisfies it" },
    FormDef { key: "no_user", kind: FormKind::Quant(Quantifier::None), scopes: &[O], syntax: "no_user: USER-CONDITION", doc: "no user satisfies it" },
    FormDef { key: "count", kind: FormKind::Count, scopes: &[G, O], syntax: "count: {of: members|users, where: USER-CONDITION, gt|ge|lt|le|eq: N}", doc: "how many of the group's `members` (group rules) or the organization's `users` satisfy the user condition, compared with N (a number or `{param: NAME}`); the evidence holds `matching_count` and the first matching users (`matching`, at most `limits.matching_subjects`, default 50)" },
    FormDef { key: "expr", kind: FormKind::Expr, scopes: &[U, G, O], syntax: "expr: MINIJINJA-EXPRESSION", doc: "a minijinja expression over the subject (`user`, `group` or `organization`) and `params`; truthy means it holds. The slow path: it builds a value per subject, so prefer the structured forms" },
];

/// A variable that a message template or an `expr` can read. The validator, the message fast
/// path, the minijinja contexts of messages and expressions, and the reference are all made from
/// [`VARS`]: a variable added here is checked, provided and documented everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Var {
    /// The subject's fields, named after the rule's scope: `user`, `group` or `organization`.
    Subject,
    /// The rule's parameters, by name.
    Params,
    /// The rule itself: [`RuleAttr`].
    Rule,
    /// What the finding is about, in every scope's terms: [`SubjectAttr`].
    About,
    /// The finding's evidence: only in messages, since an `expr` decides whether there is a
    /// finding at all.
    Evidence,
}

/// One variable of the context schema.
#[derive(Debug)]
pub struct VarDef {
    pub var: Var,
    /// Whether an `expr` can read it (a message template always can).
    pub in_expr: bool,
    pub doc: &'static str,
}

/// Every variable of a message template or an `expr`, in the order the reference lists them.
pub static VARS: &[VarDef] = &[
    VarDef { var: Var::Subject, in_expr: true, doc: "the subject's fields (the tables above), named after the rule's scope: `user`, `group` (which also has `members`: at most 100 of `{id, email, user_status}`) or `organization`" },
    VarDef { var: Var::Params, in_expr: true, doc: "the rule's parameters, by name, with their current values" },
    VarDef { var: Var::Rule, in_expr: true, doc: "the rule: `id`, `title`, `severity` (the effective one, after overrides)" },
    VarDef { var: Var::About, in_expr: true, doc: "what the finding is about: `kind` (user, group, organization), `id`, `email` (users), `name` (groups)" },
    VarDef { var: Var::Evidence, in_expr: false, doc: "the finding's evidence: the fields its condition tests, `days_since_<field>` for time tests, `<field>_shared_with` for `shared`, and the scope's own (`member_count`, `members` for groups; `user_count`, `owners` for the organization). Messages only" },
];

/// An attribute of `rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAttr {
    Id,
    Title,
    Severity,
}

impl RuleAttr {
    pub const ALL: [RuleAttr; 3] = [RuleAttr::Id, RuleAttr::Title, RuleAttr::Severity];
    pub fn name(self) -> &'static str {
        match self {
            RuleAttr::Id => "id",
            RuleAttr::Title => "title",
            RuleAttr::Severity => "severity",
        }
    }
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// An attribute of `subject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectAttr {
    Kind,
    Id,
    Email,
    Name,
}

impl SubjectAttr {
    pub const ALL: [SubjectAttr; 4] = [
        SubjectAttr::Kind,
        SubjectAttr::Id,
        SubjectAttr::Email,
        SubjectAttr::Name,
    ];
    pub fn name(self) -> &'static str {
        match self {
            SubjectAttr::Kind => "kind",
            SubjectAttr::Id => "id",
            SubjectAttr::Email => "email",
            SubjectAttr::Name => "name",
        }
    }
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl Var {
    /// The variable's name in a rule of `scope`.
    pub fn name(self, scope: Scope) -> &'static str {
        match self {
            Var::Subject => scope.as_str(),
            Var::Params => "params",
            Var::Rule => "rule",
            Var::About => "subject",
            Var::Evidence => "evidence",
        }
    }

    pub fn def(self) -> &'static VarDef {
        VARS.iter()
            .find(|d| d.var == self)
            .expect("every variable is registered")
    }
}

/// The variable `name` in a rule of `scope`; `in_expr` leaves out those an `expr` cannot read.
pub fn var(scope: Scope, name: &str, in_expr: bool) -> Option<Var> {
    VARS.iter()
        .filter(|d| d.in_expr || !in_expr)
        .map(|d| d.var)
        .find(|v| v.name(scope) == name)
}

/// What the subject variable holds besides the scope's fields.
pub fn subject_extras(scope: Scope) -> &'static [&'static str] {
    match scope {
        Scope::Group => &["members"],
        Scope::User | Scope::Organization => &[],
    }
}

/// Evidence every finding of a scope carries besides its condition's fields.
pub fn scope_evidence(scope: Scope) -> &'static [&'static str] {
    match scope {
        Scope::User => &[],
        Scope::Group => &["member_count", "members"],
        Scope::Organization => &["user_count", "owners"],
    }
}

/// Renders the rule syntax reference (Markdown) from the registry.
/// What orgaudit may do about a rule's finding (`fix: {action: ...}`): the one list that rule
/// validation, the remediation planner and the reference are made from.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FixAction {
    /// A person acts: the remediation text says how (the default).
    #[default]
    Manual,
    /// `orgaudit remediate` may remove the user from the organization.
    RemoveUser,
}

impl FixAction {
    pub const ALL: [FixAction; 2] = [FixAction::Manual, FixAction::RemoveUser];

    pub fn as_str(self) -> &'static str {
        match self {
            FixAction::Manual => "manual",
            FixAction::RemoveUser => "remove_user",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The scopes whose findings the action can fix.
    pub fn scopes(self) -> &'static [Scope] {
        match self {
            FixAction::Manual => &[U, G, O],
            FixAction::RemoveUser => &[U],
        }
    }

    /// What it does, for the reference.
    pub fn doc(self) -> &'static str {
        match self {
            FixAction::Manual => "a person acts on the finding; the remediation text says how, and `remediate plan` lists it as a checklist item (the default)",
            FixAction::RemoveUser => "`remediate plan` proposes removing the user from the organization (`POST /v2/organizations/users/{id}/actions/remove`, irreversible) when the rule fires and `when` holds for the user; owners are never removed",
        }
    }
}

pub fn reference_markdown() -> String {
    let mut out = String::new();
    out.push_str("### Condition forms\n\n| form | scopes | meaning |\n|---|---|---|\n");
    for form in FORMS {
        let scopes: Vec<&str> = form.scopes.iter().map(|s| s.as_str()).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            form.syntax,
            scopes.join(", "),
            form.doc
        ));
    }
    for scope in [U, G, O] {
        out.push_str(&format!(
            "\n### Fields of `{}` rules\n\n| field | type | meaning |\n|---|---|---|\n",
            scope.as_str()
        ));
        for d in fields_of(scope) {
            let mut ty = d.ty().describe().to_string();
            if d.nullable {
                ty.push_str(", nullable");
            }
            out.push_str(&format!("| `{}` | {} | {} |\n", d.name, ty, d.doc));
        }
    }
    out.push_str(
        "\n### Variables of messages and `expr`\n\n| variable | in `expr` | meaning |\n|---|---|---|\n",
    );
    for d in VARS {
        let name = match d.var {
            Var::Subject => "`user` / `group` / `organization`".to_string(),
            other => format!("`{}`", other.name(U)),
        };
        out.push_str(&format!(
            "| {name} | {} | {} |\n",
            if d.in_expr { "yes" } else { "no" },
            d.doc
        ));
    }
    out.push_str(
        "\n### Operators\n\n| operator | applies to | value | meaning |\n|---|---|---|---|\n",
    );
    for op in OPERATORS {
        let applies: Vec<&str> = op
            .applies
            .iter()
            .map(|c| match c {
                C::Text => "string, enum",
                C::Bool => "boolean",
                C::Number => "number",
                C::Timestamp => "timestamp",
                C::List => "list",
                C::Any => "any",
            })
            .collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            op.name,
            applies.join(", "),
            op.operand,
            op.doc
        ));
    }
    out.push_str(
        "\n### Fix actions\n\n| `fix: {action: ...}` | scopes | meaning |\n|---|---|---|\n",
    );
    for a in FixAction::ALL {
        let scopes: Vec<&str> = a.scopes().iter().map(|s| s.as_str()).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            a.as_str(),
            scopes.join(", "),
            a.doc()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_unique_per_scope() {
        for (i, a) in FIELDS.iter().enumerate() {
            for b in &FIELDS[i + 1..] {
                assert!(
                    !(a.scope() == b.scope() && a.name == b.name),
                    "{} twice",
                    a.name
                );
                assert_ne!(a.id, b.id);
            }
        }
    }

    #[test]
    fn fields_are_indexed_by_their_id() {
        for (i, d) in FIELDS.iter().enumerate() {
            assert_eq!(d.id as usize, i, "{} is out of place", d.name);
            assert!(std::ptr::eq(d.id.def(), d));
        }
    }

    #[test]
    fn docs_are_generated_from_the_registry() {
        let md = reference_markdown();
        for d in FIELDS {
            assert!(md.contains(&format!("| `{}` |", d.name)));
        }
        for o in OPERATORS {
            assert!(md.contains(&format!("| `{}` |", o.name)));
        }
    }
}
