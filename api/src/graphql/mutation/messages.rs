use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use crate::graphql::{GqlResult, caller, services};
use crate::service::SendMessageInput;
use crate::service::views::{MessageView, PinView, ReadState};

#[derive(Default)]
pub struct MessageMutation;

#[Object]
impl MessageMutation {
    /// Stores a message and returns it with its `seq`. Retrying with the same
    /// `clientMessageId` returns the first message.
    async fn send_message(&self, ctx: &Context<'_>, input: SendMessageInput) -> Result<MessageView> {
        let caller = caller(ctx).gql()?;
        services(ctx).messages.send(&caller, input).await.gql()
    }

    async fn edit_message(&self, ctx: &Context<'_>, id: Uuid, body: String) -> Result<MessageView> {
        let caller = caller(ctx).gql()?;
        services(ctx).messages.edit(&caller, id, &body).await.gql()
    }

    async fn delete_message(&self, ctx: &Context<'_>, id: Uuid) -> Result<MessageView> {
        let caller = caller(ctx).gql()?;
        services(ctx).messages.delete(&caller, id).await.gql()
    }

    /// Reacts to a message with one emoji (👍, 👋🏽, or a shortcode such as `:rocket:`); a
    /// repeat changes nothing. Answers the message with its reactions.
    async fn add_reaction(&self, ctx: &Context<'_>, message_id: Uuid, emoji: String) -> Result<MessageView> {
        let caller = caller(ctx).gql()?;
        services(ctx).reactions.add(&caller, message_id, &emoji).await.gql()
    }

    /// Takes your reaction back (none to take back changes nothing).
    async fn remove_reaction(&self, ctx: &Context<'_>, message_id: Uuid, emoji: String) -> Result<MessageView> {
        let caller = caller(ctx).gql()?;
        services(ctx).reactions.remove(&caller, message_id, &emoji).await.gql()
    }

    /// Pins a message (a group's owner, or anyone in a direct conversation; at most 50 per
    /// conversation). Pinning again changes nothing.
    async fn pin_message(&self, ctx: &Context<'_>, message_id: Uuid) -> Result<PinView> {
        let caller = caller(ctx).gql()?;
        services(ctx).pins.pin(&caller, message_id).await.gql()
    }

    /// Unpins a message; `false` when it was not pinned.
    async fn unpin_message(&self, ctx: &Context<'_>, message_id: Uuid) -> Result<bool> {
        let caller = caller(ctx).gql()?;
        services(ctx).pins.unpin(&caller, message_id).await.gql()
    }

    /// Tells the other participants you are typing (or stopped). Without a refresh, typing
    /// ends by itself after 5 seconds.
    async fn set_typing(&self, ctx: &Context<'_>, conversation_id: Uuid, typing: bool) -> Result<bool> {
        let caller = caller(ctx).gql()?;
        services(ctx).live.set_typing(&caller, conversation_id, typing).await.gql()
    }

    /// Moves the read marker forward to `seq` (never back).
    async fn mark_read(&self, ctx: &Context<'_>, conversation_id: Uuid, seq: i64) -> Result<ReadState> {
        let caller = caller(ctx).gql()?;
        services(ctx).messages.mark_read(&caller, conversation_id, seq).await.gql()
    }
}
