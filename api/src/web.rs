//! HTTP plumbing shared by every route: request ids, access logs and metrics by route
//! template, the body size limit, problem+json for errors raised outside handlers, and the
//! Content-Security-Policy of the pages that carry inline scripts (API docs, GraphiQL).

use std::sync::Arc;
use std::time::Instant;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use poem::error::ReadBodyError;
use poem::http::{HeaderValue, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use crate::metrics as m;
use crate::rest::problem_response;

pub const REQUEST_ID: &str = "x-request-id";

/// How large a request body may be. Every body is bounded while it streams in, whatever its
/// headers say (HTTP/2 bodies carry neither Content-Length nor Transfer-Encoding, and an
/// `Upgrade` header changes nothing: only a GET on a WebSocket route is ever upgraded, and
/// its body is empty).
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// Any body but an upload's (`SYNCCHAT_MAX_BODY_BYTES`); read whole before the handler.
    pub body: usize,
    /// An upload's file (`SYNCCHAT_MAX_UPLOAD_BYTES`): enforced by the upload service while it
    /// streams; the body around it may add `body` bytes of multipart framing.
    pub upload: u64,
}

/// Wraps the whole app: one span per request carrying its id, a metric sample per request
/// labelled with the route template, and every escaped error as problem+json.
pub async fn around<E: Endpoint>(ep: Arc<E>, mut req: Request, limits: BodyLimits) -> poem::Result<Response> {
    let started = Instant::now();
    let request_id = req
        .header(REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let route = route_template(&path);
    let span = tracing::info_span!(
        "http",
        request.id = %request_id,
        http.method = %method,
        http.route = route,
        app.id = tracing::field::Empty,
        key.id = tracing::field::Empty,
    );

    // Uploads stream to storage and enforce their own, larger limit while streaming.
    let is_upload =
        matches!((method.as_str(), route), ("POST", "/api/v1/files") | ("PUT", "/api/v1/files/uploads/{token}"));
    let mut resp = async {
        if let Err(resp) = limit_body(&mut req, limits, is_upload).await {
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
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = allowed_methods(&path)
        && let Ok(v) = HeaderValue::from_str(&allow)
    {
        resp.headers_mut().insert("allow", v);
    }
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

/// The methods the REST API answers on `path` (`Allow` of a 405), from the spec's paths.
fn allowed_methods(path: &str) -> Option<String> {
    static TABLE: std::sync::OnceLock<Vec<(Vec<String>, Vec<String>)>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let spec = crate::rest::api_service(None).spec();
        let spec: serde_json::Value = serde_json::from_str(&spec).unwrap_or_default();
        let Some(paths) = spec["paths"].as_object() else { return Vec::new() };
        paths
            .iter()
            .map(|(template, ops)| {
                let segments = template.trim_matches('/').split('/').map(str::to_owned).collect();
                let methods = ops.as_object().map(|o| o.keys().map(|m| m.to_uppercase()).collect()).unwrap_or_default();
                (segments, methods)
            })
            .collect()
    });
    let rest = path.strip_prefix("/api/v1")?;
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let mut allowed: Vec<&str> = table
        .iter()
        .filter(|(template, _)| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| t.starts_with('{') || t == s)
        })
        .flat_map(|(_, methods)| methods.iter().map(String::as_str))
        .collect();
    if allowed.is_empty() {
        return None;
    }
    allowed.sort_unstable();
    allowed.dedup();
    Some(allowed.join(", "))
}

