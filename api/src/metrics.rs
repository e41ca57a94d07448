//! Every metric SyncChat exports, in one place: names (`syncchat_` prefix, base units),
//! help text, label sets (bounded: route templates, operation kinds, never ids) and buckets.
//!
//! Buckets sit around the targets of the scaling guide: delivery < 100 ms, API < 200 ms,
//! DB < 50 ms, so each target is a bucket edge and `histogram_quantile` is exact there.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "syncchat_http_requests_total";
pub const HTTP_DURATION: &str = "syncchat_http_request_duration_seconds";
pub const GRAPHQL_OPERATIONS: &str = "syncchat_graphql_operations_total";
pub const GRAPHQL_DURATION: &str = "syncchat_graphql_operation_duration_seconds";
pub const DB_QUERY_DURATION: &str = "syncchat_db_query_duration_seconds";
pub const DB_POOL_CONNECTIONS: &str = "syncchat_db_pool_connections";
pub const MESSAGES: &str = "syncchat_messages_total";
pub const RENDER_CACHE: &str = "syncchat_render_cache_total";
pub const SEND_BATCH_SIZE: &str = "syncchat_send_batch_size";
pub const REGISTRATIONS: &str = "syncchat_registrations_total";
pub const LOGINS: &str = "syncchat_logins_total";
pub const CONVERSATIONS_CREATED: &str = "syncchat_conversations_created_total";
pub const CONVERSATIONS_RENAMED: &str = "syncchat_conversations_renamed_total";
pub const SETTINGS_CHANGED: &str = "syncchat_settings_changed_total";
pub const REACTIONS: &str = "syncchat_reactions_total";
pub const PINS: &str = "syncchat_pins_total";
pub const MENTIONS: &str = "syncchat_mentions_total";
pub const SEARCHES: &str = "syncchat_searches_total";
pub const SEARCH_DURATION: &str = "syncchat_search_duration_seconds";
pub const BLOCKS: &str = "syncchat_blocks_total";
pub const RATE_LIMITED: &str = "syncchat_rate_limited_total";
pub const EVENTS_PUBLISHED: &str = "syncchat_events_published_total";
pub const BUILD_INFO: &str = "syncchat_build_info";
pub const WS_CONNECTIONS: &str = "syncchat_websocket_connections";
pub const SUBSCRIPTIONS: &str = "syncchat_subscriptions";
pub const DELIVERY_LATENCY: &str = "syncchat_delivery_latency_seconds";
pub const DELIVERIES: &str = "syncchat_deliveries_total";
pub const DROPPED_EVENTS: &str = "syncchat_dropped_events_total";
pub const WS_CLOSED: &str = "syncchat_websocket_closed_total";
pub const ONLINE_USERS: &str = "syncchat_online_users";
pub const ACTIVE_USERS: &str = "syncchat_active_users";
pub const RETENTION: &str = "syncchat_retention_ratio";
pub const ADMIN_ACTIONS: &str = "syncchat_admin_actions_total";
pub const FILE_UPLOADS: &str = "syncchat_file_uploads_total";
pub const FILE_UPLOAD_BYTES: &str = "syncchat_file_upload_bytes_total";
pub const FILE_UPLOAD_DURATION: &str = "syncchat_file_upload_duration_seconds";
pub const FILE_REJECTIONS: &str = "syncchat_file_rejections_total";
pub const FILE_STORAGE_DURATION: &str = "syncchat_file_storage_duration_seconds";
pub const FILE_STORAGE_ERRORS: &str = "syncchat_file_storage_errors_total";
pub const FILE_DOWNLOADS: &str = "syncchat_file_downloads_total";
pub const FILES_COLLECTED: &str = "syncchat_files_collected_total";
pub const BUS_HEALS: &str = "syncchat_bus_heals_total";
pub const BUS_HEALED_MESSAGES: &str = "syncchat_bus_healed_messages_total";
pub const BUS_HEAL_DURATION: &str = "syncchat_bus_heal_duration_seconds";
pub const WS_ADMISSIONS: &str = "syncchat_websocket_admissions_total";
pub const DB_UP: &str = "syncchat_db_up";
pub const REQUESTS_UNAVAILABLE: &str = "syncchat_requests_unavailable_total";
pub const APP_REQUESTS: &str = "syncchat_app_requests_total";
pub const IDEMPOTENT_REQUESTS: &str = "syncchat_idempotent_requests_total";
pub const WEBHOOK_EVENTS: &str = "syncchat_webhook_events_total";
pub const WEBHOOK_DELIVERIES: &str = "syncchat_webhook_deliveries_total";
pub const WEBHOOK_ATTEMPT_DURATION: &str = "syncchat_webhook_attempt_duration_seconds";
pub const WEBHOOK_DELIVERY_LATENCY: &str = "syncchat_webhook_delivery_latency_seconds";
pub const WEBHOOK_OUTBOX_LAG: &str = "syncchat_webhook_outbox_lag_seconds";
pub const WEBHOOK_ENDPOINTS: &str = "syncchat_webhook_endpoints";

