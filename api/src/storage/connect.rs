//! Opens the pool for SQLite or Postgres with settings that hold up under concurrent use,
//! and times every query into `syncchat_db_query_duration_seconds`.

use std::time::Duration;

use anyhow::Context;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, SqlErr};

use crate::metrics as m;

pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false).connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(10));
    // sqlx pings a connection on every checkout by default: a round trip per query. Only a
    // connection idle long enough to have been dropped (server restart, proxy, firewall) is
    // worth checking; a broken busy one fails its query, which is answered 503 and retried.
    opts.test_before_acquire_if_idle_for(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        create_sqlite_parent_dir(url)?;
        if url.contains(":memory:") || url.contains("mode=memory") {
            // Every connection to an in-memory database is a different database.
            opts.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None);
        } else {
            opts.max_connections(max_connections.clamp(1, 8));
        }
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    } else {
        opts.max_connections(max_connections.max(1)).min_connections(1);
    }
    let mut db =
        Database::connect(opts).await.with_context(|| format!("connecting to the database at {}", redact(url)))?;
    db.set_metric_callback(|info| {
        m::record_db_query(statement_operation(&info.statement.sql), info.elapsed, info.failed);
    });
    Ok(db)
}

/// A bounded label for a SQL statement: its leading keyword.
fn statement_operation(sql: &str) -> &'static str {
    let head = sql.trim_start().get(..6).unwrap_or("").to_ascii_uppercase();
    match head.as_str() {
        "SELECT" => "select",
        "INSERT" => "insert",
        "UPDATE" => "update",
        "DELETE" => "delete",
        _ => "other",
    }
}

/// Creates the database's folder (0700) and, when the URL may create the database, its file
/// (0600, empty: a valid empty database): SQLite gives the `-wal` and `-shm` files the mode of
/// the database, so none of them is readable by other users.
fn create_sqlite_parent_dir(url: &str) -> anyhow::Result<()> {
    let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.contains(":memory:") {
        return Ok(());
    }
    let path = std::path::Path::new(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::config::create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if query.split('&').any(|kv| kv == "mode=rwc") {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    Ok(())
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }

    #[test]
    fn operation_labels_are_bounded() {
        assert_eq!(statement_operation("  select 1"), "select");
        assert_eq!(statement_operation("WITH x AS (..)"), "other");
        assert_eq!(statement_operation("up"), "other");
    }
}
