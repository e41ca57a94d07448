use sea_orm::entity::prelude::*;

/// A stored object (`blobs/<sha256>`), shared by every attachment with those bytes. Uploads
/// and deletions lock its row, so the object is never deleted while an upload of the same
/// bytes attaches itself to it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
