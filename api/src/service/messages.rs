//! Messages: send (idempotent per client message id, `seq` assigned in the storing
//! transaction), edit and delete own messages, history by `seq`, and read markers.

use std::sync::Arc;

use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Order, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbBackend, EntityTrait, FromQueryResult, JoinType, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use syncchat_realtime::{EventKind, History, HistoryError, MessageSnapshot, Topic};
use tracing::instrument;
use uuid::Uuid;

use super::batch::SendBatcher;
use super::limits::{LimitSettings, RateLimit};
use super::users::page_limit;
use super::views::{MessageView, Page, ReadState, UserRef};
use super::{Caller, Context, Conversations, FileService, Users};
use crate::domain::MessageBody;
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::{attachment, conversation, is_unique_violation, message, participant, user};

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
}

impl Messages {
    pub fn new(
        ctx: Context,
        users: Arc<Users>,
        conversations: Arc<Conversations>,
        files: Arc<FileService>,
        limits: &LimitSettings,
    ) -> Messages {
        let send_limit = RateLimit::per_second("send_message", limits.send_per_sec, limits.send_burst);
        Messages { ctx, users, conversations, files, send_limit, sends: SendBatcher::default() }
    }

    pub(crate) fn shrink_limits(&self) {
        self.send_limit.shrink();
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %input.conversation_id))]
    pub async fn send(&self, caller: &Caller, input: SendMessageInput) -> AppResult<MessageView> {
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

        let stored = if one_statement {
            let send = super::batch::Pending {
                conversation_id: input.conversation_id,
                sender: caller.user_id,
                body: body.into_inner(),
                client_message_id: client_message_id.clone(),
            };
            self.sends.store(&self.ctx, send).await
        } else {
            self.store_message(caller.user_id, input.conversation_id, body, client_message_id.clone(), &attachment_ids)
                .await
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
        // The sender is the caller: only attachments need reading back.
        let mut view = MessageView::from_model(stored, caller.user_ref());
        if !attachment_ids.is_empty() {
            view.attachments = self.files.attachment_views(&[view.id]).await?.remove(&view.id).unwrap_or_default();
        }
        let topic = Topic::Conversation(view.conversation_id);
        self.ctx.publish(topic, EventKind::MessageAdded { message: MessageSnapshot::from(&view) }).await;
        Ok(view)
    }

    /// Stores a message in one transaction: take the next `seq` from the conversation row
    /// (the UPDATE locks it, so concurrent sends queue per conversation), insert the message,
    /// and move the sender's own read marker past it.
    async fn store_message(
        &self,
        sender: Uuid,
        conversation_id: Uuid,
        body: MessageBody,
        client_message_id: Option<String>,
        attachment_ids: &[Uuid],
    ) -> AppResult<message::Model> {
        let at = self.ctx.now();
        let txn = self.ctx.db.begin().await?;
        let updated = conversation::Entity::update_many()
            .col_expr(conversation::Column::LastSeq, Expr::col(conversation::Column::LastSeq).add(1))
            .col_expr(conversation::Column::UpdatedAt, Expr::value(at))
            .filter(conversation::Column::Id.eq(conversation_id))
            .exec_with_returning(&txn)
            .await?;
        let seq = updated.first().map(|c| c.last_seq).ok_or_else(|| AppError::not_found("conversation"))?;
        let inserted = message::ActiveModel {
            id: Set(Uuid::now_v7()),
            conversation_id: Set(conversation_id),
            seq: Set(seq),
            sender_id: Set(sender),
            body: Set(body.into_inner()),
            client_message_id: Set(client_message_id),
            created_at: Set(at),
            edited_at: Set(None),
            deleted_at: Set(None),
        }
        .insert(&txn)
        .await;
        let stored = match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(AppError::Conflict("duplicate message".into()));
            }
            other => other?,
        };
        FileService::attach(&txn, sender, stored.id, attachment_ids).await?;
        crate::storage::participant::Entity::update_many()
            .col_expr(crate::storage::participant::Column::LastReadSeq, Expr::value(seq))
            .filter(crate::storage::participant::Column::ConversationId.eq(conversation_id))
            .filter(crate::storage::participant::Column::UserId.eq(sender))
            .filter(crate::storage::participant::Column::LastReadSeq.lt(seq))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(stored)
    }

    async fn find_by_client_id(&self, sender: Uuid, cmid: &str) -> AppResult<Option<message::Model>> {
        Ok(message::Entity::find()
            .filter(message::Column::SenderId.eq(sender))
            .filter(message::Column::ClientMessageId.eq(cmid))
            .one(&self.ctx.db)
            .await?)
    }

    async fn retried(&self, existing: message::Model, conversation_id: Uuid) -> AppResult<MessageView> {
        if existing.conversation_id != conversation_id {
            return Err(AppError::Conflict("clientMessageId was already used in another conversation".into()));
        }
        self.view(existing).await
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id, message.id = %message_id))]
    pub async fn edit(&self, caller: &Caller, message_id: Uuid, body: &str) -> AppResult<MessageView> {
        let body = MessageBody::parse(body)?;
        let msg = self.own_message(caller, message_id).await?;
        if msg.deleted_at.is_some() {
            return Err(AppError::Conflict("a deleted message cannot be edited".into()));
        }
        let mut active: message::ActiveModel = msg.into();
        active.body = Set(body.into_inner());
        active.edited_at = Set(Some(self.ctx.now()));
        let updated = active.update(&self.ctx.db).await?;
        m::message("edited");
        let view = self.view(updated).await?;
        let topic = Topic::Conversation(view.conversation_id);
        self.ctx.publish(topic, EventKind::MessageEdited { message: MessageSnapshot::from(&view) }).await;
        Ok(view)
    }

    /// Soft delete: the row keeps its `seq` (history has no holes) but loses its body.
    /// Deleting again returns the deleted message.
    #[instrument(skip_all, fields(user.id = %caller.user_id, message.id = %message_id))]
    pub async fn delete(&self, caller: &Caller, message_id: Uuid) -> AppResult<MessageView> {
        let msg = self.own_message(caller, message_id).await?;
        if msg.deleted_at.is_some() {
            return self.view(msg).await;
        }
        let updated = wipe(&self.ctx.db, msg, self.ctx.now()).await?;
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
        let msg = message::Entity::find_by_id(message_id).one(&self.ctx.db).await?;
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
        let limit = page_limit(q.limit, 50, 200)?;
        for (field, v) in [("before", q.before), ("after", q.after)] {
            if v.is_some_and(|s| s < 0) {
                return Err(AppError::bad_input(field, format!("{field} must be a seq (0 or more)")));
            }
        }
        // One query in the common case: the page with each sender's name and whether it has
        // files, provided the caller is a participant. Membership is read on its own only to
        // tell an empty page from a conversation the caller is not in.
        let live_member = Query::select()
            .expr(Expr::val(1))
            .from(participant::Entity)
            .and_where(Expr::col((participant::Entity, participant::Column::ConversationId)).eq(conversation_id))
            .and_where(Expr::col((participant::Entity, participant::Column::UserId)).eq(caller.user_id))
            .to_owned();
        let forward = q.after.is_some();
        let order = if forward { Order::Asc } else { Order::Desc };
        // The page is cut in a subquery, so the plan is an index range scan of at most
        // `limit + 1` rows whatever the statistics say (a conversation far longer than the
        // average, or a table not analysed yet, would otherwise be read whole and sorted).
        let mut page = Query::select()
            .column(Asterisk)
            .from(message::Entity)
            .and_where(Expr::col(message::Column::ConversationId).eq(conversation_id))
            .and_where(Expr::exists(live_member))
            .order_by(message::Column::Seq, order.clone())
            .limit(limit + 1)
            .to_owned();
        if let Some(before) = q.before {
            page.and_where(Expr::col(message::Column::Seq).lt(before));
        }
        if let Some(after) = q.after {
            page.and_where(Expr::col(message::Column::Seq).gt(after));
        }
        let m = Alias::new("m");
        let has_files = Query::select()
            .expr(Expr::val(1))
            .from(attachment::Entity)
            .and_where(
                Expr::col((attachment::Entity, attachment::Column::MessageId)).equals((m.clone(), message::Column::Id)),
            )
            .to_owned();
        let query = Query::select()
            .column((m.clone(), Asterisk))
            .expr_as(Expr::col((user::Entity, user::Column::Username)), Alias::new("sender_username"))
            .expr_as(Expr::col((user::Entity, user::Column::DisplayName)), Alias::new("sender_display_name"))
            .expr_as(Expr::exists(has_files), Alias::new("has_files"))
            .from_subquery(page, m.clone())
            .join(
                JoinType::LeftJoin,
                user::Entity,
                Expr::col((user::Entity, user::Column::Id)).equals((m.clone(), message::Column::SenderId)),
            )
            .order_by((m, message::Column::Seq), order)
            .to_owned();
        let statement = self.ctx.db.get_database_backend().build(&query);
        let mut rows = PageRow::find_by_statement(statement).all(&self.ctx.db).await?;
        if rows.is_empty() {
            self.conversations.require_member(caller, conversation_id).await?;
        }
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        if !forward {
            rows.reverse();
        }
        // Forward pages continue after their last seq, backward pages before their first.
        let next_cursor =
            has_more.then(|| if forward { rows.last() } else { rows.first() }).flatten().map(|row| row.seq.to_string());
        let with_files: Vec<Uuid> =
            rows.iter().filter(|r| r.has_files && r.deleted_at.is_none()).map(|r| r.id).collect();
        let mut attachments = self.files.attachment_views(&with_files).await?;
        let items = rows
            .into_iter()
            .map(|row| {
                let files = attachments.remove(&row.id).unwrap_or_default();
                let mut view = row.into_view();
                view.attachments = files;
                view
            })
            .collect();
        Ok(Page { items, next_cursor, has_more })
    }

    /// Moves the caller's read marker forward to `seq` (never back).
    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %conversation_id, seq))]
    pub async fn mark_read(&self, caller: &Caller, conversation_id: Uuid, seq: i64) -> AppResult<ReadState> {
        if seq < 0 {
            return Err(AppError::bad_input("seq", "seq must be 0 or more"));
        }
        let (conv, me) = self.conversations.participation(caller, conversation_id).await?;
        if seq > conv.last_seq {
            return Err(AppError::bad_input(
                "seq",
                format!("seq {seq} is beyond the conversation's last message ({})", conv.last_seq),
            ));
        }
        let mut last_read_seq = me.last_read_seq;
        if seq > me.last_read_seq {
            use crate::storage::participant;
            participant::Entity::update_many()
                .col_expr(participant::Column::LastReadSeq, Expr::value(seq))
                .filter(participant::Column::ConversationId.eq(conversation_id))
                .filter(participant::Column::UserId.eq(caller.user_id))
                .filter(participant::Column::LastReadSeq.lt(seq))
                .exec(&self.ctx.db)
                .await?;
            last_read_seq = seq;
            let kind = EventKind::Read { conversation_id, user_id: caller.user_id, last_read_seq: seq };
            self.ctx.publish(Topic::Conversation(conversation_id), kind).await;
        }
        let unread_count =
            self.conversations.unread_count(conversation_id, caller.user_id, last_read_seq, conv.last_seq).await?;
        Ok(ReadState { conversation_id, last_read_seq, unread_count })
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
        let mut query = message::Entity::find()
            .filter(message::Column::ConversationId.eq(conversation_id))
            .filter(message::Column::Seq.gt(after));
        if let Some(before) = before {
            query = query.filter(message::Column::Seq.lt(before));
        }
        let rows =
            query.order_by_asc(message::Column::Seq).limit(limit).all(&self.ctx.db).await.map_err(HistoryError::new)?;
        let views = self.views(rows).await.map_err(HistoryError::new)?;
        Ok(views.iter().map(MessageSnapshot::from).collect())
    }
}

