//! Webhooks: apps register endpoints and receive every change in the conversations their
//! bot is in, durably, in order per (endpoint, conversation), signed, with a delivery log,
//! replay, and a pull feed of the same events.
//!
//! The path of an event:
//! 1. **Outbox.** The change's transaction records an event row per app whose bot is in
//!    the conversation (`storage::webhook_event::record`; for a send, inside the send
//!    statement itself). Nothing is held only in memory: a committed change has its event,
//!    a rolled-back one has none.
//! 2. **Dispatch.** Each node's worker takes each enabled endpoint in turn (row-locked with
//!    `SKIP LOCKED` on Postgres, so one node per endpoint at a time), reads its app's events
//!    after the endpoint's cursor and makes a delivery row for each event type it wants,
//!    moving the cursor in the same transaction.
//! 3. **Delivery.** Workers on every node claim due deliveries, each the oldest pending one
//!    of its (endpoint, conversation), under a lease; send it ([`deliver`]); record the
//!    attempt. So N nodes deliver each event once, and again (same `webhook-id`) only when
//!    a worker died or timed out holding it.
//! 4. **Failure.** A failed attempt is retried with exponential backoff and full jitter; a
//!    410 disables the endpoint at once; failing for the retry window (3 days by default)
//!    or `max_failures` attempts in a row disables it too. A disabled endpoint keeps its
//!    cursor and pending deliveries: enabled again, it resumes where it stopped.

mod deliver;
pub mod payload;
pub mod signature;
pub mod target;
pub mod views;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sea_orm::{DbBackend, EntityTrait, QueryFilter, QuerySelect, Set, TransactionTrait};
use tokio_util::sync::CancellationToken;
use tracing::instrument;
use uuid::Uuid;

use super::scopes::Scope;
use super::views::Page;
use super::{Caller, Context};
use crate::background::{Background, next_tick};
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::webhook_delivery::{self, NewDelivery};
use crate::storage::{webhook_attempt, webhook_endpoint, webhook_event};
pub use target::AllowedHosts;
use views::{DeliveryView, EndpointView, EndpointWithSecret, EventView};

/// Most endpoints per app.
pub const MAX_ENDPOINTS_PER_APP: usize = 20;
/// Most characters of an endpoint's description.
pub const MAX_DESCRIPTION: usize = 500;
/// Most events one replay request re-sends.
pub const MAX_REPLAY: u64 = 10_000;
/// Events one dispatch step reads for an endpoint.
const DISPATCH_BATCH: u64 = 500;
/// Deliveries one worker claims at a time, and sends at once.
const CLAIM_BATCH: u64 = 64;
const SEND_CONCURRENCY: usize = 16;
/// Deliveries behind a claimed head that its worker takes along.
const RUN_BATCH: u64 = 49;
/// How often the backlog gauges are refreshed.
const GAUGE_EVERY: Duration = Duration::from_secs(5);

/// How webhooks behave (`SYNCCHAT_WEBHOOK_*`).
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    pub allowed_hosts: Vec<String>,
    /// One attempt's limit, connect to answer read.
    pub timeout: Duration,
    /// How long an endpoint may fail before it is disabled.
    pub retry_window: Duration,
    /// Attempts failing in a row that disable an endpoint (0: only the window counts).
    pub max_failures: u32,
    /// How long the previous secret still signs after a rotation.
    pub secret_grace: Duration,
    /// How often idle workers look for new events.
    pub poll: Duration,
    /// The longest wait between two attempts.
    pub backoff_max: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allowed_hosts: Vec::new(),
            timeout: Duration::from_secs(10),
            retry_window: Duration::from_secs(3 * 86_400),
            max_failures: 0,
            secret_grace: Duration::from_secs(86_400),
            poll: Duration::from_millis(200),
            backoff_max: Duration::from_secs(3600),
        }
    }
}

/// A new endpoint.
#[derive(Clone, Debug, Default)]
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// `true` re-enables a disabled endpoint (it resumes where it stopped).
    pub enabled: Option<bool>,
}

/// What to send again: exactly one of the three.
#[derive(Clone, Debug, Default)]
pub struct ReplayRequest {
    pub since: Option<DateTime<Utc>>,
    pub from_event_id: Option<Uuid>,
    pub delivery_ids: Option<Vec<Uuid>>,
}

