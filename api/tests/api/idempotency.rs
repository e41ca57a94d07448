//! `Idempotency-Key` on REST POSTs, as a client retrying over a flaky network sees it: a
//! repeat gets the first answer and stores nothing twice, another request under the same key
//! is refused, keys are per caller, answers are replayed across nodes, and expire.

use serde_json::{Value, json};

use crate::helpers::{TestApp, count, on_both_backends};

async fn post(app: &TestApp, path: &str, token: &str, key: Option<&str>, body: Value) -> (u16, Option<String>, Value) {
    let mut req = app.client.post(app.url(&format!("/api/v1{path}"))).bearer_auth(token).json(&body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.expect("post");
    let status = resp.status().as_u16();
    let replayed = resp.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, replayed, resp.json().await.unwrap_or(Value::Null))
}

async fn a_retried_post_gets_the_first_answer_and_stores_nothing_twice(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let room = app.conversation(&ann, &[&ben], None).await;
    let path = format!("/conversations/{room}/messages");
    let (s1, r1, first) = post(&app, &path, &ann.token, Some("send-1"), json!({"body": "exactly once"})).await;
    let (s2, r2, again) = post(&app, &path, &ann.token, Some("send-1"), json!({"body": "exactly once"})).await;
    assert_eq!((s1, r1.as_deref()), (200, Some("false")));
    assert_eq!((s2, r2.as_deref()), (200, Some("true")), "the repeat is a replay");
    assert_eq!(again, first, "the same body, the same message id and seq");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM messages").await, 1);

    // The same key with another request changes nothing.
    let (status, _, problem) = post(&app, &path, &ann.token, Some("send-1"), json!({"body": "something else"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("CONFLICT")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("different request"));
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM messages").await, 1);

    // Keys are per caller: ben's "send-1" is his own.
    let (status, replayed, bens) = post(&app, &path, &ben.token, Some("send-1"), json!({"body": "exactly once"})).await;
    assert_eq!((status, replayed.as_deref()), (200, Some("false")));
    assert_ne!(bens["id"], first["id"]);

    // A refused request is replayed too (it would be refused again), bad keys are 400, and
    // a POST without a key behaves as always.
    let (s1, _, p1) = post(&app, &path, &ann.token, Some("empty"), json!({"body": ""})).await;
    let (s2, r2, p2) = post(&app, &path, &ann.token, Some("empty"), json!({"body": ""})).await;
    assert_eq!((s1, s2, r2.as_deref()), (400, 400, Some("true")));
    assert_eq!(p1, p2);
    for bad in ["k".repeat(256), "has space".to_owned()] {
        let (status, _, problem) = post(&app, &path, &ann.token, Some(&bad), json!({"body": "x"})).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some("Idempotency-Key")), "{problem}");
    }
    let (status, replayed, _) = post(&app, &path, &ann.token, None, json!({"body": "no key"})).await;
    assert_eq!((status, replayed), (200, None));
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM messages").await, 3);
    let metrics = app.metrics().await;
    let replays =
        syncchat_test_support::metric_sum(&metrics, "syncchat_idempotent_requests_total", &["outcome=\"replayed\""]);
    assert!(replays >= 2.0, "{replays}");
}

async fn a_key_expires_after_its_lifetime(app: TestApp) {
    let ann = app.register("ann").await;
    let (s1, _, first) =
        post(&app, "/conversations", &ann.token, Some("group-1"), json!({"participantIds": [], "title": "a"})).await;
    assert_eq!(s1, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let (s2, replayed, second) =
        post(&app, "/conversations", &ann.token, Some("group-1"), json!({"participantIds": [], "title": "a"})).await;
    assert_eq!((s2, replayed.as_deref()), (200, Some("false")), "after its lifetime the key runs again");
    assert_ne!(first["id"], second["id"]);
}

on_both_backends!(a_retried_post_gets_the_first_answer_and_stores_nothing_twice);
mod expiry {
    use super::*;
    on_both_backends!(with ["--idempotency-ttl-secs", "1"]; a_key_expires_after_its_lifetime);
}

/// Two nodes on one Postgres: a retry that lands on the other node gets the first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_on_another_node_gets_the_first_answer() {
    let Some(nodes) = crate::helpers::spawn_cluster(2, &[]).await else { return };
    let ann = nodes[0].register("ann").await;
    let room = nodes[0].conversation(&ann, &[], Some("notes")).await;
    let path = format!("/conversations/{room}/messages");
    let (s1, _, first) = post(&nodes[0], &path, &ann.token, Some("x-1"), json!({"body": "once"})).await;
    let (s2, replayed, again) = post(&nodes[1], &path, &ann.token, Some("x-1"), json!({"body": "once"})).await;
    assert_eq!((s1, s2, replayed.as_deref()), (200, 200, Some("true")));
    assert_eq!(first, again);
    assert_eq!(count(&nodes[1], "SELECT COUNT(*) AS n FROM messages").await, 1);
}
