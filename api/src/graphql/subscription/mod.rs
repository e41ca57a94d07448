//! Subscription root, merged from one object per area. Each resolver authorizes, then hands
//! back the service's live stream, each item keyed for shared rendering (`graphql::shared`).

mod conversations;
mod presence;

use uuid::Uuid;

use super::shared::ItemKey;
use crate::service::views::{LiveEvent, MessageView, PresenceView, TypingEvent};

/// A message renders the same for everyone until it is edited or deleted, or a file of it
/// gets its thumbnail.
fn message_key(msg: &MessageView, tag: u8) -> ItemKey {
    let files: Vec<(Uuid, bool)> = msg.attachments.iter().map(|a| (a.id, a.thumbnail_url.is_some())).collect();
    ItemKey::of(msg.id, tag, (msg.edited_at, msg.deleted_at, files))
}

/// Typing, read markers, membership and presence hold nothing that depends on the reader:
/// their whole content is their version.
fn typing_key(event: &TypingEvent) -> ItemKey {
    ItemKey::of(event.conversation_id, 6, event)
}

fn presence_key(status: &PresenceView) -> ItemKey {
    ItemKey::of(status.user_id, 7, status)
}

/// Every event renders the same for everyone who asked for the same fields.
fn event_key(event: &LiveEvent) -> ItemKey {
    match event {
        LiveEvent::MessageAdded(e) => message_key(&e.message, 1),
        LiveEvent::MessageEdited(e) => message_key(&e.message, 2),
        LiveEvent::MessageDeleted(e) => message_key(&e.message, 3),
        LiveEvent::Read(e) => ItemKey::of(e.conversation_id, 4, e),
        LiveEvent::ConversationChanged(e) => ItemKey::of(e.conversation_id, 5, e),
        LiveEvent::Typing(e) => typing_key(e),
        LiveEvent::Presence(e) => presence_key(e),
    }
}

#[derive(async_graphql::MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(conversations::ConversationSubscription, presence::PresenceSubscription);