/// The webhooks area.
pub struct Webhooks {
    ctx: Context,
    settings: WebhookSettings,
    allowed: AllowedHosts,
    client: reqwest::Client,
}

impl Webhooks {
    /// The area, with its worker started on `background` (when given: the CLI has none).
    pub fn new(ctx: Context, settings: WebhookSettings, background: Option<&Background>) -> Arc<Webhooks> {
        let allowed = AllowedHosts::new(&settings.allowed_hosts);
        let client = deliver::client(settings.timeout, &allowed);
        let webhooks = Arc::new(Webhooks { ctx, settings, allowed, client });
        if let Some(background) = background {
            background.spawn("webhooks", webhooks.clone().run(background.token()));
        }
        webhooks
    }

    /// The calling app, if it may manage webhooks.
    fn app_of(caller: &Caller, scope: Scope) -> AppResult<Uuid> {
        let Some(grant) = &caller.app else {
            return Err(AppError::Forbidden(
                "webhooks and the event feed belong to an app: call with one of its API keys".into(),
            ));
        };
        caller.require(scope)?;
        Ok(grant.app_id)
    }

    fn check_events(events: &[String]) -> AppResult<String> {
        if events.is_empty() {
            return Err(AppError::bad_input("events", "give at least one event type"));
        }
        let mut types: Vec<String> = Vec::with_capacity(events.len());
        for kind in events {
            if !payload::EVENT_TYPES.contains(&kind.as_str()) {
                return Err(AppError::bad_input(
                    "events",
                    format!("unknown event type {kind:?}; known types: {}", payload::EVENT_TYPES.join(", ")),
                ));
            }
            if !types.contains(kind) {
                types.push(kind.clone());
            }
        }
        Ok(webhook_endpoint::stored_events(&types))
    }

    fn check_description(description: Option<String>) -> AppResult<Option<String>> {
        let description = description.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
        match description {
            Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(AppError::bad_input(
                "description",
                format!("description must be at most {MAX_DESCRIPTION} characters"),
            )),
            Some(d) if d.chars().any(char::is_control) => {
                Err(AppError::bad_input("description", "description must not contain control characters"))
            }
            other => Ok(other),
        }
    }

    /// Registers an endpoint for the calling app; it receives events from now on.
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn create(&self, caller: &Caller, input: NewEndpoint) -> AppResult<EndpointWithSecret> {
        let app_id = Self::app_of(caller, Scope::WebhooksManage)?;
        let url = target::check(&input.url, &self.allowed).await?;
        let events = Self::check_events(&input.events)?;
        let description = Self::check_description(input.description)?;
        if webhook_endpoint::of_app(&self.ctx.db, app_id).await?.len() >= MAX_ENDPOINTS_PER_APP {
            return Err(AppError::Conflict(format!("an app has at most {MAX_ENDPOINTS_PER_APP} webhook endpoints")));
        }
        let now = self.ctx.now();
        let secret = signature::new_secret();
        let txn = self.ctx.db.begin().await?;
        // From now on: the cursor starts after the app's last event.
        let dispatched_pos = webhook_event::last_pos(&txn, app_id).await?;
        let saved = webhook_endpoint::insert(
            &txn,
            webhook_endpoint::ActiveModel {
                id: Set(Uuid::now_v7()),
                app_id: Set(app_id),
                url: Set(url.to_string()),
                description: Set(description),
                events: Set(events),
                secret: Set(secret.clone()),
                previous_secret: Set(None),
                previous_secret_until: Set(None),
                enabled: Set(true),
                disabled_at: Set(None),
                disabled_reason: Set(None),
                consecutive_failures: Set(0),
                failing_since: Set(None),
                dispatched_pos: Set(dispatched_pos),
                created_at: Set(now),
                updated_at: Set(now),
                deleted_at: Set(None),
            },
        )
        .await?;
        txn.commit().await?;
        tracing::info!(app.id = %app_id, webhook.id = %saved.id, "webhook endpoint registered");
        Ok(EndpointWithSecret { endpoint: EndpointView::from_model(saved), secret })
    }

    /// The calling app's endpoints.
    pub async fn list(&self, caller: &Caller) -> AppResult<Vec<EndpointView>> {
        let app_id = Self::app_of(caller, Scope::WebhooksManage)?;
        Ok(webhook_endpoint::of_app(&self.ctx.db, app_id).await?.into_iter().map(EndpointView::from_model).collect())
    }

