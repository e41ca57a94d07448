#!/usr/bin/env python3
"""Writes the Grafana dashboards in dashboards/ from the panel lists below.

Dashboards are data: edit the lists here and run `python3 grafana/generate.py`; a test in
tests/ checks that every expression parses (promtool), uses only metrics the server exports,
and returns data from a real Prometheus scraping two nodes.
"""
import json
import pathlib

HERE = pathlib.Path(__file__).parent
DS = {"type": "prometheus", "uid": "prometheus"}

def q(p, expr):
    return f"histogram_quantile({p}, sum by (le) (rate({expr}[5m])))"

# (title, kind, expr, unit, thresholds[(value, color)], legend)
OVERVIEW = [
    ("Delivery latency p99 (target < 100 ms)", "stat", q(0.99, "syncchat_delivery_latency_seconds_bucket"), "s", [(0.05, "orange"), (0.1, "red")], ""),
    ("API latency p95 (target < 200 ms)", "stat", q(0.95, 'syncchat_http_request_duration_seconds_bucket{route!="/metrics"}'), "s", [(0.1, "orange"), (0.2, "red")], ""),
    ("WebSocket connections (target 10,000+)", "stat", "sum(syncchat_websocket_connections)", "short", [(8000, "orange"), (10000, "red")], ""),
    ("Messages/s (target 1,000+)", "stat", 'sum(rate(syncchat_messages_total{kind="sent"}[5m]))', "short", [(800, "orange"), (1000, "red")], ""),
    ("DB query p99 (target < 50 ms)", "stat", q(0.99, "syncchat_db_query_duration_seconds_bucket"), "s", [(0.025, "orange"), (0.05, "red")], ""),
    ("Error rate (5xx share)", "stat", '(sum(rate(syncchat_http_requests_total{status_class="5xx"}[5m])) or vector(0)) / clamp_min(sum(rate(syncchat_http_requests_total[5m])), 1e-9)', "percentunit", [(0.001, "orange"), (0.01, "red")], ""),
    ("Requests/s by node", "timeseries", "sum by (node) (rate(syncchat_http_requests_total[5m]))", "reqps", [], "{{node}}"),
    ("Connections by node", "timeseries", "sum by (node) (syncchat_websocket_connections)", "short", [], "{{node}}"),
    ("API latency p95 by node", "timeseries", 'histogram_quantile(0.95, sum by (le, node) (rate(syncchat_http_request_duration_seconds_bucket{route!="/metrics"}[5m])))', "s", [], "{{node}}"),
    ("GraphQL operations/s by outcome", "timeseries", "sum by (outcome) (rate(syncchat_graphql_operations_total[5m]))", "ops", [], "{{outcome}}"),
]

REALTIME = [
    ("WebSocket connections", "timeseries", "sum by (node) (syncchat_websocket_connections)", "short", [], "{{node}}"),
    ("Active subscriptions", "timeseries", "sum by (node) (syncchat_subscriptions)", "short", [], "{{node}}"),
    ("Deliveries/s", "timeseries", "sum by (node) (rate(syncchat_deliveries_total[5m]))", "short", [], "{{node}}"),
    ("Delivery latency (commit to socket queue)", "heatmap", "sum by (le) (rate(syncchat_delivery_latency_seconds_bucket[1m]))", "s", [], "{{le}}"),
    ("Delivery latency p50 / p99", "timeseries", q(0.5, "syncchat_delivery_latency_seconds_bucket"), "s", [], "p50"),
    ("Dropped events/s by reason", "timeseries", "sum by (reason) (rate(syncchat_dropped_events_total[5m]))", "short", [], "{{reason}}"),
    ("Server-closed WebSockets/s by reason", "timeseries", "sum by (reason) (rate(syncchat_websocket_closed_total[5m]))", "short", [], "{{reason}}"),
    ("Events published/s by kind", "timeseries", "sum by (kind) (rate(syncchat_events_published_total[5m]))", "short", [], "{{kind}}"),
    ("Online users", "stat", "max(syncchat_online_users)", "short", [], ""),
    ("Redis bus connected (0 = down: nodes poll storage)", "timeseries", "min by (node) (syncchat_bus_connected)", "short", [], "{{node}}"),
    ("Messages healed from storage/s (lost by the bus)", "timeseries", "sum by (node) (rate(syncchat_bus_healed_messages_total[5m]))", "short", [], "{{node}}"),
    ("Healer passes/s by trigger", "timeseries", "sum by (trigger) (rate(syncchat_bus_heals_total[5m]))", "short", [], "{{trigger}}"),
    ("Events waiting for Redis", "timeseries", "sum by (node) (syncchat_bus_publish_queue)", "short", [], "{{node}}"),
    ("New WebSockets/s by admission", "timeseries", "sum by (outcome) (rate(syncchat_websocket_admissions_total[5m]))", "short", [], "{{outcome}}"),
]

