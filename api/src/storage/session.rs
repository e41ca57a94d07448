//! Sessions: one a login (API or console), holding the hash of its current refresh token.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, Query};

use super::user;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// sha256 of the current refresh token's secret part, hex.
    pub token_hash: String,
    pub device: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The session with this id, ended or not.
pub async fn find<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// Stores a new session.
pub async fn insert<C: ConnectionTrait>(db: &C, session: ActiveModel) -> Result<Model, DbErr> {
    session.insert(db).await
}

/// Replaces the refresh token's hash if it is still `presented` and the session is not
/// revoked: a compare-and-swap, so of two refreshes with the same token exactly one wins.
/// Returns whether this one did.
pub async fn swap_token<C: ConnectionTrait>(db: &C, id: Uuid, presented: String, new: String) -> Result<bool, DbErr> {
    let swapped = Entity::update_many()
        .col_expr(Column::TokenHash, Expr::value(new))
        .filter(Column::Id.eq(id))
        .filter(Column::TokenHash.eq(presented))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(swapped.rows_affected == 1)
}

/// Ends the session at `at` (a session already ended keeps its time).
pub async fn revoke<C: ConnectionTrait>(db: &C, id: Uuid, at: DateTime<Utc>) -> Result<(), DbErr> {
    revoke_matching(db, Column::Id.eq(id), at).await
}

/// Ends every live session of `user` at `at`.
pub async fn revoke_all_of<C: ConnectionTrait>(db: &C, user: Uuid, at: DateTime<Utc>) -> Result<(), DbErr> {
    revoke_matching(db, Column::UserId.eq(user), at).await
}

async fn revoke_matching<C: ConnectionTrait>(
    db: &C,
    which: impl IntoCondition,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(at))
        .filter(which)
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Makes the session expire at `at`.
pub async fn set_expiry<C: ConnectionTrait>(db: &C, id: Uuid, at: DateTime<Utc>) -> Result<(), DbErr> {
    Entity::update_many().col_expr(Column::ExpiresAt, Expr::value(at)).filter(Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// In one round trip: the user `user_id`, provided `session_id` is theirs and not revoked.
pub async fn live_user<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<Option<user::Model>, DbErr> {
    let live_session = Query::select()
        .expr(Expr::val(1))
        .from(Entity)
        .and_where(Column::Id.eq(session_id))
        .and_where(Column::UserId.eq(user_id))
        .and_where(Column::RevokedAt.is_null())
        .to_owned();
    user::Entity::find_by_id(user_id).filter(Expr::exists(live_session)).one(db).await
}

/// The ids among `ids` of sessions that were revoked.
pub async fn revoked_among<C: ConnectionTrait>(db: &C, ids: Vec<Uuid>) -> Result<Vec<Uuid>, DbErr> {
    super::ids_where::<Entity, _>(db, Column::Id, Column::Id.is_in(ids).and(Column::RevokedAt.is_not_null())).await
}