    async fn endpoint(&self, app_id: Uuid, id: Uuid) -> AppResult<webhook_endpoint::Model> {
        webhook_endpoint::find(&self.ctx.db, app_id, id).await?.ok_or_else(|| AppError::not_found("webhook"))
    }

    /// One of the calling app's endpoints.
    pub async fn get(&self, caller: &Caller, id: Uuid) -> AppResult<EndpointView> {
        let app_id = Self::app_of(caller, Scope::WebhooksManage)?;
        Ok(EndpointView::from_model(self.endpoint(app_id, id).await?))
    }

    /// Changes an endpoint; enabling a disabled one resumes its deliveries at once.
    #[instrument(skip_all, fields(user.id = %caller.user_id, webhook.id = %id))]
    pub async fn update(&self, caller: &Caller, id: Uuid, changes: EndpointChanges) -> AppResult<EndpointView> {
        let app_id = Self::app_of(caller, Scope::WebhooksManage)?;
        let url = match &changes.url {
            Some(url) => Some(target::check(url, &self.allowed).await?),
            None => None,
        };
        let events = changes.events.as_deref().map(Self::check_events).transpose()?;
        let description = changes.description.map(|d| Self::check_description(Some(d))).transpose()?;
        let found = self.endpoint(app_id, id).await?;
        let now = self.ctx.now();
        let resume = changes.enabled == Some(true) && !found.enabled;
        let mut edit: webhook_endpoint::ActiveModel = found.into();
        if let Some(url) = url {
            edit.url = Set(url.to_string());
        }
        if let Some(events) = events {
            edit.events = Set(events);
        }
        if let Some(description) = description {
            edit.description = Set(description);
        }
        match changes.enabled {
            Some(true) => {
                edit.enabled = Set(true);
                edit.disabled_at = Set(None);
                edit.disabled_reason = Set(None);
                edit.consecutive_failures = Set(0);
                edit.failing_since = Set(None);
            }
            Some(false) => {
                edit.enabled = Set(false);
                edit.disabled_at = Set(Some(now));
                edit.disabled_reason = Set(Some("disabled by its app".into()));
            }
            None => {}
        }
        edit.updated_at = Set(now);
        let txn = self.ctx.db.begin().await?;
        let saved = webhook_endpoint::update(&txn, edit).await?;
        if resume {
            webhook_delivery::due_now(&txn, id, now).await?;
        }
        txn.commit().await?;
        Ok(EndpointView::from_model(saved))
    }

    /// Deletes an endpoint: it gets nothing more.
    pub async fn delete(&self, caller: &Caller, id: Uuid) -> AppResult<bool> {
        let app_id = Self::app_of(caller, Scope::WebhooksManage)?;
        let found = self.endpoint(app_id, id).await?;
        let now = self.ctx.now();
        let mut edit: webhook_endpoint::ActiveModel = found.into();
        edit.deleted_at = Set(Some(now));
        edit.enabled = Set(false);
        edit.updated_at = Set(now);
        webhook_endpoint::update(&self.ctx.db, edit).await?;
        Ok(true)
    }

    /// A new signing secret; the old one also signs for the grace period.
    #[instrument(skip_all, fields(user.id = %caller.user_id, webhook.id = %id))]
    pub async fn rotate_secret(&self, caller: &Caller, id: Uuid) -> AppResult<EndpointWithSecret> {
        let app_id = Self::app_of(caller, Scope::WebhooksManage)?;
        let found = self.endpoint(app_id, id).await?;
        let now = self.ctx.now();
        let secret = signature::new_secret();
        let grace =
            chrono::Duration::from_std(self.settings.secret_grace).unwrap_or_else(|_| chrono::Duration::days(1));
        let mut edit: webhook_endpoint::ActiveModel = found.clone().into();
        edit.previous_secret = Set(Some(found.secret));
        edit.previous_secret_until = Set(Some(now + grace));
        edit.secret = Set(secret.clone());
        edit.updated_at = Set(now);
        let saved = webhook_endpoint::update(&self.ctx.db, edit).await?;
        Ok(EndpointWithSecret { endpoint: EndpointView::from_model(saved), secret })
    }

