//! Reactions: one row per (message, user, emoji). A message's summary (count per emoji, the
//! first few who reacted) is read with the message; the primary key makes a repeat a no-op.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::m20261125_000001_create_core_tables::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Reactions {
    Table,
    MessageId,
    UserId,
    /// One emoji from Unicode's emoji list, or a configured `:shortcode:`.
    Emoji,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Reactions::Table)
                .if_not_exists()
                .col(uuid(Reactions::MessageId))
                .col(uuid(Reactions::UserId))
                .col(string_len(Reactions::Emoji, 64))
                .col(timestamp_with_time_zone(Reactions::CreatedAt))
                .primary_key(Index::create().col(Reactions::MessageId).col(Reactions::UserId).col(Reactions::Emoji))
                .to_owned(),
        )
        .await?;
        // A message's reactions in the order they came (the summary's "first few").
        index(m, "ix_reactions_message_created", Reactions::Table, &[Reactions::MessageId, Reactions::CreatedAt]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Reactions::Table).if_exists().to_owned()).await
    }
}