pub(crate) fn error_response(err: poem::Error) -> Response {
    let status = err.status();
    let text = err.to_string();
    let message = status.is_server_error().then(|| text.clone());
    let resp = err.into_response();
    let is_problem = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/problem+json"));
    // A problem+json answer was logged where it was made (an outage answers many of them);
    // anything else is a fault of ours or an extractor's, whose message is safe to log.
    if let Some(message) = message.filter(|_| !is_problem) {
        tracing::warn!(error = %message, "request failed before reaching a handler");
    }
    if is_problem || status == StatusCode::SWITCHING_PROTOCOLS {
        return resp;
    }
    let detail = match status {
        StatusCode::NOT_FOUND => "no such route".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_owned(),
        StatusCode::UNAUTHORIZED => "sign in first: send Authorization: Bearer <accessToken>".to_owned(),
        // A parameter or body the API could not read (its parser says which, and why).
        StatusCode::BAD_REQUEST if !text.is_empty() => text,
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    problem_response(status, detail)
}

/// Bounds the request body while it streams in: 413 as soon as it passes the limit (at once
/// when a Content-Length announces that it will). Other bodies are read here, whole, so a
/// handler never sees more than the limit; an upload's stays a stream, capped.
async fn limit_body(req: &mut Request, limits: BodyLimits, upload: bool) -> Result<(), Response> {
    let max = if upload { limits.upload.saturating_add(limits.body as u64) } else { limits.body as u64 };
    let too_large = || problem_response(StatusCode::PAYLOAD_TOO_LARGE, format!("request body exceeds {max} bytes"));
    if req.header("content-length").and_then(|v| v.parse::<u64>().ok()).is_some_and(|len| len > max) {
        return Err(too_large());
    }
    if upload {
        let body = req.take_body();
        req.set_body(capped(body, max));
        return Ok(());
    }
    match req.take_body().into_bytes_limit(limits.body).await {
        Ok(bytes) => {
            req.set_body(Body::from_bytes(bytes));
            Ok(())
        }
        Err(ReadBodyError::PayloadTooLarge) => Err(too_large()),
        Err(e) => Err(problem_response(StatusCode::BAD_REQUEST, format!("could not read the request body: {e}"))),
    }
}

/// `body` as a stream that fails once more than `max` bytes came through; the failure's
/// kind is `FileTooLarge`, which the upload service answers with 413.
fn capped(body: Body, max: u64) -> Body {
    let inner: http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error> = body.into();
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let limited = Limited::new(inner, limit).map_err(move |e| {
        if e.is::<LengthLimitError>() {
            std::io::Error::new(std::io::ErrorKind::FileTooLarge, format!("request body exceeds {max} bytes"))
        } else {
            match e.downcast::<std::io::Error>() {
                Ok(io) => *io,
                Err(other) => std::io::Error::other(other),
            }
        }
    });
    Body::from(limited.boxed())
}

/// A Content-Security-Policy for a page whose inline `<script>`s are `page`'s own: each
/// is allowed by its hash, external scripts only from `script_origins`. `extra` holds the
/// remaining directives.
pub fn page_csp(page: &str, script_origins: &[&str], extra: &str) -> String {
    let mut sources: Vec<String> = script_origins.iter().map(|o| (*o).to_owned()).collect();
    sources.extend(inline_script_hashes(page));
    format!(
        "default-src 'none'; script-src {}; {extra}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        sources.join(" ")
    )
}

/// The `'sha256-…'` sources of the inline scripts (those without `src`) of an HTML page.
fn inline_script_hashes(page: &str) -> Vec<String> {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let mut hashes = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("<script") {
        let tag = &rest[start..];
        let Some(open_end) = tag.find('>') else { break };
        let Some(len) = tag[open_end + 1..].find("</script>") else { break };
        let content = &tag[open_end + 1..open_end + 1 + len];
        if !tag[..open_end].contains("src=") {
            let digest = Sha256::digest(content.as_bytes());
            hashes.push(format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest)));
        }
        rest = &tag[open_end + 1 + len + "</script>".len()..];
    }
    hashes
}

/// The Swagger UI page (scripts and styles all inline) served with a policy that allows
/// exactly its own scripts.
pub struct DocsPage {
    html: bytes::Bytes,
    csp: String,
}

impl DocsPage {
    pub fn new(html: String) -> DocsPage {
        // Swagger UI styles elements as it renders them, hence inline styles.
        let csp = page_csp(&html, &[], "style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'");
        DocsPage { html: html.into(), csp }
    }
}

impl Endpoint for DocsPage {
    type Output = Response;

    async fn call(&self, _req: Request) -> poem::Result<Response> {
        Ok(Response::builder()
            .content_type("text/html; charset=utf-8")
            .header("content-security-policy", self.csp.as_str())
            .header("x-content-type-options", "nosniff")
            .body(self.html.clone()))
    }
}

/// `/api/openapi.yaml`: the spec as checked in (see `rest::spec_yaml`).
pub struct SpecEndpoint {
    yaml: bytes::Bytes,
}

