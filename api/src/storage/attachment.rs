use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attachments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: Uuid,
    /// The message it is attached to; `None` until then (an orphan after the grace period).
    pub message_id: Option<Uuid>,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    /// `blobs/<sha256>`: shared by every attachment with the same bytes.
    pub storage_key: String,
    pub sha256: String,
    pub created_at: DateTimeUtc,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub thumbnail_key: Option<String>,
    pub thumbnail_type: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
