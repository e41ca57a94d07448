//! The REST façade (poem-openapi) under `/api/v1`: handlers translate HTTP into service
//! calls and service errors into problem+json. No rule lives here.
// Handlers return `Result<_, ProblemResponse>` by value, as poem-openapi needs to document
// every error status; the error path is cold, so its size does not matter.
#![allow(clippy::result_large_err)]

mod apps;
mod auth;
mod conversations;
mod files;
pub mod idempotency;
mod messages;
mod presence;
mod problem;
pub mod strict;
mod users;
mod webhooks;

use poem_openapi::auth::Bearer;
use poem_openapi::{OpenApiService, SecurityScheme, Tags};

use crate::service::{Caller, Services};
pub use problem::{ProblemResponse, problem_for, problem_response};

#[derive(Tags)]
enum ApiTags {
    /// Register, log in, refresh and end sessions.
    Auth,
    /// Look up users.
    Users,
    /// Create, list and join conversations.
    Conversations,
    /// Send, edit, delete and read messages.
    Messages,
    /// Upload files and images; download them (ranges, ETags, thumbnails).
    Files,
    /// Apps (integrations) and their API keys, for admins.
    Apps,
    /// Webhooks and the event feed, for apps: endpoints, delivery log, replay.
    Webhooks,
}

/// `Authorization: Bearer <accessToken>` from register, login or refresh, or an app's API key
/// (`sck_<prefix>_<secret>`), which acts as the app's bot user with the app's scopes.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT or sck_ API key")]
pub struct BearerAuth(Bearer);

impl BearerAuth {
    async fn caller(&self, services: &Services) -> Result<Caller, ProblemResponse> {
        Ok(services.auth.authenticate(&self.0.token).await?)
    }
}

pub type Api = (
    auth::AuthApi,
    users::UserApi,
    conversations::ConversationApi,
    messages::MessageApi,
    presence::PresenceApi,
    files::FileApi,
    webhooks::WebhookApi,
    apps::AppApi,
);

pub fn api_service(services: Option<Services>) -> OpenApiService<Api, ()> {
    let services = services.map(std::sync::Arc::new);
    let api = (
        auth::AuthApi { services: services.clone() },
        users::UserApi { services: services.clone() },
        conversations::ConversationApi { services: services.clone() },
        messages::MessageApi { services: services.clone() },
        presence::PresenceApi { services: services.clone() },
        files::FileApi { services: services.clone() },
        webhooks::WebhookApi { services: services.clone() },
        apps::AppApi { services },
    );
    OpenApiService::new(api, "SyncChat REST API", env!("CARGO_PKG_VERSION"))
        .description(
            "Integrator API of SyncChat. Errors are application/problem+json with a stable `code` \
             (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, BAD_USER_INPUT, CONFLICT, RATE_LIMITED, \
             UNAVAILABLE, INTERNAL). Lists answer {items, nextCursor}.",
        )
        .server("/api/v1")
}

/// The spec as checked in (`openapi.yaml`) and served (`/api/openapi.yaml`): poem-openapi's,
/// plus what its derive cannot say. An optional field (`Option<T>`) is sent as `null` when
/// it has no value, so every property outside `required` is marked `nullable` (a `$ref`
/// through `allOf`, as OpenAPI 3.0 ignores a `$ref`'s siblings); strictly typed generated
/// clients then decode every answer.
pub fn spec_yaml(api: &OpenApiService<Api, ()>) -> String {
    let Ok(mut spec) = serde_json::from_str::<serde_json::Value>(&api.spec()) else { return api.spec_yaml() };
    if let Some(schemas) = spec.pointer_mut("/components/schemas").and_then(|s| s.as_object_mut()) {
        for schema in schemas.values_mut() {
            mark_optional_nullable(schema);
        }
    }
    document_idempotency(&mut spec);
    document_downloads(&mut spec);
    document_links(&mut spec);
    serde_yaml_ng::to_string(&spec).unwrap_or_else(|_| api.spec_yaml())
}

/// Every POST but the upload takes an `Idempotency-Key` (handled around the operations, so
/// poem-openapi does not see it).
fn document_idempotency(spec: &mut serde_json::Value) {
    use serde_json::json;
    let Some(paths) = spec.get_mut("paths").and_then(|p| p.as_object_mut()) else { return };
    for (path, ops) in paths.iter_mut() {
        if path == "/files" {
            continue;
        }
        let Some(post) = ops.get_mut("post").and_then(|p| p.as_object_mut()) else { continue };
        let parameter = json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "Makes a retry safe: the first answer to this key (per caller, for a day) is answered \
                again, with `Idempotent-Replayed: true`; the same key with a different request is 409 CONFLICT. \
                Ignored without a valid bearer token.",
            "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" }
        });
        match post.get_mut("parameters").and_then(|p| p.as_array_mut()) {
            Some(list) => list.push(parameter),
            None => {
                post.insert("parameters".into(), json!([parameter]));
            }
        }
    }
}

