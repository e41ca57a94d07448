use sea_orm::entity::prelude::*;

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
