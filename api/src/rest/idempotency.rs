//! The `Idempotency-Key` header on REST POSTs, around every operation so handlers do not
//! change (the rule is `service::idempotency`). Only authenticated calls take part (a key is
//! per caller); uploads (`POST /files`, streamed, possibly larger than memory) do not: the
//! header is ignored there, as it is on calls without a valid bearer token.

use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Request, Response};

use crate::service::Services;
use crate::service::idempotency::{Claim, caller_key, check_key, fingerprint};

pub const HEADER: &str = "idempotency-key";

/// Runs `req` through `ep`, or answers it from its key.
pub async fn around<E: Endpoint>(ep: &E, mut req: Request, services: &Services) -> poem::Result<Response> {
    // Raw bytes: a value that is not visible ASCII is refused below, not taken for no key.
    let Some(key) = req.headers().get(HEADER).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()) else {
        return ep.call(req).await.map(IntoResponse::into_response);
    };
    if req.method() != Method::POST || req.uri().path().ends_with("/files") {
        return ep.call(req).await.map(IntoResponse::into_response);
    }
    if let Err(e) = check_key(&key) {
        return Ok(crate::rest::problem_for(e));
    }
    let token = req.header("authorization").and_then(|h| h.strip_prefix("Bearer ")).map(str::to_owned);
    let caller = match token {
        Some(token) => services.auth.authenticate(&token).await.ok(),
        None => None,
    };
    let Some(caller) = caller else { return ep.call(req).await.map(IntoResponse::into_response) };
    let caller = caller_key(&caller);
    let body = req.take_body().into_vec().await.unwrap_or_default();
    let path = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let print = fingerprint(req.method().as_str(), &path, &body);
    let idem = &services.idempotency;
    match idem.claim(&caller, &key, &print).await {
        Err(e) => return Ok(crate::rest::problem_for(e)),
        Ok(Claim::Replay { status, content_type, body }) => {
            let mut resp = Response::builder().status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
            if let Some(ct) = content_type {
                resp = resp.content_type(ct);
            }
            return Ok(resp.header("idempotent-replayed", "true").body(body));
        }
        Ok(Claim::Run) => {}
    }
    req.set_body(Body::from_vec(body));
    let resp = match ep.call(req).await {
        Ok(resp) => resp.into_response(),
        // Refused before a handler ran (a parameter or body it could not read): the same
        // problem+json the client gets without a key, kept and replayed as such.
        Err(err) => crate::web::error_response(err),
    };
    let (parts, body) = resp.into_parts();
    let bytes = body.into_vec().await.unwrap_or_default();
    let content_type = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    idem.finish(&caller, &key, parts.status.as_u16(), content_type, String::from_utf8_lossy(&bytes).into_owned()).await;
    let mut resp = Response::from_parts(parts, Body::from_vec(bytes));
    resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("false"));
    Ok(resp)
}

/// The REST API with the `Idempotency-Key` rule around it.
pub struct Idempotent<E> {
    pub inner: E,
    pub services: Services,
}

impl<E: Endpoint> Endpoint for Idempotent<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        around(&self.inner, req, &self.services).await
    }
}