/// A download is served with the type detected at upload (one of the accepted types; a
/// thumbnail is PNG or JPEG), not as `application/octet-stream`: list them (poem-openapi
/// gives a binary answer one type).
fn document_downloads(spec: &mut serde_json::Value) {
    use serde_json::{Map, Value, json};
    let binary = |types: &[&str]| -> Value {
        let map: Map<String, Value> = types
            .iter()
            .map(|t| ((*t).to_owned(), json!({"schema": {"type": "string", "format": "binary"}})))
            .collect();
        Value::Object(map)
    };
    let downloads: [(&str, &[&str]); 2] = [
        ("/files/{id}", crate::files::sniff::DEFAULT_ALLOWED),
        ("/files/{id}/thumbnail", crate::files::THUMBNAIL_TYPES),
    ];
    for (path, types) in downloads {
        for status in ["200", "206"] {
            let pointer = format!("/paths/{}/get/responses/{status}/content", path.replace('/', "~1"));
            if let Some(content) = spec.pointer_mut(&pointer) {
                *content = binary(types);
            }
        }
    }
}

/// OpenAPI links from the operations that make something to those that use it, so that a
/// stateful client (schemathesis) follows real ids instead of guessing them.
fn document_links(spec: &mut serde_json::Value) {
    use serde_json::{Map, Value, json};
    // (path, method of the operation that makes it, [(link name, operationId, [(parameter, expression)])])
    type Link = (&'static str, &'static str, &'static [(&'static str, &'static str)]);
    const BY_BODY_ID: &[(&str, &str)] = &[("id", "$response.body#/id")];
    let table: [(&str, &str, &[Link]); 6] = [
        (
            "/apps",
            "post",
            &[
                ("getApp", "getApp", BY_BODY_ID),
                ("updateApp", "updateApp", BY_BODY_ID),
                ("createAppKey", "createAppKey", BY_BODY_ID),
                ("listAppKeys", "listAppKeys", BY_BODY_ID),
                ("revokeAppKey", "revokeAppKey", &[("id", "$response.body#/id"), ("keyId", "$response.body#/key/id")]),
                ("deleteApp", "deleteApp", BY_BODY_ID),
            ],
        ),
        (
            "/apps/{id}/keys",
            "post",
            &[("revokeAppKey", "revokeAppKey", &[("id", "$request.path.id"), ("keyId", "$response.body#/id")])],
        ),
        (
            "/conversations",
            "post",
            &[
                ("getConversation", "getConversation", BY_BODY_ID),
                ("listMessages", "listMessages", BY_BODY_ID),
                ("sendMessage", "sendMessage", BY_BODY_ID),
                ("markRead", "markRead", BY_BODY_ID),
                ("listPins", "listPins", BY_BODY_ID),
                ("addParticipants", "addParticipants", BY_BODY_ID),
                ("leaveConversation", "leaveConversation", BY_BODY_ID),
            ],
        ),
        (
            "/conversations/{id}/messages",
            "post",
            &[
                ("editMessage", "editMessage", BY_BODY_ID),
                ("addReaction", "addReaction", BY_BODY_ID),
                ("removeReaction", "removeReaction", BY_BODY_ID),
                ("pinMessage", "pinMessage", BY_BODY_ID),
                ("unpinMessage", "unpinMessage", BY_BODY_ID),
                ("deleteMessage", "deleteMessage", BY_BODY_ID),
            ],
        ),
        (
            "/files",
            "post",
            &[("downloadFile", "downloadFile", BY_BODY_ID), ("downloadThumbnail", "downloadThumbnail", BY_BODY_ID)],
        ),
        (
            "/webhooks",
            "post",
            &[
                ("getWebhook", "getWebhook", BY_BODY_ID),
                ("updateWebhook", "updateWebhook", BY_BODY_ID),
                ("rotateWebhookSecret", "rotateWebhookSecret", BY_BODY_ID),
                ("listWebhookDeliveries", "listWebhookDeliveries", BY_BODY_ID),
                ("replayWebhook", "replayWebhook", BY_BODY_ID),
                ("deleteWebhook", "deleteWebhook", BY_BODY_ID),
            ],
        ),
    ];
    for (path, method, links) in table {
        let pointer = format!("/paths/{}/{method}/responses/200", path.replace('/', "~1"));
        let Some(response) = spec.pointer_mut(&pointer).and_then(Value::as_object_mut) else { continue };
        let links: Map<String, Value> = links
            .iter()
            .map(|(name, operation, parameters)| {
                let parameters: Map<String, Value> =
                    parameters.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
                ((*name).to_owned(), json!({"operationId": operation, "parameters": parameters}))
            })
            .collect();
        response.insert("links".into(), Value::Object(links));
    }
}

fn mark_optional_nullable(schema: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else { return };
    for (name, property) in properties.iter_mut() {
        if required.contains(name) {
            continue;
        }
        if let Some(reference) = property.get("$ref").cloned() {
            *property = json!({ "allOf": [{ "$ref": reference }], "nullable": true });
        } else if let Some(object) = property.as_object_mut() {
            object.insert("nullable".into(), Value::Bool(true));
        }
    }
}

/// The services, which exist in a running server but not when only the spec is printed.
fn svc(services: &Option<std::sync::Arc<Services>>) -> Result<&Services, ProblemResponse> {
    services
        .as_deref()
        .ok_or_else(|| crate::error::AppError::Unavailable("the server is not serving requests".into()).into())
}
