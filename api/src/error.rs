//! The errors users see.
//!
//! Policy: every failure a caller can cause or observe is an [`AppError`] with a stable
//! [`ErrorCode`], shared by REST (problem+json), GraphQL (`extensions.code`) and the admin
//! console. Rules are checked in the service layer, which returns these errors; façades only
//! translate them. Anything unexpected (a database or I/O failure) becomes
//! [`AppError::Internal`] via `?` on an `anyhow`/`DbErr` error; it is logged once, where it
//! is turned into a response, and the caller sees `INTERNAL` without details.

use std::time::Duration;

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

impl From<sea_orm::DbErr> for AppError {
    fn from(e: sea_orm::DbErr) -> Self {
        AppError::Internal(anyhow::Error::new(e))
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::Internal(e)
    }
}
