//! Messages, and the send rule: the one place where a message gets its `seq`.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Order, Query};
use sea_orm::{
    Condition, ConnectionTrait, DbBackend, FromQueryResult, JoinType, QueryOrder, QuerySelect, Set, Statement,
    TransactionSession, TransactionTrait,
};

use super::{attachment, conversation, participant, user, webhook_event};

/// The event type of a stored message (`webhook_event::Model::kind`).
pub const MESSAGE_CREATED: &str = "message.created";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub seq: i64,
    pub sender_id: Uuid,
    /// Empty once the message is deleted: a deleted body is not kept.
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub client_message_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub edited_at: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
    /// Who the body mentions and where (JSON of `MentionSnapshot`s), `None` when no one.
    #[sea_orm(column_type = "Text", nullable)]
    pub mentions: Option<String>,
    /// Reactions to it (kept by `reaction::add`/`remove`/`clear`).
    pub reaction_count: i64,
    /// What search indexes instead of the body when the body has CJK text (`search`).
    #[sea_orm(column_type = "Text", nullable)]
    pub search_text: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A message to store as the next one of its conversation.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    pub body: String,
    pub client_message_id: Option<String>,
    /// The `message.created` event's data for apps whose bot is in the conversation (the
    /// outbox: [`webhook_event::record`]).
    pub event_data: String,
    /// The mentions to store with it (JSON), if any.
    pub mentions: Option<String>,
    /// The participants it mentions (distinct, not the sender): rows of `message_mentions`.
    pub mentioned: Vec<Uuid>,
    /// What to index for search instead of the body, if anything (`Model::search_text`).
    pub search_text: Option<String>,
}

/// The send rule, written once for every path (a lone send, a batch, a send with files):
/// each of `sends` is stored only if its sender is a participant of its conversation (no row
/// otherwise), with the conversation's next `seq` (in the order given, per conversation),
/// and moves its sender's read marker past it, with a `message_mentions` row per user it
/// mentions; the conversation's `updated_at` becomes `at`;
/// and each stored message's `message.created` event is recorded for the apps whose bot is in
/// its conversation (the webhook outbox, same transaction). All or nothing: on Postgres one statement, which locks the conversations in id order (so
/// concurrent batches from several nodes cannot deadlock) until the caller's transaction, if
/// any, ends; on SQLite, which cannot write in a `WITH`, the same steps under a savepoint. A
/// reused `(sender, client_message_id)` fails the whole call with a unique violation.
pub async fn insert_next<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    sends: &[NewMessage],
    at: DateTime<Utc>,
) -> Result<Vec<Model>, DbErr> {
    if sends.is_empty() {
        return Ok(Vec::new());
    }
    if db.get_database_backend() == DbBackend::Postgres {
        return Model::find_by_statement(insert_next_statement(sends, at)).all(db).await;
    }
    let txn = db.begin().await?;
    let mut stored = Vec::with_capacity(sends.len());
    for send in sends {
        let member = Query::select()
            .expr(Expr::val(1))
            .from(participant::Entity)
            .and_where(Expr::col((participant::Entity, participant::Column::ConversationId)).eq(send.conversation_id))
            .and_where(Expr::col((participant::Entity, participant::Column::UserId)).eq(send.sender_id))
            .to_owned();
        let taken = conversation::Entity::update_many()
            .col_expr(conversation::Column::LastSeq, Expr::col(conversation::Column::LastSeq).add(1))
            .col_expr(conversation::Column::UpdatedAt, Expr::value(at))
            .filter(conversation::Column::Id.eq(send.conversation_id))
            .filter(Expr::exists(member))
            .exec_with_returning(&txn)
            .await?;
        let Some(seq) = taken.first().map(|c| c.last_seq) else { continue };
        let row = ActiveModel {
            id: Set(send.id),
            conversation_id: Set(send.conversation_id),
            seq: Set(seq),
            sender_id: Set(send.sender_id),
            body: Set(send.body.clone()),
            client_message_id: Set(send.client_message_id.clone()),
            created_at: Set(at),
            edited_at: Set(None),
            deleted_at: Set(None),
            mentions: Set(send.mentions.clone()),
            reaction_count: Set(0),
            search_text: Set(send.search_text.clone()),
        }
        .insert(&txn)
        .await?;
        super::mention::insert(&txn, &row, &send.mentioned).await?;
        participant::mark_read(&txn, send.conversation_id, send.sender_id, seq).await?;
        let change = webhook_event::Change {
            id: send.id,
            kind: MESSAGE_CREATED,
            conversation_id: send.conversation_id,
            seq: Some(seq),
            data: send.event_data.clone(),
            at,
        };
        webhook_event::record(&txn, &change).await?;
        stored.push(row);
    }
    txn.commit().await?;
    Ok(stored)
}

