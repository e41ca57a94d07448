//! Per-user settings, one row per user who changed one (no row: the defaults). First:
//! `read_receipts`, `public` (others see how far I have read) or `private` (Matrix's
//! `m.read.private`: my marker is mine; my unread counts still work).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UserSettings {
    Table,
    UserId,
    ReadReceipts,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(UserSettings::Table)
                .if_not_exists()
                .col(uuid(UserSettings::UserId).primary_key())
                .col(string_len(UserSettings::ReadReceipts, 16))
                .col(timestamp_with_time_zone(UserSettings::UpdatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(UserSettings::Table).if_exists().to_owned()).await
    }
}