impl SpecEndpoint {
    pub fn new(yaml: String) -> SpecEndpoint {
        SpecEndpoint { yaml: yaml.into() }
    }
}

impl Endpoint for SpecEndpoint {
    type Output = Response;

    async fn call(&self, _req: Request) -> poem::Result<Response> {
        Ok(Response::builder().content_type("application/yaml").body(self.yaml.clone()))
    }
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
        ["api", "v1", "users", "me", "settings"] => "/api/v1/users/me/settings",
        ["api", "v1", "users", "me", "blocked"] => "/api/v1/users/me/blocked",
        ["api", "v1", "users", "me", "mentions"] => "/api/v1/users/me/mentions",
        ["api", "v1", "search", "messages"] => "/api/v1/search/messages",
        ["api", "v1", "users", _, "block"] => "/api/v1/users/{id}/block",
        ["api", "v1", "users"] => "/api/v1/users",
        ["api", "v1", "users", _] => "/api/v1/users/{id}",
        ["api", "v1", "conversations"] => "/api/v1/conversations",
        ["api", "v1", "conversations", _] => "/api/v1/conversations/{id}",
        ["api", "v1", "conversations", _, "messages"] => "/api/v1/conversations/{id}/messages",
        ["api", "v1", "conversations", _, "read"] => "/api/v1/conversations/{id}/read",
        ["api", "v1", "conversations", _, "participants"] => "/api/v1/conversations/{id}/participants",
        ["api", "v1", "conversations", _, "participants", "me"] => "/api/v1/conversations/{id}/participants/me",
        ["api", "v1", "messages", _] => "/api/v1/messages/{id}",
        ["api", "v1", "messages", _, "reactions", _] => "/api/v1/messages/{id}/reactions/{emoji}",
        ["api", "v1", "messages", _, "pin"] => "/api/v1/messages/{id}/pin",
        ["api", "v1", "conversations", _, "pins"] => "/api/v1/conversations/{id}/pins",
        ["api", "v1", "presence"] => "/api/v1/presence",
        ["api", "v1", "files"] => "/api/v1/files",
        ["api", "v1", "files", "uploads", _] => "/api/v1/files/uploads/{token}",
        ["api", "v1", "files", _] => "/api/v1/files/{id}",
        ["api", "v1", "files", _, "thumbnail"] => "/api/v1/files/{id}/thumbnail",
        ["api", "v1", "webhooks"] => "/api/v1/webhooks",
        ["api", "v1", "webhooks", _] => "/api/v1/webhooks/{id}",
        ["api", "v1", "webhooks", _, "rotate-secret"] => "/api/v1/webhooks/{id}/rotate-secret",
        ["api", "v1", "webhooks", _, "deliveries"] => "/api/v1/webhooks/{id}/deliveries",
        ["api", "v1", "webhooks", _, "replay"] => "/api/v1/webhooks/{id}/replay",
        ["api", "v1", "events"] => "/api/v1/events",
        ["api", "v1", "apps"] => "/api/v1/apps",
        ["api", "v1", "apps", _] => "/api/v1/apps/{id}",
        ["api", "v1", "apps", _, "keys"] => "/api/v1/apps/{id}/keys",
        ["api", "v1", "apps", _, "keys", _] => "/api/v1/apps/{id}/keys/{keyId}",
        [""] => "/",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::{inline_script_hashes, route_template};

    #[test]
    fn only_inline_scripts_are_hashed() {
        let page =
            "<script src=\"https://cdn/x.js\"></script><p><script>alert(1)</script><script type=\"a\">b</script>";
        let hashes = inline_script_hashes(page);
        assert_eq!(hashes.len(), 2);
        // As `printf 'alert(1)' | openssl dgst -sha256 -binary | base64` has it.
        assert_eq!(hashes[0], "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='");
    }

    #[test]
    fn ids_never_reach_labels() {
        assert_eq!(route_template("/api/v1/conversations/0190-abc/messages"), "/api/v1/conversations/{id}/messages");
        assert_eq!(route_template("/api/v1/users/me"), "/api/v1/users/me");
        assert_eq!(route_template("/wp-admin/evil.php"), "other");
    }
}
