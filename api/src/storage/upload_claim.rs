//! Upload claims: which upload URLs have been used.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::entity::prelude::*;

/// An upload URL that has been used: its token's id, claimed by the first upload through it
/// (and released again if that upload is refused), so a URL stores at most one file on any
/// node. Rows leave once the URL has expired.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "upload_claims")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Claims an upload URL's token; a token claimed before is a unique violation.
pub async fn claim<C: ConnectionTrait>(db: &C, claim: ActiveModel) -> Result<(), DbErr> {
    Entity::insert(claim).exec_without_returning(db).await?;
    Ok(())
}

/// Gives a claimed token back, so its URL can be used again.
pub async fn release<C: ConnectionTrait>(db: &C, token_id: Uuid) -> Result<(), DbErr> {
    Entity::delete_by_id(token_id).exec(db).await?;
    Ok(())
}

/// Deletes the claims of URLs that expired before `before`.
pub async fn delete_expired<C: ConnectionTrait>(db: &C, before: DateTime<Utc>) -> Result<(), DbErr> {
    Entity::delete_many().filter(Column::ExpiresAt.lt(before)).exec(db).await?;
    Ok(())
}
