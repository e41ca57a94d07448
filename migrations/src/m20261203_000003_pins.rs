//! Pinned messages: a conversation's owner (anyone in a direct conversation) pins up to 50.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::m20261125_000001_create_core_tables::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Pins {
    Table,
    ConversationId,
    MessageId,
    PinnedBy,
    PinnedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Pins::Table)
                .if_not_exists()
                .col(uuid(Pins::ConversationId))
                .col(uuid(Pins::MessageId))
                .col(uuid(Pins::PinnedBy))
                .col(timestamp_with_time_zone(Pins::PinnedAt))
                .primary_key(Index::create().col(Pins::ConversationId).col(Pins::MessageId))
                .to_owned(),
        )
        .await?;
        index(m, "ix_pins_message", Pins::Table, &[Pins::MessageId]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Pins::Table).if_exists().to_owned()).await
    }
}
