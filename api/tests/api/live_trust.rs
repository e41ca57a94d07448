//! What a live connection may do, and what it is promised: it ends with its session, it is
//! bounded (operations per connection, connections per user, new connections per second),
//! and a committed message reaches every subscriber on every node whatever Redis does.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use syncchat_test_support::{metric_sum, skip_or_fail};

use crate::helpers::{Backend, PASSWORD, TestApp, on_both_backends, spawn_app_with, spawn_cluster_on};
use crate::ws_client::{Received, WsClient};

const MESSAGE_ADDED: &str =
    "subscription($c: UUID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { seq body } }";

/// A second session of an existing user.
async fn login(app: &TestApp, username: &str) -> (String, String) {
    let (status, body) =
        app.rest("POST", "/auth/login", None, Some(json!({"login": username, "password": PASSWORD}))).await;
    assert_eq!(status, 200, "login: {body}");
    (
        body["accessToken"].as_str().expect("token").to_owned(),
        body["refreshToken"].as_str().expect("refresh").to_owned(),
    )
}

/// Reads until the socket closes; the close code (messages before it are skipped).
async fn closed_with(ws: &mut WsClient, within: Duration) -> Option<(u16, String)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match ws.recv_within(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
            Received::Closed(code, reason) => return Some((code, reason)),
            Received::TimedOut => return None,
            Received::Message(_) => {}
        }
    }
}

async fn signing_out_or_a_reused_refresh_token_closes_that_sessions_sockets(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let (laptop_token, laptop_refresh) = login(&app, "ben").await;
    let mut phone = WsClient::signed_in(&app, &ben.token).await;
    phone.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    let mut laptop = WsClient::signed_in(&app, &laptop_token).await;
    laptop.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Signing out the phone's session closes the phone's socket, not the laptop's.
    let (status, _) = app.rest("POST", "/auth/logout", Some(&ben.token), None).await;
    assert!((200..300).contains(&status), "{status}");
    let closed = closed_with(&mut phone, Duration::from_secs(5)).await;
    assert!(matches!(&closed, Some((4401, _))), "the signed-out socket stays open: {closed:?}");
    app.send(&ann, &conv, "after logout").await;
    assert_eq!(laptop.next_data("1").await["messageAdded"]["body"], "after logout");

    // A reused refresh token revokes the laptop's session: its socket closes too.
    let (status, _) = app.rest("POST", "/auth/refresh", None, Some(json!({"refreshToken": laptop_refresh}))).await;
    assert_eq!(status, 200);
    let (status, _) = app.rest("POST", "/auth/refresh", None, Some(json!({"refreshToken": laptop_refresh}))).await;
    assert_eq!(status, 401);
    let closed = closed_with(&mut laptop, Duration::from_secs(5)).await;
    assert!(matches!(&closed, Some((4401, _))), "the revoked session's socket stays open: {closed:?}");
}

/// The operation ids of the next `n` data frames, sorted.
async fn next_ids(ws: &mut WsClient, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..n {
        match ws.recv().await {
            Received::Message(m) if m["type"] == "next" => got.push(m["id"].as_str().unwrap_or_default().to_owned()),
            other => panic!("expected data, got {other:?}"),
        }
    }
    got.sort();
    got
}

