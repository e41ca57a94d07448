//! Idempotency keys: the first answer to each (caller, `Idempotency-Key`).

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, Set};

/// A key's request and, once it finished, its answer. A row without `status` is a request
/// still running (or a node that died running it: the row expires).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub caller: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub fingerprint: String,
    pub status: Option<i32>,
    pub content_type: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub body: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Takes the key for a request now running; a key already taken is a unique violation.
pub async fn take<C: ConnectionTrait>(
    db: &C,
    caller: &str,
    key: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = ActiveModel {
        caller: Set(caller.to_owned()),
        key: Set(key.to_owned()),
        fingerprint: Set(fingerprint.to_owned()),
        status: Set(None),
        content_type: Set(None),
        body: Set(None),
        created_at: Set(now),
        expires_at: Set(expires_at),
    };
    Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// The caller's row for `key`.
pub async fn find<C: ConnectionTrait>(db: &C, caller: &str, key: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id((caller.to_owned(), key.to_owned())).one(db).await
}

/// Stores the answer of the request that took the key.
pub async fn complete<C: ConnectionTrait>(
    db: &C,
    caller: &str,
    key: &str,
    status: i32,
    content_type: Option<String>,
    body: String,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::ContentType, Expr::value(content_type))
        .col_expr(Column::Body, Expr::value(body))
        .filter(Column::Caller.eq(caller))
        .filter(Column::Key.eq(key))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives the key back (an answer not worth keeping: the client may retry).
pub async fn release<C: ConnectionTrait>(db: &C, caller: &str, key: &str) -> Result<(), DbErr> {
    Entity::delete_many().filter(Column::Caller.eq(caller)).filter(Column::Key.eq(key)).exec(db).await?;
    Ok(())
}

/// Deletes the rows that expired before `now`; answers how many.
pub async fn delete_expired<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(Entity::delete_many().filter(Column::ExpiresAt.lt(now)).exec(db).await?.rows_affected)
}
