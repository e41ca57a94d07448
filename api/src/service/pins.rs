//! Pinned messages: a group's owner (anyone in a direct conversation) pins up to
//! [`MAX_PINS`] messages; every participant reads them (`Conversation.pinnedMessages`, REST
//! `GET /conversations/{id}/pins`) and hears of each change live (`PinsChanged`).

use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::TransactionTrait;
use syncchat_realtime::{EventKind, Topic};
use tracing::instrument;
use uuid::Uuid;

use super::scopes::Scope;
use super::views::{PinView, UserRef};
use super::{Caller, Context, Conversations, Messages, Users};
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::{conversation, message, participant, pin};

/// Most pinned messages per conversation.
pub const MAX_PINS: u64 = 50;

/// The pins area.
pub struct Pins {
    ctx: Context,
    users: Arc<Users>,
    conversations: Arc<Conversations>,
    messages: Arc<Messages>,
}

impl Pins {
    pub fn new(ctx: Context, users: Arc<Users>, conversations: Arc<Conversations>, messages: Arc<Messages>) -> Pins {
        Pins { ctx, users, conversations, messages }
    }

    /// Pins a message (again: nothing changes) and answers the pin.
    #[instrument(skip_all, fields(user.id = %caller.user_id, message.id = %message_id))]
    pub async fn pin(&self, caller: &Caller, message_id: Uuid) -> AppResult<PinView> {
        let msg = self.pinnable(caller, message_id).await?;
        if msg.deleted_at.is_some() {
            return Err(AppError::Conflict("a deleted message cannot be pinned".into()));
        }
        let txn = self.ctx.db.begin().await?;
        // The conversation's row first, as a send takes it: pins are counted one at a time.
        conversation::lock(&txn, msg.conversation_id).await?;
        let pinned = pin::of_conversation(&txn, msg.conversation_id).await?;
        let already = pinned.iter().any(|p| p.message_id == message_id);
        if !already && pinned.len() as u64 >= MAX_PINS {
            return Err(AppError::Conflict(format!(
                "this conversation has {MAX_PINS} pinned messages, the most it may have: unpin one first"
            )));
        }
        let added = pin::add(&txn, msg.conversation_id, message_id, caller.user_id, self.ctx.now()).await?;
        txn.commit().await?;
        if added {
            self.changed(caller, &msg, true).await;
        }
        let found = pin::of_conversation(&self.ctx.db, msg.conversation_id).await?;
        let row = found.into_iter().find(|p| p.message_id == message_id).ok_or_else(|| AppError::not_found("pin"))?;
        self.views(vec![row]).await?.pop().ok_or_else(|| AppError::not_found("pin"))
    }

    /// Unpins a message; `false` when it was not pinned.
    #[instrument(skip_all, fields(user.id = %caller.user_id, message.id = %message_id))]
    pub async fn unpin(&self, caller: &Caller, message_id: Uuid) -> AppResult<bool> {
        let msg = self.pinnable(caller, message_id).await?;
        let removed = pin::remove(&self.ctx.db, msg.conversation_id, message_id).await?;
        if removed {
            self.changed(caller, &msg, false).await;
        }
        Ok(removed)
    }

    /// A conversation's pinned messages, the newest pin first.
    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %conversation_id))]
    pub async fn list(&self, caller: &Caller, conversation_id: Uuid) -> AppResult<Vec<PinView>> {
        caller.require(Scope::MessagesRead)?;
        self.conversations.require_member(caller, conversation_id).await?;
        let rows = pin::of_conversation(&self.ctx.db, conversation_id).await?;
        self.views(rows).await
    }

    /// The message, if the caller may pin in its conversation.
    async fn pinnable(&self, caller: &Caller, message_id: Uuid) -> AppResult<message::Model> {
        caller.require(Scope::MessagesWrite)?;
        let msg = message::find(&self.ctx.db, message_id).await?.ok_or_else(|| AppError::not_found("message"))?;
        let (conv, me) = self
            .conversations
            .participation(caller, msg.conversation_id)
            .await
            .map_err(|_| AppError::not_found("message"))?;
        if conv.kind != conversation::KIND_DIRECT && me.role != participant::ROLE_OWNER {
            return Err(AppError::Forbidden("only the conversation's owner pins messages in a group".into()));
        }
        Ok(msg)
    }

    async fn changed(&self, caller: &Caller, msg: &message::Model, pinned: bool) {
        m::pin(if pinned { "pinned" } else { "unpinned" });
        let kind = EventKind::PinsChanged {
            conversation_id: msg.conversation_id,
            message_id: msg.id,
            seq: msg.seq,
            user_id: caller.user_id,
            username: caller.username.clone(),
            pinned,
        };
        self.ctx.publish(Topic::Conversation(msg.conversation_id), kind).await;
    }

    async fn views(&self, rows: Vec<pin::Model>) -> AppResult<Vec<PinView>> {
        let ids: Vec<Uuid> = rows.iter().map(|p| p.message_id).collect();
        let found = message::among(&self.ctx.db, ids).await?;
        let mut by_id: HashMap<Uuid, _> = self.messages.views(found).await?.into_iter().map(|v| (v.id, v)).collect();
        let mut pinners: Vec<Uuid> = rows.iter().map(|p| p.pinned_by).collect();
        pinners.sort_unstable();
        pinners.dedup();
        let users = self.users.refs(pinners).await?;
        Ok(rows
            .into_iter()
            .filter_map(|p| {
                let message = by_id.remove(&p.message_id)?;
                let pinned_by = users.get(&p.pinned_by).cloned().unwrap_or_else(|| UserRef::unknown(p.pinned_by));
                Some(PinView { message, pinned_by, pinned_at: p.pinned_at })
            })
            .collect())
    }
}
