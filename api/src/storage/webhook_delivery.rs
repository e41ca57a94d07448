//! Webhook deliveries: one row per (endpoint, event) to send, with its retry state, and the
//! attempts made for it.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, QueryOrder, QuerySelect, Statement};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";

/// A delivery of event `event_pos` to `endpoint_id`. Those of one endpoint and conversation
/// are sent one at a time in `pos` order: only the oldest pending one can be claimed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub pos: i64,
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_pos: i64,
    /// The nil id for events outside a conversation.
    pub conversation_id: Uuid,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub lease_until: Option<DateTimeUtc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i32>,
    pub delivered_at: Option<DateTimeUtc>,
    pub replay: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A delivery to make, as [`insert_many`] takes it.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub endpoint_id: Uuid,
    pub event_pos: i64,
    pub conversation_id: Option<Uuid>,
    pub replay: bool,
}

/// Stores deliveries, due at `at`, in the order given.
pub async fn insert_many<C: ConnectionTrait>(db: &C, new: &[NewDelivery], at: DateTime<Utc>) -> Result<(), DbErr> {
    if new.is_empty() {
        return Ok(());
    }
    let rows = new.iter().map(|d| ActiveModel {
        pos: sea_orm::NotSet,
        id: sea_orm::Set(Uuid::now_v7()),
        endpoint_id: sea_orm::Set(d.endpoint_id),
        event_pos: sea_orm::Set(d.event_pos),
        conversation_id: sea_orm::Set(d.conversation_id.unwrap_or(Uuid::nil())),
        state: sea_orm::Set(PENDING.into()),
        attempts: sea_orm::Set(0),
        next_attempt_at: sea_orm::Set(at),
        lease_until: sea_orm::Set(None),
        last_status: sea_orm::Set(None),
        last_error: sea_orm::Set(None),
        last_latency_ms: sea_orm::Set(None),
        delivered_at: sea_orm::Set(None),
        replay: sea_orm::Set(d.replay),
        created_at: sea_orm::Set(at),
    });
    Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(())
}

/// Claims up to `limit` due deliveries for `lease_until`: pending, due by `now`, not leased
/// (or whose lease ran out: its worker died), of an enabled endpoint, and each the oldest
/// pending one of its (endpoint, conversation). On Postgres the rows are locked with `SKIP
/// LOCKED` while claimed, so concurrent workers on other nodes take other rows.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let backend = db.get_database_backend();
    let (p1, p2, p3, lock) = if backend == DbBackend::Postgres {
        ("$1", "$2", "$3", " FOR UPDATE OF d SKIP LOCKED")
    } else {
        ("?", "?", "?", "")
    };
    let sql = format!(
        "UPDATE webhook_deliveries SET lease_until = {p1} WHERE pos IN ( \
           SELECT d.pos FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
           WHERE d.state = 'pending' AND d.next_attempt_at <= {p2} \
             AND (d.lease_until IS NULL OR d.lease_until < {p2b}) \
             AND e.enabled AND e.deleted_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries h WHERE h.endpoint_id = d.endpoint_id \
               AND h.conversation_id = d.conversation_id AND h.state = 'pending' AND h.pos < d.pos) \
           ORDER BY d.next_attempt_at, d.pos LIMIT {p3}{lock}) \
         RETURNING *",
        p2b = if backend == DbBackend::Postgres { "$2" } else { "?" },
    );
    let mut values: Vec<sea_orm::Value> = vec![lease_until.into(), now.into()];
    if backend != DbBackend::Postgres {
        values.push(now.into());
    }
    values.push((limit as i64).into());
    let mut rows = Model::find_by_statement(Statement::from_sql_and_values(backend, sql, values)).all(db).await?;
    rows.sort_by_key(|d| d.pos);
    Ok(rows)
}

/// Leases the pending deliveries that follow `head` in its (endpoint, conversation) queue,
/// up to `limit`, in order: the worker holding the head sends them one after the other, and
/// no other worker can take one while it does.
pub async fn claim_run<C: ConnectionTrait>(
    db: &C,
    head: &Model,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let backend = db.get_database_backend();
    let pg = backend == DbBackend::Postgres;
    let p = |i: usize| if pg { format!("${i}") } else { "?".to_owned() };
    let lock = if pg { " FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE webhook_deliveries SET lease_until = {} WHERE pos IN ( \
           SELECT pos FROM webhook_deliveries WHERE endpoint_id = {} AND conversation_id = {} \
             AND state = 'pending' AND pos > {} AND next_attempt_at <= {} \
             AND (lease_until IS NULL OR lease_until < {}) \
           ORDER BY pos LIMIT {}{lock}) \
         RETURNING *",
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        if pg { p(5) } else { p(6) },
        if pg { p(6) } else { p(7) },
    );
    let mut values: Vec<sea_orm::Value> =
        vec![lease_until.into(), head.endpoint_id.into(), head.conversation_id.into(), head.pos.into(), now.into()];
    if !pg {
        values.push(now.into());
    }
    values.push((limit as i64).into());
    let mut rows = Model::find_by_statement(Statement::from_sql_and_values(backend, sql, values)).all(db).await?;
    rows.sort_by_key(|d| d.pos);
    Ok(rows)
}

