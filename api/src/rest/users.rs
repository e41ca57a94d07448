use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::{ApiTags, BearerAuth, ProblemResponse, svc};
use crate::service::Services;
use crate::service::views::{SettingsInput, SettingsView, UserRef, UserView};

pub struct UserApi {
    pub services: Option<Arc<Services>>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct UserList {
    items: Vec<UserView>,
    next_cursor: Option<String>,
}

#[derive(Object)]
struct BlockedList {
    items: Vec<UserRef>,
}

#[derive(Object)]
struct Changed {
    /// False when there was nothing to change.
    ok: bool,
}

#[OpenApi(prefix_path = "/users", tag = "ApiTags::Users")]
impl UserApi {
    /// The signed-in user.
    #[oai(path = "/me", method = "get", operation_id = "me")]
    async fn me(&self, auth: BearerAuth) -> Result<Json<UserView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.users.me(&caller).await?))
    }

    /// Whom you blocked, the latest first.
    #[oai(path = "/me/blocked", method = "get", operation_id = "blockedUsers")]
    async fn blocked(&self, auth: BearerAuth) -> Result<Json<BlockedList>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(BlockedList { items: services.users.blocked(&caller).await? }))
    }

    /// Block a user: they cannot start a direct conversation with you, do not see your
    /// presence or typing, and their messages are flagged for you (`senderBlocked`).
    #[oai(path = "/:id/block", method = "put", operation_id = "blockUser")]
    async fn block(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<Changed>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(Changed { ok: services.users.block(&caller, id.0).await? }))
    }

    /// Unblock a user.
    #[oai(path = "/:id/block", method = "delete", operation_id = "unblockUser")]
    async fn unblock(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<Changed>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(Changed { ok: services.users.unblock(&caller, id.0).await? }))
    }

    /// Change the signed-in user's settings; a field left out stays as it is.
    /// `readReceipts: private` keeps how far you have read to yourself.
    #[oai(path = "/me/settings", method = "patch", operation_id = "updateSettings")]
    async fn update_settings(
        &self,
        auth: BearerAuth,
        body: Json<SettingsInput>,
    ) -> Result<Json<SettingsView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.users.update_settings(&caller, body.0).await?))
    }

    /// Users by username prefix, in username order.
    #[oai(path = "/", method = "get", operation_id = "listUsers")]
    async fn list(
        &self,
        auth: BearerAuth,
        #[oai(validator(max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"))] search: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u64>>,
        #[oai(validator(max_length = 32, pattern = r"^[a-z0-9_]*$"))] after: Query<Option<String>>,
    ) -> Result<Json<UserList>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let page = services.users.search(&caller, search.0, limit.0, after.0).await?;
        Ok(Json(UserList { items: page.items, next_cursor: page.next_cursor }))
    }

    #[oai(path = "/:id", method = "get", operation_id = "getUser")]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<UserView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.users.get(&caller, id.0).await?))
    }
}
