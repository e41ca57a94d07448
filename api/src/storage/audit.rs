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
    /// `user.disable`, `user.enable`, `message.delete`, `app.*`, `key.create|revoke|first_use`.
    pub action: String,
    /// `user`, `message` or `app`.
    pub target_kind: String,
    pub target_id: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Who did what to what, for [`append`].
pub struct Entry<'a> {
    pub actor_id: Uuid,
    pub actor_username: &'a str,
    pub action: &'a str,
    pub target_kind: &'a str,
    pub target_id: String,
    pub detail: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Appends an entry (in the transaction of the change it records).
pub async fn append<C: ConnectionTrait>(db: &C, entry: Entry<'_>) -> Result<(), DbErr> {
    use sea_orm::Set;
    let row = ActiveModel {
        id: Set(Uuid::now_v7()),
        actor_id: Set(entry.actor_id),
        actor_username: Set(entry.actor_username.to_owned()),
        action: Set(entry.action.to_owned()),
        target_kind: Set(entry.target_kind.to_owned()),
        target_id: Set(entry.target_id),
        detail: Set(entry.detail),
        created_at: Set(entry.at),
    };
    row.insert(db).await?;
    Ok(())
}

/// The latest `limit` entries, newest first.
pub async fn latest<C: ConnectionTrait>(db: &C, limit: u64) -> Result<Vec<Model>, DbErr> {
    Entity::find().order_by_desc(Column::CreatedAt).order_by_desc(Column::Id).limit(limit).all(db).await
}
