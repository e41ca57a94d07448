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
    let (field, detail) = if status == StatusCode::BAD_REQUEST { explain_refusal(&detail) } else { (None, detail) };
    let body = problem(code, status.as_u16(), detail, field.as_deref(), None);
    let mut json = serde_json::json!({
        "type": body.ty, "title": body.title, "status": body.status, "detail": body.detail, "code": body.code,
    });
    if let Some(field) = body.field {
        json["field"] = field.into();
    }
    let mut response = poem::Response::builder().status(status).content_type("application/problem+json");
    if code == ErrorCode::Unavailable {
        crate::metrics::request_unavailable("rest");
        let secs = crate::error::UNAVAILABLE_RETRY_AFTER_SECS;
        json["retryAfter"] = secs.into();
        response = response.header("retry-after", secs);
    }
    response.body(json.to_string())
}

/// A limit the spec states (a `validator` on a parameter or field), refused by poem-openapi
/// before the handler runs: its message names the field and the validator; this turns it into
/// the problem's `field` and a sentence. Any other parse error is passed on as it is.
fn explain_refusal(text: &str) -> (Option<String>, String) {
    let between = |start: &str| {
        text.find(start).and_then(|i| {
            let rest = &text[i + start.len()..];
            rest.find('`').map(|end| rest[..end].to_owned())
        })
    };
    let field = between("field `").or_else(|| between("parameter `"));
    let Some(field) = field else { return (None, text.to_owned()) };
    let Some(rule) = text.split("verification failed. ").nth(1) else { return (Some(field), text.to_owned()) };
    let number = |name: &str| {
        rule.strip_prefix(name)
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.split([',', ')']).next())
            .map(str::to_owned)
    };
    let sentence = if let Some(n) = number("maxLength") {
        format!("must be at most {n} characters")
    } else if let Some(n) = number("minLength") {
        format!("must be at least {n} characters")
    } else if let Some(n) = number("maxItems") {
        format!("must hold at most {n} items")
    } else if let Some(n) = number("minItems") {
        format!("must hold at least {n} item{}", if n == "1" { "" } else { "s" })
    } else if let Some(n) = number("maximum") {
        format!("must be at most {n}")
    } else if let Some(n) = number("minimum") {
        format!("must be at least {n}")
    } else if rule.starts_with("pattern(") {
        pattern_sentence(rule).to_owned()
    } else {
        rule.to_owned()
    };
    (Some(field.clone()), format!("{field} {sentence}"))
}

/// What a pattern of the spec asks for, in words.
fn pattern_sentence(rule: &str) -> &'static str {
    if rule.contains(r"\ufeff]") {
        "must not be blank and must not contain control characters"
    } else if rule.contains(r"^[^\x00-\x1f\x7f-\x9f]*$") {
        "must not contain control characters"
    } else if rule.contains("[a-z0-9_]{3,32}") {
        "must be 3 to 32 lowercase letters, digits and underscores"
    } else if rule.contains("@") {
        "must look like name@example.com"
    } else {
        "is not in the form the API documents (see its pattern in openapi.yaml)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_by_the_spec_name_the_field_in_words() {
        let body = r#"parse request payload error: failed to parse "NewMessage": field `body` verification failed. maxLength(4000)"#;
        assert_eq!(explain_refusal(body), (Some("body".into()), "body must be at most 4000 characters".into()));
        let param = "failed to parse parameter `limit`: verification failed. maximum(100, exclusive: false)";
        assert_eq!(explain_refusal(param), (Some("limit".into()), "limit must be at most 100".into()));
        let blank = r#"parse request payload error: failed to parse "AppInput": field `name` verification failed. pattern("^[^\x00-\x1f]*[^\x00-\x20\ufeff][^\x00-\x1f]*$")"#;
        assert_eq!(explain_refusal(blank).1, "name must not be blank and must not contain control characters");
        let items = r#"parse request payload error: failed to parse "AppInput": field `scopes` verification failed. minItems(1)"#;
        assert_eq!(explain_refusal(items).1, "scopes must hold at least 1 item");
        let other = r#"parse request payload error: Expected input type "Scope", found "admin"."#;
        assert_eq!(explain_refusal(other), (None, other.to_owned()));
    }
}
