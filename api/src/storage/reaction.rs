//! Reactions: who reacted to which message with which emoji.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, QuerySelect, Set, Statement};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub emoji: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Adds a reaction; whether it is new (a repeat changes nothing).
pub async fn add<C: ConnectionTrait>(
    db: &C,
    message: Uuid,
    user: Uuid,
    emoji: &str,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row =
        ActiveModel { message_id: Set(message), user_id: Set(user), emoji: Set(emoji.to_owned()), created_at: Set(at) };
    let inserted = Entity::insert(row)
        .on_conflict(OnConflict::columns([Column::MessageId, Column::UserId, Column::Emoji]).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    if inserted > 0 {
        recount(db, message, 1).await?;
    }
    Ok(inserted > 0)
}

/// Removes a reaction; whether there was one. Run it in a transaction: it also lowers the
/// message's count.
pub async fn remove<C: ConnectionTrait>(db: &C, message: Uuid, user: Uuid, emoji: &str) -> Result<bool, DbErr> {
    let done = Entity::delete_by_id((message, user, emoji.to_owned())).exec(db).await?;
    if done.rows_affected > 0 {
        recount(db, message, -1).await?;
    }
    Ok(done.rows_affected > 0)
}

/// Moves `messages.reaction_count` by `by`.
async fn recount<C: ConnectionTrait>(db: &C, message: Uuid, by: i64) -> Result<(), DbErr> {
    use super::message;
    message::Entity::update_many()
        .col_expr(message::Column::ReactionCount, Expr::col(message::Column::ReactionCount).add(by))
        .filter(message::Column::Id.eq(message))
        .exec(db)
        .await?;
    Ok(())
}

/// The distinct emoji on a message.
pub async fn emojis_of<C: ConnectionTrait>(db: &C, message: Uuid) -> Result<Vec<String>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::Emoji)
        .distinct()
        .filter(Column::MessageId.eq(message))
        .into_tuple::<String>()
        .all(db)
        .await
}

/// Every reaction of a message goes with it (a deleted message keeps none).
pub async fn clear<C: ConnectionTrait>(db: &C, message: Uuid) -> Result<(), DbErr> {
    Entity::delete_many().filter(Column::MessageId.eq(message)).exec(db).await?;
    super::message::Entity::update_many()
        .col_expr(super::message::Column::ReactionCount, Expr::value(0i64))
        .filter(super::message::Column::Id.eq(message))
        .exec(db)
        .await?;
    Ok(())
}

/// One (message, emoji) of a summary with one of its first `FIRST` reactors.
#[derive(Debug, FromQueryResult)]
pub struct SummaryRow {
    pub message_id: Uuid,
    pub emoji: String,
    pub user_id: Uuid,
    pub username: String,
    /// Reactions with this emoji on this message.
    pub n: i64,
    pub first_at: DateTimeUtc,
}

/// Reactors listed per emoji.
pub const FIRST: i64 = 3;

/// The summaries of `messages`: per (message, emoji), ordered by the emoji's first use, the
/// count and the first [`FIRST`] users (one row each), in one statement.
pub async fn summaries<C: ConnectionTrait>(db: &C, messages: &[Uuid]) -> Result<Vec<SummaryRow>, DbErr> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let placeholders: Vec<String> = (1..=messages.len())
        .map(|i| if backend == DbBackend::Postgres { format!("${i}") } else { "?".to_owned() })
        .collect();
    let sql = format!(
        "SELECT r.message_id, r.emoji, r.user_id, u.username, r.n, r.first_at FROM ( \
           SELECT message_id, emoji, user_id, \
             ROW_NUMBER() OVER (PARTITION BY message_id, emoji ORDER BY created_at, user_id) AS rn, \
             COUNT(*) OVER (PARTITION BY message_id, emoji) AS n, \
             MIN(created_at) OVER (PARTITION BY message_id, emoji) AS first_at \
           FROM reactions WHERE message_id IN ({}) \
         ) r JOIN users u ON u.id = r.user_id \
         WHERE r.rn <= {FIRST} \
         ORDER BY r.message_id, r.first_at, r.emoji, r.rn",
        placeholders.join(", ")
    );
    let values: Vec<sea_orm::Value> = messages.iter().map(|id| (*id).into()).collect();
    SummaryRow::find_by_statement(Statement::from_sql_and_values(backend, sql, values)).all(db).await
}

/// Which of `messages` `user` reacted to, with what.
pub async fn mine<C: ConnectionTrait>(db: &C, user: Uuid, messages: &[Uuid]) -> Result<Vec<(Uuid, String)>, DbErr> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find()
        .select_only()
        .column(Column::MessageId)
        .column(Column::Emoji)
        .filter(Column::UserId.eq(user))
        .filter(Column::MessageId.is_in(messages.to_vec()))
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await
}
