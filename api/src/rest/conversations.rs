use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::{ApiTags, BearerAuth, ProblemResponse, svc};
use crate::service::conversations::UpdateConversationInput;
use crate::service::views::ConversationView;
use crate::service::{CreateConversationInput, Services};

pub struct ConversationApi {
    pub services: Option<Arc<Services>>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct ConversationList {
    items: Vec<ConversationView>,
    next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct AddParticipantsRequest {
    #[oai(validator(min_items = 1, max_items = 100))]
    user_ids: Vec<Uuid>,
}

#[derive(Object)]
struct LeaveResult {
    ok: bool,
}

#[OpenApi(prefix_path = "/conversations", tag = "ApiTags::Conversations")]
impl ConversationApi {
    /// The signed-in user's conversations, newest activity first.
    #[oai(path = "/", method = "get", operation_id = "listConversations")]
    async fn list(
        &self,
        auth: BearerAuth,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u64>>,
        #[oai(validator(pattern = r"^[0-9]{1,17}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))]
        after: Query<Option<String>>,
    ) -> Result<Json<ConversationList>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let page = services.conversations.list(&caller, limit.0, after.0).await?;
        Ok(Json(ConversationList { items: page.items, next_cursor: page.next_cursor }))
    }

    /// Create a conversation; a direct one with the same person is returned if it exists.
    #[oai(path = "/", method = "post", operation_id = "createConversation")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateConversationInput>,
    ) -> Result<Json<ConversationView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.conversations.create(&caller, body.0).await?))
    }

    #[oai(path = "/:id", method = "get", operation_id = "getConversation")]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<ConversationView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.conversations.get(&caller, id.0).await?))
    }

    /// Rename a group conversation (any participant may; a direct one has no title: 409).
    #[oai(path = "/:id", method = "patch", operation_id = "updateConversation")]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<UpdateConversationInput>,
    ) -> Result<Json<ConversationView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.conversations.update(&caller, id.0, body.0).await?))
    }

    /// Add people to a group conversation.
    #[oai(path = "/:id/participants", method = "post", operation_id = "addParticipants")]
    async fn add_participants(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<AddParticipantsRequest>,
    ) -> Result<Json<ConversationView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.conversations.add_participants(&caller, id.0, body.0.user_ids).await?))
    }

    /// Leave a group conversation.
    #[oai(path = "/:id/participants/me", method = "delete", operation_id = "leaveConversation")]
    async fn leave(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<LeaveResult>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(LeaveResult { ok: services.conversations.leave(&caller, id.0).await? }))
    }
}
