//! What the webhook API answers.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::storage::{webhook_delivery, webhook_endpoint};

/// A webhook endpoint of the calling app.
#[derive(Clone, Debug, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    /// The event types it receives.
    pub events: Vec<String>,
    /// False once disabled (by its app, by a 410 answer, or after the retry window); events
    /// keep being recorded and are delivered, in order, once it is enabled again.
    pub enabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    /// Attempts that failed in a row.
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointView {
    pub(crate) fn from_model(e: webhook_endpoint::Model) -> EndpointView {
        EndpointView {
            id: e.id,
            events: e.event_types(),
            url: e.url,
            description: e.description,
            enabled: e.enabled,
            disabled_at: e.disabled_at,
            disabled_reason: e.disabled_reason,
            consecutive_failures: e.consecutive_failures,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// An endpoint with its signing secret, shown only when it is made or rotated.
#[derive(Clone, Debug, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct EndpointWithSecret {
    #[oai(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify `webhook-signature` with it (Standard Webhooks). Shown once.
    pub secret: String,
}

/// One event's delivery to an endpoint, with its latest attempt.
#[derive(Clone, Debug, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: Uuid,
    /// The event's id: the `webhook-id` header of every attempt.
    pub event_id: Uuid,
    #[oai(rename = "type")]
    pub kind: String,
    pub conversation_id: Option<Uuid>,
    /// `pending` (to be tried, or waiting for the one before it in its conversation) or
    /// `delivered`.
    pub state: String,
    pub attempts: i32,
    /// When it will be tried next (pending ones).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The latest attempt's HTTP status, if the endpoint answered.
    pub last_status: Option<i32>,
    /// Why the latest attempt failed without an answer.
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i32>,
    /// The first bytes of the latest answer's body.
    pub response_excerpt: Option<String>,
    /// Made by a replay request.
    pub replay: bool,
    pub created_at: DateTime<Utc>,
}

impl DeliveryView {
    pub(crate) fn from_logged(d: webhook_delivery::Logged, excerpt: Option<String>) -> DeliveryView {
        let pending = d.state == webhook_delivery::PENDING;
        DeliveryView {
            id: d.id,
            event_id: d.event_id,
            kind: d.kind,
            conversation_id: (!d.conversation_id.is_nil()).then_some(d.conversation_id),
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: pending.then_some(d.next_attempt_at),
            delivered_at: d.delivered_at,
            last_status: d.last_status,
            last_error: d.last_error,
            last_latency_ms: d.last_latency_ms,
            response_excerpt: excerpt,
            replay: d.replay,
            created_at: d.created_at,
        }
    }
}

/// An event as apps receive it (the webhook body).
#[derive(Clone, Debug, poem_openapi::Object)]
pub struct EventView {
    pub id: Uuid,
    #[oai(rename = "type")]
    pub kind: String,
    pub timestamp: String,
    /// The event's fields; `conversationId` and `seq` where they apply.
    pub data: serde_json::Value,
}
