use async_graphql::{Context, InputObject, Result, Subscription};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
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
    ) -> Result<BoxStream<'static, Result<Shared<TypingEvent>>>> {
        if let Some(item) = injected(ctx) {
            return Ok(item);
        }
        let caller = caller(ctx).gql()?;
        let stream = Box::pin(services(ctx).subscribe_typing(&caller, conversation_id)).await.gql()?;
        Ok(subscription_items(ctx, stream.map(|item| item.map(|e| Shared::new(Some(typing_key(&e)), e)).gql())))
    }
}

/// A message renders the same for everyone until it is edited or deleted, or a file of it
/// gets its thumbnail.
fn message_key(msg: &MessageView, tag: u8) -> ItemKey {
    let files: Vec<(Uuid, bool)> = msg.attachments.iter().map(|a| (a.id, a.thumbnail_url.is_some())).collect();
    ItemKey::of(msg.id, tag, (msg.edited_at, msg.deleted_at, files))
}

/// Every event renders the same for everyone who asked for the same fields: messages by id
/// and version, the small events (typing, read markers, membership, presence) by their whole
/// content.
fn event_key(event: &LiveEvent) -> Option<ItemKey> {
    Some(match event {
        LiveEvent::MessageAdded(e) => message_key(&e.message, 1),
        LiveEvent::MessageEdited(e) => message_key(&e.message, 2),
        LiveEvent::MessageDeleted(e) => message_key(&e.message, 3),
        LiveEvent::Read(e) => ItemKey::of(e.conversation_id, 4, e),
        LiveEvent::ConversationChanged(e) => ItemKey::of(e.conversation_id, 5, e),
        LiveEvent::Typing(e) => ItemKey::of(e.conversation_id, 6, e),
        LiveEvent::Presence(e) => ItemKey::of(e.user_id, 7, e),
    })
}

fn typing_key(event: &TypingEvent) -> ItemKey {
    ItemKey::of(event.conversation_id, 6, event)
}
