//! Webhook attempts: every try of a delivery, for the integrator's delivery log.

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect};

/// One try: the answer's status (or why there was none), how long it took, and the first
/// bytes of the answer.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    pub attempted_at: DateTimeUtc,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Stores an attempt.
pub async fn insert<C: ConnectionTrait>(db: &C, attempt: ActiveModel) -> Result<(), DbErr> {
    Entity::insert(attempt).exec_without_returning(db).await?;
    Ok(())
}

/// The attempts of these deliveries, oldest first, at most `limit` in all.
pub async fn of_deliveries<C: ConnectionTrait>(db: &C, ids: &[Uuid], limit: u64) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::DeliveryId.is_in(ids.iter().copied()))
        .order_by_asc(Column::AttemptedAt)
        .limit(limit)
        .all(db)
        .await
}

/// The endpoint's latest `limit` attempts that did not get a 2xx, newest first.
pub async fn recent_failures<C: ConnectionTrait>(db: &C, endpoint_id: Uuid, limit: u64) -> Result<Vec<Model>, DbErr> {
    use sea_orm::Condition;
    Entity::find()
        .filter(Column::EndpointId.eq(endpoint_id))
        .filter(Condition::any().add(Column::Status.is_null()).add(Column::Status.lt(200)).add(Column::Status.gte(300)))
        .order_by_desc(Column::AttemptedAt)
        .limit(limit)
        .all(db)
        .await
}

/// The endpoint's attempts since `since`: (all, succeeded), for its success rate.
pub async fn counts_since<C: ConnectionTrait>(
    db: &C,
    endpoint_id: Uuid,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<(u64, u64), DbErr> {
    use sea_orm::PaginatorTrait;
    let base = Entity::find().filter(Column::EndpointId.eq(endpoint_id)).filter(Column::AttemptedAt.gte(since));
    let all = base.clone().count(db).await?;
    let ok = base.filter(Column::Status.gte(200)).filter(Column::Status.lt(300)).count(db).await?;
    Ok((all, ok))
}
