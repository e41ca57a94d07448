//! Integrations: apps with their bot users and API keys, and webhooks as a transactional
//! outbox. An event row is written in the transaction of the change it describes, one per
//! app whose bot is in the conversation (`pos` orders an app's events: writers hold the app's
//! row lock, so positions commit in order and a cursor over them never skips a row); each
//! endpoint's dispatcher turns its app's events into delivery rows, which workers on every
//! node claim, send and record attempts for.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::m20261125_000001_create_core_tables::{index, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Apps {
    Table,
    Id,
    Name,
    Description,
    /// Space-separated scope names.
    Scopes,
    /// The app's user (role `bot`), added to conversations like anyone else.
    BotUserId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
    AppId,
    /// The public part of `sck_<prefix>_<secret>`, shown in lists.
    Prefix,
    /// SHA-256 (hex) of the secret part: the secret is 256 random bits, so a fast hash is
    /// enough and a key check costs no argon2.
    SecretHash,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookEndpoints {
    Table,
    Id,
    AppId,
    Url,
    Description,
    /// Comma-wrapped event types (`,message.created,read.updated,`), so one `LIKE` matches.
    Events,
    /// The current signing secret (`whsec_…`): it must be readable to sign.
    Secret,
    /// The secret before the last rotation, which also signs until `PreviousSecretUntil`.
    PreviousSecret,
    PreviousSecretUntil,
    Enabled,
    DisabledAt,
    DisabledReason,
    /// Attempts that failed in a row; reset by any success.
    ConsecutiveFailures,
    /// When the current run of failures began (the retry window counts from it).
    FailingSince,
    /// The position of the last app event turned into a delivery for this endpoint.
    DispatchedPos,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookEvents {
    Table,
    /// The app's order of events (and the pull cursor).
    Pos,
    /// The change's id: the same for every app that receives it (`webhook-id`).
    Id,
    AppId,
    Kind,
    ConversationId,
    Seq,
    /// The event's JSON body as delivered (`{"id","type","timestamp","data"}`).
    Payload,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookDeliveries {
    Table,
    Pos,
    Id,
    EndpointId,
    EventPos,
    /// The event's conversation, or the nil id: deliveries of one endpoint and conversation go
    /// one at a time, in `Pos` order.
    ConversationId,
    /// `pending`, `delivered`, `failed` (the retry window ran out).
    State,
    Attempts,
    NextAttemptAt,
    /// A worker holds the delivery until then; a crashed worker's lease runs out.
    LeaseUntil,
    LastStatus,
    LastError,
    LastLatencyMs,
    DeliveredAt,
    /// Made by a replay request rather than by the dispatcher.
    Replay,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookAttempts {
    Table,
    Id,
    DeliveryId,
    EndpointId,
    AttemptedAt,
    /// The HTTP status, if an answer came.
    Status,
    LatencyMs,
    /// Why it failed without an answer (timeout, refused, …).
    Error,
    /// The first bytes of the answer's body.
    ResponseExcerpt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Apps::Table)
                .if_not_exists()
                .col(uuid(Apps::Id).primary_key())
                .col(string(Apps::Name))
                .col(string_null(Apps::Description))
                .col(string(Apps::Scopes))
                .col(uuid_uniq(Apps::BotUserId))
                .col(uuid(Apps::CreatedBy))
                .col(timestamp_with_time_zone(Apps::CreatedAt))
                .col(timestamp_with_time_zone(Apps::UpdatedAt))
                .col(timestamp_with_time_zone_null(Apps::DeletedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .if_not_exists()
                .col(uuid(ApiKeys::Id).primary_key())
                .col(uuid(ApiKeys::AppId))
                .col(string_uniq(ApiKeys::Prefix))
                .col(string(ApiKeys::SecretHash))
                .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                .to_owned(),
        )
        .await?;
        index(m, "ix_api_keys_app", ApiKeys::Table, &[ApiKeys::AppId]).await?;
        m.create_table(
            Table::create()
                .table(WebhookEndpoints::Table)
                .if_not_exists()
                .col(uuid(WebhookEndpoints::Id).primary_key())
                .col(uuid(WebhookEndpoints::AppId))
                .col(string(WebhookEndpoints::Url))
                .col(string_null(WebhookEndpoints::Description))
                .col(string(WebhookEndpoints::Events))
                .col(string(WebhookEndpoints::Secret))
                .col(string_null(WebhookEndpoints::PreviousSecret))
                .col(timestamp_with_time_zone_null(WebhookEndpoints::PreviousSecretUntil))
                .col(boolean(WebhookEndpoints::Enabled).default(true))
                .col(timestamp_with_time_zone_null(WebhookEndpoints::DisabledAt))
                .col(string_null(WebhookEndpoints::DisabledReason))
                .col(integer(WebhookEndpoints::ConsecutiveFailures).default(0))
                .col(timestamp_with_time_zone_null(WebhookEndpoints::FailingSince))
                .col(big_integer(WebhookEndpoints::DispatchedPos).default(0))
                .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                .col(timestamp_with_time_zone(WebhookEndpoints::UpdatedAt))
                .col(timestamp_with_time_zone_null(WebhookEndpoints::DeletedAt))
                .to_owned(),
        )
        .await?;
        index(m, "ix_webhook_endpoints_app", WebhookEndpoints::Table, &[WebhookEndpoints::AppId]).await?;
        m.create_table(
            Table::create()
                .table(WebhookEvents::Table)
                .if_not_exists()
                .col(big_pk_auto(WebhookEvents::Pos))
                .col(uuid(WebhookEvents::Id))
                .col(uuid(WebhookEvents::AppId))
                .col(string(WebhookEvents::Kind))
                .col(uuid_null(WebhookEvents::ConversationId))
                .col(big_integer_null(WebhookEvents::Seq))
                .col(text(WebhookEvents::Payload))
                .col(timestamp_with_time_zone(WebhookEvents::CreatedAt))
                .to_owned(),
        )
        .await?;
        index(m, "ix_webhook_events_app_pos", WebhookEvents::Table, &[WebhookEvents::AppId, WebhookEvents::Pos])
            .await?;
        unique(m, "ux_webhook_events_id_app", WebhookEvents::Table, &[WebhookEvents::Id, WebhookEvents::AppId]).await?;
        index(m, "ix_webhook_events_created", WebhookEvents::Table, &[WebhookEvents::CreatedAt]).await?;
        m.create_table(
            Table::create()
                .table(WebhookDeliveries::Table)
                .if_not_exists()
                .col(big_pk_auto(WebhookDeliveries::Pos))
                .col(uuid_uniq(WebhookDeliveries::Id))
                .col(uuid(WebhookDeliveries::EndpointId))
                .col(big_integer(WebhookDeliveries::EventPos))
                .col(uuid(WebhookDeliveries::ConversationId))
                .col(string(WebhookDeliveries::State))
                .col(integer(WebhookDeliveries::Attempts).default(0))
                .col(timestamp_with_time_zone(WebhookDeliveries::NextAttemptAt))
                .col(timestamp_with_time_zone_null(WebhookDeliveries::LeaseUntil))
                .col(integer_null(WebhookDeliveries::LastStatus))
                .col(string_null(WebhookDeliveries::LastError))
                .col(integer_null(WebhookDeliveries::LastLatencyMs))
                .col(timestamp_with_time_zone_null(WebhookDeliveries::DeliveredAt))
                .col(boolean(WebhookDeliveries::Replay).default(false))
                .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                .to_owned(),
        )
        .await?;
        // The head of each (endpoint, conversation) queue, and the due ones.
        index(
            m,
            "ix_webhook_deliveries_queue",
            WebhookDeliveries::Table,
            &[
                WebhookDeliveries::EndpointId,
                WebhookDeliveries::ConversationId,
                WebhookDeliveries::State,
                WebhookDeliveries::Pos,
            ],
        )
        .await?;
        index(
            m,
            "ix_webhook_deliveries_due",
            WebhookDeliveries::Table,
            &[WebhookDeliveries::State, WebhookDeliveries::NextAttemptAt],
        )
        .await?;
        index(
            m,
            "ix_webhook_deliveries_endpoint",
            WebhookDeliveries::Table,
            &[WebhookDeliveries::EndpointId, WebhookDeliveries::Pos],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(WebhookAttempts::Table)
                .if_not_exists()
                .col(uuid(WebhookAttempts::Id).primary_key())
                .col(uuid(WebhookAttempts::DeliveryId))
                .col(uuid(WebhookAttempts::EndpointId))
                .col(timestamp_with_time_zone(WebhookAttempts::AttemptedAt))
                .col(integer_null(WebhookAttempts::Status))
                .col(integer(WebhookAttempts::LatencyMs))
                .col(string_null(WebhookAttempts::Error))
                .col(string_null(WebhookAttempts::ResponseExcerpt))
                .to_owned(),
        )
        .await?;
        index(m, "ix_webhook_attempts_delivery", WebhookAttempts::Table, &[WebhookAttempts::DeliveryId]).await?;
        index(
            m,
            "ix_webhook_attempts_endpoint",
            WebhookAttempts::Table,
            &[WebhookAttempts::EndpointId, WebhookAttempts::AttemptedAt],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookAttempts::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
            WebhookEvents::Table.into_iden(),
            WebhookEndpoints::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Apps::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
