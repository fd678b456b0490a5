//! Records what `orgaudit --version` prints besides the version: the commit the binary was
//! built from and the build date (UTC). A build outside a git checkout (a crate tarball) says
//! `unknown`; `SOURCE_DATE_EPOCH` fixes the date for reproducible builds.

use std::process::Command;

fn main() {
    // A build without the repository (a container build) is told its commit.
    let given = std::env::var("ORGAUDIT_COMMIT")
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 40 && s.chars().all(|c| c.is_ascii_hexdigit()));
    let commit = given
        .map(|c| c[..c.len().min(12)].to_string())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .unwrap_or_else(|| "unknown".into());
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_else(chrono::Utc::now)
        .format("%Y-%m-%d")
        .to_string();
    println!("cargo:rustc-env=ORGAUDIT_COMMIT={commit}");
    println!("cargo:rustc-env=ORGAUDIT_BUILD_DATE={date}");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=ORGAUDIT_COMMIT");
    // A new commit changes HEAD (a branch) or the ref it points at.
    for f in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
}
