//! Users: accounts with their role, and the queries on them.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, Query};
use sea_orm::{Condition, ConnectionTrait, QueryOrder, QuerySelect};

use super::{message, participant};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub role: String,
    pub disabled: bool,
    pub created_at: DateTimeUtc,
    pub last_seen_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub const ROLE_ADMIN: &str = "admin";
pub const ROLE_USER: &str = "user";
/// An app's user: it cannot log in with a password; its app's keys act as it.
pub const ROLE_BOT: &str = "bot";

/// The user with this id.
pub async fn find<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// The user with this username.
pub async fn by_username<C: ConnectionTrait>(db: &C, username: &str) -> Result<Option<Model>, DbErr> {
    Entity::find().filter(Column::Username.eq(username)).one(db).await
}

/// The user with this email.
pub async fn by_email<C: ConnectionTrait>(db: &C, email: &str) -> Result<Option<Model>, DbErr> {
    Entity::find().filter(Column::Email.eq(email)).one(db).await
}

/// Stores a new user; a taken username or email is a unique violation.
pub async fn insert<C: ConnectionTrait>(db: &C, user: ActiveModel) -> Result<Model, DbErr> {
    user.insert(db).await
}

/// The users among `ids` that exist, in no particular order.
pub async fn among<C: ConnectionTrait>(db: &C, ids: Vec<Uuid>) -> Result<Vec<Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find().filter(Column::Id.is_in(ids)).all(db).await
}

/// How many of `ids` are enabled users.
pub async fn count_enabled<C: ConnectionTrait>(db: &C, ids: &[Uuid]) -> Result<u64, DbErr> {
    Entity::find().filter(Column::Id.is_in(ids.to_vec())).filter(Column::Disabled.eq(false)).count(db).await
}

/// The ids among `ids` of disabled users.
pub async fn disabled_among<C: ConnectionTrait>(db: &C, ids: Vec<Uuid>) -> Result<Vec<Uuid>, DbErr> {
    super::ids_where::<Entity, _>(db, Column::Id, Column::Id.is_in(ids).and(Column::Disabled.eq(true))).await
}

/// Up to `limit` enabled users by username, those whose username starts with `prefix` (taken
/// literally), after the username `after`.
pub async fn search<C: ConnectionTrait>(
    db: &C,
    prefix: Option<&str>,
    after: Option<String>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut query = Entity::find().filter(Column::Disabled.eq(false));
    if let Some(prefix) = prefix {
        query = query.filter(Column::Username.like(prefix_pattern(prefix)));
    }
    if let Some(after) = after {
        query = query.filter(Column::Username.gt(after));
    }
    query.order_by_asc(Column::Username).limit(limit).all(db).await
}

/// For moderation, disabled users included: up to `limit` users whose username or email
/// starts with `prefix` (taken literally, by username), or without one the most recently
/// registered.
pub async fn moderation_search<C: ConnectionTrait>(
    db: &C,
    prefix: Option<&str>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut select = Entity::find();
    if let Some(prefix) = prefix {
        select = select
            .filter(
                Condition::any()
                    .add(Column::Username.like(prefix_pattern(prefix)))
                    .add(Column::Email.like(prefix_pattern(prefix))),
            )
            .order_by_asc(Column::Username);
    } else {
        select = select.order_by_desc(Column::CreatedAt);
    }
    select.limit(limit).all(db).await
}

/// The users among `ids` whose presence `viewer` may see: with `shared_only`, only the viewer
/// and the people who share a conversation with them.
pub async fn presence_visible<C: ConnectionTrait>(
    db: &C,
    ids: Vec<Uuid>,
    viewer: Uuid,
    shared_only: bool,
) -> Result<Vec<Model>, DbErr> {
    let mut visible = Entity::find().filter(Column::Id.is_in(ids));
    if shared_only {
        let mine = Query::select()
            .column(participant::Column::ConversationId)
            .from(participant::Entity)
            .and_where(participant::Column::UserId.eq(viewer))
            .to_owned();
        let sharing = Query::select()
            .column(participant::Column::UserId)
            .from(participant::Entity)
            .and_where(participant::Column::ConversationId.in_subquery(mine))
            .to_owned();
        visible = visible.filter(Condition::any().add(Column::Id.eq(viewer)).add(Column::Id.in_subquery(sharing)));
    }
    visible.all(db).await
}

/// Stores that the user was around at `at`.
pub async fn touch_last_seen<C: ConnectionTrait>(db: &C, id: Uuid, at: DateTime<Utc>) -> Result<(), DbErr> {
    Entity::update_many().col_expr(Column::LastSeenAt, Expr::value(at)).filter(Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// Disables or enables the user; returns the stored row.
pub async fn set_disabled<C: ConnectionTrait>(db: &C, user: Model, disabled: bool) -> Result<Model, DbErr> {
    let mut active: ActiveModel = user.into();
    active.disabled = sea_orm::Set(disabled);
    active.update(db).await
}

/// Every user.
pub async fn count_all<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    Entity::find().count(db).await
}

/// Users who registered in `[from, to)` and, with `seen_since`, have been around since then.
pub async fn count_registered<C: ConnectionTrait>(
    db: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    seen_since: Option<DateTime<Utc>>,
) -> Result<u64, DbErr> {
    let mut query = Entity::find().filter(Column::CreatedAt.gte(from)).filter(Column::CreatedAt.lt(to));
    if let Some(since) = seen_since {
        query = query.filter(Column::LastSeenAt.gte(since));
    }
    query.count(db).await
}

/// Users active since `since`: they sent a message or were around in that window.
pub async fn count_active_since<C: ConnectionTrait>(db: &C, since: DateTime<Utc>) -> Result<u64, DbErr> {
    let senders = Query::select()
        .column(message::Column::SenderId)
        .from(message::Entity)
        .and_where(message::Column::CreatedAt.gte(since))
        .to_owned();
    Entity::find()
        .filter(Condition::any().add(Column::LastSeenAt.gte(since)).add(Column::Id.in_subquery(senders)))
        .count(db)
        .await
}

/// A `LIKE` pattern matching strings that start with `prefix` literally: `%`, `_` and the
/// escape character itself are escaped.
fn prefix_pattern(prefix: &str) -> LikeExpr {
    let mut escaped = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    LikeExpr::new(escaped).escape('\\')
}

/// The ids of the users called `usernames` (those that exist).
pub async fn ids_named<C: ConnectionTrait>(db: &C, usernames: Vec<String>) -> Result<Vec<Uuid>, DbErr> {
    if usernames.is_empty() {
        return Ok(Vec::new());
    }
    super::ids_where::<Entity, _>(db, Column::Id, Column::Username.is_in(usernames)).await
}
