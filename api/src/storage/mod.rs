//! Storage: one module per table with its sea-orm entity and the queries on it (each a
//! function with one doc comment saying what it guarantees, generic over `ConnectionTrait`
//! so it runs inside a transaction too), and the database connection. The services decide;
//! this layer only reads and writes.

pub mod api_key;
pub mod app;
pub mod attachment;
pub mod audit;
pub mod blob;
pub mod block;
pub mod conversation;
pub mod idempotency;
pub mod mention;
pub mod message;
pub mod participant;
pub mod pin;
pub mod reaction;
pub mod search;
pub mod session;
pub mod upload_claim;
pub mod user;
pub mod user_settings;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod webhook_event;

mod connect;

pub use connect::{connect, connect_watched, is_unique_violation};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::IntoCondition;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

/// One id `column` of the rows of `E` that match `condition`.
async fn ids_where<E: EntityTrait, C: ConnectionTrait>(
    db: &C,
    column: E::Column,
    condition: impl IntoCondition,
) -> Result<Vec<Uuid>, DbErr> {
    E::find().select_only().column(column).filter(condition).into_tuple().all(db).await
}

/// How many rows of `E` have `column` in `[from, to)`.
async fn count_between<E: EntityTrait, C: ConnectionTrait>(
    db: &C,
    column: E::Column,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<u64, DbErr>
where
    E::Model: Sync,
{
    E::find().filter(column.gte(from)).filter(column.lt(to)).count(db).await
}
