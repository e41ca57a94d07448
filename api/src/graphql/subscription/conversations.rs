use async_graphql::{Context, InputObject, Result, Subscription};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

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
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<Vec<ResumeFrom>>,
    ) -> Result<impl Stream<Item = Result<LiveEvent>>> {
        let caller = caller(ctx).gql()?;
        let after = after
            .unwrap_or_default()
            .into_iter()
            .map(|r| ResumePoint { conversation_id: r.conversation_id, seq: r.seq })
            .collect();
        let stream = services(ctx).subscribe_events(&caller, after).await.gql()?;
        Ok(stream.map(GqlResult::gql))
    }

    /// New messages of one conversation in seq order; with `afterSeq`, the ones after it are
    /// replayed first, with no gap and no duplicate.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
        after_seq: Option<i64>,
    ) -> Result<impl Stream<Item = Result<MessageView>>> {
        let caller = caller(ctx).gql()?;
        let stream = services(ctx).subscribe_messages(&caller, conversation_id, after_seq).await.gql()?;
        Ok(stream.map(GqlResult::gql))
    }

    /// Who starts and stops typing in a conversation (you are left out).
    async fn typing(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
    ) -> Result<impl Stream<Item = Result<TypingEvent>>> {
        let caller = caller(ctx).gql()?;
        let stream = services(ctx).subscribe_typing(&caller, conversation_id).await.gql()?;
        Ok(stream.map(GqlResult::gql))
    }
}
