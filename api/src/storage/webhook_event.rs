//! The webhook outbox: one row per change and app whose bot is in the changed conversation,
//! written in the transaction of the change, so a committed change always has its events
//! and a rolled-back one never does.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DbBackend, QueryOrder, QuerySelect, Statement};

/// An event for one app. `pos` is the app's order: every writer holds the app's row lock
/// (Postgres) or the database's (SQLite) from before its rows get a `pos` until it commits,
/// so an app's positions become visible in order and a cursor over them skips nothing.
/// `payload` is the event's `data` as of the change (JSON); `conversation_id` and `seq` are
/// merged into it when it is delivered.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub pos: i64,
    pub id: Uuid,
    pub app_id: Uuid,
    pub kind: String,
    pub conversation_id: Option<Uuid>,
    pub seq: Option<i64>,
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A change in a conversation that apps hear about.
#[derive(Clone, Debug)]
pub struct Change {
    /// The change's id (the same for every app): the `webhook-id` of its deliveries.
    pub id: Uuid,
    pub kind: &'static str,
    pub conversation_id: Uuid,
    pub seq: Option<i64>,
    /// The event's `data`, a JSON object.
    pub data: String,
    pub at: DateTime<Utc>,
}

/// Records `change` for every app whose bot is a participant of its conversation now (call
/// it inside the change's transaction, after the change's own writes; for a removal, before
/// the participant row goes, so the removed bot's app hears of it). Locks those apps' rows
/// until the transaction ends (the order of positions, see [`Model`]).
pub async fn record<C: ConnectionTrait>(db: &C, change: &Change) -> Result<(), DbErr> {
    record_for(db, change, &[]).await
}

/// As [`record`], for the apps whose bot is one of `users` only (an app added to a
/// conversation hears of it, whoever else is there).
pub async fn record_for_bots<C: ConnectionTrait>(db: &C, change: &Change, users: &[Uuid]) -> Result<(), DbErr> {
    if users.is_empty() {
        return Ok(());
    }
    record_for(db, change, users).await
}

async fn record_for<C: ConnectionTrait>(db: &C, change: &Change, bots: &[Uuid]) -> Result<(), DbErr> {
    // The conversation before the apps, in the order a send takes them.
    super::conversation::lock(db, change.conversation_id).await?;
    let backend = db.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    let param = |i: usize, cast: &str| if postgres { format!("${i}::{cast}") } else { "?".to_owned() };
    let lock = if postgres { " FOR UPDATE OF a" } else { "" };
    let head: Vec<sea_orm::Value> = vec![
        change.id.into(),
        change.kind.into(),
        change.conversation_id.into(),
        change.seq.into(),
        change.data.clone().into(),
        change.at.into(),
    ];
    let (apps, audience): (String, Vec<sea_orm::Value>) = if bots.is_empty() {
        let sql = format!(
            "SELECT a.id FROM apps a JOIN participants pa ON pa.user_id = a.bot_user_id \
             WHERE pa.conversation_id = {} AND a.deleted_at IS NULL ORDER BY a.id{lock}",
            param(7, "uuid")
        );
        (sql, vec![change.conversation_id.into()])
    } else {
        let list: Vec<String> = (0..bots.len()).map(|i| param(7 + i, "uuid")).collect();
        let sql = format!(
            "SELECT a.id FROM apps a WHERE a.bot_user_id IN ({}) AND a.deleted_at IS NULL ORDER BY a.id{lock}",
            list.join(", ")
        );
        (sql, bots.iter().map(|b| sea_orm::Value::from(*b)).collect())
    };
    // `$n` on Postgres; SQLite's `?` bind in the order they appear, the `WITH` first.
    let values: Vec<sea_orm::Value> =
        if postgres { head.into_iter().chain(audience).collect() } else { audience.into_iter().chain(head).collect() };
    let sql = format!(
        "WITH bots AS ({apps}) \
         INSERT INTO webhook_events (id, app_id, kind, conversation_id, seq, payload, created_at) \
         SELECT {}, bots.id, {}, {}, {}, {}, {} FROM bots ORDER BY bots.id",
        param(1, "uuid"),
        param(2, "text"),
        param(3, "uuid"),
        param(4, "bigint"),
        param(5, "text"),
        param(6, "timestamptz"),
    );
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    Ok(())
}

/// The app's events after position `after`, oldest first, at most `limit`.
pub async fn after<C: ConnectionTrait>(db: &C, app_id: Uuid, after: i64, limit: u64) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::AppId.eq(app_id))
        .filter(Column::Pos.gt(after))
        .order_by_asc(Column::Pos)
        .limit(limit)
        .all(db)
        .await
}

/// The app's last position (0 before its first event).
pub async fn last_pos<C: ConnectionTrait>(db: &C, app_id: Uuid) -> Result<i64, DbErr> {
    let top: Option<Option<i64>> = Entity::find()
        .select_only()
        .column_as(Column::Pos.max(), "top")
        .filter(Column::AppId.eq(app_id))
        .into_tuple()
        .one(db)
        .await?;
    Ok(top.flatten().unwrap_or(0))
}

/// The app's event with change id `id`.
pub async fn by_id<C: ConnectionTrait>(db: &C, app_id: Uuid, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find().filter(Column::AppId.eq(app_id)).filter(Column::Id.eq(id)).one(db).await
}

/// The app's events at positions `positions`, in order.
pub async fn at_positions<C: ConnectionTrait>(db: &C, app_id: Uuid, positions: &[i64]) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::AppId.eq(app_id))
        .filter(Column::Pos.is_in(positions.iter().copied()))
        .order_by_asc(Column::Pos)
        .all(db)
        .await
}

/// The app's events created at or after `since`, oldest first, at most `limit`.
pub async fn since<C: ConnectionTrait>(
    db: &C,
    app_id: Uuid,
    since: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::AppId.eq(app_id))
        .filter(Column::CreatedAt.gte(since))
        .order_by_asc(Column::Pos)
        .limit(limit)
        .all(db)
        .await
}
