use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `direct` or `group`.
    pub kind: String,
    pub title: Option<String>,
    /// `<smaller id>:<larger id>` for direct conversations (unique), `None` for groups.
    pub direct_key: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    /// Last activity: creation, a new message, a membership change.
    pub updated_at: DateTimeUtc,
    /// The highest `seq` handed out in this conversation.
    pub last_seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub const KIND_DIRECT: &str = "direct";
pub const KIND_GROUP: &str = "group";