    /// The endpoint's delivery log, newest first (`before`: a cursor from a previous page).
    pub async fn deliveries(
        &self,
        caller: &Caller,
        id: Uuid,
        before: Option<String>,
        limit: Option<u64>,
    ) -> AppResult<Page<DeliveryView>> {
        let app_id = Self::app_of(caller, Scope::WebhooksManage)?;
        let limit = super::users::page_limit(limit, 50, 200)?;
        let before = parse_cursor("before", before.as_deref())?;
        self.endpoint(app_id, id).await?;
        let mut rows = webhook_delivery::log(&self.ctx.db, id, before, limit + 1).await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let ids: Vec<Uuid> = rows.iter().map(|d| d.id).collect();
        let mut excerpts: HashMap<Uuid, Option<String>> = HashMap::new();
        for attempt in webhook_attempt::of_deliveries(&self.ctx.db, &ids, 10_000).await? {
            excerpts.insert(attempt.delivery_id, attempt.response_excerpt);
        }
        let next_cursor = has_more.then(|| rows.last().map(|d| d.pos.to_string())).flatten();
        let items = rows
            .into_iter()
            .map(|d| {
                let excerpt = excerpts.remove(&d.id).flatten();
                DeliveryView::from_logged(d, excerpt)
            })
            .collect();
        Ok(Page { items, next_cursor, has_more })
    }

    /// Sends events again (with their original `webhook-id`): those since a time, from an
    /// event on, or of given deliveries. Answers how many were queued.
    #[instrument(skip_all, fields(user.id = %caller.user_id, webhook.id = %id))]
    pub async fn replay(&self, caller: &Caller, id: Uuid, request: ReplayRequest) -> AppResult<u64> {
        let app_id = Self::app_of(caller, Scope::WebhooksManage)?;
        let given = [request.since.is_some(), request.from_event_id.is_some(), request.delivery_ids.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(AppError::bad_input("since", "give exactly one of since, fromEventId and deliveryIds"));
        }
        let endpoint = self.endpoint(app_id, id).await?;
        let db = &self.ctx.db;
        let events = if let Some(since) = request.since {
            webhook_event::since(db, app_id, since, MAX_REPLAY).await?
        } else if let Some(event_id) = request.from_event_id {
            let first =
                webhook_event::by_id(db, app_id, event_id).await?.ok_or_else(|| AppError::not_found("event"))?;
            let mut events = vec![first.clone()];
            events.extend(webhook_event::after(db, app_id, first.pos, MAX_REPLAY - 1).await?);
            events
        } else {
            let ids = request.delivery_ids.unwrap_or_default();
            if ids.is_empty() || ids.len() as u64 > MAX_REPLAY {
                return Err(AppError::bad_input("deliveryIds", format!("give 1 to {MAX_REPLAY} delivery ids")));
            }
            let found = webhook_delivery::by_ids(db, id, &ids).await?;
            if found.len() != ids.iter().collect::<std::collections::HashSet<_>>().len() {
                return Err(AppError::not_found("delivery"));
            }
            let positions: Vec<i64> = found.iter().map(|d| d.event_pos).collect();
            webhook_event::at_positions(db, app_id, &positions).await?
        };
        // Only what was dispatched already: later events come by themselves.
        let new: Vec<NewDelivery> = events
            .iter()
            .filter(|e| e.pos <= endpoint.dispatched_pos && endpoint.wants(&e.kind))
            .map(|e| NewDelivery {
                endpoint_id: id,
                event_pos: e.pos,
                conversation_id: e.conversation_id,
                replay: true,
            })
            .collect();
        webhook_delivery::insert_many(db, &new, self.ctx.now()).await?;
        tracing::info!(app.id = %app_id, webhook.id = %id, replayed = new.len(), "webhook replay queued");
        Ok(new.len() as u64)
    }

    /// The calling app's events after `after` (a cursor from a previous page; none: from the
    /// first), oldest first: what its webhooks receive, for catching up.
    pub async fn events(
        &self,
        caller: &Caller,
        after: Option<String>,
        limit: Option<u64>,
    ) -> AppResult<Page<EventView>> {
        let app_id = Self::app_of(caller, Scope::MessagesRead)?;
        let limit = super::users::page_limit(limit, 100, 1000)?;
        let after = parse_cursor("after", after.as_deref())?.unwrap_or(0);
        let mut rows = webhook_event::after(&self.ctx.db, app_id, after, limit + 1).await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        // The cursor of the last item, even on the last page: the next call continues there.
        let next_cursor = rows.last().map(|e| e.pos.to_string()).or_else(|| Some(after.to_string()));
        let items = rows.iter().map(event_view).collect();
        Ok(Page { items, next_cursor, has_more })
    }