/// The Postgres statement of [`insert_next`] for any number of sends.
fn insert_next_statement(sends: &[NewMessage], at: DateTime<Utc>) -> Statement {
    let mut values: Vec<sea_orm::Value> = vec![at.into()];
    let mut rows = Vec::with_capacity(sends.len());
    for (ord, send) in sends.iter().enumerate() {
        let p = values.len() + 1;
        rows.push(format!(
            "(${}::uuid, ${}::uuid, ${}::uuid, ${}::text, ${}::text, ${}::text, ${}::text, ${}::text, ${}::text, {ord})",
            p,
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6,
            p + 7,
            p + 8
        ));
        let mentioned = (!send.mentioned.is_empty())
            .then(|| send.mentioned.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","));
        values.extend([
            send.id.into(),
            send.conversation_id.into(),
            send.sender_id.into(),
            send.body.clone().into(),
            send.client_message_id.clone().into(),
            send.event_data.clone().into(),
            send.mentions.clone().into(),
            mentioned.into(),
            send.search_text.clone().into(),
        ]);
    }
    // Only a batch that mentions someone carries the step that records it.
    let mentions_step = if sends.iter().any(|s| !s.mentioned.is_empty()) {
        "mention AS (INSERT INTO message_mentions (user_id, message_id, conversation_id, seq) \
            SELECT u.id::uuid, m.id, m.conversation_id, m.seq FROM msg m JOIN allowed a ON a.id = m.id \
            CROSS JOIN LATERAL unnest(string_to_array(a.mentioned, ',')) AS u(id) \
            WHERE a.mentioned IS NOT NULL), "
    } else {
        ""
    };
    let sql = format!(
        "WITH input (id, conversation_id, sender_id, body, client_message_id, event_data, mentions, mentioned, \
            search_text, ord) \
            AS (VALUES {}), \
         allowed AS (SELECT i.* FROM input i WHERE EXISTS ( \
            SELECT 1 FROM participants p WHERE p.conversation_id = i.conversation_id AND p.user_id = i.sender_id)), \
         counts AS (SELECT conversation_id, count(*) AS n FROM allowed GROUP BY conversation_id), \
         locked AS (SELECT id FROM conversations WHERE id IN (SELECT conversation_id FROM counts) \
            ORDER BY id FOR UPDATE), \
         conv AS (UPDATE conversations c SET last_seq = c.last_seq + counts.n, updated_at = $1 \
            FROM counts WHERE c.id = counts.conversation_id AND c.id IN (SELECT id FROM locked) \
            RETURNING c.id, c.last_seq), \
         numbered AS (SELECT a.id, a.conversation_id, a.sender_id, a.body, a.client_message_id, a.mentions, \
            a.search_text, \
            conv.last_seq - (count(*) OVER (PARTITION BY a.conversation_id ORDER BY a.ord DESC)) + 1 AS seq \
            FROM allowed a JOIN conv ON conv.id = a.conversation_id), \
         msg AS (INSERT INTO messages (id, conversation_id, seq, sender_id, body, client_message_id, created_at, \
            mentions, search_text) \
            SELECT id, conversation_id, seq, sender_id, body, client_message_id, $1, mentions, search_text \
            FROM numbered \
            RETURNING id, conversation_id, seq, sender_id, body, client_message_id, created_at, edited_at, deleted_at, \
            mentions, reaction_count, search_text), \
         {mentions_step}\
         marker AS (UPDATE participants p SET last_read_seq = m.top \
            FROM (SELECT conversation_id, sender_id, max(seq) AS top FROM msg GROUP BY conversation_id, sender_id) m \
            WHERE p.conversation_id = m.conversation_id AND p.user_id = m.sender_id AND p.last_read_seq < m.top), \
         bots AS (SELECT a.id AS app_id, pa.conversation_id FROM apps a \
            JOIN participants pa ON pa.user_id = a.bot_user_id \
            WHERE pa.conversation_id IN (SELECT id FROM conv) AND a.deleted_at IS NULL \
            ORDER BY a.id FOR UPDATE OF a), \
         outbox AS (INSERT INTO webhook_events (id, app_id, kind, conversation_id, seq, payload, created_at) \
            SELECT m.id, b.app_id, '{MESSAGE_CREATED}', m.conversation_id, m.seq, a.event_data, $1 \
            FROM msg m JOIN allowed a ON a.id = m.id JOIN bots b ON b.conversation_id = m.conversation_id \
            ORDER BY b.app_id, m.conversation_id, m.seq) \
         SELECT * FROM msg",
        rows.join(", "),
    );
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// The message with this id, deleted or not.
/// The messages among `ids` that exist, in no particular order.
pub async fn among<C: ConnectionTrait>(db: &C, ids: Vec<Uuid>) -> Result<Vec<Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find().filter(Column::Id.is_in(ids)).all(db).await
}

