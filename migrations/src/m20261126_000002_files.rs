//! Files: the blobs table, image dimensions and thumbnails on attachments, and the indexes
//! that the "is this blob still used" check and the orphan collector need.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Attachments {
    Table,
    Width,
    Height,
    ThumbnailKey,
    ThumbnailType,
    StorageKey,
    CreatedAt,
}

/// One row per stored object (`blobs/<sha256>`): the row that uploads and deletions lock, so
/// a blob is never deleted while an upload of the same bytes is attaching itself to it.
#[derive(DeriveIden, Clone, Copy)]
enum Blobs {
    Table,
    Key,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Blobs::Table)
                .if_not_exists()
                .col(string(Blobs::Key).primary_key())
                .col(timestamp_with_time_zone(Blobs::CreatedAt))
                .to_owned(),
        )
        .await?;
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            integer_null(Attachments::Width),
            integer_null(Attachments::Height),
            string_null(Attachments::ThumbnailKey),
            string_null(Attachments::ThumbnailType),
        ] {
            let mut column = column;
            m.alter_table(Table::alter().table(Attachments::Table).add_column(&mut column).to_owned()).await?;
        }
        for (name, col) in [
            ("ix_attachments_storage_key", Attachments::StorageKey),
            ("ix_attachments_created_at", Attachments::CreatedAt),
        ] {
            m.create_index(Index::create().name(name).table(Attachments::Table).col(col).if_not_exists().to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in ["ix_attachments_storage_key", "ix_attachments_created_at"] {
            m.drop_index(Index::drop().name(name).table(Attachments::Table).if_exists().to_owned()).await?;
        }
        for column in [Attachments::Width, Attachments::Height, Attachments::ThumbnailKey, Attachments::ThumbnailType] {
            m.alter_table(Table::alter().table(Attachments::Table).drop_column(column).to_owned()).await?;
        }
        m.drop_table(Table::drop().table(Blobs::Table).if_exists().to_owned()).await
    }
}