/// Request-scale latencies: 1 ms .. 10 s, with 50/100/200 ms as edges.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Database latencies: 100 µs .. 5 s, with 50 ms as an edge.
const DB_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static INSTALLING: Mutex<()> = Mutex::new(());

/// Installs the process-wide recorder once (tests build many apps in one process) and
/// describes every metric. Returns the handle that renders `/metrics`.
pub fn install(node_id: &str) -> anyhow::Result<PrometheusHandle> {
    let _guard = INSTALLING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .add_global_label("node", node_id)
        .set_buckets_for_metric(Matcher::Full(DB_QUERY_DURATION.into()), DB_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(SEND_BATCH_SIZE.into()), &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])?
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .install_recorder()?;
    let handle = HANDLE.get_or_init(|| handle).clone();
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    zero_series();
    Ok(handle)
}

/// Creates the labelled counters an operator expects to see before anything has happened,
/// so dashboards and alerts show 0 instead of "no data".
fn zero_series() {
    for kind in ["sent", "edited", "deleted"] {
        counter!(MESSAGES, "kind" => kind).absolute(0);
    }
    for kind in ["direct", "group"] {
        counter!(CONVERSATIONS_CREATED, "kind" => kind).absolute(0);
    }
    counter!(CONVERSATIONS_RENAMED).absolute(0);
    for action in ["added", "removed"] {
        counter!(REACTIONS, "action" => action).absolute(0);
    }
    for action in ["pinned", "unpinned"] {
        counter!(PINS, "action" => action).absolute(0);
    }
    for kind in ["user", "here", "all"] {
        counter!(MENTIONS, "kind" => kind).absolute(0);
    }
    for outcome in ["hits", "none", "refused"] {
        counter!(SEARCHES, "outcome" => outcome).absolute(0);
    }
    for action in ["blocked", "unblocked"] {
        counter!(BLOCKS, "action" => action).absolute(0);
    }
    for value in ["public", "private"] {
        counter!(SETTINGS_CHANGED, "setting" => "read_receipts", "value" => value).absolute(0);
    }
    counter!(REGISTRATIONS).absolute(0);
    for outcome in ["ok", "invalid", "disabled"] {
        counter!(LOGINS, "outcome" => outcome).absolute(0);
    }
    for reason in ["lagged", "slow_consumer", "bus_unavailable", "bus_queue_full"] {
        counter!(DROPPED_EVENTS, "reason" => reason).absolute(0);
    }
    for trigger in ["reconnect", "periodic", "bus_down"] {
        counter!(BUS_HEALS, "trigger" => trigger).absolute(0);
    }
    counter!(BUS_HEALED_MESSAGES).absolute(0);
    for outcome in ["admitted", "refused"] {
        counter!(WS_ADMISSIONS, "outcome" => outcome).absolute(0);
    }
    gauge!(syncchat_realtime::BUS_CONNECTED).set(1.0);
    gauge!(syncchat_realtime::BUS_QUEUE).set(0.0);
    counter!(DELIVERIES).absolute(0);
    for result in ["hit", "miss"] {
        counter!(RENDER_CACHE, "result" => result).absolute(0);
    }
    counter!(syncchat_realtime::REDIS_ERRORS, "command" => "publish").absolute(0);
    for reason in ["slow_consumer", "unauthorized", "forbidden", "admission", "too_many_connections"] {
        counter!(WS_CLOSED, "reason" => reason).absolute(0);
    }
    gauge!(WS_CONNECTIONS).increment(0.0);
    gauge!(SUBSCRIPTIONS).increment(0.0);
    gauge!(ONLINE_USERS).increment(0.0);
    for via in ["multipart", "upload_url"] {
        counter!(FILE_UPLOADS, "via" => via).absolute(0);
    }
    counter!(FILE_UPLOAD_BYTES).absolute(0);
    for reason in ["too_large", "type_not_allowed", "bad_request"] {
        counter!(FILE_REJECTIONS, "reason" => reason).absolute(0);
    }
    for op in ["put", "get", "delete"] {
        counter!(FILE_STORAGE_ERRORS, "op" => op).absolute(0);
    }
    for outcome in ["full", "partial", "not_modified", "redirect"] {
        counter!(FILE_DOWNLOADS, "outcome" => outcome).absolute(0);
    }
    for reason in ["orphan", "deleted_message"] {
        counter!(FILES_COLLECTED, "reason" => reason).absolute(0);
    }
    for action in ["user.disable", "user.enable", "message.delete"] {
        counter!(ADMIN_ACTIONS, "action" => action).absolute(0);
    }
    for surface in ["rest", "graphql"] {
        counter!(REQUESTS_UNAVAILABLE, "surface" => surface).absolute(0);
    }
    counter!(WEBHOOK_EVENTS).absolute(0);
    for outcome in ["stored", "replayed", "conflict", "in_progress"] {
        counter!(IDEMPOTENT_REQUESTS, "outcome" => outcome).absolute(0);
    }
    for outcome in WEBHOOK_OUTCOMES {
        counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).absolute(0);
    }
    gauge!(WEBHOOK_OUTBOX_LAG).set(0.0);
    for state in ["enabled", "disabled"] {
        gauge!(WEBHOOK_ENDPOINTS, "state" => state).set(0.0);
    }
}