pub async fn find<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// The message `sender` sent with this client message id (unique per sender).
pub async fn by_client_id<C: ConnectionTrait>(
    db: &C,
    sender: Uuid,
    client_message_id: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::SenderId.eq(sender))
        .filter(Column::ClientMessageId.eq(client_message_id))
        .one(db)
        .await
}

/// Replaces the body (and its mentions) of a message, marked edited at `at`.
pub async fn edit<C: ConnectionTrait>(
    db: &C,
    msg: Model,
    body: String,
    mentions: Option<String>,
    at: DateTime<Utc>,
) -> Result<Model, DbErr> {
    let mut active: ActiveModel = msg.into();
    active.search_text = Set(crate::domain::search_query::cjk_index_text(&body));
    active.body = Set(body);
    active.mentions = Set(mentions);
    active.edited_at = Set(Some(at));
    active.update(db).await
}

/// Deletes a message's content at `at`: the body is wiped, the row and its `seq` stay, so
/// history has no holes.
pub async fn wipe<C: ConnectionTrait>(db: &C, msg: Model, at: DateTime<Utc>) -> Result<Model, DbErr> {
    let mut active: ActiveModel = msg.into();
    active.body = Set(String::new());
    active.mentions = Set(None);
    active.search_text = Set(None);
    active.deleted_at = Set(Some(at));
    active.update(db).await
}

/// A message as history reads it: with its sender's names (`None` for a sender who is gone)
/// and whether it has files (whether it has reactions is on the row).
#[derive(Debug, FromQueryResult)]
pub struct HistoryRow {
    #[sea_orm(nested)]
    pub message: Model,
    pub sender_username: Option<String>,
    pub sender_display_name: Option<String>,
    pub sender_role: Option<String>,
    pub has_files: bool,
    /// The reader blocked the sender.
    pub sender_blocked: bool,
}