    // ---- the worker ----

    async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut gauges_at = tokio::time::Instant::now();
        while next_tick(&mut tick, &stop).await {
            if gauges_at.elapsed() >= GAUGE_EVERY {
                gauges_at = tokio::time::Instant::now();
                self.refresh_gauges().await;
            }
            match self.dispatch().await {
                Ok(0) => continue,
                Ok(_) => {}
                Err(e) => {
                    log_round_error("dispatch", &e);
                    continue;
                }
            }
            // Deliver while there is work: a conversation's next event waits for the one
            // before it, so each round frees the next.
            loop {
                match self.deliver_due().await {
                    Ok(0) => break,
                    Ok(_) if stop.is_cancelled() => break,
                    Ok(_) => {}
                    Err(e) => {
                        log_round_error("delivery", &e);
                        break;
                    }
                }
            }
        }
    }

    /// Turns new events into deliveries for every enabled endpoint; answers how many there
    /// are (none: nothing to deliver either).
    async fn dispatch(&self) -> AppResult<usize> {
        let endpoints = webhook_endpoint::enabled(&self.ctx.db).await?;
        for endpoint in &endpoints {
            while self.dispatch_one(endpoint.id).await? {}
        }
        Ok(endpoints.len())
    }

    /// One step for one endpoint; true if there may be more.
    async fn dispatch_one(&self, endpoint_id: Uuid) -> AppResult<bool> {
        let txn = self.ctx.db.begin().await?;
        let mut find = webhook_endpoint::Entity::find_by_id(endpoint_id)
            .filter(sea_orm::ColumnTrait::eq(&webhook_endpoint::Column::Enabled, true));
        if self.ctx.db.get_database_backend() == DbBackend::Postgres {
            // Another node is dispatching it: leave it to that one.
            find = find
                .lock_with_behavior(sea_orm::sea_query::LockType::Update, sea_orm::sea_query::LockBehavior::SkipLocked);
        }
        let Some(endpoint) = find.one(&txn).await? else { return Ok(false) };
        let events = webhook_event::after(&txn, endpoint.app_id, endpoint.dispatched_pos, DISPATCH_BATCH).await?;
        let Some(last) = events.last().map(|e| e.pos) else { return Ok(false) };
        let new: Vec<NewDelivery> = events
            .iter()
            .filter(|e| endpoint.wants(&e.kind))
            .map(|e| NewDelivery { endpoint_id, event_pos: e.pos, conversation_id: e.conversation_id, replay: false })
            .collect();
        webhook_delivery::insert_many(&txn, &new, self.ctx.now()).await?;
        webhook_endpoint::set_dispatched(&txn, endpoint_id, last).await?;
        txn.commit().await?;
        m::webhook_events(new.len());
        Ok(events.len() as u64 == DISPATCH_BATCH)
    }

    /// Claims and sends one round of due deliveries; answers how many were sent. Each claimed
    /// head comes with the run of pending deliveries behind it in its (endpoint,
    /// conversation) queue, sent one after the other in one task: order holds, and a busy
    /// conversation costs one claim per run instead of one per event.
    async fn deliver_due(&self) -> AppResult<usize> {
        let now = self.ctx.now();
        let lease = chrono::Duration::from_std(self.settings.timeout * 3 + Duration::from_secs(5))
            .unwrap_or_else(|_| chrono::Duration::seconds(60));
        let heads = webhook_delivery::claim(&self.ctx.db, now, now + lease, CLAIM_BATCH).await?;
        if heads.is_empty() {
            return Ok(0);
        }
        let mut queues = Vec::with_capacity(heads.len());
        for head in heads {
            let mut run = webhook_delivery::claim_run(&self.ctx.db, &head, now, now + lease, RUN_BATCH).await?;
            run.insert(0, head);
            queues.push(run);
        }
        let endpoint_ids: Vec<Uuid> = queues.iter().map(|q| q[0].endpoint_id).collect();
        let endpoints: HashMap<Uuid, webhook_endpoint::Model> = webhook_endpoint::Entity::find()
            .filter(sea_orm::ColumnTrait::is_in(&webhook_endpoint::Column::Id, endpoint_ids))
            .all(&self.ctx.db)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let positions: Vec<i64> = queues.iter().flatten().map(|d| d.event_pos).collect();
        let events: HashMap<i64, webhook_event::Model> = webhook_event::Entity::find()
            .filter(sea_orm::ColumnTrait::is_in(&webhook_event::Column::Pos, positions))
            .all(&self.ctx.db)
            .await?
            .into_iter()
            .map(|e| (e.pos, e))
            .collect();
        let n = queues.iter().map(Vec::len).sum();
        futures_util::stream::iter(queues)
            .for_each_concurrent(SEND_CONCURRENCY, |queue| {
                let endpoint = endpoints.get(&queue[0].endpoint_id);
                let events = &events;
                async move {
                    let Some(endpoint) = endpoint else { return };
                    let mut rest = queue.into_iter();
                    while let Some(delivery) = rest.next() {
                        let Some(event) = events.get(&delivery.event_pos) else { break };
                        match self.send(delivery, endpoint, event).await {
                            Ok(true) => continue,
                            Ok(false) => {}
                            Err(e) => tracing::warn!(
                                error = %e,
                                "could not record a webhook attempt; its lease will run out and it is retried"
                            ),
                        }
                        // The one before them did not get through: the rest wait behind it.
                        let untried: Vec<i64> = rest.map(|d| d.pos).collect();
                        if let Err(e) = webhook_delivery::release(&self.ctx.db, &untried).await {
                            tracing::warn!(error = %e, "could not release webhook deliveries; their lease runs out");
                        }
                        break;
                    }
                }
            })
            .await;
        Ok(n)
    }

    /// One attempt of `delivery`, recorded; true if it was delivered.
    async fn send(
        &self,
        delivery: webhook_delivery::Model,
        endpoint: &webhook_endpoint::Model,
        event: &webhook_event::Model,
    ) -> AppResult<bool> {
        let (outcome, took) = deliver::attempt(&self.client, &self.allowed, endpoint, event, self.ctx.now()).await;
        let now = self.ctx.now();
        let db = &self.ctx.db;
        webhook_attempt::insert(
            db,
            webhook_attempt::ActiveModel {
                id: Set(Uuid::now_v7()),
                delivery_id: Set(delivery.id),
                endpoint_id: Set(endpoint.id),
                attempted_at: Set(now),
                status: Set(outcome.status),
                latency_ms: Set(outcome.latency_ms),
                error: Set(outcome.error.clone()),
                response_excerpt: Set(outcome.excerpt.clone()),
            },
        )
        .await?;
        let status = outcome.status.unwrap_or(0);
        let span = tracing::info_span!("webhook", webhook.id = %endpoint.id, event.id = %event.id, status, attempt = delivery.attempts + 1);
        let _entered = span.enter();
        if (200..300).contains(&status) {
            webhook_delivery::delivered(db, delivery.pos, &outcome, now).await?;
            webhook_endpoint::record_success(db, endpoint.id).await?;
            m::webhook_attempt("delivered", took);
            m::webhook_delivered(event.created_at);
            return Ok(true);
        }
        let failures = delivery.attempts + 1;
        let next = now
            + chrono::Duration::from_std(deliver::backoff(failures, self.settings.backoff_max))
                .unwrap_or_else(|_| chrono::Duration::hours(1));
        webhook_delivery::failed(db, delivery.pos, &outcome, next).await?;
        if status == 410 {
            m::webhook_attempt("gone", took);
            if webhook_endpoint::disable(db, endpoint.id, "the endpoint answered 410 Gone", now).await? {
                tracing::warn!("webhook endpoint disabled: it answered 410 Gone");
            }
            return Ok(false);
        }
        m::webhook_attempt("failed", took);
        tracing::info!(error = outcome.error.as_deref().unwrap_or(""), "webhook attempt failed; retrying");
        let Some(now_endpoint) = webhook_endpoint::record_failure(db, endpoint.id, now).await? else {
            return Ok(false);
        };
        let window =
            chrono::Duration::from_std(self.settings.retry_window).unwrap_or_else(|_| chrono::Duration::days(3));
        let too_long = now_endpoint.failing_since.is_some_and(|since| now - since >= window);
        let too_many = self.settings.max_failures > 0
            && i64::from(now_endpoint.consecutive_failures) >= i64::from(self.settings.max_failures);
        if too_long || too_many {
            let reason = if too_long {
                format!("failing for longer than the retry window ({} s)", self.settings.retry_window.as_secs())
            } else {
                format!("{} attempts in a row failed", now_endpoint.consecutive_failures)
            };
            if webhook_endpoint::disable(db, endpoint.id, &reason, now).await? {
                tracing::warn!(reason, "webhook endpoint disabled");
            }
        }
        Ok(false)
    }

    async fn refresh_gauges(&self) {
        let db = &self.ctx.db;
        let (Ok(endpoints), Ok(oldest)) =
            (webhook_endpoint::all_live(db).await, webhook_delivery::oldest_pending(db).await)
        else {
            return;
        };
        let enabled = endpoints.iter().filter(|e| e.enabled).count();
        let lag = oldest.map(|at| (Utc::now() - at).to_std().unwrap_or_default()).unwrap_or_default();
        m::webhook_backlog(lag, enabled, endpoints.len() - enabled);
    }

    /// Every endpoint with its app and recent figures, for the admin console (admins only).
    pub async fn overview(&self, caller: &Caller) -> AppResult<Vec<EndpointFigures>> {
        if !caller.is_admin {
            return Err(AppError::Forbidden("only admins see every app's webhooks".into()));
        }
        let db = &self.ctx.db;
        let names: HashMap<Uuid, String> =
            crate::storage::app::Entity::find().all(db).await?.into_iter().map(|a| (a.id, a.name)).collect();
        let since = self.ctx.now() - chrono::Duration::hours(24);
        let mut out = Vec::new();
        for endpoint in webhook_endpoint::all_live(db).await? {
            let (attempts, ok) = webhook_attempt::counts_since(db, endpoint.id, since).await?;
            let pending = webhook_delivery::Entity::find()
                .filter(sea_orm::ColumnTrait::eq(&webhook_delivery::Column::EndpointId, endpoint.id))
                .filter(sea_orm::ColumnTrait::eq(&webhook_delivery::Column::State, webhook_delivery::PENDING))
                .select_only()
                .column(webhook_delivery::Column::CreatedAt)
                .into_tuple::<DateTime<Utc>>()
                .all(db)
                .await?;
            let oldest = pending.iter().min().copied();
            let recent_failures = webhook_attempt::recent_failures(db, endpoint.id, 5)
                .await?
                .into_iter()
                .map(|a| {
                    let why = match (a.status, a.error) {
                        (Some(status), _) => format!("answered {status}"),
                        (None, Some(error)) => error,
                        (None, None) => "failed".into(),
                    };
                    (a.attempted_at, why)
                })
                .collect();
            out.push(EndpointFigures {
                app_name: names.get(&endpoint.app_id).cloned().unwrap_or_default(),
                recent_failures,
                app_id: endpoint.app_id,
                pending: pending.len() as u64,
                oldest_pending: oldest,
                attempts_24h: attempts,
                succeeded_24h: ok,
                endpoint: EndpointView::from_model(endpoint),
            });
        }
        Ok(out)
    }
}

