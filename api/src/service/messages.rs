//! Messages: send (idempotent per client message id, `seq` assigned in the storing
//! transaction), edit and delete own messages, history by `seq`, and read markers.

use super::scopes::Scope;
use std::sync::Arc;

use sea_orm::{DbBackend, TransactionTrait};
use syncchat_realtime::{EventKind, History, HistoryError, MessageSnapshot, PresenceStore, Topic};
use tracing::instrument;
use uuid::Uuid;

use super::batch::{SendBatcher, store_one};
use super::limits::{LimitSettings, RateLimit};
use super::mentions::{self, MentionResolver};
use super::users::page_limit;
use super::views::{MessageView, Page, ReadReceipts, ReadState, UserRef};
use super::webhooks::{self, payload};
use super::{Caller, Context, Conversations, FileService, Users};
use crate::domain::MessageBody;
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::message::{self, NewMessage};
use crate::storage::{conversation, mention, participant, reaction, webhook_event};

pub const MAX_CLIENT_MESSAGE_ID: usize = 64;

#[derive(Debug, Clone, async_graphql::InputObject, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct SendMessageInput {
    pub conversation_id: Uuid,
    pub body: String,
    /// Chosen by the client (e.g. a UUID) to make retries safe: sending again with the same
    /// id returns the first message and stores nothing.
    pub client_message_id: Option<String>,
    /// Files to attach (uploaded by the sender).
    #[graphql(default)]
    #[oai(default)]
    pub attachment_ids: Vec<Uuid>,
}

/// A page of history by `seq`: `after` reads forward from a seq, `before` reads back from one,
/// neither reads the newest page. Pages are always in ascending `seq` order.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub before: Option<i64>,
    pub after: Option<i64>,
    pub limit: Option<u64>,
}

/// Messages: sending (through the batcher on Postgres), editing, deleting, history and
/// read markers.
pub struct Messages {
    ctx: Context,
    users: Arc<Users>,
    conversations: Arc<Conversations>,
    files: Arc<FileService>,
    send_limit: RateLimit<Uuid>,
    sends: SendBatcher,
    mentions: MentionResolver,
}

impl Messages {
    pub fn new(
        ctx: Context,
        users: Arc<Users>,
        conversations: Arc<Conversations>,
        files: Arc<FileService>,
        presence: Arc<dyn PresenceStore>,
        limits: &LimitSettings,
        background: &crate::background::Background,
    ) -> Messages {
        let send_limit = RateLimit::per_second("send_message", limits.send_per_sec, limits.send_burst);
        let sends = SendBatcher::new(background.clone());
        let mentions = MentionResolver::new(ctx.clone(), conversations.clone(), presence, limits.mention_everyone);
        Messages { ctx, users, conversations, files, send_limit, sends, mentions }
    }