/// Up to `limit` messages of `conversation` in one query, none unless `reader` is one of
/// its participants, none from senders `reader` hides (`block::hidden_from`): forward from `after` in ascending `seq` when it is given, otherwise
/// back from `before` (or from the newest) in descending `seq`. The page is cut in a
/// subquery, so the plan is an index range scan of at most `limit` rows whatever the
/// statistics say (a conversation far longer than the average, or a table not analysed yet,
/// would otherwise be read whole and sorted).
pub async fn history_page<C: ConnectionTrait>(
    db: &C,
    conversation: Uuid,
    reader: Uuid,
    before: Option<i64>,
    after: Option<i64>,
    limit: u64,
) -> Result<Vec<HistoryRow>, DbErr> {
    let live_member = Query::select()
        .expr(Expr::val(1))
        .from(participant::Entity)
        .and_where(Expr::col((participant::Entity, participant::Column::ConversationId)).eq(conversation))
        .and_where(Expr::col((participant::Entity, participant::Column::UserId)).eq(reader))
        .to_owned();
    let order = if after.is_some() { Order::Asc } else { Order::Desc };
    let mut page = Query::select()
        .column(Asterisk)
        .from(Entity)
        .and_where(Expr::col(Column::ConversationId).eq(conversation))
        .and_where(Expr::exists(live_member))
        .order_by(Column::Seq, order.clone())
        .limit(limit)
        .to_owned();
    if let Some(before) = before {
        page.and_where(Expr::col(Column::Seq).lt(before));
    }
    if let Some(after) = after {
        page.and_where(Expr::col(Column::Seq).gt(after));
    }
    // Senders the reader blocked and chose to hide are left out of the page itself.
    page.and_where(Expr::col(Column::SenderId).not_in_subquery(super::block::hidden_from(reader)));
    let m = Alias::new("m");
    let has_files = Query::select()
        .expr(Expr::val(1))
        .from(attachment::Entity)
        .and_where(Expr::col((attachment::Entity, attachment::Column::MessageId)).equals((m.clone(), Column::Id)))
        .to_owned();
    // Not correlated: the reader's blocks are read once per page (a hashed subplan on
    // Postgres, an ephemeral index on SQLite), not probed once per row.
    let blocked_by_reader = Query::select()
        .column(super::block::Column::BlockedId)
        .from(super::block::Entity)
        .and_where(Expr::col((super::block::Entity, super::block::Column::BlockerId)).eq(reader))
        .to_owned();
    let query = Query::select()
        .column((m.clone(), Asterisk))
        .expr_as(Expr::col((user::Entity, user::Column::Username)), Alias::new("sender_username"))
        .expr_as(Expr::col((user::Entity, user::Column::DisplayName)), Alias::new("sender_display_name"))
        .expr_as(Expr::col((user::Entity, user::Column::Role)), Alias::new("sender_role"))
        .expr_as(Expr::exists(has_files), Alias::new("has_files"))
        .expr_as(Expr::col((m.clone(), Column::SenderId)).in_subquery(blocked_by_reader), Alias::new("sender_blocked"))
        .from_subquery(page, m.clone())
        .join(
            JoinType::LeftJoin,
            user::Entity,
            Expr::col((user::Entity, user::Column::Id)).equals((m.clone(), Column::SenderId)),
        )
        .order_by((m, Column::Seq), order)
        .to_owned();
    HistoryRow::find_by_statement(db.get_database_backend().build(&query)).all(db).await
}

/// Up to `limit` messages of `conversation` after `after` (and before `before`), by `seq`.
pub async fn between<C: ConnectionTrait>(
    db: &C,
    conversation: Uuid,
    after: i64,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut query = Entity::find().filter(Column::ConversationId.eq(conversation)).filter(Column::Seq.gt(after));
    if let Some(before) = before {
        query = query.filter(Column::Seq.lt(before));
    }
    query.order_by_asc(Column::Seq).limit(limit).all(db).await
}

/// The message at each (conversation, seq) of `at`, where there is one.
pub async fn at_seqs<C: ConnectionTrait>(db: &C, at: &[(Uuid, i64)]) -> Result<Vec<Model>, DbErr> {
    if at.is_empty() {
        return Ok(Vec::new());
    }
    let any = at.iter().fold(Condition::any(), |cond, (conversation, seq)| {
        cond.add(Condition::all().add(Column::ConversationId.eq(*conversation)).add(Column::Seq.eq(*seq)))
    });
    Entity::find().filter(any).all(db).await
}

/// Messages of `conversation` after `seq` that `reader` did not send and that are not deleted.
pub async fn count_unread<C: ConnectionTrait>(
    db: &C,
    conversation: Uuid,
    reader: Uuid,
    seq: i64,
) -> Result<u64, DbErr> {
    Entity::find()
        .filter(Column::ConversationId.eq(conversation))
        .filter(Column::Seq.gt(seq))
        .filter(Column::SenderId.ne(reader))
        .filter(Column::DeletedAt.is_null())
        .count(db)
        .await
}

/// Every message, deleted ones included.
pub async fn count_all<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    Entity::find().count(db).await
}

/// Messages sent in `[from, to)`.
pub async fn count_created<C: ConnectionTrait>(db: &C, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64, DbErr> {
    super::count_between::<Entity, _>(db, Column::CreatedAt, from, to).await
}
