use async_graphql::{Context, InputObject, Result, Subscription};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use crate::graphql::shared::{ItemKey, Shared, injected, subscription_items};
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
    ) -> Result<BoxStream<'static, Result<Shared<LiveEvent>>>> {
        if let Some(item) = injected(ctx) {
            return Ok(item);
        }
        let caller = caller(ctx).gql()?;
        let after = after
            .unwrap_or_default()
            .into_iter()
            .map(|r| ResumePoint { conversation_id: r.conversation_id, seq: r.seq })
            .collect();
        let stream = Box::pin(services(ctx).subscribe_events(&caller, after)).await.gql()?;
        Ok(subscription_items(ctx, stream.map(|item| item.map(|event| Shared::new(event_key(&event), event)).gql())))
    }

    /// New messages of one conversation in seq order; with `afterSeq`, the ones after it are
    /// replayed first, with no gap and no duplicate.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
        after_seq: Option<i64>,
    ) -> Result<BoxStream<'static, Result<Shared<MessageView>>>> {
        if let Some(item) = injected(ctx) {
            return Ok(item);
        }
        let caller = caller(ctx).gql()?;
        let stream = Box::pin(services(ctx).subscribe_messages(&caller, conversation_id, after_seq)).await.gql()?;
        Ok(subscription_items(
            ctx,
            stream.map(|item| item.map(|msg| Shared::new(Some(message_key(&msg, 0)), msg)).gql()),
        ))
    }

    /// Who starts and stops typing in a conversation (you are left out).
    async fn typing(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
    ) -> Result<impl Stream<Item = Result<TypingEvent>>> {
        let caller = caller(ctx).gql()?;
        let stream = Box::pin(services(ctx).subscribe_typing(&caller, conversation_id)).await.gql()?;
        Ok(stream.map(GqlResult::gql))
    }
}

/// A message renders the same for everyone until it is edited or deleted, or a file of it
/// gets its thumbnail.
fn message_key(msg: &MessageView, tag: u8) -> ItemKey {
    let files: Vec<(Uuid, bool)> = msg.attachments.iter().map(|a| (a.id, a.thumbnail_url.is_some())).collect();
    ItemKey::of(msg.id, tag, (msg.edited_at, msg.deleted_at, files))
}

/// Message events are shared; the rest (typing, presence, read markers) are rendered per
/// subscriber.
fn event_key(event: &LiveEvent) -> Option<ItemKey> {
    match event {
        LiveEvent::MessageAdded(e) => Some(message_key(&e.message, 1)),
        LiveEvent::MessageEdited(e) => Some(message_key(&e.message, 2)),
        LiveEvent::MessageDeleted(e) => Some(message_key(&e.message, 3)),
        _ => None,
    }
}