/// Deletes a message's content: the body is wiped, the row and its `seq` stay, so history
/// has no holes.
pub(crate) async fn wipe<C: sea_orm::ConnectionTrait>(
    db: &C,
    msg: message::Model,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<message::Model> {
    let mut active: message::ActiveModel = msg.into();
    active.body = Set(String::new());
    active.deleted_at = Set(Some(at));
    Ok(active.update(db).await?)
}

/// A history row: the message, its sender's names and whether it has files.
#[derive(Debug, sea_orm::FromQueryResult)]
struct PageRow {
    id: Uuid,
    conversation_id: Uuid,
    seq: i64,
    sender_id: Uuid,
    body: String,
    client_message_id: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    edited_at: Option<chrono::DateTime<chrono::Utc>>,
    deleted_at: Option<chrono::DateTime<chrono::Utc>>,
    sender_username: Option<String>,
    sender_display_name: Option<String>,
    has_files: bool,
}

impl PageRow {
    fn into_view(self) -> MessageView {
        let sender = match self.sender_username {
            Some(username) => UserRef { id: self.sender_id, username, display_name: self.sender_display_name },
            None => UserRef::unknown(self.sender_id),
        };
        let model = message::Model {
            id: self.id,
            conversation_id: self.conversation_id,
            seq: self.seq,
            sender_id: self.sender_id,
            body: self.body,
            client_message_id: self.client_message_id,
            created_at: self.created_at,
            edited_at: self.edited_at,
            deleted_at: self.deleted_at,
        };
        MessageView::from_model(model, sender)
    }
}
