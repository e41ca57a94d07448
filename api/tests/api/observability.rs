//! What an operator sees: health endpoints, request ids, and `/metrics` moving with use.

use serde_json::json;
use syncchat_test_support::metric_sum;

use crate::helpers::{Backend, spawn_app};

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app(Backend::Sqlite).await.expect("app");
    let health = app.client.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value =
        app.client.get(app.url("/readyz")).send().await.expect("readyz").json().await.expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], "ok");
}

#[tokio::test]
async fn request_ids_are_echoed_or_minted() {
    let app = spawn_app(Backend::Sqlite).await.expect("app");
    let resp = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.expect("req");
    assert_eq!(resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("abc-123"));
    let resp = app.client.get(app.url("/healthz")).send().await.expect("req");
    assert!(resp.headers().get("x-request-id").is_some_and(|v| v.len() >= 32));
}

#[tokio::test]
async fn metrics_count_what_users_do() {
    let app = spawn_app(Backend::Sqlite).await.expect("app");
    let before = app.metrics().await;
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], Some("metrics")).await;
    for i in 0..3 {
        app.send(&ann, &conv, &format!("m{i}")).await;
    }
    app.gql_ok(Some(&ben.token), "{ me { id } }", json!({})).await;
    let after = app.metrics().await;
    let delta = |name: &str, labels: &[&str]| metric_sum(&after, name, labels) - metric_sum(&before, name, labels);
    // Tests share one process-wide recorder, so other tests may add to these: at least ours.
    assert!(delta("syncchat_messages_total", &["kind=\"sent\""]) >= 3.0);
    assert!(delta("syncchat_registrations_total", &[]) >= 2.0);
    assert!(delta("syncchat_conversations_created_total", &["kind=\"group\""]) >= 1.0);
    assert!(
        delta(
            "syncchat_http_requests_total",
            &["route=\"/api/v1/conversations/{id}/messages\"", "status_class=\"2xx\""]
        ) >= 3.0
    );
    assert!(delta("syncchat_graphql_operations_total", &["type=\"query\"", "name=\"me\"", "outcome=\"ok\""]) >= 1.0);
    assert!(after.contains("syncchat_db_query_duration_seconds_bucket"));
    assert!(after.contains("syncchat_build_info"));
    assert!(!after.contains(&conv), "ids never become label values");
}

#[tokio::test]
async fn metrics_can_move_to_their_own_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
    let bind = format!("127.0.0.1:{port}");
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, &["--metrics-bind", &bind]).await.expect("app");
    let main = app.client.get(app.url("/metrics")).send().await.expect("main port");
    assert_eq!(main.status(), 404, "not on the public port");
    let separate = app.client.get(format!("http://{bind}/metrics")).send().await.expect("metrics port");
    assert_eq!(separate.status(), 200);
    assert!(separate.text().await.unwrap_or_default().contains("syncchat_build_info"));
}
