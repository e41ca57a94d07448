//! Mentions: each message keeps its parsed mentions (positions included) beside its body, so
//! history renders them without another read; `message_mentions` lists, per mentioned user,
//! the messages that mention them (their mention counts and `mentions` page).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::m20261125_000001_create_core_tables::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    Mentions,
}

#[derive(DeriveIden, Clone, Copy)]
enum MessageMentions {
    Table,
    UserId,
    MessageId,
    ConversationId,
    Seq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Messages::Table).add_column(text_null(Messages::Mentions)).to_owned())
            .await?;
        // Keyed by user, then message: message ids are UUIDv7, so a user's mentions are in
        // time order in the key itself.
        m.create_table(
            Table::create()
                .table(MessageMentions::Table)
                .if_not_exists()
                .col(uuid(MessageMentions::UserId))
                .col(uuid(MessageMentions::MessageId))
                .col(uuid(MessageMentions::ConversationId))
                .col(big_integer(MessageMentions::Seq))
                .primary_key(Index::create().col(MessageMentions::UserId).col(MessageMentions::MessageId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_message_mentions_unread",
            MessageMentions::Table,
            &[MessageMentions::UserId, MessageMentions::ConversationId, MessageMentions::Seq],
        )
        .await?;
        index(m, "ix_message_mentions_message", MessageMentions::Table, &[MessageMentions::MessageId]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(MessageMentions::Table).if_exists().to_owned()).await?;
        m.alter_table(Table::alter().table(Messages::Table).drop_column(Messages::Mentions).to_owned()).await
    }
}
