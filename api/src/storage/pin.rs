//! Pinned messages of a conversation.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, PaginatorTrait, QueryOrder, Set};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversation_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_id: Uuid,
    pub pinned_by: Uuid,
    pub pinned_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Pins a message; whether it was not pinned yet.
pub async fn add<C: ConnectionTrait>(
    db: &C,
    conversation: Uuid,
    message: Uuid,
    by: Uuid,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row = ActiveModel {
        conversation_id: Set(conversation),
        message_id: Set(message),
        pinned_by: Set(by),
        pinned_at: Set(at),
    };
    let inserted = Entity::insert(row)
        .on_conflict(OnConflict::columns([Column::ConversationId, Column::MessageId]).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

/// Unpins a message; whether it was pinned.
pub async fn remove<C: ConnectionTrait>(db: &C, conversation: Uuid, message: Uuid) -> Result<bool, DbErr> {
    Ok(Entity::delete_by_id((conversation, message)).exec(db).await?.rows_affected > 0)
}

/// How many messages a conversation has pinned.
pub async fn count<C: ConnectionTrait>(db: &C, conversation: Uuid) -> Result<u64, DbErr> {
    Entity::find().filter(Column::ConversationId.eq(conversation)).count(db).await
}

/// A conversation's pins, the newest first.
pub async fn of_conversation<C: ConnectionTrait>(db: &C, conversation: Uuid) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::ConversationId.eq(conversation))
        .order_by_desc(Column::PinnedAt)
        .order_by_desc(Column::MessageId)
        .all(db)
        .await
}

/// A deleted message is pinned nowhere any more.
pub async fn clear_message<C: ConnectionTrait>(db: &C, message: Uuid) -> Result<(), DbErr> {
    Entity::delete_many().filter(Column::MessageId.eq(message)).exec(db).await?;
    Ok(())
}
