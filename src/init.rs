//! `orgaudit init`: a commented configuration, a sample waivers file and a rules folder with one
//! example rule and its tests, in a folder of the user's choice; nothing is overwritten.
//!
//! The files are those of `examples/init/`, embedded; a test runs `init` and then `config
//! check`, `rules test` and an audit with what it wrote.

use std::path::{Path, PathBuf};

/// The files `init` writes: a path relative to the folder, and the contents.
pub const FILES: &[(&str, &str)] = &[
    (
        crate::defaults::CONFIG_FILE,
        include_str!("../examples/init/orgaudit.yaml"),
    ),
    (
        "waivers.yaml",
        include_str!("../examples/init/waivers.yaml"),
    ),
    (
        "rules/owner-inactive.yaml",
        include_str!("../examples/init/rules/owner-inactive.yaml"),
    ),
    (
        "rules/owner-inactive.test.yaml",
        include_str!("../examples/init/rules/owner-inactive.test.yaml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Files that are there already: nothing was written.
    #[error("{} already exist{}; nothing was written (move {} away, or run init in another folder)", .0.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "), if .0.len() == 1 { "s" } else { "" }, if .0.len() == 1 { "it" } else { "them" })]
    Exists(Vec<PathBuf>),
    #[error("{path}: cannot write: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Writes the starter files into `dir` (created if missing) and returns their paths. When any of
/// them exists, nothing is written.
pub fn scaffold(dir: &Path) -> Result<Vec<PathBuf>, InitError> {
    let paths: Vec<PathBuf> = FILES.iter().map(|(name, _)| dir.join(name)).collect();
    let existing: Vec<PathBuf> = paths
        .iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .cloned()
        .collect();
    if !existing.is_empty() {
        return Err(InitError::Exists(existing));
    }
    for (path, (_, text)) in paths.iter().zip(FILES) {
        let io = |source| InitError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // Created new: never through a link planted there since the check.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
        std::io::Write::write_all(&mut f, text.as_bytes()).map_err(io)?;
    }
    Ok(paths)
}
