//! The REST façade (poem-openapi) under `/api/v1`: handlers translate HTTP into service
//! calls and service errors into problem+json. No rule lives here.
// Handlers return `Result<_, ProblemResponse>` by value, as poem-openapi needs to document
// every error status; the error path is cold, so its size does not matter.
#![allow(clippy::result_large_err)]

mod apps;
mod auth;
mod conversations;
mod files;
mod messages;
mod presence;
mod problem;
mod users;
mod webhooks;

use poem_openapi::auth::Bearer;
use poem_openapi::{OpenApiService, SecurityScheme, Tags};

use crate::service::{Caller, Services};
pub use problem::{ProblemResponse, problem_response};

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

/// The services, which exist in a running server but not when only the spec is printed.
fn svc(services: &Option<std::sync::Arc<Services>>) -> Result<&Services, ProblemResponse> {
    services
        .as_deref()
        .ok_or_else(|| crate::error::AppError::Unavailable("the server is not serving requests".into()).into())
}
