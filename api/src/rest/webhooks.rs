//! Webhooks and the event feed, for apps (called with an app's API key).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::{ApiTags, BearerAuth, ProblemResponse, svc};
use crate::service::Services;
use crate::service::webhooks::payload::EventType;
use crate::service::webhooks::views::{DeliveryView, EndpointView, EndpointWithSecret, EventView};
use crate::service::webhooks::{EndpointChanges, NewEndpoint, ReplayRequest};

pub struct WebhookApi {
    pub services: Option<Arc<Services>>,
}

#[derive(Object)]
struct NewWebhook {
    /// Where events are POSTed (http or https; not a loopback, private or link-local address).
    #[oai(deserialize_with = "crate::rest::strict::text", validator(max_length = 2048))]
    url: String,
    /// Event types to receive: message.created, message.edited, message.deleted,
    /// conversation.created, conversation.updated, participant.added, participant.removed,
    /// read.updated, app.added_to_conversation.
    #[oai(validator(min_items = 1))]
    events: Vec<EventType>,
    /// At most 500 characters.
    #[oai(
        deserialize_with = "crate::rest::strict::optional_text",
        validator(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    description: Option<String>,
}

#[derive(Object)]
struct WebhookChanges {
    #[oai(deserialize_with = "crate::rest::strict::optional_text", validator(max_length = 2048))]
    url: Option<String>,
    #[oai(validator(min_items = 1))]
    events: Option<Vec<EventType>>,
    #[oai(
        deserialize_with = "crate::rest::strict::optional_text",
        validator(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    description: Option<String>,
    /// `true` re-enables a disabled endpoint: it resumes, in order, where it stopped.
    enabled: Option<bool>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Replay {
    /// Re-send the events recorded since this time.
    since: Option<DateTime<Utc>>,
    /// Re-send this event and every later one.
    from_event_id: Option<Uuid>,
    /// Re-send the events of these deliveries.
    delivery_ids: Option<Vec<Uuid>>,
}

#[derive(Object)]
struct Replayed {
    /// Deliveries queued.
    queued: u64,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct WebhookList {
    items: Vec<EndpointView>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct DeliveryList {
    /// Newest first.
    items: Vec<DeliveryView>,
    /// Pass as `before` for older deliveries.
    next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct EventList {
    /// Oldest first.
    items: Vec<EventView>,
    /// Pass as `after` to continue, also after the last page (new events come later).
    next_cursor: Option<String>,
}

#[derive(Object)]
struct Deleted {
    ok: bool,
}

fn names(types: &[EventType]) -> Vec<String> {
    types.iter().map(|t| t.as_str().to_owned()).collect()
}

#[OpenApi(tag = "ApiTags::Webhooks")]
impl WebhookApi {
    /// Register a webhook endpoint for the calling app (needs `webhooks:manage`). The answer
    /// holds its signing secret, shown only here.
    #[oai(path = "/webhooks", method = "post", operation_id = "createWebhook")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<NewWebhook>,
    ) -> Result<Json<EndpointWithSecret>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let b = body.0;
        let input = NewEndpoint { url: b.url, events: names(&b.events), description: b.description };
        Ok(Json(services.webhooks.create(&caller, input).await?))
    }

    /// The calling app's webhook endpoints.
    #[oai(path = "/webhooks", method = "get", operation_id = "listWebhooks")]
    async fn list(&self, auth: BearerAuth) -> Result<Json<WebhookList>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(WebhookList { items: services.webhooks.list(&caller).await? }))
    }

    #[oai(path = "/webhooks/:id", method = "get", operation_id = "getWebhook")]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<EndpointView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.webhooks.get(&caller, id.0).await?))
    }

    /// Change an endpoint; `enabled: true` re-enables a disabled one.
    #[oai(path = "/webhooks/:id", method = "patch", operation_id = "updateWebhook")]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<WebhookChanges>,
    ) -> Result<Json<EndpointView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let b = body.0;
        let changes = EndpointChanges {
            url: b.url,
            events: b.events.as_deref().map(names),
            description: b.description,
            enabled: b.enabled,
        };
        Ok(Json(services.webhooks.update(&caller, id.0, changes).await?))
    }

    #[oai(path = "/webhooks/:id", method = "delete", operation_id = "deleteWebhook")]
    async fn delete(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<Deleted>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(Deleted { ok: services.webhooks.delete(&caller, id.0).await? }))
    }

    /// A new signing secret (shown only here); the previous one keeps signing, beside it,
    /// for the grace period (`SYNCCHAT_WEBHOOK_SECRET_GRACE_SECS`).
    #[oai(path = "/webhooks/:id/rotate-secret", method = "post", operation_id = "rotateWebhookSecret")]
    async fn rotate(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<EndpointWithSecret>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.webhooks.rotate_secret(&caller, id.0).await?))
    }

    /// The endpoint's delivery log, newest first: attempts, status, latency, the answer's
    /// first bytes, the next retry.
    #[oai(path = "/webhooks/:id/deliveries", method = "get", operation_id = "listWebhookDeliveries")]
    async fn deliveries(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(validator(pattern = r"^[0-9]{1,18}$"))] before: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<Option<u64>>,
    ) -> Result<Json<DeliveryList>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let page = services.webhooks.deliveries(&caller, id.0, before.0, limit.0).await?;
        Ok(Json(DeliveryList { items: page.items, next_cursor: page.next_cursor }))
    }

    /// Send events again, with their original `webhook-id`: give exactly one of `since`,
    /// `fromEventId`, `deliveryIds` (at most 10,000 events per request).
    #[oai(path = "/webhooks/:id/replay", method = "post", operation_id = "replayWebhook")]
    async fn replay(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<Replay>,
    ) -> Result<Json<Replayed>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let b = body.0;
        let request = ReplayRequest { since: b.since, from_event_id: b.from_event_id, delivery_ids: b.delivery_ids };
        Ok(Json(Replayed { queued: services.webhooks.replay(&caller, id.0, request).await? }))
    }

    /// The calling app's events, oldest first, after `after` (a cursor; none: from the
    /// first): the same events its webhooks receive, to catch up after downtime. Needs
    /// `messages:read`. `limit` defaults to 100, at most 1000.
    #[oai(path = "/events", method = "get", operation_id = "listEvents")]
    async fn events(
        &self,
        auth: BearerAuth,
        #[oai(validator(pattern = r"^[0-9]{1,18}$"))] after: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))] limit: Query<Option<u64>>,
    ) -> Result<Json<EventList>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let page = services.webhooks.events(&caller, after.0, limit.0).await?;
        Ok(Json(EventList { items: page.items, next_cursor: page.next_cursor }))
    }
}
