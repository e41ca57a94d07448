//! Conversations: direct (one per pair) or group, with the last `seq` handed out in each.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{Condition, ConnectionTrait, QueryOrder, QuerySelect};

use super::participant;

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

/// The conversation with this id.
pub async fn find<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// The direct conversation of the pair named by `key` (see `direct_key`).
pub async fn by_direct_key<C: ConnectionTrait>(db: &C, key: &str) -> Result<Option<Model>, DbErr> {
    Entity::find().filter(Column::DirectKey.eq(key)).one(db).await
}

/// Stores a new conversation; a second direct one for the same pair is a unique violation.
pub async fn insert<C: ConnectionTrait>(db: &C, conversation: ActiveModel) -> Result<Model, DbErr> {
    conversation.insert(db).await
}

/// Records activity at `at` (a membership change): lists order by it.
pub async fn touch<C: ConnectionTrait>(db: &C, id: Uuid, at: DateTime<Utc>) -> Result<(), DbErr> {
    Entity::update_many().col_expr(Column::UpdatedAt, Expr::value(at)).filter(Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// A new title (and activity time).
pub async fn set_title<C: ConnectionTrait>(db: &C, id: Uuid, title: &str, at: DateTime<Utc>) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Title, Expr::value(title))
        .col_expr(Column::UpdatedAt, Expr::value(at))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// The last committed seq of each of `ids` that exists.
/// Locks the conversation's row until the transaction ends (Postgres; SQLite has one
/// writer). Writers that record webhook events take it before any other row a send also
/// writes, so a send (which locks its conversation first) and they cannot deadlock.
pub async fn lock<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<(), DbErr> {
    use sea_orm::QuerySelect;
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        Entity::find_by_id(id).select_only().column(Column::Id).lock_exclusive().into_tuple::<Uuid>().one(db).await?;
    }
    Ok(())
}

pub async fn last_seqs<C: ConnectionTrait>(db: &C, ids: &[Uuid]) -> Result<Vec<(Uuid, i64)>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = Entity::find().filter(Column::Id.is_in(ids.to_vec())).all(db).await?;
    Ok(rows.into_iter().map(|c| (c.id, c.last_seq)).collect())
}

/// Up to `limit` of `user`'s conversations, newest activity first (ties by id, descending),
/// after the position `after` (`updated_at`, id) of the previous page.
pub async fn page_of<C: ConnectionTrait>(
    db: &C,
    user: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mine = Query::select()
        .column(participant::Column::ConversationId)
        .from(participant::Entity)
        .and_where(participant::Column::UserId.eq(user))
        .to_owned();
    let mut query = Entity::find().filter(Column::Id.in_subquery(mine));
    if let Some((at, id)) = after {
        query = query.filter(
            Condition::any()
                .add(Column::UpdatedAt.lt(at))
                .add(Condition::all().add(Column::UpdatedAt.eq(at)).add(Column::Id.lt(id))),
        );
    }
    query.order_by_desc(Column::UpdatedAt).order_by_desc(Column::Id).limit(limit).all(db).await
}

/// The direct conversations among `ids`.
pub async fn direct_among<C: ConnectionTrait>(db: &C, ids: Vec<Uuid>) -> Result<Vec<Uuid>, DbErr> {
    super::ids_where::<Entity, _>(db, Column::Id, Column::Id.is_in(ids).and(Column::Kind.eq(KIND_DIRECT))).await
}

/// Every conversation.
pub async fn count_all<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    Entity::find().count(db).await
}

/// Conversations created in `[from, to)`.
pub async fn count_created<C: ConnectionTrait>(db: &C, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64, DbErr> {
    super::count_between::<Entity, _>(db, Column::CreatedAt, from, to).await
}
