//! problem+json (RFC 9457) for every REST error, with the stable code in `code`.

use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::error::{AppError, ErrorCode};

/// An RFC 9457 problem with SyncChat's stable error code.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct Problem {
    /// Always `about:blank`: `code` identifies the problem.
    #[oai(rename = "type")]
    pub ty: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// One of UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, BAD_USER_INPUT, CONFLICT, RATE_LIMITED,
    /// UNAVAILABLE, INTERNAL.
    pub code: String,
    /// The input field at fault, for BAD_USER_INPUT.
    pub field: Option<String>,
    /// Seconds to wait, for RATE_LIMITED and UNAVAILABLE (also in `Retry-After`).
    pub retry_after: Option<u64>,
}

#[derive(ApiResponse, Debug)]
pub enum ProblemResponse {
    /// BAD_USER_INPUT
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// BAD_USER_INPUT: the upload is larger than the server accepts
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// BAD_USER_INPUT: the body is not of the documented content type (answered before the
    /// operation runs, so no handler constructs it)
    #[allow(dead_code)]
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// UNAUTHENTICATED
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// FORBIDDEN
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// NOT_FOUND
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// CONFLICT
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// RATE_LIMITED
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] Option<u64>),
    /// INTERNAL
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// UNAVAILABLE
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] Option<u64>),
}

fn problem(code: ErrorCode, status: u16, detail: String, field: Option<&str>, retry_after: Option<u64>) -> Problem {
    let title = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error").to_owned();
    Problem {
        ty: "about:blank".into(),
        title,
        status,
        detail,
        code: code.as_str().into(),
        field: field.map(str::to_owned),
        retry_after,
    }
}

impl From<AppError> for ProblemResponse {
    fn from(e: AppError) -> Self {
        e.log_if_internal();
        let code = e.code();
        let p = Json(problem(code, e.http_status(), e.to_string(), e.field(), e.retry_after_secs()));
        if matches!(e, AppError::TooLarge(_)) {
            return ProblemResponse::PayloadTooLarge(p);
        }
        match code {
            ErrorCode::BadUserInput => ProblemResponse::BadRequest(p),
            ErrorCode::Unauthenticated => ProblemResponse::Unauthorized(p),
            ErrorCode::Forbidden => ProblemResponse::Forbidden(p),
            ErrorCode::NotFound => ProblemResponse::NotFound(p),
            ErrorCode::Conflict => ProblemResponse::Conflict(p),
            ErrorCode::RateLimited => {
                let secs = e.retry_after_secs();
                ProblemResponse::TooManyRequests(p, secs)
            }
            ErrorCode::Unavailable => {
                crate::metrics::request_unavailable("rest");
                let secs = e.retry_after_secs();
                ProblemResponse::Unavailable(p, secs)
            }
            ErrorCode::Internal => ProblemResponse::Internal(p),
        }
    }
}

/// A problem+json response for errors raised outside the handlers (unknown route, malformed
/// JSON, missing bearer, body too large), so that every error has the same shape.
/// The problem+json answer for `e`, outside an operation.
pub fn problem_for(e: AppError) -> poem::Response {
    use poem::IntoResponse;
    ProblemResponse::from(e).into_response()
}

pub fn problem_response(status: StatusCode, detail: String) -> poem::Response {
    let code = match status.as_u16() {
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::Unavailable,
        400..=499 => ErrorCode::BadUserInput,
        _ => ErrorCode::Internal,
    };
    let body = problem(code, status.as_u16(), detail, None, None);
    let mut json = serde_json::json!({
        "type": body.ty, "title": body.title, "status": body.status, "detail": body.detail, "code": body.code,
    });
    let mut response = poem::Response::builder().status(status).content_type("application/problem+json");
    if code == ErrorCode::Unavailable {
        crate::metrics::request_unavailable("rest");
        let secs = crate::error::UNAVAILABLE_RETRY_AFTER_SECS;
        json["retryAfter"] = secs.into();
        response = response.header("retry-after", secs);
    }
    response.body(json.to_string())
}
