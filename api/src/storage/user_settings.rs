//! Per-user settings; a user without a row has the defaults.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, QuerySelect, Set};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// [`READ_RECEIPTS_PUBLIC`] or [`READ_RECEIPTS_PRIVATE`].
    pub read_receipts: String,
    pub updated_at: DateTimeUtc,
    /// [`BLOCKED_FLAG`] or [`BLOCKED_HIDE`].
    pub blocked_messages: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub const READ_RECEIPTS_PUBLIC: &str = "public";
pub const READ_RECEIPTS_PRIVATE: &str = "private";
pub const BLOCKED_FLAG: &str = "flag";
pub const BLOCKED_HIDE: &str = "hide";

/// `user`'s settings row, if they changed any.
pub async fn find<C: ConnectionTrait>(db: &C, user: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(user).one(db).await
}

/// Stores `user`'s settings (all of them: the caller merges a change into what was there).
pub async fn save<C: ConnectionTrait>(
    db: &C,
    user: Uuid,
    read_receipts: &str,
    blocked_messages: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = ActiveModel {
        user_id: Set(user),
        read_receipts: Set(read_receipts.to_owned()),
        blocked_messages: Set(blocked_messages.to_owned()),
        updated_at: Set(at),
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::column(Column::UserId)
                .update_columns([Column::ReadReceipts, Column::BlockedMessages, Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The users among `ids` who keep their read receipts private.
pub async fn private_among<C: ConnectionTrait>(db: &C, ids: Vec<Uuid>) -> Result<Vec<Uuid>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find()
        .select_only()
        .column(Column::UserId)
        .filter(Column::UserId.is_in(ids))
        .filter(Column::ReadReceipts.eq(READ_RECEIPTS_PRIVATE))
        .into_tuple::<Uuid>()
        .all(db)
        .await
}
