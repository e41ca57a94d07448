//! HTTP plumbing shared by every route: request ids, access logs and metrics by route
//! template, the body size limit, and problem+json for errors raised outside handlers.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderValue, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use crate::metrics as m;
use crate::rest::problem_response;

pub const REQUEST_ID: &str = "x-request-id";

/// Wraps the whole app: one span per request carrying its id, a metric sample per request
/// labelled with the route template, and every escaped error as problem+json.
pub async fn around<E: Endpoint>(ep: Arc<E>, mut req: Request, max_body: usize) -> poem::Result<Response> {
    let started = Instant::now();
    let request_id = req
        .header(REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let route = route_template(&path);
    let span = tracing::info_span!("http", request.id = %request_id, http.method = %method, http.route = route);

    // Uploads stream to storage and enforce their own, larger limit while streaming.
    let is_upload = matches!(route, "/api/v1/files" | "/api/v1/files/uploads/{token}") && method != "GET";
    let mut resp = async {
        if !is_upload && let Err(resp) = limit_body(&mut req, max_body).await {
            return resp;
        }
        match ep.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => error_response(err),
        }
    }
    .instrument(span.clone())
    .await;

    let status = resp.status().as_u16();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    let elapsed = started.elapsed();
    // Scrapes of /metrics would drown the access log; they are still counted.
    if route != "/metrics" {
        span.in_scope(|| tracing::info!(http.status = status, duration_ms = elapsed.as_secs_f64() * 1e3, "request"));
    }
    m::record_http(route, &method, status, elapsed);
    Ok(resp)
}

fn error_response(err: poem::Error) -> Response {
    let status = err.status();
    if status.is_server_error() {
        // Only a fault of ours or an extractor's; the message is safe to log.
        tracing::warn!(error = %err, "request failed before reaching a handler");
    }
    let resp = err.into_response();
    let is_problem = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/problem+json"));
    if is_problem || status == StatusCode::SWITCHING_PROTOCOLS {
        return resp;
    }
    let detail = match status {
        StatusCode::NOT_FOUND => "no such route".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_owned(),
        StatusCode::UNAUTHORIZED => "sign in first: send Authorization: Bearer <accessToken>".to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    problem_response(status, detail)
}

/// Refuses bodies over `max` bytes with 413, whether announced by Content-Length or not.
async fn limit_body(req: &mut Request, max: usize) -> Result<(), Response> {
    let too_large = || problem_response(StatusCode::PAYLOAD_TOO_LARGE, format!("request body exceeds {max} bytes"));
    if req.header("upgrade").is_some() {
        return Ok(());
    }
    if let Some(len) = req.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        return if len > max { Err(too_large()) } else { Ok(()) };
    }
    if req.header("transfer-encoding").is_some() {
        let body = req.take_body().into_bytes_limit(max).await.map_err(|_| too_large())?;
        req.set_body(Body::from_bytes(body));
    }
    Ok(())
}

/// The route template of a path: a bounded metric label that never carries an id.
pub fn route_template(path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["graphql"] => "/graphql",
        ["graphql", "ws"] => "/graphql/ws",
        ["metrics"] => "/metrics",
        ["healthz"] => "/healthz",
        ["readyz"] => "/readyz",
        ["admin", ..] => "/admin",
        ["api", "docs", ..] => "/api/docs",
        ["api", "openapi.yaml"] => "/api/openapi.yaml",
        ["api", "v1", "auth", "register"] => "/api/v1/auth/register",
        ["api", "v1", "auth", "login"] => "/api/v1/auth/login",
        ["api", "v1", "auth", "refresh"] => "/api/v1/auth/refresh",
        ["api", "v1", "auth", "logout"] => "/api/v1/auth/logout",
        ["api", "v1", "users", "me"] => "/api/v1/users/me",
        ["api", "v1", "users"] => "/api/v1/users",
        ["api", "v1", "users", _] => "/api/v1/users/{id}",
        ["api", "v1", "conversations"] => "/api/v1/conversations",
        ["api", "v1", "conversations", _] => "/api/v1/conversations/{id}",
        ["api", "v1", "conversations", _, "messages"] => "/api/v1/conversations/{id}/messages",
        ["api", "v1", "conversations", _, "read"] => "/api/v1/conversations/{id}/read",
        ["api", "v1", "conversations", _, "participants"] => "/api/v1/conversations/{id}/participants",
        ["api", "v1", "conversations", _, "participants", "me"] => "/api/v1/conversations/{id}/participants/me",
        ["api", "v1", "messages", _] => "/api/v1/messages/{id}",
        ["api", "v1", "presence"] => "/api/v1/presence",
        ["api", "v1", "files"] => "/api/v1/files",
        ["api", "v1", "files", "uploads", _] => "/api/v1/files/uploads/{token}",
        ["api", "v1", "files", _] => "/api/v1/files/{id}",
        ["api", "v1", "files", _, "thumbnail"] => "/api/v1/files/{id}/thumbnail",
        [""] => "/",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::route_template;

    #[test]
    fn ids_never_reach_labels() {
        assert_eq!(route_template("/api/v1/conversations/0190-abc/messages"), "/api/v1/conversations/{id}/messages");
        assert_eq!(route_template("/api/v1/users/me"), "/api/v1/users/me");
        assert_eq!(route_template("/wp-admin/evil.php"), "other");
    }
}
