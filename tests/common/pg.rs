//! A fresh database on the test PostgreSQL server (`ORGAUDIT_TEST_POSTGRES`, a URL whose user
//! may create databases, password in `PGPASSWORD`; `.ci/run` starts one), dropped afterwards.
//! Without the variable, a test says so on stderr and fails under `CI`, never passing silently.

/// The variable naming the PostgreSQL server the tests use.
pub const PG_ENV: &str = "ORGAUDIT_TEST_POSTGRES";

/// A client of `url`, with the password from `PGPASSWORD`.
pub fn client(url: &str) -> postgres::Client {
    let mut config: postgres::Config = url.parse().expect("a PostgreSQL URL");
    if let Ok(pw) = std::env::var("PGPASSWORD") {
        config.password(pw);
    }
    config
        .connect(postgres::NoTls)
        .unwrap_or_else(|e| panic!("the test PostgreSQL server ({url}): {e}"))
}

/// A database of its own for one test.
pub struct Database {
    /// The server's URL, without the database.
    server: String,
    name: String,
    /// The database's URL: a history location.
    pub url: String,
}

impl Database {
    /// A new, empty database; `None` (said loudly, and a failure under `CI`) without a server.
    pub fn create(what: &str) -> Option<Database> {
        let Ok(server) = std::env::var(PG_ENV) else {
            // Straight to the terminal: the test harness would hide a captured line.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED ({what}): no PostgreSQL server to run on: set {PG_ENV} (e.g. postgres://orgaudit@127.0.0.1/postgres?sslmode=disable) and PGPASSWORD; .ci/run starts one"
            );
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run {what}: {PG_ENV} is not set"
            );
            return None;
        };
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "orgaudit_t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        client(&server)
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&format!("/{name}"));
        Some(Database {
            server,
            name,
            url: url.to_string(),
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut c) = std::panic::catch_unwind(|| client(&self.server)) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
