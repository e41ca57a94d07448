//! Apps: integrations registered by an admin, each with a bot user and scopes.

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder};

/// An app. Its bot user (role `bot`) is the participant it reads and writes as; `scopes` are
/// the space-separated scope names its keys grant. A deleted app keeps its row (its events
/// and audit entries refer to it) with `deleted_at` set.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "apps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub scopes: String,
    pub bot_user_id: Uuid,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The app `id`, unless deleted.
pub async fn find<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).filter(Column::DeletedAt.is_null()).one(db).await
}

/// Every app that is not deleted, oldest first.
pub async fn all_live<C: ConnectionTrait>(db: &C) -> Result<Vec<Model>, DbErr> {
    Entity::find().filter(Column::DeletedAt.is_null()).order_by_asc(Column::CreatedAt).all(db).await
}

/// Stores a new app.
pub async fn insert<C: ConnectionTrait>(db: &C, app: ActiveModel) -> Result<Model, DbErr> {
    app.insert(db).await
}

/// Writes changed fields of an app.
pub async fn update<C: ConnectionTrait>(db: &C, app: ActiveModel) -> Result<Model, DbErr> {
    app.update(db).await
}