/// The outcomes of a webhook attempt: `delivered` (2xx), `failed` (another answer, a timeout,
/// no connection: retried), `gone` (410: the endpoint is disabled).
pub const WEBHOOK_OUTCOMES: [&str; 3] = ["delivered", "failed", "gone"];

fn describe() {
    describe_counter!(HTTP_REQUESTS, Unit::Count, "HTTP requests by route template, method and status class.");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request duration by route template and method.");
    describe_counter!(GRAPHQL_OPERATIONS, Unit::Count, "GraphQL operations by type, operation name and outcome.");
    describe_histogram!(GRAPHQL_DURATION, Unit::Seconds, "GraphQL operation duration by type and operation name.");
    describe_histogram!(DB_QUERY_DURATION, Unit::Seconds, "Database statement duration by operation and outcome.");
    describe_gauge!(DB_POOL_CONNECTIONS, Unit::Count, "Database pool connections by state (idle, in_use, max).");
    describe_counter!(MESSAGES, Unit::Count, "Chat messages by kind: sent, edited, deleted.");
    describe_counter!(REGISTRATIONS, Unit::Count, "Users registered.");
    describe_counter!(LOGINS, Unit::Count, "Login attempts by outcome.");
    describe_counter!(CONVERSATIONS_CREATED, Unit::Count, "Conversations created by kind.");
    describe_counter!(CONVERSATIONS_RENAMED, Unit::Count, "Group conversations renamed.");
    describe_counter!(SETTINGS_CHANGED, Unit::Count, "User settings changed, by setting and new value.");
    describe_counter!(REACTIONS, Unit::Count, "Reactions added and removed.");
    describe_counter!(PINS, Unit::Count, "Messages pinned and unpinned.");
    describe_counter!(
        MENTIONS,
        Unit::Count,
        "Mentions in sent messages, by kind (user, here, all); edits are not counted again."
    );
    describe_counter!(BLOCKS, Unit::Count, "Users blocked and unblocked.");
    describe_counter!(SEARCHES, Unit::Count, "Message searches by outcome (hits, none, refused).");
    describe_histogram!(SEARCH_DURATION, Unit::Seconds, "Message search duration, query to page of hits.");
    describe_counter!(RATE_LIMITED, Unit::Count, "Requests refused by a rate limit, by limit.");
    describe_counter!(EVENTS_PUBLISHED, Unit::Count, "Committed events published to the event bus, by kind.");
    describe_gauge!(BUILD_INFO, Unit::Count, "Always 1; labels carry the version and node.");
    describe_gauge!(WS_CONNECTIONS, Unit::Count, "Open, authenticated WebSocket connections on this node.");
    describe_gauge!(SUBSCRIPTIONS, Unit::Count, "Active GraphQL subscriptions on this node.");
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "Commit of a message to its hand-over to a subscriber's socket queue."
    );
    describe_counter!(DELIVERIES, Unit::Count, "Messages delivered to subscribers.");
    describe_histogram!(SEND_BATCH_SIZE, Unit::Count, "Sends stored by one statement (group commit, Postgres).");
    describe_counter!(
        RENDER_CACHE,
        Unit::Count,
        "Subscription items rendered once per shape: hit = JSON reused, miss = rendered."
    );
    describe_counter!(
        DROPPED_EVENTS,
        Unit::Count,
        "Events dropped for slow subscribers, by reason; those subscribers resume by seq."
    );
    describe_counter!(WS_CLOSED, Unit::Count, "WebSocket connections closed by the server, by reason.");
    describe_counter!(
        WS_ADMISSIONS,
        Unit::Count,
        "New WebSocket connections by admission outcome; refused ones were closed 1013 to retry later."
    );
    describe_gauge!(
        syncchat_realtime::BUS_CONNECTED,
        Unit::Count,
        "1 while this node's Redis pub/sub connection delivers, 0 while it is down (always 1 in process)."
    );
    describe_gauge!(syncchat_realtime::BUS_QUEUE, Unit::Count, "Events waiting on this node to be published to Redis.");
    describe_counter!(
        BUS_HEALS,
        Unit::Count,
        "Healer passes (catch-up of live subscribers from storage) by trigger: reconnect, periodic, bus_down."
    );
    describe_counter!(
        BUS_HEALED_MESSAGES,
        Unit::Count,
        "Committed messages the bus between nodes lost, dispatched from storage by the healer."
    );
    describe_histogram!(BUS_HEAL_DURATION, Unit::Seconds, "Duration of one healer pass.");
    describe_gauge!(ONLINE_USERS, Unit::Count, "Users with at least one live connection (cluster-wide with Redis).");
    describe_gauge!(
        ACTIVE_USERS,
        Unit::Count,
        "Users who sent a message or were connected, cluster-wide from the database, by window (day, month)."
    );
    describe_gauge!(
        RETENTION,
        Unit::Count,
        "Share (0-1) of users registered 14-7 days ago who were active in the last 7 days."
    );
    describe_counter!(FILE_UPLOADS, Unit::Count, "Files stored, by how they came (multipart, upload_url).");
    describe_counter!(FILE_UPLOAD_BYTES, Unit::Bytes, "Bytes of files stored.");
    describe_histogram!(FILE_UPLOAD_DURATION, Unit::Seconds, "Upload duration: first byte read to stored.");
    describe_counter!(
        FILE_REJECTIONS,
        Unit::Count,
        "Uploads refused, by reason (too_large, type_not_allowed, empty, bad_request)."
    );
    describe_histogram!(FILE_STORAGE_DURATION, Unit::Seconds, "File storage operations (object_store) by operation.");
    describe_counter!(FILE_STORAGE_ERRORS, Unit::Count, "File storage operations that failed, by operation.");
    describe_counter!(
        FILE_DOWNLOADS,
        Unit::Count,
        "File downloads by outcome (full, partial, not_modified, redirect)."
    );
    describe_counter!(
        FILES_COLLECTED,
        Unit::Count,
        "Attachments deleted by the collector, by reason (orphan, deleted_message)."
    );
    describe_counter!(ADMIN_ACTIONS, Unit::Count, "Moderation actions taken in the admin console, by action.");
    describe_histogram!(syncchat_realtime::REDIS_DURATION, Unit::Seconds, "Redis command duration by command.");
    describe_counter!(syncchat_realtime::REDIS_ERRORS, Unit::Count, "Redis commands that failed, by command.");
    describe_gauge!(DB_UP, Unit::Count, "1 while the database is reachable, 0 while it is known down.");
    describe_counter!(
        REQUESTS_UNAVAILABLE,
        Unit::Count,
        "Requests answered UNAVAILABLE (503, retry later), by surface (rest, graphql)."
    );
    describe_counter!(
        IDEMPOTENT_REQUESTS,
        Unit::Count,
        "REST POSTs with an Idempotency-Key by outcome: stored, replayed, conflict, in_progress."
    );
    describe_counter!(
        APP_REQUESTS,
        Unit::Count,
        "Calls made with an app's API key, by app (its name; at most 50 apps, then other)."
    );
    describe_counter!(
        WEBHOOK_EVENTS,
        Unit::Count,
        "Webhook events turned into deliveries on this node (one per endpoint that wants the event)."
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        Unit::Count,
        "Webhook attempts by outcome: delivered (2xx), failed (retried), gone (410, endpoint disabled)."
    );
    describe_histogram!(WEBHOOK_ATTEMPT_DURATION, Unit::Seconds, "One webhook attempt, request sent to answer read.");
    describe_histogram!(
        WEBHOOK_DELIVERY_LATENCY,
        Unit::Seconds,
        "Commit of a change to its webhook's acknowledgement (2xx), retries included."
    );
    describe_gauge!(
        WEBHOOK_OUTBOX_LAG,
        Unit::Seconds,
        "Age of the oldest undelivered webhook delivery of an enabled endpoint (0 when none waits)."
    );
    describe_gauge!(WEBHOOK_ENDPOINTS, Unit::Count, "Webhook endpoints by state (enabled, disabled).");
}

