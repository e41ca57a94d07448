//! Who each message mentions: one row per (mentioned user, message), the index behind mention
//! counts and the `mentions` page. The positions themselves are on the message row
//! (`messages.mentions`), read with it.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, PaginatorTrait, QueryOrder, QuerySelect, Set};

use super::{message, participant};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_mentions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Records that `msg` mentions each of `users` (distinct, not its sender).
pub async fn insert<C: ConnectionTrait>(db: &C, msg: &message::Model, users: &[Uuid]) -> Result<(), DbErr> {
    if users.is_empty() {
        return Ok(());
    }
    let rows = users.iter().map(|user| ActiveModel {
        user_id: Set(*user),
        message_id: Set(msg.id),
        conversation_id: Set(msg.conversation_id),
        seq: Set(msg.seq),
    });
    Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(())
}

/// `msg` no longer mentions anyone (deleted, or edited before [`insert`] again).
pub async fn clear<C: ConnectionTrait>(db: &C, message: Uuid) -> Result<(), DbErr> {
    Entity::delete_many().filter(Column::MessageId.eq(message)).exec(db).await?;
    Ok(())
}

/// Messages of `conversation` after `seq` that mention `user`.
pub async fn count_after<C: ConnectionTrait>(db: &C, user: Uuid, conversation: Uuid, seq: i64) -> Result<u64, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user))
        .filter(Column::ConversationId.eq(conversation))
        .filter(Column::Seq.gt(seq))
        .count(db)
        .await
}

/// Up to `limit` messages that mention `user`, newest first, older than `before` (a message
/// id: ids are time-ordered), in conversations `user` is still in, from senders they do not
/// hide.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    user: Uuid,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    let still_in = Query::select()
        .expr(Expr::val(1))
        .from(participant::Entity)
        .and_where(
            Expr::col((participant::Entity, participant::Column::ConversationId))
                .equals((Entity, Column::ConversationId)),
        )
        .and_where(Expr::col((participant::Entity, participant::Column::UserId)).eq(user))
        .to_owned();
    // Not from a sender `user` hides (`block::hidden_from`).
    let hidden_sender = Query::select()
        .expr(Expr::val(1))
        .from(message::Entity)
        .and_where(Expr::col((message::Entity, message::Column::Id)).equals((Entity, Column::MessageId)))
        .and_where(Expr::col((message::Entity, message::Column::SenderId)).in_subquery(super::block::hidden_from(user)))
        .to_owned();
    let mut ids = Entity::find()
        .select_only()
        .column(Column::MessageId)
        .filter(Column::UserId.eq(user))
        .filter(Expr::exists(still_in))
        .filter(Expr::exists(hidden_sender).not())
        .order_by_desc(Column::MessageId)
        .limit(limit);
    if let Some(before) = before {
        ids = ids.filter(Column::MessageId.lt(before));
    }
    let ids: Vec<Uuid> = ids.into_tuple().all(db).await?;
    let mut rows = message::among(db, ids).await?;
    rows.sort_by_key(|m| std::cmp::Reverse(m.id));
    Ok(rows)
}