    pub(crate) fn shrink_limits(&self) {
        self.send_limit.shrink();
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %input.conversation_id))]
    pub async fn send(&self, caller: &Caller, input: SendMessageInput) -> AppResult<MessageView> {
        caller.require(Scope::MessagesWrite)?;
        let body = MessageBody::parse(&input.body)?;
        let client_message_id = match input.client_message_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(id) if id.chars().count() > MAX_CLIENT_MESSAGE_ID => {
                return Err(AppError::bad_input(
                    "clientMessageId",
                    format!("clientMessageId must be at most {MAX_CLIENT_MESSAGE_ID} characters"),
                ));
            }
            // Postgres cannot store NUL; no other control character belongs in an id either.
            Some(id) if id.chars().any(char::is_control) => {
                return Err(AppError::bad_input(
                    "clientMessageId",
                    "clientMessageId must not contain control characters",
                ));
            }
            Some(id) => Some(id.to_owned()),
        };
        let mut attachment_ids = input.attachment_ids.clone();
        attachment_ids.sort_unstable();
        attachment_ids.dedup();
        if attachment_ids.len() > super::files::MAX_ATTACHMENTS {
            return Err(AppError::bad_input(
                "attachmentIds",
                format!("at most {} files per message", super::files::MAX_ATTACHMENTS),
            ));
        }
        // On Postgres a message without files is stored by one statement that also checks
        // membership, batched with concurrent sends (`batch`); elsewhere membership is read
        // first.
        let one_statement = self.ctx.db.get_database_backend() == DbBackend::Postgres && attachment_ids.is_empty();
        if !one_statement || client_message_id.is_some() {
            self.conversations.require_member(caller, input.conversation_id).await?;
        }

        // A retry returns what the first attempt stored.
        if let Some(cmid) = &client_message_id
            && let Some(existing) = self.find_by_client_id(caller.user_id, cmid).await?
        {
            return self.retried(existing, input.conversation_id).await;
        }
        self.send_limit.check(&caller.user_id)?;
        let body = body.into_inner();
        let mentioned = self.mentions.resolve(caller, input.conversation_id, &body).await?;

        let id = Uuid::now_v7();
        let search_text = crate::domain::search_query::cjk_index_text(&body);
        let event_data = webhooks::payload::new_message(
            caller,
            id,
            &body,
            client_message_id.as_deref(),
            &attachment_ids,
            &mentioned.users,
        );
        let send = NewMessage {
            id,
            conversation_id: input.conversation_id,
            sender_id: caller.user_id,
            body,
            client_message_id: client_message_id.clone(),
            event_data,
            mentions: mentioned.json.clone(),
            mentioned: mentioned.users.clone(),
            search_text,
        };
        let stored = if one_statement {
            self.sends.store(&self.ctx, send).await
        } else {
            self.store_with_files(send, &attachment_ids).await
        };
        let stored = match stored {
            Err(AppError::Conflict(_)) if client_message_id.is_some() => {
                // A concurrent retry won the race on the unique (sender, client id) index.
                let cmid = client_message_id.unwrap_or_default();
                let existing = self.find_by_client_id(caller.user_id, &cmid).await?;
                let existing = existing.ok_or_else(|| AppError::Conflict("clientMessageId was reused".into()))?;
                return self.retried(existing, input.conversation_id).await;
            }
            other => other?,
        };
        m::message("sent");
        mentioned.count();
        // The sender is the caller: only attachments need reading back.
        let mut view = MessageView::from_model(stored, caller.user_ref());
        if !attachment_ids.is_empty() {
            view.attachments = self.files.attachment_views(&[view.id]).await?.remove(&view.id).unwrap_or_default();
        }
        let topic = Topic::Conversation(view.conversation_id);
        self.ctx.publish(topic, EventKind::MessageAdded { message: MessageSnapshot::from(&view) }).await;
        Ok(view)
    }

    /// Stores a message and attaches its files in one transaction (the send rule, then the
    /// files: a file that may not be attached undoes the send).
    async fn store_with_files(&self, send: NewMessage, attachment_ids: &[Uuid]) -> AppResult<message::Model> {
        let txn = self.ctx.db.begin().await?;
        let stored = store_one(&txn, &send, self.ctx.now()).await?;
        FileService::attach(&txn, send.sender_id, stored.id, attachment_ids).await?;
        txn.commit().await?;
        Ok(stored)
    }

    async fn find_by_client_id(&self, sender: Uuid, cmid: &str) -> AppResult<Option<message::Model>> {
        Ok(message::by_client_id(&self.ctx.db, sender, cmid).await?)
    }

    async fn retried(&self, existing: message::Model, conversation_id: Uuid) -> AppResult<MessageView> {
        if existing.conversation_id != conversation_id {
            return Err(AppError::Conflict("clientMessageId was already used in another conversation".into()));
        }
        self.view(existing).await
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id, message.id = %message_id))]
    pub async fn edit(&self, caller: &Caller, message_id: Uuid, body: &str) -> AppResult<MessageView> {
        caller.require(Scope::MessagesWrite)?;
        let body = MessageBody::parse(body)?;
        let msg = self.own_message(caller, message_id).await?;
        if msg.deleted_at.is_some() {
            return Err(AppError::Conflict("a deleted message cannot be edited".into()));
        }
        let body = body.into_inner();
        let mentioned = self.mentions.resolve(caller, msg.conversation_id, &body).await?;
        let at = self.ctx.now();
        let txn = self.ctx.db.begin().await?;
        let updated = message::edit(&txn, msg, body, mentioned.json.clone(), at).await?;
        mention::clear(&txn, updated.id).await?;
        mention::insert(&txn, &updated, &mentioned.users).await?;
        record_message_change(&txn, caller, payload::MESSAGE_EDITED, &updated, at).await?;
        txn.commit().await?;
        m::message("edited");
        let mut view = self.view(updated).await?;
        let topic = Topic::Conversation(view.conversation_id);
        self.ctx.publish(topic, EventKind::MessageEdited { message: MessageSnapshot::from(&view) }).await;
        super::reactions::attach(&self.ctx.db, caller.user_id, std::slice::from_mut(&mut view)).await?;
        Ok(view)
    }

    /// Soft delete: the row keeps its `seq` (history has no holes) but loses its body.
    /// Deleting again returns the deleted message.
    #[instrument(skip_all, fields(user.id = %caller.user_id, message.id = %message_id))]
    pub async fn delete(&self, caller: &Caller, message_id: Uuid) -> AppResult<MessageView> {
        caller.require(Scope::MessagesWrite)?;
        let msg = self.own_message(caller, message_id).await?;
        if msg.deleted_at.is_some() {
            return self.view(msg).await;
        }
        let at = self.ctx.now();
        let txn = self.ctx.db.begin().await?;
        let updated = message::wipe(&txn, msg, at).await?;
        reaction::clear(&txn, updated.id).await?;
        mention::clear(&txn, updated.id).await?;
        crate::storage::pin::clear_message(&txn, updated.id).await?;
        record_message_change(&txn, caller, payload::MESSAGE_DELETED, &updated, at).await?;
        txn.commit().await?;
        self.deleted(updated).await
    }

    /// After a deletion committed: counts it, drops its files, tells the conversation.
    pub(crate) async fn deleted(&self, updated: message::Model) -> AppResult<MessageView> {
        m::message("deleted");
        self.files.drop_attachments_of(updated.id).await;
        let view = self.view(updated).await?;
        let topic = Topic::Conversation(view.conversation_id);
        self.ctx.publish(topic, EventKind::MessageDeleted { message: MessageSnapshot::from(&view) }).await;
        Ok(view)
    }

    /// A message the caller sent, in a conversation they are still in.
    async fn own_message(&self, caller: &Caller, message_id: Uuid) -> AppResult<message::Model> {
        let msg = message::find(&self.ctx.db, message_id).await?;
        let msg = msg.ok_or_else(|| AppError::not_found("message"))?;
        // Existence is only revealed to participants.
        self.conversations
            .conversation_for(caller, msg.conversation_id)
            .await
            .map_err(|_| AppError::not_found("message"))?;
        if msg.sender_id != caller.user_id {
            return Err(AppError::Forbidden("only the sender can change a message".into()));
        }
        Ok(msg)
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %conversation_id))]
    pub async fn list(&self, caller: &Caller, conversation_id: Uuid, q: HistoryQuery) -> AppResult<Page<MessageView>> {
        caller.require(Scope::MessagesRead)?;
        let limit = page_limit(q.limit, 50, 200)?;
        for (field, v) in [("before", q.before), ("after", q.after)] {
            if v.is_some_and(|s| s < 0) {
                return Err(AppError::bad_input(field, format!("{field} must be a seq (0 or more)")));
            }
        }
        // One query in the common case: the page with each sender's name and whether it has
        // files, provided the caller is a participant. Membership is read on its own only to
        // tell an empty page from a conversation the caller is not in.
        let forward = q.after.is_some();
        let mut rows =
            message::history_page(&self.ctx.db, conversation_id, caller.user_id, q.before, q.after, limit + 1).await?;
        if rows.is_empty() {
            self.conversations.require_member(caller, conversation_id).await?;
        }
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        if !forward {
            rows.reverse();
        }
        // Forward pages continue after their last seq, backward pages before their first.
        let next_cursor = has_more
            .then(|| if forward { rows.last() } else { rows.first() })
            .flatten()
            .map(|row| row.message.seq.to_string());
        let with_files: Vec<Uuid> =
            rows.iter().filter(|r| r.has_files && r.message.deleted_at.is_none()).map(|r| r.message.id).collect();
        let with_reactions: Vec<Uuid> =
            rows.iter().filter(|r| r.message.reaction_count > 0).map(|r| r.message.id).collect();
        let mut reactions = super::reactions::summaries(&self.ctx.db, caller.user_id, &with_reactions).await?;
        let mut attachments = self.files.attachment_views(&with_files).await?;
        let items = rows
            .into_iter()
            .map(|row| {
                let files = attachments.remove(&row.message.id).unwrap_or_default();
                let sender = match row.sender_username {
                    Some(username) => UserRef {
                        id: row.message.sender_id,
                        username,
                        display_name: row.sender_display_name,
                        is_bot: row.sender_role.as_deref() == Some(crate::storage::user::ROLE_BOT),
                    },
                    None => UserRef::unknown(row.message.sender_id),
                };
                let own_reactions = reactions.remove(&row.message.id).unwrap_or_default();
                let sender_blocked = row.sender_blocked;
                let mut view = MessageView::from_model(row.message, sender);
                view.sender_blocked = sender_blocked;
                view.attachments = files;
                view.reactions = own_reactions;
                view
            })
            .collect();
        Ok(Page { items, next_cursor, has_more })
    }

    /// Messages that mention the caller (by name, `@here` or `@all`), newest first, in the
    /// conversations they are still in.
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn mentions(
        &self,
        caller: &Caller,
        first: Option<u64>,
        after: Option<&str>,
    ) -> AppResult<Page<MessageView>> {
        caller.require(Scope::MessagesRead)?;
        let limit = page_limit(first, 20, 100)?;
        let before = mentions::parse_cursor(after)?;
        let rows = mention::page(&self.ctx.db, caller.user_id, before, limit + 1).await?;
        let mut items = self.views(rows).await?;
        super::reactions::attach(&self.ctx.db, caller.user_id, &mut items).await?;
        Ok(mentions::page_of(items, limit))
    }

    /// Moves the caller's read marker forward to `seq` (never back).
    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %conversation_id, seq))]
    pub async fn mark_read(&self, caller: &Caller, conversation_id: Uuid, seq: i64) -> AppResult<ReadState> {
        caller.require(Scope::MessagesWrite)?;
        if seq < 0 {
            return Err(AppError::bad_input("seq", "seq must be 0 or more"));
        }
        let (conv, me) = self.conversations.participation(caller, conversation_id).await?;
        if seq > conv.last_seq {
            // Well-formed, but the conversation has not got there yet: a conflict with its state.
            return Err(AppError::Conflict(format!(
                "seq {seq} is beyond the conversation's last message ({})",
                conv.last_seq
            )));
        }
        let mut last_read_seq = me.last_read_seq;
        if seq > me.last_read_seq {
            // A private marker is the caller's own: no receipt for the others or their apps,
            // only the caller's other devices hear of it (their user topic).
            let private = self.users.read_receipts(caller.user_id).await? == ReadReceipts::Private;
            let at = self.ctx.now();
            let txn = self.ctx.db.begin().await?;
            conversation::lock(&txn, conversation_id).await?;
            participant::mark_read(&txn, conversation_id, caller.user_id, seq).await?;
            if !private {
                let change = webhook_event::Change {
                    id: Uuid::now_v7(),
                    kind: payload::READ_UPDATED,
                    conversation_id,
                    seq: Some(seq),
                    data: payload::read(caller),
                    at,
                };
                webhook_event::record(&txn, &change).await?;
            }
            txn.commit().await?;
            last_read_seq = seq;
            let kind = EventKind::Read { conversation_id, user_id: caller.user_id, last_read_seq: seq };
            let topic = if private { Topic::User(caller.user_id) } else { Topic::Conversation(conversation_id) };
            self.ctx.publish(topic, kind).await;
        }
        let (unread_count, mention_count) =
            self.conversations.unread_counts(conversation_id, caller.user_id, last_read_seq, conv.last_seq).await?;
        Ok(ReadState { conversation_id, last_read_seq, unread_count, mention_count })
    }

    pub(crate) async fn view(&self, msg: message::Model) -> AppResult<MessageView> {
        self.views(vec![msg]).await?.pop().ok_or_else(|| AppError::not_found("message"))
    }

    pub(crate) async fn views(&self, rows: Vec<message::Model>) -> AppResult<Vec<MessageView>> {
        let mut sender_ids: Vec<Uuid> = rows.iter().map(|r| r.sender_id).collect();
        sender_ids.sort_unstable();
        sender_ids.dedup();
        let users = self.users.refs(sender_ids).await?;
        let ids: Vec<Uuid> = rows.iter().filter(|r| r.deleted_at.is_none()).map(|r| r.id).collect();
        let mut attachments = self.files.attachment_views(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let sender =
                    users.get(&r.sender_id).cloned().unwrap_or_else(|| super::views::UserRef::unknown(r.sender_id));
                let files = attachments.remove(&r.id).unwrap_or_default();
                let mut view = MessageView::from_model(r, sender);
                view.attachments = files;
                view
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl History for Messages {
    async fn messages_between(
        &self,
        conversation_id: Uuid,
        after: i64,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<MessageSnapshot>, HistoryError> {
        let rows =
            message::between(&self.ctx.db, conversation_id, after, before, limit).await.map_err(HistoryError::new)?;
        let views = self.views(rows).await.map_err(HistoryError::new)?;
        Ok(views.iter().map(MessageSnapshot::from).collect())
    }
}

/// Records a change to a stored message in the webhook outbox (in the change's transaction).
pub(crate) async fn record_message_change<C: sea_orm::ConnectionTrait>(
    txn: &C,
    caller: &Caller,
    kind: &'static str,
    msg: &message::Model,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    let change = webhook_event::Change {
        id: Uuid::now_v7(),
        kind,
        conversation_id: msg.conversation_id,
        seq: Some(msg.seq),
        data: payload::changed_message(caller, msg),
        at,
    };
    Ok(webhook_event::record(txn, &change).await?)
}
