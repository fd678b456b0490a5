//! The shared history: a PostgreSQL server (the `postgres` crate over rustls; a server's
//! certificate is checked by the platform's verifier). For jobs on ephemeral runners and teams
//! that share one history. The password comes from `PGPASSWORD` or a password file
//! (`PGPASSFILE`, else `~/.pgpass`), read here: never from the URL or the command line, and
//! never printed. A write takes a transaction-scoped advisory lock, so two audits writing at
//! once append one after the other.

use std::path::PathBuf;
use std::str::FromStr;

use postgres::types::{ToSql, Type};
use postgres::{Client, Config};

use super::store::{Dialect, Driver, SqlStore, Val};
use super::HistoryError;

/// The PostgreSQL driver of [`SqlStore`].
pub(crate) struct Postgres {
    client: Client,
}

/// A history on a PostgreSQL server.
pub(crate) type PostgresStore = SqlStore<Postgres>;

/// The advisory lock every writer takes (one history per database).
const WRITE_LOCK: i64 = 0x6f72_6761_7564_6974; // "orgaudit"

/// Refuses a URL that carries a password, in its user part or as a parameter.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if crate::diag::url_has_password(url) {
        return Err(
            "a password in the URL is refused (it would show in process lists and logs): set PGPASSWORD or use a password file (PGPASSFILE, ~/.pgpass)"
                .into(),
        );
    }
    Ok(())
}

/// The password file's entry for this connection, as libpq reads `~/.pgpass`:
/// `host:port:database:user:password`, `*` matching anything, `\:` and `\\` escaped. A file
/// others can read is ignored, as libpq ignores it.
fn passfile_password(host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&path).ok()?;
        if meta.permissions().mode() & 0o077 != 0 {
            return None;
        }
    }
    let text = crate::diag::read_all_capped(std::fs::File::open(&path).ok()?, 1 << 20).ok()?;
    let text = String::from_utf8(text).ok()?;
    let port = port.to_string();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = split_pgpass(line);
            let [h, p, d, u, pw] = <[String; 5]>::try_from(fields).ok()?;
            let ok = |pat: &str, v: &str| pat == "*" || pat == v;
            (ok(&h, host) && ok(&p, &port) && ok(&d, db) && ok(&u, user)).then_some(pw)
        })
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

/// Connects to the history at `url` (already checked by [`check_url`]), and brings its schema
/// up to date. `shown` is the URL as errors name it.
pub(crate) fn open(url: &str, shown: &str) -> Result<PostgresStore, HistoryError> {
    let fail = |message: String| HistoryError::Storage {
        location: shown.to_string(),
        message,
    };
    let mut config = Config::from_str(url).map_err(|e| HistoryError::Location {
        location: shown.to_string(),
        message: format!("not a PostgreSQL URL: {e}"),
    })?;
    if config.get_user().is_none() {
        if let Ok(user) = std::env::var("PGUSER") {
            config.user(&user);
        }
    }
    if config.get_hosts().is_empty() {
        config.host("localhost");
    }
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or_default().to_string();
    let db = config.get_dbname().unwrap_or(&user).to_string();
    match std::env::var("PGPASSWORD") {
        Ok(pw) if !pw.is_empty() => {
            config.password(pw);
        }
        _ => {
            if let Some(pw) = passfile_password(&host, port, &db, &user) {
                config.password(pw);
            }
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(15));
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail(format!("TLS: {e}")))
    .and_then(|b| {
        use rustls_platform_verifier::BuilderVerifierExt;
        b.with_platform_verifier()
            .map_err(|e| fail(format!("TLS: {e}")))
    })?
    .with_no_client_auth();
    let client = config
        .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
        // The error names the server's complaint (a wrong password, a missing database);
        // the password itself is never in it.
        .map_err(|e| fail(format!("cannot connect: {}", describe(&e))))?;
    SqlStore::new(Postgres { client }, shown.to_string())
}

/// A PostgreSQL error with its cause, which `Display` leaves out.
fn describe(e: &postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("{}: {}", db.severity(), db.message()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

/// `?` placeholders as PostgreSQL's `$1`, `$2`, ... (no statement here has a `?` in a
/// literal).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

fn bind(params: &[Val]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v {
                Val::Int(i) => Box::new(*i),
                Val::Text(s) => Box::new(s.clone()),
                Val::Bytes(b) => Box::new(b.clone()),
                Val::Null => Box::new(None::<Vec<u8>>),
            }
        })
        .collect()
}

impl Driver for Postgres {
    const DIALECT: Dialect = Dialect::Postgres;

    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, String> {
        let owned = bind(params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| &**b).collect();
        self.client
            .execute(numbered(sql).as_str(), &refs)
            .map_err(|e| describe(&e))
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, String> {
        let owned = bind(params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| &**b).collect();
        let rows = self
            .client
            .query(numbered(sql).as_str(), &refs)
            .map_err(|e| describe(&e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut vals = Vec::with_capacity(row.len());
            for (i, col) in row.columns().iter().enumerate() {
                let err = |e: postgres::Error| describe(&e);
                let v = match *col.type_() {
                    Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(err)?.map(Val::Int),
                    Type::INT4 => row
                        .try_get::<_, Option<i32>>(i)
                        .map_err(err)?
                        .map(|v| Val::Int(v.into())),
                    Type::NUMERIC => {
                        return Err("a NUMERIC column (cast it to BIGINT)".into());
                    }
                    Type::BYTEA => row
                        .try_get::<_, Option<Vec<u8>>>(i)
                        .map_err(err)?
                        .map(Val::Bytes),
                    _ => row
                        .try_get::<_, Option<String>>(i)
                        .map_err(err)?
                        .map(Val::Text),
                };
                vals.push(v.unwrap_or(Val::Null));
            }
            out.push(vals);
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), String> {
        self.client.batch_execute(sql).map_err(|e| describe(&e))
    }

    fn begin_write(&mut self) -> Result<(), String> {
        self.batch(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK});"
        ))
    }

    fn schema_version(&mut self) -> Result<i64, String> {
        self.batch("CREATE TABLE IF NOT EXISTS orgaudit_schema (version BIGINT NOT NULL)")?;
        let rows = self.query(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM orgaudit_schema",
            &[],
        )?;
        match rows.first().and_then(|r| r.first()) {
            Some(Val::Int(v)) => Ok(*v),
            _ => Ok(0),
        }
    }

    fn set_schema_version(&mut self, version: i64) -> Result<(), String> {
        self.exec("DELETE FROM orgaudit_schema", &[])?;
        self.exec(
            "INSERT INTO orgaudit_schema (version) VALUES (?)",
            &[Val::Int(version)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_refused() {
        assert!(check_url("postgres://u@db.example/h").is_ok());
        assert!(check_url("postgres://u:secret@db.example/h").is_err());
        assert!(check_url("postgres://u@db.example/h?password=secret").is_err());
    }

    #[test]
    fn pgpass_lines_split_with_escapes() {
        assert_eq!(
            split_pgpass(r"db\:1:5432:*:me:pa\:ss:word"),
            ["db:1", "5432", "*", "me", "pa:ss:word"]
        );
        assert_eq!(numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
    }
}