pub fn record_http(route: &'static str, method: &str, status: u16, elapsed: Duration) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let method = bounded_method(method);
    counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status_class" => class).increment(1);
    histogram!(HTTP_DURATION, "route" => route, "method" => method).record(elapsed.as_secs_f64());
}

fn bounded_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

pub fn record_graphql(op_type: &'static str, name: String, outcome: &'static str, elapsed: Duration) {
    counter!(GRAPHQL_OPERATIONS, "type" => op_type, "name" => name.clone(), "outcome" => outcome).increment(1);
    histogram!(GRAPHQL_DURATION, "type" => op_type, "name" => name).record(elapsed.as_secs_f64());
}

pub fn record_db_query(operation: &'static str, elapsed: Duration, failed: bool) {
    let outcome = if failed { "error" } else { "ok" };
    histogram!(DB_QUERY_DURATION, "operation" => operation, "outcome" => outcome).record(elapsed.as_secs_f64());
}

pub fn set_db_pool(idle: usize, in_use: usize, max: u32) {
    gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(idle as f64);
    gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(in_use as f64);
    gauge!(DB_POOL_CONNECTIONS, "state" => "max").set(f64::from(max));
}

pub fn message(kind: &'static str) {
    counter!(MESSAGES, "kind" => kind).increment(1);
}

