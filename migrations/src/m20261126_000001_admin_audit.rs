//! The admin console's audit log, and the indexes its business figures need (counts of
//! users, conversations and messages created per day).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum AdminAudit {
    Table,
    Id,
    ActorId,
    ActorUsername,
    Action,
    TargetKind,
    TargetId,
    Detail,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Conversations {
    Table,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key to users: the log outlives the accounts it mentions.
        m.create_table(
            Table::create()
                .table(AdminAudit::Table)
                .if_not_exists()
                .col(pk_uuid(AdminAudit::Id))
                .col(uuid(AdminAudit::ActorId))
                .col(string(AdminAudit::ActorUsername))
                .col(string(AdminAudit::Action))
                .col(string(AdminAudit::TargetKind))
                .col(string(AdminAudit::TargetId))
                .col(text_null(AdminAudit::Detail))
                .col(timestamp_with_time_zone(AdminAudit::CreatedAt))
                .to_owned(),
        )
        .await?;
        for (name, table, col) in [
            ("ix_admin_audit_created_at", AdminAudit::Table.into_iden(), AdminAudit::CreatedAt.into_iden()),
            ("ix_users_created_at", Users::Table.into_iden(), Users::CreatedAt.into_iden()),
            ("ix_conversations_created_at", Conversations::Table.into_iden(), Conversations::CreatedAt.into_iden()),
            ("ix_messages_created_at", Messages::Table.into_iden(), Messages::CreatedAt.into_iden()),
        ] {
            m.create_index(Index::create().name(name).table(table).col(col).if_not_exists().to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("ix_users_created_at", Users::Table.into_iden()),
            ("ix_conversations_created_at", Conversations::Table.into_iden()),
            ("ix_messages_created_at", Messages::Table.into_iden()),
        ] {
            m.drop_index(Index::drop().name(name).table(table).if_exists().to_owned()).await?;
        }
        m.drop_table(Table::drop().table(AdminAudit::Table).if_exists().to_owned()).await
    }
}
