//! Who blocked whom.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect, Set};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blocks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub blocker_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub blocked_id: Uuid,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Blocks; whether it is new.
pub async fn add<C: ConnectionTrait>(db: &C, blocker: Uuid, blocked: Uuid, at: DateTime<Utc>) -> Result<bool, DbErr> {
    let row = ActiveModel { blocker_id: Set(blocker), blocked_id: Set(blocked), created_at: Set(at) };
    let inserted = Entity::insert(row)
        .on_conflict(OnConflict::columns([Column::BlockerId, Column::BlockedId]).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

/// Unblocks; whether there was a block.
pub async fn remove<C: ConnectionTrait>(db: &C, blocker: Uuid, blocked: Uuid) -> Result<bool, DbErr> {
    Ok(Entity::delete_by_id((blocker, blocked)).exec(db).await?.rows_affected > 0)
}

/// Whom `blocker` blocked, the latest first.
pub async fn blocked_by<C: ConnectionTrait>(db: &C, blocker: Uuid) -> Result<Vec<Model>, DbErr> {
    Entity::find().filter(Column::BlockerId.eq(blocker)).order_by_desc(Column::CreatedAt).all(db).await
}

/// Who among everyone blocked `user`.
pub async fn blockers_of<C: ConnectionTrait>(db: &C, user: Uuid) -> Result<Vec<Uuid>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::BlockerId)
        .filter(Column::BlockedId.eq(user))
        .into_tuple::<Uuid>()
        .all(db)
        .await
}

/// Whether `blocker` blocked `blocked`.
pub async fn exists<C: ConnectionTrait>(db: &C, blocker: Uuid, blocked: Uuid) -> Result<bool, DbErr> {
    Ok(Entity::find_by_id((blocker, blocked)).one(db).await?.is_some())
}

/// A subquery of the users whose messages `reader` hides: those they blocked, when their
/// settings say `hide` (none otherwise). Not correlated: evaluated once per statement.
pub fn hidden_from(reader: Uuid) -> sea_orm::sea_query::SelectStatement {
    use super::user_settings as settings;
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let hides = Query::select()
        .expr(Expr::val(1))
        .from(settings::Entity)
        .and_where(Expr::col((settings::Entity, settings::Column::UserId)).eq(reader))
        .and_where(Expr::col((settings::Entity, settings::Column::BlockedMessages)).eq(settings::BLOCKED_HIDE))
        .to_owned();
    Query::select()
        .column((Entity, Column::BlockedId))
        .from(Entity)
        .and_where(Expr::col((Entity, Column::BlockerId)).eq(reader))
        .and_where(Expr::exists(hides))
        .to_owned()
}
