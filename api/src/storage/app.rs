//! Apps: integrations registered by an admin, each with a bot user and scopes.

use sea_orm::entity::prelude::*;

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
