//! Opens the pool for SQLite or Postgres with settings that hold up under concurrent use,
//! and times every query into `syncchat_db_query_duration_seconds`.
//!
//! On Postgres a watcher keeps one connection of its own open and notices at once when the
//! server goes away (its socket closes). From then until it can connect again the database is
//! *down* (`syncchat_db_up` 0): the pool fails every new connection at once, so requests are
//! answered `UNAVAILABLE` in milliseconds instead of waiting out the acquire timeout, and
//! every pooled connection opened before the loss is discarded instead of being handed to a
//! request that would fail on it (after a restart they are all dead).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DbErr, SqlErr};

use crate::background::Background;
use crate::metrics as m;

/// How long a request waits for a pooled Postgres connection (a connection attempt included;
/// sqlx has one knob for both). Short: a database that does not answer within it is
/// unavailable for this request, and a 503 with `Retry-After` beats a hang.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// SQLite has no network to wait for; a long wait is lock contention, which `busy_timeout`
/// also rides out.
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one attempt of the watcher to reach a down database may take.
const WATCH_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Opens the pool for a one-shot command (`syncchat migrate`, `admin create-user`): no watcher.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    Ok(open(url, max_connections).await?.0)
}

/// Opens the pool for the server: on Postgres its watcher runs under `background`.
pub async fn connect_watched(
    url: &str,
    max_connections: u32,
    background: &Background,
) -> anyhow::Result<DatabaseConnection> {
    let (db, health) = open(url, max_connections).await?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        let stop = background.token();
        let watcher = watch(db.get_postgres_connection_pool().clone(), health);
        background.spawn("db_watcher", async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = watcher => {}
            }
        });
    }
    Ok(db)
}

async fn open(url: &str, max_connections: u32) -> anyhow::Result<(DatabaseConnection, Arc<DbHealth>)> {
    let mut opts = ConnectOptions::new(url.to_owned());
    let health = Arc::new(DbHealth::new());
    let acquire_timeout = if url.starts_with("sqlite:") { SQLITE_ACQUIRE_TIMEOUT } else { PG_ACQUIRE_TIMEOUT };
    opts.sqlx_logging(false).connect_timeout(acquire_timeout).acquire_timeout(acquire_timeout);
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
        let health = health.clone();
        opts.map_sqlx_postgres_before_acquire(move |_conn, meta| {
            let fresh = health.opened_since_last_loss(meta.age);
            Box::pin(std::future::ready(Ok(fresh)))
        });
    }
    let mut db =
        Database::connect(opts).await.with_context(|| format!("connecting to the database at {}", redact(url)))?;
    db.set_metric_callback(|info| {
        m::record_db_query(statement_operation(&info.statement.sql), info.elapsed, info.failed);
    });
    m::db_up(true);
    Ok((db, health))
}

/// What the watcher knows about the database, shared with the pool's `before_acquire`.
struct DbHealth {
    epoch: Instant,
    up: AtomicBool,
    /// When the watcher last lost its connection, in nanoseconds since `epoch` (0: never).
    lost_at: AtomicU64,
}

impl DbHealth {
    fn new() -> DbHealth {
        DbHealth { epoch: Instant::now(), up: AtomicBool::new(true), lost_at: AtomicU64::new(0) }
    }

    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn mark_lost(&self) {
        self.lost_at.store(self.nanos_since_epoch(Instant::now()).max(1), Ordering::Release);
    }

    /// A pooled connection of this age is usable unless it was opened before the watcher
    /// last saw the server go away (then it is almost certainly dead).
    fn opened_since_last_loss(&self, age: Duration) -> bool {
        let lost_at = self.lost_at.load(Ordering::Acquire);
        let opened = Instant::now().checked_sub(age).map_or(0, |at| self.nanos_since_epoch(at));
        lost_at == 0 || opened > lost_at
    }

    /// Records a change of state; true when it is one.
    fn set_up(&self, up: bool) -> bool {
        let changed = self.up.swap(up, Ordering::AcqRel) != up;
        m::db_up(up);
        changed
    }
}

/// Watches a Postgres server through a connection of its own, and switches the pool between
/// its real connect options and ones that fail at once.
///
/// Why switch the options: sqlx retries a refused connection until the acquire timeout and
/// offers no hook to stop it, so while the server is known down the pool is pointed at a Unix
/// socket path that does not exist. The attempt then fails immediately (an I/O error, which
/// `From<DbErr>` reports as `UNAVAILABLE`), and in-flight attempts give up at their next
/// retry. The real options come back as soon as the watcher connects again. Ends when the
/// pool closes; it only waits and reads, so it may also be stopped at any of its waits.
async fn watch(pool: PgPool, health: Arc<DbHealth>) {
    let real: PgConnectOptions = (*pool.connect_options()).clone();
    let closed_door = real.clone().socket("/nonexistent/syncchat-database-is-down");
    // The watcher's own single connection, outside the pool it watches.
    let probe = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(WATCH_CONNECT_TIMEOUT)
        .connect_lazy_with(real.clone());
    let mut close = pool.close_event();
    // Boxed: the listener's connect future is ~13 KiB (clippy::large_futures).
    Box::pin(close.do_until(async {
        loop {
            match PgListener::connect_with(&probe).await {
                Ok(mut listener) => {
                    listener.eager_reconnect(false);
                    if health.set_up(true) {
                        pool.set_connect_options(real.clone());
                        tracing::warn!("the database is reachable again");
                    }
                    // Nothing is ever notified: this returns when the connection ends.
                    while let Ok(Some(_)) = listener.try_recv().await {}
                    drop(listener);
                    health.mark_lost();
                    // Down until a new connection proves otherwise (the next loop
                    // turn tries at once, so a lone dropped connection costs little).
                    if health.set_up(false) {
                        pool.set_connect_options(closed_door.clone());
                        tracing::error!("lost the connection to the database; answering UNAVAILABLE until it is back");
                    }
                }
                // A refused connection was already retried with backoff for a second;
                // other errors come at once and must not spin.
                Err(e) => {
                    tracing::debug!(error = %e, "the database is still unreachable");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }))
    .await
    .ok();
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
