//! Attachments: an uploaded file of a user's, on a message once sent with it.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, QuerySelect};

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

/// The attachment with this id.
pub async fn find<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// Stores a new upload (attached to nothing yet).
pub async fn insert<C: ConnectionTrait>(db: &C, attachment: ActiveModel) -> Result<Model, DbErr> {
    attachment.insert(db).await
}

/// Deletes the attachment row (not its bytes).
pub async fn delete<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<(), DbErr> {
    Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// Attaches to `message` those of `ids` that `owner` uploaded and that are attached to
/// nothing yet; returns how many that was.
pub async fn attach<C: ConnectionTrait>(db: &C, owner: Uuid, message: Uuid, ids: &[Uuid]) -> Result<u64, DbErr> {
    let attached = Entity::update_many()
        .col_expr(Column::MessageId, Expr::value(message))
        .filter(Column::Id.is_in(ids.to_vec()))
        .filter(Column::OwnerId.eq(owner))
        .filter(Column::MessageId.is_null())
        .exec(db)
        .await?;
    Ok(attached.rows_affected)
}

/// The attachments of `messages`, in no particular order.
pub async fn of_messages<C: ConnectionTrait>(db: &C, messages: &[Uuid]) -> Result<Vec<Model>, DbErr> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find().filter(Column::MessageId.is_in(messages.to_vec())).all(db).await
}

/// Deletes the attachment rows of `message`.
pub async fn delete_of_message<C: ConnectionTrait>(db: &C, message: Uuid) -> Result<(), DbErr> {
    Entity::delete_many().filter(Column::MessageId.eq(message)).exec(db).await?;
    Ok(())
}

/// Up to `limit` uploads made before `before` and never attached.
pub async fn orphans<C: ConnectionTrait>(db: &C, before: DateTime<Utc>, limit: u64) -> Result<Vec<Model>, DbErr> {
    Entity::find().filter(Column::MessageId.is_null()).filter(Column::CreatedAt.lt(before)).limit(limit).all(db).await
}

/// Deletes the upload `id` if it is still attached to nothing (a send may have attached it
/// meanwhile); returns whether it did.
pub async fn delete_orphan<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<bool, DbErr> {
    let gone = Entity::delete_many().filter(Column::Id.eq(id)).filter(Column::MessageId.is_null()).exec(db).await?;
    Ok(gone.rows_affected == 1)
}

/// How many attachments refer to the stored object `key`.
pub async fn count_with_key<C: ConnectionTrait>(db: &C, key: &str) -> Result<u64, DbErr> {
    Entity::find().filter(Column::StorageKey.eq(key)).count(db).await
}

/// Records the thumbnail of the object `key` (and the image's size) on every attachment of it.
pub async fn set_thumbnail<C: ConnectionTrait>(
    db: &C,
    key: &str,
    thumbnail_key: &str,
    thumbnail_type: &str,
    (width, height): (i32, i32),
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::ThumbnailKey, Expr::value(thumbnail_key))
        .col_expr(Column::ThumbnailType, Expr::value(thumbnail_type))
        .col_expr(Column::Width, Expr::value(width))
        .col_expr(Column::Height, Expr::value(height))
        .filter(Column::StorageKey.eq(key))
        .exec(db)
        .await?;
    Ok(())
}
