//! Webhook endpoints: where an app wants its events sent, and each one's delivery state.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ConnectionTrait, QueryOrder};

/// An endpoint of an app. `events` holds the subscribed types comma-wrapped
/// (`,message.created,read.updated,`); `secret` signs (and `previous_secret` too, until
/// `previous_secret_until`, after a rotation). A disabled endpoint gets no deliveries until
/// re-enabled, and then resumes where it stopped (`dispatched_pos`, pending deliveries).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub app_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub events: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTimeUtc>,
    pub enabled: bool,
    pub disabled_at: Option<DateTimeUtc>,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub failing_since: Option<DateTimeUtc>,
    pub dispatched_pos: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The subscribed event types.
    pub fn event_types(&self) -> Vec<String> {
        self.events.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect()
    }

    pub fn wants(&self, kind: &str) -> bool {
        self.events.contains(&format!(",{kind},"))
    }
}

/// How a list of event types is stored.
pub fn stored_events(types: &[String]) -> String {
    format!(",{},", types.join(","))
}

/// The app's endpoint `id`, unless deleted.
pub async fn find<C: ConnectionTrait>(db: &C, app_id: Uuid, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).filter(Column::AppId.eq(app_id)).filter(Column::DeletedAt.is_null()).one(db).await
}

/// The app's endpoints that are not deleted, oldest first.
pub async fn of_app<C: ConnectionTrait>(db: &C, app_id: Uuid) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::AppId.eq(app_id))
        .filter(Column::DeletedAt.is_null())
        .order_by_asc(Column::CreatedAt)
        .all(db)
        .await
}

/// Every endpoint that is not deleted (the console, the gauges).
pub async fn all_live<C: ConnectionTrait>(db: &C) -> Result<Vec<Model>, DbErr> {
    Entity::find().filter(Column::DeletedAt.is_null()).order_by_asc(Column::CreatedAt).all(db).await
}

/// The enabled endpoints, which the dispatcher serves.
pub async fn enabled<C: ConnectionTrait>(db: &C) -> Result<Vec<Model>, DbErr> {
    Entity::find().filter(Column::DeletedAt.is_null()).filter(Column::Enabled.eq(true)).all(db).await
}

/// Stores a new endpoint.
pub async fn insert<C: ConnectionTrait>(db: &C, endpoint: ActiveModel) -> Result<Model, DbErr> {
    endpoint.insert(db).await
}

/// Writes changed fields of an endpoint.
pub async fn update<C: ConnectionTrait>(db: &C, endpoint: ActiveModel) -> Result<Model, DbErr> {
    endpoint.update(db).await
}

/// Moves the endpoint's dispatch cursor to `pos`.
pub async fn set_dispatched<C: ConnectionTrait>(db: &C, id: Uuid, pos: i64) -> Result<(), DbErr> {
    Entity::update_many().col_expr(Column::DispatchedPos, Expr::value(pos)).filter(Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// Records a successful answer: the run of failures is over.
pub async fn record_success<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::ConsecutiveFailures, Expr::value(0))
        .col_expr(Column::FailingSince, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(Column::Id.eq(id))
        .filter(Column::ConsecutiveFailures.ne(0))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a failed attempt at `at`; answers the endpoint as it is now.
pub async fn record_failure<C: ConnectionTrait>(db: &C, id: Uuid, at: DateTime<Utc>) -> Result<Option<Model>, DbErr> {
    Entity::update_many()
        .col_expr(Column::ConsecutiveFailures, Expr::col(Column::ConsecutiveFailures).add(1))
        .col_expr(
            Column::FailingSince,
            Expr::expr(sea_orm::sea_query::Func::coalesce([Expr::col(Column::FailingSince), Expr::value(at)])),
        )
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Entity::find_by_id(id).one(db).await
}

/// Disables the endpoint (unless it already is) with `reason`; true if this call did.
pub async fn disable<C: ConnectionTrait>(db: &C, id: Uuid, reason: &str, at: DateTime<Utc>) -> Result<bool, DbErr> {
    let done = Entity::update_many()
        .col_expr(Column::Enabled, Expr::value(false))
        .col_expr(Column::DisabledAt, Expr::value(at))
        .col_expr(Column::DisabledReason, Expr::value(reason))
        .col_expr(Column::UpdatedAt, Expr::value(at))
        .filter(Column::Id.eq(id))
        .filter(Column::Enabled.eq(true))
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}