pub fn registration() {
    counter!(REGISTRATIONS).increment(1);
}

pub fn login(outcome: &'static str) {
    counter!(LOGINS, "outcome" => outcome).increment(1);
}

pub fn conversation_created(kind: &'static str) {
    counter!(CONVERSATIONS_CREATED, "kind" => kind).increment(1);
}

pub fn block(action: &'static str) {
    counter!(BLOCKS, "action" => action).increment(1);
}

pub fn pin(action: &'static str) {
    counter!(PINS, "action" => action).increment(1);
}

pub fn search(outcome: &'static str, elapsed: Option<std::time::Duration>) {
    counter!(SEARCHES, "outcome" => outcome).increment(1);
    if let Some(elapsed) = elapsed {
        histogram!(SEARCH_DURATION).record(elapsed.as_secs_f64());
    }
}

pub fn mention(kind: &'static str) {
    counter!(MENTIONS, "kind" => kind).increment(1);
}

pub fn reaction(action: &'static str) {
    counter!(REACTIONS, "action" => action).increment(1);
}

pub fn setting_changed(setting: &'static str, value: &'static str) {
    counter!(SETTINGS_CHANGED, "setting" => setting, "value" => value).increment(1);
}

pub fn conversation_renamed() {
    counter!(CONVERSATIONS_RENAMED).increment(1);
}

pub fn rate_limited(limit: &'static str) {
    counter!(RATE_LIMITED, "limit" => limit).increment(1);
}

pub fn event_published(kind: &'static str) {
    counter!(EVENTS_PUBLISHED, "kind" => kind).increment(1);
}

pub fn ws_connection(delta: f64) {
    gauge!(WS_CONNECTIONS).increment(delta);
}

pub fn subscription(delta: f64) {
    gauge!(SUBSCRIPTIONS).increment(delta);
}

/// A message reached a subscriber; latency counts from its commit.
pub fn delivered(committed_at: chrono::DateTime<chrono::Utc>) {
    let latency = (chrono::Utc::now() - committed_at).to_std().unwrap_or_default();
    histogram!(DELIVERY_LATENCY).record(latency.as_secs_f64());
    counter!(DELIVERIES).increment(1);
}

/// Sends stored by one statement (group commit on Postgres).
pub fn send_batch(size: usize) {
    histogram!(SEND_BATCH_SIZE).record(size as f64);
}

/// A subscription item's JSON reused (`hit`) or made (`miss`) by the render cache.
pub fn render_cache(result: &'static str) {
    counter!(RENDER_CACHE, "result" => result).increment(1);
}

pub fn dropped_events(reason: &'static str, n: u64) {
    counter!(DROPPED_EVENTS, "reason" => reason).increment(n);
}

pub fn ws_closed(reason: &'static str) {
    counter!(WS_CLOSED, "reason" => reason).increment(1);
}

