//! Blocks: `blocker` blocked `blocked`. A blocked user cannot start a direct conversation with
//! the blocker, does not see their presence or typing, and their messages are flagged for the
//! blocker.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::m20261125_000001_create_core_tables::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Blocks {
    Table,
    BlockerId,
    BlockedId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Blocks::Table)
                .if_not_exists()
                .col(uuid(Blocks::BlockerId))
                .col(uuid(Blocks::BlockedId))
                .col(timestamp_with_time_zone(Blocks::CreatedAt))
                .primary_key(Index::create().col(Blocks::BlockerId).col(Blocks::BlockedId))
                .to_owned(),
        )
        .await?;
        // "Who blocked me", for what a blocked user may see.
        index(m, "ix_blocks_blocked", Blocks::Table, &[Blocks::BlockedId]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Blocks::Table).if_exists().to_owned()).await
    }
}
