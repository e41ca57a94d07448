//! The admin audit log.

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};

/// One admin action, as the console's audit log shows it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "admin_audit")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub actor_id: Uuid,
    pub actor_username: String,
    /// `user.disable`, `user.enable`, `message.delete`.
    pub action: String,
    /// `user` or `message`.
    pub target_kind: String,
    pub target_id: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Appends an entry (in the transaction of the change it records).
pub async fn insert<C: ConnectionTrait>(db: &C, entry: ActiveModel) -> Result<(), DbErr> {
    entry.insert(db).await?;
    Ok(())
}

/// The latest `limit` entries, newest first.
pub async fn latest<C: ConnectionTrait>(db: &C, limit: u64) -> Result<Vec<Model>, DbErr> {
    Entity::find().order_by_desc(Column::CreatedAt).order_by_desc(Column::Id).limit(limit).all(db).await
}