pub fn online_users(n: usize) {
    gauge!(ONLINE_USERS).set(n as f64);
}

pub fn active_users(window: &'static str, n: u64) {
    gauge!(ACTIVE_USERS, "window" => window).set(n as f64);
}

pub fn retention(cohort: &'static str, ratio: f64) {
    gauge!(RETENTION, "cohort" => cohort).set(ratio);
}

pub fn admin_action(action: &'static str) {
    counter!(ADMIN_ACTIONS, "action" => action).increment(1);
}

pub fn file_uploaded(via: &'static str, bytes: u64, elapsed: Duration) {
    counter!(FILE_UPLOADS, "via" => via).increment(1);
    counter!(FILE_UPLOAD_BYTES).increment(bytes);
    histogram!(FILE_UPLOAD_DURATION).record(elapsed.as_secs_f64());
}

pub fn file_rejected(reason: &'static str) {
    counter!(FILE_REJECTIONS, "reason" => reason).increment(1);
}

pub fn file_storage_op(op: &'static str, elapsed: Duration, failed: bool) {
    histogram!(FILE_STORAGE_DURATION, "op" => op).record(elapsed.as_secs_f64());
    if failed {
        file_storage_error(op);
    }
}

pub fn file_storage_error(op: &'static str) {
    counter!(FILE_STORAGE_ERRORS, "op" => op).increment(1);
}

pub fn file_downloaded(outcome: &'static str) {
    counter!(FILE_DOWNLOADS, "outcome" => outcome).increment(1);
}

pub fn files_collected(reason: &'static str, n: u64) {
    counter!(FILES_COLLECTED, "reason" => reason).increment(n);
}

/// One pass of the healer: its trigger, the messages it brought back, and how long it took.
pub fn bus_heal(trigger: &'static str, messages: u64, took: Duration) {
    counter!(BUS_HEALS, "trigger" => trigger).increment(1);
    counter!(BUS_HEALED_MESSAGES).increment(messages);
    histogram!(BUS_HEAL_DURATION).record(took.as_secs_f64());
}

/// A new WebSocket connection was admitted, or refused by the node's admission limit.
pub fn ws_admission(admitted: bool) {
    counter!(WS_ADMISSIONS, "outcome" => if admitted { "admitted" } else { "refused" }).increment(1);
}

pub fn db_up(up: bool) {
    gauge!(DB_UP).set(if up { 1.0 } else { 0.0 });
}

pub fn request_unavailable(surface: &'static str) {
    counter!(REQUESTS_UNAVAILABLE, "surface" => surface).increment(1);
}

pub fn webhook_events(n: usize) {
    counter!(WEBHOOK_EVENTS).increment(n as u64);
}

pub fn webhook_attempt(outcome: &'static str, took: Duration) {
    counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
    histogram!(WEBHOOK_ATTEMPT_DURATION).record(took.as_secs_f64());
}

pub fn webhook_delivered(committed_at: chrono::DateTime<chrono::Utc>) {
    let age = (chrono::Utc::now() - committed_at).to_std().unwrap_or_default();
    histogram!(WEBHOOK_DELIVERY_LATENCY).record(age.as_secs_f64());
}

pub fn webhook_backlog(lag: Duration, enabled: usize, disabled: usize) {
    gauge!(WEBHOOK_OUTBOX_LAG).set(lag.as_secs_f64());
    gauge!(WEBHOOK_ENDPOINTS, "state" => "enabled").set(enabled as f64);
    gauge!(WEBHOOK_ENDPOINTS, "state" => "disabled").set(disabled as f64);
}

/// Most distinct `app` label values; later apps count as `other`.
const MAX_APP_LABELS: usize = 50;
static APP_LABELS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The `app` label for an app named `name`: its name in `[a-z0-9_]` (at most 40 characters),
/// for the first 50 names seen; `other` beyond, so the label stays bounded.
pub fn app_label(name: &str) -> String {
    let clean: String =
        name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(40).collect();
    let mut seen = APP_LABELS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if seen.contains(&clean) {
        return clean;
    }
    if seen.len() < MAX_APP_LABELS {
        seen.push(clean.clone());
        return clean;
    }
    "other".into()
}

pub fn app_request(label: &str) {
    counter!(APP_REQUESTS, "app" => label.to_owned()).increment(1);
}

pub fn idempotent_request(outcome: &'static str) {
    counter!(IDEMPOTENT_REQUESTS, "outcome" => outcome).increment(1);
}
