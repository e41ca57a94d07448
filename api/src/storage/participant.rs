//! Participants: who is in which conversation, with their role and read marker.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "participants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversation_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// `owner` or `member`.
    pub role: String,
    pub joined_at: DateTimeUtc,
    pub last_read_seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub const ROLE_OWNER: &str = "owner";
pub const ROLE_MEMBER: &str = "member";

/// `user`'s participation in `conversation`: one primary-key read.
pub async fn find<C: ConnectionTrait>(db: &C, conversation: Uuid, user: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id((conversation, user)).one(db).await
}

/// Adds participants; one who is in already is a unique violation.
pub async fn insert_many<C: ConnectionTrait>(db: &C, rows: impl IntoIterator<Item = ActiveModel>) -> Result<(), DbErr> {
    Entity::insert_many(rows).exec(db).await?;
    Ok(())
}

/// Takes `user` out of `conversation`.
pub async fn remove<C: ConnectionTrait>(db: &C, conversation: Uuid, user: Uuid) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::ConversationId.eq(conversation))
        .filter(Column::UserId.eq(user))
        .exec(db)
        .await?;
    Ok(())
}

/// The users of `conversation`.
pub async fn user_ids<C: ConnectionTrait>(db: &C, conversation: Uuid) -> Result<Vec<Uuid>, DbErr> {
    super::ids_where::<Entity, _>(db, Column::UserId, Column::ConversationId.eq(conversation)).await
}

/// Of `users`, those in `conversation`.
pub async fn present_among<C: ConnectionTrait>(
    db: &C,
    conversation: Uuid,
    users: Vec<Uuid>,
) -> Result<Vec<Uuid>, DbErr> {
    let which = Column::ConversationId.eq(conversation).and(Column::UserId.is_in(users));
    super::ids_where::<Entity, _>(db, Column::UserId, which).await
}

/// How many people are in `conversation`.
pub async fn count_in<C: ConnectionTrait>(db: &C, conversation: Uuid) -> Result<u64, DbErr> {
    Entity::find().filter(Column::ConversationId.eq(conversation)).count(db).await
}

/// The participants of `conversations`, earliest to join first.
pub async fn of_conversations<C: ConnectionTrait>(db: &C, conversations: Vec<Uuid>) -> Result<Vec<Model>, DbErr> {
    Entity::find().filter(Column::ConversationId.is_in(conversations)).order_by_asc(Column::JoinedAt).all(db).await
}

/// The conversations `user` is in.
pub async fn conversation_ids_of<C: ConnectionTrait>(db: &C, user: Uuid) -> Result<Vec<Uuid>, DbErr> {
    super::ids_where::<Entity, _>(db, Column::ConversationId, Column::UserId.eq(user)).await
}

/// The people other than `user` in `conversations`, each once.
pub async fn others_in<C: ConnectionTrait>(db: &C, conversations: Vec<Uuid>, user: Uuid) -> Result<Vec<Uuid>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::UserId)
        .distinct()
        .filter(Column::ConversationId.is_in(conversations))
        .filter(Column::UserId.ne(user))
        .into_tuple()
        .all(db)
        .await
}

/// How many conversations each of `users` is in (users in none are left out).
pub async fn conversation_counts<C: ConnectionTrait>(db: &C, users: Vec<Uuid>) -> Result<Vec<(Uuid, i64)>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::UserId)
        .column_as(Column::ConversationId.count(), "n")
        .filter(Column::UserId.is_in(users))
        .group_by(Column::UserId)
        .into_tuple()
        .all(db)
        .await
}

/// Moves `user`'s read marker in `conversation` forward to `seq`; never back.
pub async fn mark_read<C: ConnectionTrait>(db: &C, conversation: Uuid, user: Uuid, seq: i64) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::LastReadSeq, Expr::value(seq))
        .filter(Column::ConversationId.eq(conversation))
        .filter(Column::UserId.eq(user))
        .filter(Column::LastReadSeq.lt(seq))
        .exec(db)
        .await?;
    Ok(())
}

/// Of the users called `usernames`, those in `conversation`: (id, username).
pub async fn named_among<C: ConnectionTrait>(
    db: &C,
    conversation: Uuid,
    usernames: Vec<String>,
) -> Result<Vec<(Uuid, String)>, DbErr> {
    if usernames.is_empty() {
        return Ok(Vec::new());
    }
    let members = sea_orm::sea_query::Query::select()
        .column(Column::UserId)
        .from(Entity)
        .and_where(Expr::col(Column::ConversationId).eq(conversation))
        .to_owned();
    super::user::Entity::find()
        .select_only()
        .column(super::user::Column::Id)
        .column(super::user::Column::Username)
        .filter(super::user::Column::Username.is_in(usernames))
        .filter(super::user::Column::Id.in_subquery(members))
        .into_tuple()
        .all(db)
        .await
}
