//! API keys: an app's credentials, `sck_<prefix>_<secret>`, of which only a hash is kept.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, QueryOrder};

/// One key of an app. `prefix` identifies it (unique, shown in lists); `secret_hash` is the
/// SHA-256 (hex) of the secret part. A revoked key keeps its row with `revoked_at` set.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub app_id: Uuid,
    pub prefix: String,
    pub secret_hash: String,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The key with this prefix, revoked or not.
pub async fn by_prefix<C: ConnectionTrait>(db: &C, prefix: &str) -> Result<Option<Model>, DbErr> {
    Entity::find().filter(Column::Prefix.eq(prefix)).one(db).await
}

/// The key `id`, revoked or not.
pub async fn find<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// The app's keys, oldest first.
pub async fn of_app<C: ConnectionTrait>(db: &C, app_id: Uuid) -> Result<Vec<Model>, DbErr> {
    Entity::find().filter(Column::AppId.eq(app_id)).order_by_asc(Column::CreatedAt).all(db).await
}

/// Stores a new key.
pub async fn insert<C: ConnectionTrait>(db: &C, key: ActiveModel) -> Result<Model, DbErr> {
    key.insert(db).await
}

/// Revokes the app's key `id` at `at` unless it already is; true if this call did.
pub async fn revoke<C: ConnectionTrait>(db: &C, app_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool, DbErr> {
    let done = Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(at))
        .filter(Column::Id.eq(id))
        .filter(Column::AppId.eq(app_id))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

/// Notes that the key was used at `at`.
pub async fn touch<C: ConnectionTrait>(db: &C, id: Uuid, at: DateTime<Utc>) -> Result<(), DbErr> {
    Entity::update_many().col_expr(Column::LastUsedAt, Expr::value(at)).filter(Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// Records a key's first use; whether this call was it (one node wins a race).
pub async fn touch_first<C: ConnectionTrait>(db: &C, id: Uuid, at: DateTime<Utc>) -> Result<bool, DbErr> {
    let done = Entity::update_many()
        .col_expr(Column::LastUsedAt, Expr::value(at))
        .filter(Column::Id.eq(id))
        .filter(Column::LastUsedAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}
