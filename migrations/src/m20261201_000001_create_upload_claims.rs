//! Upload URLs are single-use: the first upload through a URL claims its token id here, in
//! the database every node shares, and any later use finds the claim.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UploadClaims {
    Table,
    /// The upload URL token's `jti`.
    TokenId,
    UserId,
    /// When the URL itself expires: after that the claim is no longer needed.
    ExpiresAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(UploadClaims::Table)
                .if_not_exists()
                .col(uuid(UploadClaims::TokenId).primary_key())
                .col(uuid(UploadClaims::UserId))
                .col(timestamp_with_time_zone(UploadClaims::ExpiresAt))
                .col(timestamp_with_time_zone(UploadClaims::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_upload_claims_expires_at")
                .table(UploadClaims::Table)
                .col(UploadClaims::ExpiresAt)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(UploadClaims::Table).if_exists().to_owned()).await
    }
}