STORAGE = [
    ("DB query p99 by operation", "timeseries", 'histogram_quantile(0.99, sum by (le, operation) (rate(syncchat_db_query_duration_seconds_bucket[5m])))', "s", [], "{{operation}}"),
    ("DB queries/s by operation", "timeseries", "sum by (operation) (rate(syncchat_db_query_duration_seconds_count[5m]))", "short", [], "{{operation}}"),
    ("DB errors/s", "timeseries", 'sum(rate(syncchat_db_query_duration_seconds_count{outcome="error"}[5m])) or vector(0)', "short", [], "errors"),
    ("DB pool connections", "timeseries", "sum by (node, state) (syncchat_db_pool_connections)", "short", [], "{{node}} {{state}}"),
    ("Redis command p99", "timeseries", 'histogram_quantile(0.99, sum by (le, command) (rate(syncchat_redis_command_duration_seconds_bucket[5m])))', "s", [], "{{command}}"),
    ("Redis errors/s", "timeseries", "sum by (command) (rate(syncchat_redis_errors_total[5m]))", "short", [], "{{command}}"),
    ("Process resident memory", "timeseries", "sum by (node) (syncchat_process_resident_memory_bytes)", "bytes", [], "{{node}}"),
    ("Process CPU", "timeseries", "sum by (node) (rate(syncchat_process_cpu_seconds_total[5m]))", "percentunit", [], "{{node}}"),
    ("Open file descriptors", "timeseries", "sum by (node) (syncchat_process_open_fds)", "short", [], "{{node}}"),
    ("File uploads/s", "timeseries", "sum by (via) (rate(syncchat_file_uploads_total[5m]))", "short", [], "{{via}}"),
    ("Upload throughput", "timeseries", "sum(rate(syncchat_file_upload_bytes_total[5m]))", "Bps", [], "bytes/s"),
    ("Upload p95", "timeseries", 'histogram_quantile(0.95, sum by (le) (rate(syncchat_file_upload_duration_seconds_bucket[5m])))', "s", [], "p95"),
    ("Uploads refused/s by reason", "timeseries", "sum by (reason) (rate(syncchat_file_rejections_total[5m]))", "short", [], "{{reason}}"),
    ("File downloads/s by outcome", "timeseries", "sum by (outcome) (rate(syncchat_file_downloads_total[5m]))", "short", [], "{{outcome}}"),
    ("File storage errors/s", "timeseries", "sum by (op) (rate(syncchat_file_storage_errors_total[5m]))", "short", [], "{{op}}"),
    ("Files collected per hour", "timeseries", "sum by (reason) (increase(syncchat_files_collected_total[1h]))", "short", [], "{{reason}}"),
]