/// An endpoint as the console shows it.
#[derive(Clone, Debug)]
pub struct EndpointFigures {
    pub app_id: Uuid,
    pub app_name: String,
    /// The latest failed attempts, newest first: when, and why.
    pub recent_failures: Vec<(DateTime<Utc>, String)>,
    pub endpoint: EndpointView,
    pub pending: u64,
    pub oldest_pending: Option<DateTime<Utc>>,
    pub attempts_24h: u64,
    pub succeeded_24h: u64,
}

/// A failed worker round: expected while the database is down (the database watcher says
/// so once), worth a warning otherwise. The round is retried at the next tick.
fn log_round_error(round: &str, e: &AppError) {
    match e {
        AppError::Unavailable(_) => tracing::debug!(error = %e, round, "webhook round skipped: database unavailable"),
        _ => tracing::warn!(error = %e, round, "webhook round failed; retrying"),
    }
}

fn parse_cursor(field: &'static str, cursor: Option<&str>) -> AppResult<Option<i64>> {
    match cursor {
        None => Ok(None),
        Some(c) => match c.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Some(n)),
            _ => Err(AppError::bad_input(field, format!("{field} must be a cursor from a previous page"))),
        },
    }
}

fn event_view(event: &webhook_event::Model) -> EventView {
    let body = payload::render(event);
    EventView {
        id: event.id,
        kind: event.kind.clone(),
        timestamp: body.get("timestamp").and_then(|t| t.as_str()).unwrap_or_default().to_owned(),
        data: body.get("data").cloned().unwrap_or_default(),
    }
}
