//! The errors users see.
//!
//! Policy: every failure a caller can cause or observe is an [`AppError`] with a stable
//! [`ErrorCode`], shared by REST (problem+json), GraphQL (`extensions.code`) and the admin
//! console. Rules are checked in the service layer, which returns these errors; façades only
//! translate them. Anything unexpected (a database or I/O failure) becomes
//! [`AppError::Internal`] via `?` on an `anyhow`/`DbErr` error; it is logged once, where it
//! is turned into a response, and the caller sees `INTERNAL` without details.
//!
//! A database that cannot be reached is not a bug: `From<DbErr>` is the one place that tells
//! the two apart. Pool timeouts, refused/reset/closed connections, I/O, a Postgres that is
//! starting up or shutting down (SQLSTATE class 08, 57P01-03, 53300) and a busy or locked
//! SQLite become [`AppError::Unavailable`]: 503 with `Retry-After` on REST,
//! `extensions.code = "UNAVAILABLE"` on GraphQL, so clients retry instead of giving up or
//! signing their user out. Everything else from the database stays `INTERNAL`.

use std::time::Duration;

use sea_orm::{DbErr, RuntimeErr};

/// What a client is told to wait before retrying an `UNAVAILABLE` answer: the watcher in
/// `storage/connect.rs` sees a database come back within about a second.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// The message of every database outage; details go to the log, not to clients.
pub const DATABASE_UNAVAILABLE: &str = "the database is unavailable; retry shortly";

/// The stable, machine-readable codes of DESIGN.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    Conflict,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The HTTP status REST answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::BadUserInput => 400,
            ErrorCode::Conflict => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    BadUserInput { field: Option<&'static str>, message: String },
    /// Bad input that is too big: `BAD_USER_INPUT`, answered 413 over HTTP.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many requests: retry in {}s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::BadUserInput { .. } | AppError::TooLarge(_) => ErrorCode::BadUserInput,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::RateLimited { .. } => ErrorCode::RateLimited,
            AppError::Unavailable(_) => ErrorCode::Unavailable,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        AppError::BadUserInput { field: Some(field), message: message.into() }
    }

    pub fn not_found(what: &str) -> Self {
        AppError::NotFound(format!("{what} not found"))
    }

    /// Whole seconds a client should wait, for `Retry-After`.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AppError::RateLimited { retry_after } => {
                Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0))
            }
            AppError::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        }
    }

    /// The HTTP status: the code's, but 413 for input that is too large.
    pub fn http_status(&self) -> u16 {
        match self {
            AppError::TooLarge(_) => 413,
            other => other.code().http_status(),
        }
    }

    pub fn field(&self) -> Option<&'static str> {
        match self {
            AppError::BadUserInput { field, .. } => *field,
            AppError::TooLarge(_) => Some("file"),
            _ => None,
        }
    }

    /// Logs an internal error once, at the point it becomes a response.
    pub fn log_if_internal(&self) {
        if let AppError::Internal(e) = self {
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
    }
}

impl From<DbErr> for AppError {
    fn from(e: DbErr) -> Self {
        if database_unavailable(&e) {
            // Not logged per request: an outage would flood the log. The storage watcher logs
            // the outage once when it starts and once when it ends.
            tracing::debug!(error = %e, "database unavailable");
            AppError::Unavailable(DATABASE_UNAVAILABLE.into())
        } else {
            AppError::Internal(anyhow::Error::new(e))
        }
    }
}

/// Whether a database error means "cannot reach the database now" (retryable) rather than a
/// bug in a statement.
fn database_unavailable(e: &DbErr) -> bool {
    match e {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => sqlx_unavailable(e),
        // sea-orm's own connection errors (no driver error inside).
        DbErr::Conn(_) => true,
        _ => false,
    }
}

fn sqlx_unavailable(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match e {
        Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => true,
        Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>() {
                unavailable_sqlstate(pg.code())
            } else if db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>().is_some() {
                // SQLite's code is its extended result code, in decimal.
                db.code().and_then(|c| c.parse().ok()).is_some_and(unavailable_sqlite_code)
            } else {
                false
            }
        }
        _ => false,
    }
}

/// Postgres: connection exceptions (class 08), the server shutting down or starting up
/// (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now) and no free
/// connection slot (53300).
fn unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6); extended codes keep the primary code in
/// their low byte (SQLITE_BUSY_SNAPSHOT = 517).
fn unavailable_sqlite_code(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6)
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::Internal(e)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sea_orm::sqlx;
    use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};

    use super::*;

    fn code_of(e: DbErr) -> ErrorCode {
        AppError::from(e).code()
    }

    fn sqlx_err(e: sqlx::Error) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
    }

    #[test]
    fn unreachable_databases_are_unavailable() {
        assert_eq!(code_of(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)), ErrorCode::Unavailable);
        assert_eq!(code_of(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed)), ErrorCode::Unavailable);
        for kind in [
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            assert_eq!(code_of(sqlx_err(sqlx::Error::Io(kind.into()))), ErrorCode::Unavailable, "{kind:?}");
        }
        assert_eq!(code_of(sqlx_err(sqlx::Error::PoolTimedOut)), ErrorCode::Unavailable);
        assert_eq!(
            code_of(DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sqlx::Error::PoolClosed)))),
            ErrorCode::Unavailable
        );
    }

    #[test]
    fn unavailable_answers_say_when_to_retry() {
        let e = AppError::from(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
        assert_eq!(e.http_status(), 503);
        assert_eq!(e.retry_after_secs(), Some(UNAVAILABLE_RETRY_AFTER_SECS));
        assert_eq!(e.to_string(), DATABASE_UNAVAILABLE, "no driver details for clients");
    }

    #[test]
    fn bugs_stay_internal() {
        assert_eq!(code_of(DbErr::Custom("bad mapping".into())), ErrorCode::Internal);
        assert_eq!(code_of(DbErr::RecordNotFound("x".into())), ErrorCode::Internal);
        assert_eq!(code_of(sqlx_err(sqlx::Error::RowNotFound)), ErrorCode::Internal);
        assert_eq!(code_of(sqlx_err(sqlx::Error::Protocol("unexpected".into()))), ErrorCode::Internal);
    }

    #[test]
    fn postgres_codes_of_a_server_going_away() {
        for code in ["08000", "08003", "08006", "57P01", "57P02", "57P03", "53300"] {
            assert!(unavailable_sqlstate(code), "{code}");
        }
        // unique violation, syntax error, undefined column, statement timeout.
        for code in ["23505", "42601", "42703", "57014", "22P02"] {
            assert!(!unavailable_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn sqlite_busy_and_locked() {
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED_SHAREDCACHE.
        for code in [5, 6, 517, 262] {
            assert!(unavailable_sqlite_code(code), "{code}");
        }
        // SQLITE_CONSTRAINT_UNIQUE, SQLITE_ERROR, SQLITE_READONLY.
        for code in [2067, 1, 8] {
            assert!(!unavailable_sqlite_code(code), "{code}");
        }
    }
}
