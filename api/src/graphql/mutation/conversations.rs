use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use crate::graphql::{GqlResult, caller, services};
use crate::service::CreateConversationInput;
use crate::service::conversations::UpdateConversationInput;
use crate::service::views::ConversationView;

#[derive(Default)]
pub struct ConversationMutation;

#[Object]
impl ConversationMutation {
    /// Creates a conversation; a direct one with the same person is returned if it exists.
    async fn create_conversation(&self, ctx: &Context<'_>, input: CreateConversationInput) -> Result<ConversationView> {
        let caller = caller(ctx).gql()?;
        services(ctx).conversations.create(&caller, input).await.gql()
    }

    async fn add_participants(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
        user_ids: Vec<Uuid>,
    ) -> Result<ConversationView> {
        let caller = caller(ctx).gql()?;
        services(ctx).conversations.add_participants(&caller, conversation_id, user_ids).await.gql()
    }

    /// Renames a group conversation (any participant may).
    async fn update_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
        input: UpdateConversationInput,
    ) -> Result<ConversationView> {
        let caller = caller(ctx).gql()?;
        services(ctx).conversations.update(&caller, conversation_id, input).await.gql()
    }

    async fn leave_conversation(&self, ctx: &Context<'_>, conversation_id: Uuid) -> Result<bool> {
        let caller = caller(ctx).gql()?;
        services(ctx).conversations.leave(&caller, conversation_id).await.gql()
    }
}
