//! A second per-user setting: what to do with messages from people I blocked, `flag` them
//! (`senderBlocked`, the default) or `hide` them (left out of my history, search, mentions and
//! live events).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UserSettings {
    Table,
    BlockedMessages,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(UserSettings::Table)
                .add_column(string_len(UserSettings::BlockedMessages, 16).default("flag"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(UserSettings::Table).drop_column(UserSettings::BlockedMessages).to_owned())
            .await
    }
}
