use std::sync::Arc;

use poem::web::RemoteAddr;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::{ApiTags, BearerAuth, ProblemResponse, svc};
use crate::service::views::AuthPayload;
use crate::service::{LoginInput, RegisterInput, Services};

pub struct AuthApi {
    pub services: Option<Arc<Services>>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct RefreshRequest {
    #[oai(deserialize_with = "crate::rest::strict::text")]
    refresh_token: String,
}

#[derive(Object)]
struct LogoutResult {
    ok: bool,
}

fn ip(addr: &RemoteAddr) -> Option<std::net::IpAddr> {
    addr.as_socket_addr().map(|a| a.ip())
}

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Create an account and sign in.
    #[oai(path = "/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        addr: &RemoteAddr,
        body: Json<RegisterInput>,
    ) -> Result<Json<AuthPayload>, ProblemResponse> {
        Ok(Json(svc(&self.services)?.auth.register(body.0, ip(addr)).await?))
    }

    /// Sign in with username or email.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(&self, addr: &RemoteAddr, body: Json<LoginInput>) -> Result<Json<AuthPayload>, ProblemResponse> {
        Ok(Json(svc(&self.services)?.auth.login(body.0, ip(addr)).await?))
    }

    /// Exchange a refresh token for new tokens. The old one stops working; presenting it
    /// again revokes the session.
    #[oai(path = "/refresh", method = "post", operation_id = "refreshToken")]
    async fn refresh(
        &self,
        addr: &RemoteAddr,
        body: Json<RefreshRequest>,
    ) -> Result<Json<AuthPayload>, ProblemResponse> {
        Ok(Json(svc(&self.services)?.auth.refresh(&body.0.refresh_token, ip(addr)).await?))
    }

    /// End the current session.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, auth: BearerAuth) -> Result<Json<LogoutResult>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(LogoutResult { ok: services.auth.logout(&caller).await? }))
    }
}
