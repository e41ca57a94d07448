//! `Idempotency-Key` on REST POSTs: the first answer to each (caller, key), kept for a day, so
//! a retried request gets it again on any node instead of running twice.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::m20261125_000001_create_core_tables::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum IdempotencyKeys {
    Table,
    /// `u:<user id>` or `a:<app id>`.
    Caller,
    Key,
    /// SHA-256 (hex) of the method, path, query and body the key was first used with.
    Fingerprint,
    /// The answer's status; NULL while the first request is still running.
    Status,
    ContentType,
    Body,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .if_not_exists()
                .col(string(IdempotencyKeys::Caller))
                .col(string(IdempotencyKeys::Key))
                .col(string(IdempotencyKeys::Fingerprint))
                .col(integer_null(IdempotencyKeys::Status))
                .col(string_null(IdempotencyKeys::ContentType))
                .col(text_null(IdempotencyKeys::Body))
                .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                .col(timestamp_with_time_zone(IdempotencyKeys::ExpiresAt))
                .primary_key(Index::create().col(IdempotencyKeys::Caller).col(IdempotencyKeys::Key))
                .to_owned(),
        )
        .await?;
        index(m, "ix_idempotency_keys_expires", IdempotencyKeys::Table, &[IdempotencyKeys::ExpiresAt]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(IdempotencyKeys::Table).if_exists().to_owned()).await
    }
}
