//! What spans records, worked out once per run before any rule is evaluated: users sharing a
//! value (for `shared`), users ranked by id (the order findings are listed in), and the cutoff
//! time of each `older_than_days` / `newer_than_days` duration.

use std::collections::HashMap;

use super::access::{text, Subj};
use crate::model::{Report, Timestamp, User};
use crate::rules::registry::{FieldId, TextGet};
use crate::rules::{CompiledRule, Pred, StrTest, TimeTest};

/// Users sharing a value of a field, for `shared` conditions: per user, the set of users with
/// the same value (or none), so that evaluating `shared` is an index, not a hash lookup.
#[derive(Default)]
pub(super) struct SharedIndex {
    set_of: Vec<u32>,
    sets: Vec<Vec<u32>>,
}

const NO_SET: u32 = u32::MAX;

impl SharedIndex {
    pub(super) fn build(report: &Report, get: TextGet) -> Self {
        use std::hash::BuildHasher;
        Self::build_with(report, get, |v| rustc_hash::FxBuildHasher.hash_one(v))
    }

    pub(super) fn build_with(report: &Report, get: TextGet, hash: impl Fn(&str) -> u64) -> Self {
        let users = &report.users;
        let value = |i: u32| text(report, Subj::User(&users[i as usize]), get);
        // Values are hashed and the (hash, user) pairs sorted: equal values end up next to each
        // other, and only equal hashes are compared as strings. (A hash map of a million strings
        // spent its time in cache misses.)
        let mut keys: Vec<(u64, u32)> = (0..users.len() as u32)
            .filter_map(|i| {
                let v = value(i);
                (!v.is_empty()).then(|| (hash(&v), i))
            })
            .collect();
        keys.sort_unstable();
        let mut set_of = vec![NO_SET; users.len()];
        let mut sets: Vec<Vec<u32>> = Vec::new();
        for run in keys.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
            // Within a run (users in report order), split by value: almost always one value.
            let mut left: Vec<u32> = run.iter().map(|&(_, i)| i).collect();
            while let Some((&first, rest)) = left.split_first() {
                let v = value(first);
                let (same, other): (Vec<u32>, Vec<u32>) =
                    rest.iter().partition(|&&j| value(j) == v);
                if !same.is_empty() {
                    let s = sets.len() as u32;
                    let mut members = vec![first];
                    members.extend(same);
                    for &m in &members {
                        set_of[m as usize] = s;
                    }
                    sets.push(members);
                }
                left = other;
            }
        }
        SharedIndex { set_of, sets }
    }

    /// The users sharing user `i`'s value, `i` included; `None` when nobody does.
    pub(super) fn of(&self, i: usize) -> Option<&[u32]> {
        match self.set_of.get(i) {
            Some(&s) if s != NO_SET => Some(&self.sets[s as usize]),
            _ => None,
        }
    }
}

/// Each user's position when users are ordered by id (byte order; equal ids keep report order),
/// and whether another user has the same id. Sorted on the ids' first eight bytes as keys, so
/// most comparisons stay within the key array.
pub(super) fn id_rank(users: &[User]) -> (Vec<u32>, Vec<bool>) {
    let prefix = |id: &str| {
        let mut b = [0u8; 8];
        let n = id.len().min(8);
        b[..n].copy_from_slice(&id.as_bytes()[..n]);
        u64::from_be_bytes(b)
    };
    let mut keys: Vec<(u64, u32)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (prefix(&u.id), i as u32))
        .collect();
    keys.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| users[a.1 as usize].id.cmp(&users[b.1 as usize].id))
            .then(a.1.cmp(&b.1))
    });
    let mut rank = vec![0u32; users.len()];
    for (k, &(_, i)) in keys.iter().enumerate() {
        rank[i as usize] = k as u32;
    }
    // Equal ids are neighbours in that order.
    let mut duplicated = vec![false; users.len()];
    for w in keys.windows(2) {
        let (a, b) = (w[0].1 as usize, w[1].1 as usize);
        if w[0].0 == w[1].0 && users[a].id == users[b].id {
            duplicated[a] = true;
            duplicated[b] = true;
        }
    }
    (rank, duplicated)
}

/// A user's index in its report.
pub(super) fn index_of(report: &Report, u: &User) -> usize {
    (u as *const User as usize - report.users.as_ptr() as usize) / std::mem::size_of::<User>()
}

/// The `shared` conditions' fields, with how each is read.
pub(super) type SharedFields = Vec<(FieldId, TextGet)>;

pub(super) fn build_shared(
    report: &Report,
    fields: &SharedFields,
) -> HashMap<FieldId, SharedIndex> {
    fields
        .iter()
        .map(|&(field, get)| (field, SharedIndex::build(report, get)))
        .collect()
}

/// `now - d` for each duration the rules' time tests use.
pub(super) fn cutoffs(
    rules: &[&CompiledRule],
    now: Timestamp,
) -> Vec<(chrono::Duration, Timestamp)> {
    fn walk(p: &Pred, out: &mut Vec<chrono::Duration>) {
        match p {
            Pred::All(v) | Pred::Any(v) => v.iter().for_each(|p| walk(p, out)),
            Pred::Not(p) | Pred::Quant { inner: p, .. } => walk(p, out),
            Pred::Time {
                test: TimeTest::OlderThan(d) | TimeTest::NewerThan(d),
                ..
            } if !out.contains(d) => out.push(*d),
            _ => {}
        }
    }
    let mut durations = Vec::new();
    for r in rules {
        for p in std::iter::once(&r.pred).chain(&r.counts).chain(&r.fix) {
            walk(p, &mut durations);
        }
    }
    durations.into_iter().map(|d| (d, now - d)).collect()
}

pub(super) fn collect_shared(p: &Pred, out: &mut SharedFields) {
    match p {
        Pred::All(v) | Pred::Any(v) => v.iter().for_each(|p| collect_shared(p, out)),
        Pred::Not(p) | Pred::Quant { inner: p, .. } => collect_shared(p, out),
        Pred::Str {
            get,
            test: StrTest::Shared(field),
        } if !out.iter().any(|(f, _)| f == field) => out.push((*field, *get)),
        _ => {}
    }
}
