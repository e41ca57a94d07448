//! Blobs: the stored objects attachments share, and the lock that keeps one alive.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ConnectionTrait, Set};

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

/// Takes the write lock of the blob row `key` inside the caller's transaction (a no-op
/// UPDATE: a row lock on Postgres, the database's write lock on SQLite). With `create`,
/// makes the row (created at `at`) when it is missing. Returns whether the row exists.
pub async fn lock<C: ConnectionTrait>(db: &C, key: &str, create: bool, at: DateTime<Utc>) -> Result<bool, DbErr> {
    loop {
        let locked = Entity::update_many()
            .col_expr(Column::Key, Expr::col(Column::Key))
            .filter(Column::Key.eq(key))
            .exec(db)
            .await?;
        if locked.rows_affected > 0 {
            return Ok(true);
        }
        if !create {
            return Ok(false);
        }
        let inserted = Entity::insert(ActiveModel { key: Set(key.to_owned()), created_at: Set(at) })
            .on_conflict(OnConflict::column(Column::Key).do_nothing().to_owned())
            .exec_without_returning(db)
            .await?;
        if inserted > 0 {
            return Ok(true);
        }
        // Someone else created it meanwhile: lock theirs.
    }
}

/// Deletes the blob row `key`.
pub async fn delete<C: ConnectionTrait>(db: &C, key: &str) -> Result<(), DbErr> {
    Entity::delete_by_id(key.to_owned()).exec(db).await?;
    Ok(())
}