async fn operations_per_connection_are_capped_and_the_connection_stays(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let mut ws = WsClient::signed_in(&app, &ben.token).await;
    for id in ["1", "2", "3"] {
        ws.subscribe(id, MESSAGE_ADDED, json!({"c": conv})).await;
    }
    ws.subscribe("4", MESSAGE_ADDED, json!({"c": conv})).await;
    match ws.recv().await {
        Received::Message(m) if m["type"] == "error" && m["id"] == "4" => {
            assert_eq!(m["payload"][0]["extensions"]["code"], "RATE_LIMITED", "{m}");
        }
        other => panic!("expected the 4th operation to be refused, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.send(&ann, &conv, "hello").await;
    assert_eq!(next_ids(&mut ws, 3).await, ["1", "2", "3"], "the first three run on");
    ws.assert_silent(Duration::from_millis(300)).await;
    // Completing one makes room again.
    ws.send(json!({"type": "complete", "id": "1"})).await;
    ws.subscribe("5", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.send(&ann, &conv, "again").await;
    assert_eq!(next_ids(&mut ws, 3).await, ["2", "3", "5"]);
}

async fn connections_per_user_are_capped(app: TestApp) {
    let ann = app.register("ann").await;
    let first = WsClient::signed_in(&app, &ann.token).await;
    let _second = WsClient::signed_in(&app, &ann.token).await;
    let mut third = WsClient::connect(&app, "/graphql/ws", "graphql-transport-ws", None).await;
    third.init(json!({"token": ann.token})).await;
    let closed = closed_with(&mut third, Duration::from_secs(5)).await;
    assert!(matches!(&closed, Some((4429, reason)) if reason.starts_with("Too many connections")), "{closed:?}");
    // Another user is not affected, and a closed connection makes room.
    let ben = app.register("ben").await;
    let _ben = WsClient::signed_in(&app, &ben.token).await;
    first.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _again = WsClient::signed_in(&app, &ann.token).await;
}

on_both_backends!(
    with ["--ws-max-operations", "3", "--ws-max-connections-per-user", "2"];
    signing_out_or_a_reused_refresh_token_closes_that_sessions_sockets,
    operations_per_connection_are_capped_and_the_connection_stays,
    connections_per_user_are_capped,
);

/// An operation on an open socket acts for a session that is still live: a session ended
/// behind the node's back (its close order lost) stops the socket at its next operation,
/// once the few seconds a checked session is trusted have passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_on_a_socket_of_an_ended_session_closes_it() {
    let app = spawn_app_with(Backend::Sqlite, &[]).await.expect("app");
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let mut ws = WsClient::signed_in(&app, &ben.token).await;
    // End the session in storage only, as if the order to close never arrived.
    {
        use sea_orm::{ConnectionTrait, Database, Statement};
        let db = Database::connect(app.database_url.as_str()).await.expect("connect");
        let sql = "UPDATE sessions SET revoked_at = ? WHERE user_id = (SELECT id FROM users WHERE username = ?)";
        let values: [sea_orm::Value; 2] = [chrono::Utc::now().into(), "ben".into()];
        let done = db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values)).await;
        assert_eq!(done.expect("revoke").rows_affected(), 1);
    }
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    ws.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    let closed = closed_with(&mut ws, Duration::from_secs(5)).await;
    assert!(matches!(&closed, Some((4401, _))), "an ended session still runs operations: {closed:?}");
    // Nothing was stored in its name over the socket either.
    let (status, _) = app.rest("GET", "/users/me", Some(&ben.token), None).await;
    assert_eq!(status, 401);
}

