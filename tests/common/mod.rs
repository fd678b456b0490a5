//! What the integration tests share: where the examples are, and running the binary.
#![allow(dead_code)] // each test crate uses its own part of this

pub mod pg;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The `now` of every test audit.
pub const NOW: &str = "2026-11-29T00:00:00Z";

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file of `examples/`.
pub fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// What a run of the binary came to.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `orgaudit` with these arguments (and `NO_COLOR` unset).
pub fn run(args: &[&str]) -> Run {
    run_with_stdin(args, None)
}

/// Runs `orgaudit` with these arguments and environment variables.
pub fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::cargo_bin("orgaudit").unwrap();
    // A history the developer keeps must not join the tests' runs.
    cmd.env_remove("ORGAUDIT_HISTORY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    finish(cmd, args, None)
}

/// Runs `orgaudit` with these arguments and standard input; it must exit, never panic.
pub fn run_with_stdin(args: &[&str], stdin: Option<Vec<u8>>) -> Run {
    let mut cmd = Command::cargo_bin("orgaudit").unwrap();
    cmd.env_remove("ORGAUDIT_HISTORY");
    finish(cmd, args, stdin)
}

/// Runs a prepared command (`NO_COLOR` unset); it must exit, never panic.
fn finish(mut cmd: Command, args: &[&str], stdin: Option<Vec<u8>>) -> Run {
    cmd.env_remove("NO_COLOR").args(args);
    if let Some(input) = stdin {
        cmd.write_stdin(input);
    }
    let out = cmd.output().unwrap();
    let r = Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r
}

/// A file of `examples/`, as a string argument.
pub fn example_arg(name: &str) -> String {
    example(name).to_str().unwrap().to_string()
}

/// Runs `orgaudit` in `dir` with none of this process's environment but `env`: what a scheduled
/// job or a CI step gives it. It must exit, never panic.
pub fn run_isolated(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_orgaudit"));
    cmd.current_dir(dir).args(args).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let r = Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r
}
