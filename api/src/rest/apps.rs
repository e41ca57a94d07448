//! Apps and their API keys, for admins (an admin user's session).

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::{ApiTags, BearerAuth, ProblemResponse, svc};
use crate::service::Services;
use crate::service::apps::{AppChanges, AppCreated, AppInput, AppView, KeyView, NewKeyView};

pub struct AppApi {
    pub services: Option<Arc<Services>>,
}

#[derive(Object)]
struct AppList {
    items: Vec<AppView>,
}

#[derive(Object)]
struct KeyList {
    items: Vec<KeyView>,
}

#[derive(Object)]
struct Done {
    /// False when there was nothing to do (already revoked).
    ok: bool,
}

#[OpenApi(prefix_path = "/apps", tag = "ApiTags::Apps")]
impl AppApi {
    /// Register an app: its bot user and a first API key (whose secret is shown only here).
    #[oai(path = "/", method = "post", operation_id = "createApp")]
    async fn create(&self, auth: BearerAuth, body: Json<AppInput>) -> Result<Json<AppCreated>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.apps.create(&caller, body.0).await?))
    }

    #[oai(path = "/", method = "get", operation_id = "listApps")]
    async fn list(&self, auth: BearerAuth) -> Result<Json<AppList>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(AppList { items: services.apps.list(&caller).await? }))
    }

    #[oai(path = "/:id", method = "get", operation_id = "getApp")]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<AppView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.apps.get(&caller, id.0).await?))
    }

    /// Rename an app or change its description or scopes (its keys get the new scopes at once).
    #[oai(path = "/:id", method = "patch", operation_id = "updateApp")]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<AppChanges>,
    ) -> Result<Json<AppView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.apps.update(&caller, id.0, body.0).await?))
    }

    /// Delete an app: its keys stop working at once on every node; its bot is disabled.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteApp")]
    async fn delete(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<Done>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(Done { ok: services.apps.delete(&caller, id.0).await? }))
    }

    /// A new API key (the secret is shown only here); existing keys keep working.
    #[oai(path = "/:id/keys", method = "post", operation_id = "createAppKey")]
    async fn create_key(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<NewKeyView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.apps.create_key(&caller, id.0).await?))
    }

    /// The app's keys by prefix, with last use and revocation.
    #[oai(path = "/:id/keys", method = "get", operation_id = "listAppKeys")]
    async fn list_keys(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<KeyList>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(KeyList { items: services.apps.get(&caller, id.0).await?.keys }))
    }

    /// Revoke a key: refused at once on every node, and its WebSocket connections close.
    #[oai(path = "/:id/keys/:keyId", method = "delete", operation_id = "revokeAppKey")]
    async fn revoke_key(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(name = "keyId")] key_id: Path<Uuid>,
    ) -> Result<Json<Done>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(Done { ok: services.apps.revoke_key(&caller, id.0, key_id.0).await? }))
    }
}