/// A node admits new connections at its rate; beyond it they are told to come back later
/// (1013, "Try again later"), while connected clients go on receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_is_admitted_at_the_node_rate() {
    let app = spawn_app_with(Backend::Sqlite, &["--ws-admit-per-sec", "3", "--ws-max-connections-per-user", "100"])
        .await
        .expect("app");
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let mut live = WsClient::signed_in(&app, &ben.token).await;
    live.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let mut refused = 0;
    let mut admitted = Vec::new();
    for _ in 0..12 {
        let mut ws = WsClient::connect(&app, "/graphql/ws", "graphql-transport-ws", None).await;
        ws.init(json!({"token": ben.token})).await;
        match ws.recv().await {
            Received::Message(m) if m["type"] == "connection_ack" => admitted.push(ws),
            Received::Closed(1013, reason) => {
                assert!(reason.starts_with("Try again later"), "{reason}");
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(refused >= 6, "only {refused} of 12 refused at 3 per second");
    assert!(admitted.len() >= 3, "the node's rate is admitted");
    app.send(&ann, &conv, "during the storm").await;
    assert_eq!(live.next_data("1").await["messageAdded"]["body"], "during the storm");
    let metrics = app.metrics().await;
    assert!(
        metrics.lines().any(|l| l.starts_with("syncchat_websocket_admissions_total") && l.contains("refused")),
        "refusals are counted"
    );
}

/// A slow consumer that reads again late still learns why it was dropped (1013), instead of
/// finding its connection cut (1006).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_that_reads_late_sees_1013() {
    let app = spawn_app_with(Backend::Sqlite, &["--ws-queue", "8"]).await.expect("app");
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let mut slow = WsClient::signed_in_slow(&app, &ben.token).await;
    slow.subscribe("s", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let big = "😀".repeat(4000);
    let client = reqwest::Client::new();
    let dropped = |m: &str| metric_sum(m, "syncchat_websocket_closed_total", &["slow_consumer"]) > 0.0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !dropped(&app.metrics().await) {
        assert!(tokio::time::Instant::now() < deadline, "the slow consumer was never dropped");
        for _ in 0..50 {
            let _ = client
                .post(app.url(&format!("/api/v1/conversations/{conv}/messages")))
                .bearer_auth(&ann.token)
                .json(&json!({"body": big}))
                .send()
                .await;
        }
    }
    // Late: well past the few seconds a normal close waits for its frame.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let closed = closed_with(&mut slow, Duration::from_secs(20)).await;
    assert!(matches!(&closed, Some((1013, _))), "closed with {closed:?}");
}

/// Signing out on one node closes that session's sockets on the others (the control topic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_on_one_node_closes_the_sessions_sockets_on_every_node() {
    let Some(nodes) = crate::helpers::spawn_cluster(2, &[]).await else { return };
    let (a, b) = (&nodes[0], &nodes[1]);
    let ann = a.register("ann").await;
    let mut on_b = WsClient::signed_in(b, &ann.token).await;
    let (status, _) = a.rest("POST", "/auth/logout", Some(&ann.token), None).await;
    assert!((200..300).contains(&status), "{status}");
    let closed = closed_with(&mut on_b, Duration::from_secs(5)).await;
    assert!(matches!(&closed, Some((4401, _))), "the socket on the other node stays open: {closed:?}");
}

/// `redis-server` on a port of its own, which the test kills and restarts (empty).
struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start() -> Option<PrivateRedis> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            skip_or_fail("the Redis restart test", "redis-server is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let mut redis = PrivateRedis { child: None, port, dir: tempfile::tempdir().expect("tempdir") };
        redis.restart();
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start");
    }

    /// SIGKILL, as a crash.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The trust issue's Redis outage: Redis killed, then back empty. A message sent meanwhile is
/// acknowledged at once, reaches the sender node's subscribers at once and the other node's
/// within the healer's polling, and after Redis is back delivery is live again and users show
/// online without reconnecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_loses_no_message_and_holds_no_send() {
    let Some(mut redis) = PrivateRedis::start() else { return };
    let Some(nodes) = spawn_cluster_on(&redis.url(), 2, &["--presence-ttl-secs", "3"]).await else { return };
    let (a, b) = (&nodes[0], &nodes[1]);
    let (ann, ben) = (a.register("ann").await, a.register("ben").await);
    let conv = a.conversation(&ann, &[&ben], None).await;
    let mut on_a = WsClient::signed_in(a, &ben.token).await;
    on_a.subscribe("a", MESSAGE_ADDED, json!({"c": conv})).await;
    let mut on_b = WsClient::signed_in(b, &ben.token).await;
    on_b.subscribe("b", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.send(&ann, &conv, "before").await;
    assert_eq!(on_a.next_data("a").await["messageAdded"]["seq"], 1);
    assert_eq!(on_b.next_data("b").await["messageAdded"]["seq"], 1);

    redis.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    a.send(&ann, &conv, "during").await;
    let ack = started.elapsed();
    assert!(ack < Duration::from_secs(2), "the send waited on Redis: acked after {ack:?}");
    assert_eq!(on_a.next_data("a").await["messageAdded"]["body"], "during", "the sender node delivers by itself");
    assert_eq!(on_b.next_data("b").await["messageAdded"]["body"], "during", "the other node catches up from storage");
    // A new connection is not held up by presence either.
    let started = std::time::Instant::now();
    let _fresh = WsClient::signed_in(b, &ann.token).await;
    assert!(started.elapsed() < Duration::from_secs(3), "the handshake waited on Redis");

    redis.restart();
    // Back: live again on both nodes, and presence is written again without reconnecting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    a.send(&ann, &conv, "after").await;
    assert_eq!(on_a.next_data("a").await["messageAdded"]["body"], "after");
    assert_eq!(on_b.next_data("b").await["messageAdded"]["body"], "after");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = b.rest("GET", &format!("/presence?userIds={}", ben.id), Some(&ann.token), None).await;
        assert_eq!(status, 200, "{body}");
        if body[0]["online"] == true {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "ben shows offline after Redis came back: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = b.metrics().await;
    assert!(metric_sum(&metrics, "syncchat_bus_healed_messages_total", &[]) > 0.0, "the heal is counted");
}
