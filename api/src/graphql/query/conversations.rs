use async_graphql::connection::Connection;
use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use crate::graphql::{GqlResult, caller, connection, services};
use crate::service::conversations::encode_activity_cursor;
use crate::service::views::{ConversationView, PinView};

#[derive(Default)]
pub struct ConversationQuery;

#[Object]
impl ConversationQuery {
    /// The signed-in user's conversations, newest activity first, with the last message and
    /// unread count.
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        first: Option<u64>,
        after: Option<String>,
    ) -> Result<Connection<String, ConversationView>> {
        let caller = caller(ctx).gql()?;
        let page = services(ctx).conversations.list(&caller, first, after).await.gql()?;
        Ok(connection(page, false, |c| encode_activity_cursor(c.updated_at, c.id)))
    }

    async fn conversation(&self, ctx: &Context<'_>, id: Uuid) -> Result<ConversationView> {
        let caller = caller(ctx).gql()?;
        services(ctx).conversations.get(&caller, id).await.gql()
    }
}

/// Fields of a conversation read only when asked for.
#[async_graphql::ComplexObject]
impl ConversationView {
    /// Its pinned messages, the newest pin first (at most 50).
    async fn pinned_messages(&self, ctx: &Context<'_>) -> Result<Vec<PinView>> {
        let caller = caller(ctx).gql()?;
        services(ctx).pins.list(&caller, self.id).await.gql()
    }
}
