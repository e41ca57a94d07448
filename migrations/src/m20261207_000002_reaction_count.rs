//! How many reactions each message has, kept on the message row so a history page knows
//! which messages to read reactions for without probing `reactions` once per row.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    ReactionCount,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Messages::Table)
                .add_column(big_integer(Messages::ReactionCount).default(0))
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "UPDATE messages SET reaction_count = (SELECT count(*) FROM reactions r WHERE r.message_id = messages.id) \
                 WHERE id IN (SELECT message_id FROM reactions)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Messages::Table).drop_column(Messages::ReactionCount).to_owned()).await
    }
}
