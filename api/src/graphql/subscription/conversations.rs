use async_graphql::{Context, InputObject, Result, Subscription};
use uuid::Uuid;

use super::{event_key, message_key, typing_key};
use crate::graphql::shared::{SharedItems, subscription_items};
use crate::graphql::{GqlResult, caller, services};
use crate::service::live::ResumePoint;
use crate::service::views::{LiveEvent, MessageView, TypingEvent};

#[derive(Default)]
pub struct ConversationSubscription;

/// The last seq the client has of a conversation.
#[derive(InputObject)]
pub struct ResumeFrom {
    pub conversation_id: Uuid,
    pub seq: i64,
}

#[Subscription]
impl ConversationSubscription {
    /// Everything for the signed-in user: messages added/edited/deleted, typing, read markers,
    /// membership changes, and presence of people they have direct conversations with.
    /// `after` resumes conversations: what was missed is replayed first, in seq order.
    async fn events(&self, ctx: &Context<'_>, after: Option<Vec<ResumeFrom>>) -> Result<SharedItems<LiveEvent>> {
        subscription_items(ctx, event_key, async move {
            let caller = caller(ctx).gql()?;
            let after = after
                .unwrap_or_default()
                .into_iter()
                .map(|r| ResumePoint { conversation_id: r.conversation_id, seq: r.seq })
                .collect();
            // Boxed: the subscribe future is large and the resolver's must stay small
            // (per-subscription memory; issue #14 item 7 turns this into a lint).
            Box::pin(services(ctx).live.subscribe_events(&caller, after)).await.gql()
        })
        .await
    }

    /// Everything of one conversation, as `events` has it (messages, edits, deletions, typing,
    /// read markers, reactions, pins, membership), without presence; with `afterSeq`, missed
    /// messages are replayed first. Ends when you leave the conversation.
    async fn conversation_events(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
        after_seq: Option<i64>,
    ) -> Result<SharedItems<LiveEvent>> {
        subscription_items(ctx, event_key, async move {
            let caller = caller(ctx).gql()?;
            // Boxed: as in `events`.
            Box::pin(services(ctx).live.subscribe_conversation_events(&caller, conversation_id, after_seq)).await.gql()
        })
        .await
    }

    /// New messages of one conversation in seq order; with `afterSeq`, the ones after it are
    /// replayed first, with no gap and no duplicate.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
        after_seq: Option<i64>,
    ) -> Result<SharedItems<MessageView>> {
        subscription_items(ctx, |msg| message_key(msg, 0), async move {
            let caller = caller(ctx).gql()?;
            // Boxed: as in `events`.
            Box::pin(services(ctx).live.subscribe_messages(&caller, conversation_id, after_seq)).await.gql()
        })
        .await
    }

    /// Who starts and stops typing in a conversation (you are left out).
    async fn typing(&self, ctx: &Context<'_>, conversation_id: Uuid) -> Result<SharedItems<TypingEvent>> {
        subscription_items(ctx, typing_key, async move {
            let caller = caller(ctx).gql()?;
            // Boxed: as in `events`.
            Box::pin(services(ctx).live.subscribe_typing(&caller, conversation_id)).await.gql()
        })
        .await
    }
}
