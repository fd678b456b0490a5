//! Writing what orgaudit produces: reports, saved reports, messages.
//!
//! A file is written whole or not at all: into a temporary file beside it, renamed over it at
//! the end. A symbolic link, a device or a FIFO (`/dev/null`, `/dev/stdout`) is written where it
//! is, so that it stays what it is. Standard output is written as it comes; a reader that went
//! away (`| head`) is not an error of ours.
//!
//! Whatever the format, a failed write is an I/O error naming the path: the writer given to the
//! renderer remembers the first error it returned, so a renderer that wraps it (a template
//! engine, a CSV writer) cannot turn it into something else.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where an output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Stdout,
    /// A path the user named (a flag, the configuration): a link, device or FIFO there is
    /// written where it is.
    File(&'a Path),
    /// A file orgaudit names itself (a saved report in a folder): replaced, never written
    /// through a link planted there.
    Own(&'a Path),
    /// A file added to, never replaced (`$GITHUB_STEP_SUMMARY`, `--report FORMAT+=PATH`): the
    /// output is produced in memory, then appended in one `O_APPEND` write, so a failed render
    /// adds nothing and steps writing the same file do not interleave.
    Append(&'a Path),
}

impl Target<'_> {
    /// The target as named in messages.
    pub fn name(&self) -> String {
        match self {
            Target::Stdout => "<stdout>".into(),
            Target::File(p) | Target::Own(p) | Target::Append(p) => p.display().to_string(),
        }
    }
}

/// The permissions of a new file orgaudit writes (an existing file keeps its own): `0600` by
/// default, since reports hold every user's email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl Default for FileMode {
    fn default() -> Self {
        FileMode(crate::defaults::FILE_MODE)
    }
}

impl FileMode {
    /// Octal digits, as `chmod` takes them: `600`, `0640`.
    pub fn parse(s: &str) -> Option<FileMode> {
        u32::from_str_radix(s.trim().trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .map(FileMode)
    }
}

/// What happened to an output that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    All,
    /// Standard output's reader went away before the end; the rest was dropped.
    ReaderGone,
}

/// An output that failed: the write itself, or what produced the bytes.
#[derive(Debug, thiserror::Error)]
pub enum OutputError<E: std::error::Error + 'static> {
    #[error("{path}: cannot write: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Produce(E),
}

/// A writer that remembers the first error it returned.
struct Watched<W> {
    inner: W,
    error: Option<io::Error>,
}

impl<W: Write> Watched<W> {
    fn note<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            if self.error.is_none() {
                self.error = Some(io::Error::new(e.kind(), e.to_string()));
            }
        }
        r
    }
}

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.write(buf);
        self.note(r)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let r = self.inner.write_all(buf);
        self.note(r)
    }
    fn flush(&mut self) -> io::Result<()> {
        let r = self.inner.flush();
        self.note(r)
    }
}

/// Writes an output: `produce` writes the bytes into the writer it is given, and may fail with
/// its own error `E`; any failed write is [`OutputError::Io`] whatever `produce` made of it.
pub fn write<E>(
    target: Target<'_>,
    mode: FileMode,
    produce: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<Written, OutputError<E>>
where
    E: std::error::Error + 'static,
{
    let name = target.name();
    let io_err = |source| OutputError::Io {
        path: name.clone(),
        source,
    };
    // Runs `produce` into `w`, then flushes; the first failed write decides.
    let run = |w: &mut dyn Write| -> (Result<(), E>, Option<io::Error>) {
        let mut watched = Watched {
            inner: io::BufWriter::with_capacity(1 << 16, w),
            error: None,
        };
        let result = produce(&mut watched);
        if result.is_ok() {
            let _ = watched.flush();
        }
        // Taken apart rather than dropped, which would write again: after an error what is left
        // in the buffer is moot, and after a flush nothing is.
        let Watched { inner, error } = watched;
        let _ = inner.into_parts();
        (result, error)
    };
    match target {
        Target::Stdout => {
            let stdout = io::stdout();
            let mut lock = stdout.lock();
            let (result, error) = run(&mut lock);
            match error {
                Some(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Written::ReaderGone),
                Some(e) => Err(io_err(e)),
                None => result.map(|()| Written::All).map_err(OutputError::Produce),
            }
        }
        Target::Append(path) => {
            let mut buf: Vec<u8> = Vec::new();
            let (result, error) = run(&mut buf);
            finish(result, error, &io_err)?;
            create_parent(path).map_err(&io_err)?;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(mode.0)
                .open(path)
                .map_err(&io_err)?;
            file.write_all(&buf).map_err(&io_err)?;
            Ok(Written::All)
        }
        Target::File(path) if writes_in_place(path) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .map_err(&io_err)?;
            let (result, error) = run(&mut file);
            finish(result, error, &io_err)
        }
        Target::File(path) | Target::Own(path) => {
            let dir = parent_of(path);
            create_parent(path).map_err(&io_err)?;
            // Created new and exclusive (never through a link), readable by the owner only
            // until it is complete; then given the mode of the file it replaces, or `mode`.
            let mut tmp = tempfile::Builder::new()
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .tempfile_in(&dir)
                .map_err(&io_err)?;
            let keep = std::fs::symlink_metadata(path)
                .ok()
                .filter(|m| m.file_type().is_file())
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777);
            tmp.as_file()
                .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(
                    keep.unwrap_or(mode.0),
                ))
                .map_err(&io_err)?;
            let (result, error) = run(tmp.as_file_mut());
            finish(result, error, &io_err)?;
            tmp.persist(path).map_err(|e| io_err(e.error))?;
            Ok(Written::All)
        }
    }
}

