//! The core chat tables: users, sessions, conversations, participants, messages, attachments,
//! with the indexes the hot queries need (see DESIGN.md "Data model").

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Username,
    Email,
    PasswordHash,
    DisplayName,
    Role,
    Disabled,
    CreatedAt,
    LastSeenAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    Id,
    UserId,
    TokenHash,
    Device,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Conversations {
    Table,
    Id,
    Kind,
    Title,
    DirectKey,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    LastSeq,
}

#[derive(DeriveIden, Clone, Copy)]
enum Participants {
    Table,
    ConversationId,
    UserId,
    Role,
    JoinedAt,
    LastReadSeq,
}

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    Id,
    ConversationId,
    Seq,
    SenderId,
    Body,
    ClientMessageId,
    CreatedAt,
    EditedAt,
    DeletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Attachments {
    Table,
    Id,
    OwnerId,
    MessageId,
    FileName,
    ContentType,
    Size,
    StorageKey,
    Sha256,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .if_not_exists()
                .col(pk_uuid(Users::Id))
                .col(string(Users::Username))
                .col(string(Users::Email))
                .col(string(Users::PasswordHash))
                .col(string_null(Users::DisplayName))
                .col(string(Users::Role).default("user"))
                .col(boolean(Users::Disabled).default(false))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .col(timestamp_with_time_zone_null(Users::LastSeenAt))
                .to_owned(),
        )
        .await?;
        unique(m, "ux_users_username", Users::Table, &[Users::Username]).await?;
        unique(m, "ux_users_email", Users::Table, &[Users::Email]).await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .if_not_exists()
                .col(pk_uuid(Sessions::Id))
                .col(uuid(Sessions::UserId))
                .col(string(Sessions::TokenHash))
                .col(string_null(Sessions::Device))
                .col(timestamp_with_time_zone(Sessions::CreatedAt))
                .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(m, "ix_sessions_user", Sessions::Table, &[Sessions::UserId]).await?;

        m.create_table(
            Table::create()
                .table(Conversations::Table)
                .if_not_exists()
                .col(pk_uuid(Conversations::Id))
                .col(string(Conversations::Kind))
                .col(string_null(Conversations::Title))
                // "<smaller user id>:<larger user id>" for direct conversations, so that the
                // unique index makes "one direct conversation per pair" hold under races.
                .col(string_null(Conversations::DirectKey))
                .col(uuid(Conversations::CreatedBy))
                .col(timestamp_with_time_zone(Conversations::CreatedAt))
                .col(timestamp_with_time_zone(Conversations::UpdatedAt))
                .col(big_integer(Conversations::LastSeq).default(0))
                .foreign_key(
                    ForeignKey::create()
                        .from(Conversations::Table, Conversations::CreatedBy)
                        .to(Users::Table, Users::Id),
                )
                .to_owned(),
        )
        .await?;
        unique(m, "ux_conversations_direct_key", Conversations::Table, &[Conversations::DirectKey]).await?;
        index(m, "ix_conversations_updated_at", Conversations::Table, &[Conversations::UpdatedAt]).await?;

        m.create_table(
            Table::create()
                .table(Participants::Table)
                .if_not_exists()
                .col(uuid(Participants::ConversationId))
                .col(uuid(Participants::UserId))
                .col(string(Participants::Role).default("member"))
                .col(timestamp_with_time_zone(Participants::JoinedAt))
                .col(big_integer(Participants::LastReadSeq).default(0))
                .primary_key(Index::create().col(Participants::ConversationId).col(Participants::UserId))
                .foreign_key(
                    ForeignKey::create()
                        .from(Participants::Table, Participants::ConversationId)
                        .to(Conversations::Table, Conversations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Participants::Table, Participants::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        unique(
            m,
            "ux_participants_user_conversation",
            Participants::Table,
            &[Participants::UserId, Participants::ConversationId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Messages::Table)
                .if_not_exists()
                .col(pk_uuid(Messages::Id))
                .col(uuid(Messages::ConversationId))
                .col(big_integer(Messages::Seq))
                .col(uuid(Messages::SenderId))
                .col(text(Messages::Body))
                .col(string_null(Messages::ClientMessageId))
                .col(timestamp_with_time_zone(Messages::CreatedAt))
                .col(timestamp_with_time_zone_null(Messages::EditedAt))
                .col(timestamp_with_time_zone_null(Messages::DeletedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Messages::Table, Messages::ConversationId)
                        .to(Conversations::Table, Conversations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(ForeignKey::create().from(Messages::Table, Messages::SenderId).to(Users::Table, Users::Id))
                .to_owned(),
        )
        .await?;
        // History reads walk (conversation, seq); the unique index doubles as the guarantee
        // that a seq is never handed out twice.
        m.create_index(
            Index::create()
                .name("ux_messages_conversation_seq")
                .table(Messages::Table)
                .col(Messages::ConversationId)
                .col((Messages::Seq, IndexOrder::Desc))
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_messages_sender_created_at")
                .table(Messages::Table)
                .col(Messages::SenderId)
                .col((Messages::CreatedAt, IndexOrder::Desc))
                .to_owned(),
        )
        .await?;
        unique(
            m,
            "ux_messages_sender_client_message_id",
            Messages::Table,
            &[Messages::SenderId, Messages::ClientMessageId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Attachments::Table)
                .if_not_exists()
                .col(pk_uuid(Attachments::Id))
                .col(uuid(Attachments::OwnerId))
                .col(uuid_null(Attachments::MessageId))
                .col(string(Attachments::FileName))
                .col(string(Attachments::ContentType))
                .col(big_integer(Attachments::Size))
                .col(string(Attachments::StorageKey))
                .col(string(Attachments::Sha256))
                .col(timestamp_with_time_zone(Attachments::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Attachments::Table, Attachments::OwnerId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(m, "ix_attachments_owner", Attachments::Table, &[Attachments::OwnerId]).await?;
        index(m, "ix_attachments_message", Attachments::Table, &[Attachments::MessageId]).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Attachments::Table.into_iden(),
            Messages::Table.into_iden(),
            Participants::Table.into_iden(),
            Conversations::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

/// A unique index `name` on `cols` (also used by later migrations).
pub(crate) async fn unique<T: IntoIden + Copy>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[T],
) -> Result<(), DbErr> {
    create_index(m, name, table, cols, true).await
}

/// An index `name` on `cols` (also used by later migrations).
pub(crate) async fn index<T: IntoIden + Copy>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[T],
) -> Result<(), DbErr> {
    create_index(m, name, table, cols, false).await
}

async fn create_index<T: IntoIden + Copy>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[T],
    is_unique: bool,
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table).if_not_exists();
    for col in cols {
        stmt.col(*col);
    }
    if is_unique {
        stmt.unique();
    }
    m.create_index(stmt).await
}
