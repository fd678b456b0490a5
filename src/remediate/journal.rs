//! The journal of `remediate apply`: JSON Lines, one record per step, appended and synced
//! before the call it announces and after its answer, so that a run that died shows which calls
//! were sent. With a history, every record is stored there too.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::UserRecord;

/// What a journal record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A run began (its options in `detail`).
    RunStarted,
    /// An action is being handled.
    Planned,
    /// Left alone, with the reason.
    Skipped,
    /// The pre-check found no such user: skipped, never counted as removed.
    Absent,
    /// The removal is about to be sent.
    Sending,
    /// The user is gone: `user` is their full record as last read, to invite them again.
    Removed,
    /// The API refused or failed, with its error.
    Failed,
    /// The run stopped (the reason); the actions after it were not attempted.
    Stopped,
    /// The run ended (the summary in `detail`).
    RunFinished,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub at: String,
    /// The plan's signature value: which plan the record belongs to.
    pub plan: String,
    pub organization: String,
    pub event: Event,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user: Option<UserRecord>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approved_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<serde_json::Value>,
}

/// Where records go: the file, and the history when there is one.
pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
    store: Option<Box<dyn crate::history::Store>>,
}

/// What an earlier run of the same plan left in the journal.
#[derive(Debug, Default)]
pub struct Earlier {
    /// Users removed (or found gone after a removal was sent).
    pub removed: HashSet<String>,
    /// Users whose removal was sent without a removal recorded after it: the run died waiting,
    /// or every answer was lost.
    pub sent: HashSet<String>,
    /// Records read.
    pub records: usize,
}

impl Journal {
    /// Opens the journal for appending: created `0600`, never followed through a link.
    pub fn open(
        path: &Path,
        store: Option<Box<dyn crate::history::Store>>,
    ) -> Result<Journal, String> {
        let name = path.display();
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!(
                "{name}: the journal is a symbolic link; give the real file"
            ));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("{}: cannot create the folder: {e}", parent.display()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(path)
            .map_err(|e| format!("{name}: cannot open the journal: {e}"))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            store,
        })
    }

    /// Appends one record, synced to disk (and to the history) before it returns.
    pub fn write(&mut self, record: &Record) -> Result<(), String> {
        let mut line = serde_json::to_string(record).expect("a record is JSON");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| format!("{}: cannot write the journal: {e}", self.path.display()))?;
        if let Some(store) = self.store.as_mut() {
            store
                .journal_append(
                    &record.organization,
                    &record.plan,
                    &record.at,
                    line.trim_end(),
                )
                .map_err(|e| format!("the history's copy of the journal: {e}"))?;
        }
        Ok(())
    }
}

/// Reads what earlier runs of `plan` left in the journal at `path` (nothing if there is none).
/// A line that is not a record is an error naming it, except a last line cut short by a crash.
pub fn earlier(path: &Path, plan: &str) -> Result<Earlier, String> {
    let name = path.display().to_string();
    let bytes = match crate::diag::read_capped(path, crate::defaults::PLAN_MAX_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Earlier::default()),
        Err(e) => return Err(format!("{name}: cannot read the journal: {e}")),
    };
    earlier_in(&bytes, &name, plan)
}

/// [`earlier`] from the journal's bytes; `name` names it in errors.
pub fn earlier_in(bytes: &[u8], name: &str, plan: &str) -> Result<Earlier, String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = Earlier::default();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = match serde_json::from_str(line) {
            Ok(r) => r,
            // Cut short by a crash in the middle of a write: nothing after it was sent.
            Err(_) if i + 1 == lines.len() && !line.ends_with('\n') => break,
            Err(e) => {
                return Err(format!(
                    "{name}:{}: not a journal record: {}",
                    i + 1,
                    crate::safe::visible(&e.to_string())
                ))
            }
        };
        if record.plan != plan {
            continue;
        }
        out.records += 1;
        let Some(id) = record.user_id else { continue };
        match record.event {
            Event::Removed => {
                out.sent.remove(&id);
                out.removed.insert(id);
            }
            Event::Sending => {
                out.sent.insert(id);
            }
            // A removal that failed may still have happened (its answer lost every time): it
            // stays "sent", and the next run reads the user before anything else.
            Event::Failed
            | Event::RunStarted
            | Event::Planned
            | Event::Skipped
            | Event::Absent
            | Event::Stopped
            | Event::RunFinished => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(plan: &str, event: &str, user: &str) -> String {
        format!(
            "{{\"at\":\"2026-01-01T00:00:00Z\",\"plan\":\"{plan}\",\"organization\":\"o\",\"event\":\"{event}\",\"user_id\":\"{user}\"}}\n"
        )
    }

    #[test]
    fn earlier_runs_are_read_back_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        assert_eq!(earlier(&path, "p").unwrap().records, 0);
        let text = [
            line("p", "sending", "a"),
            line("p", "removed", "a"),
            line("other", "removed", "x"),
            line("p", "sending", "b"),
            line("p", "failed", "b"),
            line("p", "sending", "c"),
            "{\"at\":\"2026".to_string(),
        ]
        .concat();
        std::fs::write(&path, &text).unwrap();
        let e = earlier(&path, "p").unwrap();
        assert_eq!(e.removed, HashSet::from(["a".to_string()]));
        assert_eq!(
            e.sent,
            HashSet::from(["b".to_string(), "c".to_string()]),
            "a failed removal may still have happened"
        );
        assert_eq!(e.records, 5);
        // A bad line elsewhere is an error naming it.
        std::fs::write(
            &path,
            format!(
                "{}not json\n{}",
                line("p", "sending", "a"),
                line("p", "removed", "a")
            ),
        )
        .unwrap();
        let err = earlier(&path, "p").unwrap_err();
        assert!(err.contains("j.jsonl:2: not a journal record"), "{err}");
    }

    proptest::proptest! {
        /// Any bytes as a journal: records read back, or an error naming the line; never a
        /// panic.
        #[test]
        fn any_journal_bytes_are_read_or_refused(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            lines in proptest::collection::vec(0usize..3, 0..6),
        ) {
            let mut text = Vec::new();
            for l in lines {
                text.extend_from_slice(line("p", ["sending", "removed", "failed"][l], "u").as_bytes());
            }
            text.extend_from_slice(&bytes);
            let _ = earlier_in(&text, "j.jsonl", "p");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_journal_is_private_and_never_written_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/j.jsonl");
        let mut j = Journal::open(&path, None).unwrap();
        let record: Record = serde_json::from_str(&line("p", "planned", "a")).unwrap();
        j.write(&record).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = Journal::open(&link, None).err().unwrap();
        assert!(err.contains("symbolic link"), "{err}");
    }
}