/// Lets go of leased deliveries that were not tried (the one before them failed).
pub async fn release<C: ConnectionTrait>(db: &C, positions: &[i64]) -> Result<(), DbErr> {
    if positions.is_empty() {
        return Ok(());
    }
    Entity::update_many()
        .col_expr(Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(Column::Pos.is_in(positions.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

/// What one attempt came to.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: i32,
    pub excerpt: Option<String>,
}

/// Marks the delivery delivered at `at`.
pub async fn delivered<C: ConnectionTrait>(
    db: &C,
    pos: i64,
    outcome: &Outcome,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::State, Expr::value(DELIVERED))
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::DeliveredAt, Expr::value(at))
        .col_expr(Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(Column::LastStatus, Expr::value(outcome.status))
        .col_expr(Column::LastError, Expr::value(Option::<String>::None))
        .col_expr(Column::LastLatencyMs, Expr::value(outcome.latency_ms))
        .filter(Column::Pos.eq(pos))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a failed attempt: the delivery stays pending, next tried at `next`.
pub async fn failed<C: ConnectionTrait>(db: &C, pos: i64, outcome: &Outcome, next: DateTime<Utc>) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::NextAttemptAt, Expr::value(next))
        .col_expr(Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(Column::LastStatus, Expr::value(outcome.status))
        .col_expr(Column::LastError, Expr::value(outcome.error.clone()))
        .col_expr(Column::LastLatencyMs, Expr::value(outcome.latency_ms))
        .filter(Column::Pos.eq(pos))
        .exec(db)
        .await?;
    Ok(())
}

/// Makes the endpoint's pending deliveries due at `at` (re-enabling: resume at once).
pub async fn due_now<C: ConnectionTrait>(db: &C, endpoint_id: Uuid, at: DateTime<Utc>) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::NextAttemptAt, Expr::value(at))
        .filter(Column::EndpointId.eq(endpoint_id))
        .filter(Column::State.eq(PENDING))
        .exec(db)
        .await?;
    Ok(())
}

/// A delivery with its event, for the delivery log.
#[derive(Clone, Debug, FromQueryResult)]
pub struct Logged {
    pub pos: i64,
    pub id: Uuid,
    pub event_id: Uuid,
    pub kind: String,
    pub conversation_id: Uuid,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i32>,
    pub delivered_at: Option<DateTimeUtc>,
    pub replay: bool,
    pub created_at: DateTimeUtc,
}

/// The endpoint's deliveries, newest first, before position `before` if given.
pub async fn log<C: ConnectionTrait>(
    db: &C,
    endpoint_id: Uuid,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<Logged>, DbErr> {
    use super::webhook_event;
    let mut q = Entity::find()
        .select_only()
        .columns([
            Column::Pos,
            Column::Id,
            Column::ConversationId,
            Column::State,
            Column::Attempts,
            Column::NextAttemptAt,
            Column::LastStatus,
            Column::LastError,
            Column::LastLatencyMs,
            Column::DeliveredAt,
            Column::Replay,
            Column::CreatedAt,
        ])
        .column_as(Expr::col((webhook_event::Entity, webhook_event::Column::Id)), "event_id")
        .column_as(Expr::col((webhook_event::Entity, webhook_event::Column::Kind)), "kind")
        .join(
            sea_orm::JoinType::InnerJoin,
            Entity::belongs_to(webhook_event::Entity).from(Column::EventPos).to(webhook_event::Column::Pos).into(),
        )
        .filter(Column::EndpointId.eq(endpoint_id));
    if let Some(before) = before {
        q = q.filter(Column::Pos.lt(before));
    }
    q.order_by_desc(Column::Pos).limit(limit).into_model::<Logged>().all(db).await
}

/// The endpoint's deliveries with these ids.
pub async fn by_ids<C: ConnectionTrait>(db: &C, endpoint_id: Uuid, ids: &[Uuid]) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::EndpointId.eq(endpoint_id))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(Column::Pos)
        .all(db)
        .await
}

/// When the oldest pending delivery of an enabled endpoint was made (the outbox lag).
pub async fn oldest_pending<C: ConnectionTrait>(db: &C) -> Result<Option<DateTime<Utc>>, DbErr> {
    let backend = db.get_database_backend();
    let sql = "SELECT min(d.created_at) AS oldest FROM webhook_deliveries d JOIN webhook_endpoints e \
               ON e.id = d.endpoint_id WHERE d.state = 'pending' AND e.enabled AND e.deleted_at IS NULL";
    let row = db.query_one_raw(Statement::from_string(backend, sql)).await?;
    Ok(row.and_then(|r| r.try_get::<Option<DateTime<Utc>>>("", "oldest").ok().flatten()))
}