BUSINESS = [
    ("Daily active users", "stat", 'max(syncchat_active_users{window="day"})', "short", [], ""),
    ("Monthly active users", "stat", 'max(syncchat_active_users{window="month"})', "short", [], ""),
    ("7-day retention", "stat", 'max(syncchat_retention_ratio{cohort="7d"})', "percentunit", [], ""),
    ("Messages per day", "timeseries", 'sum(increase(syncchat_messages_total{kind="sent"}[1d]))', "short", [], "messages"),
    ("Messages/s by kind", "timeseries", "sum by (kind) (rate(syncchat_messages_total[5m]))", "short", [], "{{kind}}"),
    ("Reactions/s", "timeseries", "sum by (action) (rate(syncchat_reactions_total[5m]))", "short", [], "{{action}}"),
    ("Searches/s by outcome", "timeseries", "sum by (outcome) (rate(syncchat_searches_total[5m]))", "short", [], "{{outcome}}"),
    ("Mentions/s by kind", "timeseries", "sum by (kind) (rate(syncchat_mentions_total[5m]))", "short", [], "{{kind}}"),
    ("Pins per day", "timeseries", "sum by (action) (increase(syncchat_pins_total[1d]))", "short", [], "{{action}}"),
    ("Blocks per day", "timeseries", "sum by (action) (increase(syncchat_blocks_total[1d]))", "short", [], "{{action}}"),
    ("Conversations created per day", "timeseries", "sum by (kind) (increase(syncchat_conversations_created_total[1d]))", "short", [], "{{kind}}"),
    ("Groups renamed per day", "timeseries", "sum(increase(syncchat_conversations_renamed_total[1d]))", "short", [], "renamed"),
    ("Read-receipt settings changed per day", "timeseries", 'sum by (value) (increase(syncchat_settings_changed_total{setting="read_receipts"}[1d]))', "short", [], "{{value}}"),
    ("Registrations per day", "timeseries", "sum(increase(syncchat_registrations_total[1d]))", "short", [], "registrations"),
    ("Logins/s by outcome", "timeseries", "sum by (outcome) (rate(syncchat_logins_total[5m]))", "short", [], "{{outcome}}"),
    ("Moderation actions per hour", "timeseries", "sum by (action) (increase(syncchat_admin_actions_total[1h]))", "short", [], "{{action}}"),
]

INTEGRATIONS = [
    ("Webhook outbox lag (oldest undelivered event)", "stat", "max(syncchat_webhook_outbox_lag_seconds)", "s", [(60, "orange"), (600, "red")], ""),
    ("Webhook endpoints disabled", "stat", 'max(syncchat_webhook_endpoints{state="disabled"})', "short", [(1, "orange")], ""),
    ("Webhook endpoints enabled", "stat", 'max(syncchat_webhook_endpoints{state="enabled"})', "short", [], ""),
    ("Webhook attempts/s by outcome", "timeseries", "sum by (outcome) (rate(syncchat_webhook_deliveries_total[5m]))", "short", [], "{{outcome}}"),
    ("Webhook success share", "timeseries", '(sum(rate(syncchat_webhook_deliveries_total{outcome="delivered"}[5m])) or vector(0)) / clamp_min(sum(rate(syncchat_webhook_deliveries_total[5m])), 1e-9)', "percentunit", [], "delivered"),
    ("Webhook events dispatched/s by node", "timeseries", "sum by (node) (rate(syncchat_webhook_events_total[5m]))", "short", [], "{{node}}"),
    ("Webhook outbox lag by node's view", "timeseries", "max by (node) (syncchat_webhook_outbox_lag_seconds)", "s", [], "{{node}}"),
]

def panel(i, title, kind, expr, unit, thresholds, legend):
    width = 4 if kind == "stat" else 12
    per_row = 24 // width
    steps = [{"color": "green", "value": None}] + [{"color": c, "value": v} for v, c in thresholds]
    return {
        "id": i + 1,
        "type": kind,
        "title": title,
        "datasource": DS,
        "gridPos": {"h": 6 if kind == "stat" else 8, "w": width, "x": (i % per_row) * width, "y": (i // per_row) * 8},
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"]}} if kind == "stat" else {},
        "targets": [{"refId": "A", "datasource": DS, "expr": expr, "legendFormat": legend}],
    }

def dashboard(uid, title, panels, description):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["syncchat"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "panels": [panel(i, *p) for i, p in enumerate(panels)],
    }

DASHBOARDS = {
    "overview": ("syncchat-overview", "SyncChat / Service overview", OVERVIEW, "The scaling guide's five targets, error rate, per-node breakdown."),
    "realtime": ("syncchat-realtime", "SyncChat / Real-time", REALTIME, "Connections, subscriptions, deliveries, delivery latency, dropped events."),
    "storage": ("syncchat-storage", "SyncChat / Storage", STORAGE, "Database and Redis latency, pool, process resources."),
    "business": ("syncchat-business", "SyncChat / Business", BUSINESS, "Active users, messages, conversations, registrations, retention."),
    "integrations": ("syncchat-integrations", "SyncChat / Integrations", INTEGRATIONS, "Webhooks: outbox lag, attempts by outcome, disabled endpoints."),
}

if __name__ == "__main__":
    for name, (uid, title, panels, description) in DASHBOARDS.items():
        path = HERE / "dashboards" / f"{name}.json"
        path.write_text(json.dumps(dashboard(uid, title, panels, description), indent=2) + "\n")
        print(f"wrote {path}")