fn finish<E: std::error::Error + 'static>(
    result: Result<(), E>,
    error: Option<io::Error>,
    io_err: &impl Fn(io::Error) -> OutputError<E>,
) -> Result<Written, OutputError<E>> {
    match error {
        Some(e) => Err(io_err(e)),
        None => result.map(|()| Written::All).map_err(OutputError::Produce),
    }
}

/// Creates the folders a new file goes in, as `mkdir -p` would; an error names the folder that
/// could not be made.
fn create_parent(path: &Path) -> io::Result<()> {
    let dir = parent_of(path);
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(&dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create the folder {}: {e}", dir.display()),
        )
    })
}

/// The folder a file is written in (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Whether an output path is written where it is rather than replaced: a report replaces a
/// regular file (or creates one) atomically, through a temporary file renamed over it; anything
/// else (a symbolic link, `/dev/null`, `/dev/stdout`, a FIFO) is opened and written, so that the
/// link or device stays what it is.
fn writes_in_place(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped: {0}")]
    struct Wrapped(String);

    /// A producer that, like a template engine, turns a write error into an error of its own.
    fn wrapping(out: &mut dyn Write) -> Result<(), Wrapped> {
        for _ in 0..1000 {
            out.write_all(&[b'x'; 4096])
                .map_err(|e| Wrapped(e.to_string()))?;
        }
        Ok(())
    }

    #[test]
    fn a_failed_write_is_an_io_error_whatever_the_producer_says() {
        let e = write(
            Target::File(Path::new("/dev/full")),
            FileMode::default(),
            wrapping,
        )
        .unwrap_err();
        assert!(
            matches!(&e, OutputError::Io { path, .. } if path == "/dev/full"),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with("/dev/full: cannot write: "),
            "{e}"
        );
    }

    #[test]
    fn missing_folders_are_created_and_appends_add() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("reports/weekly/r.md");
        write(Target::File(&p), FileMode::default(), |out| {
            out.write_all(b"one\n")
        })
        .unwrap();
        write(Target::Append(&p), FileMode::default(), |out| {
            out.write_all(b"two\n")
        })
        .unwrap();
        // A render that fails appends nothing.
        let e = write(Target::Append(&p), FileMode::default(), |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("the producer failed"))
        });
        assert!(matches!(e, Err(OutputError::Produce(_))));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\ntwo\n");
        // A folder that cannot be made is named.
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "").unwrap();
        let e = write(
            Target::File(&blocked.join("sub/r.txt")),
            FileMode::default(),
            |out| out.write_all(b"x"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("cannot create the folder") && e.contains("file/sub"),
            "{e}"
        );
    }

    #[test]
    fn files_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.txt");
        std::fs::write(&p, "old").unwrap();
        let e = write(Target::File(&p), FileMode::default(), |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("the producer failed"))
        })
        .unwrap_err();
        assert!(matches!(e, OutputError::Produce(_)), "{e:?}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        write(Target::File(&p), FileMode::default(), |out| {
            out.write_all(b"new")
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
