//! Several nodes sharing Postgres and Redis: delivery and presence cross nodes with no
//! sticky sessions. Runs when `SYNCCHAT_TEST_DATABASE_URL` and `SYNCCHAT_TEST_REDIS_URL` are set.

use std::time::Duration;

use serde_json::json;

use crate::helpers::spawn_cluster;
use crate::ws_client::WsClient;

const MESSAGE_ADDED: &str =
    "subscription($c: UUID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { seq body } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_node_receives_what_another_node_stores_in_order_once() {
    let Some(nodes) = spawn_cluster(2, &[]).await else { return };
    let (a, b) = (&nodes[0], &nodes[1]);
    let (ann, ben) = (a.register("ann").await, b.register("ben").await);
    let conv = b.conversation(&ann, &[&ben], None).await;

    let mut on_a = WsClient::signed_in(a, &ben.token).await;
    on_a.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 1..=30 {
        b.send(&ann, &conv, &format!("via b {i}")).await;
    }
    for want in 1..=30 {
        let data = on_a.next_data("1").await;
        assert_eq!(data["messageAdded"]["seq"], want);
        assert_eq!(data["messageAdded"]["body"], format!("via b {want}"));
    }
    on_a.assert_silent(Duration::from_millis(300)).await;

    // Typing set on A reaches a subscriber on B.
    let mut on_b = WsClient::signed_in(b, &ann.token).await;
    on_b.subscribe(
        "t",
        "subscription($c: UUID!) { typing(conversationId: $c) { username typing } }",
        json!({"c": conv}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.gql_ok(
        Some(&ben.token),
        "mutation($c: UUID!) { setTyping(conversationId: $c, typing: true) }",
        json!({"c": conv}),
    )
    .await;
    let typing = on_b.next_data("t").await;
    assert_eq!(typing["typing"]["username"], "ben");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_spans_nodes_and_devices() {
    let Some(nodes) = spawn_cluster(2, &[]).await else { return };
    let (a, b) = (&nodes[0], &nodes[1]);
    let (ann, ben) = (a.register("ann").await, a.register("ben").await);
    // Presence is shown to people who share a conversation.
    a.conversation(&ann, &[&ben], None).await;
    let q = "query($u: [UUID!]!) { presence(userIds: $u) { online lastSeenAt } }";
    let online = |node: &crate::helpers::TestApp| {
        let token = ann.token.clone();
        let id = ben.id.clone();
        let node_url = node.url("/graphql");
        async move {
            let body: serde_json::Value = reqwest::Client::new()
                .post(node_url)
                .bearer_auth(token)
                .json(&json!({"query": q, "variables": {"u": [id]}}))
                .send()
                .await
                .expect("presence")
                .json()
                .await
                .expect("json");
            body["data"]["presence"][0]["online"].as_bool()
        }
    };
    let mut watcher = WsClient::signed_in(b, &ann.token).await;
    watcher
        .subscribe("p", "subscription($u: [UUID!]!) { presence(userIds: $u) { online } }", json!({"u": [ben.id]}))
        .await;
    assert_eq!(watcher.next_data("p").await["presence"]["online"], false);

    let phone = WsClient::signed_in(a, &ben.token).await;
    assert_eq!(watcher.next_data("p").await["presence"]["online"], true, "online on A is seen on B");
    assert_eq!(online(b).await, Some(true));
    let laptop = WsClient::signed_in(b, &ben.token).await;
    phone.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(online(a).await, Some(true), "the laptop on B keeps ben online");
    laptop.close().await;
    assert_eq!(watcher.next_data("p").await["presence"]["online"], false);
    assert_eq!(online(a).await, Some(false));
}

/// Nodes trust a checked session for a few seconds; signing out on one node still ends the
/// session on every node at once (the control topic), well within that time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_on_one_node_ends_the_session_on_the_others_at_once() {
    let Some(nodes) = spawn_cluster(2, &[]).await else { return };
    let (a, b) = (&nodes[0], &nodes[1]);
    let ann = a.register("ann").await;
    // Node b has just checked (and remembers) the session.
    let (status, _) = b.rest("GET", "/users/me", Some(&ann.token), None).await;
    assert_eq!(status, 200);
    let (status, _) = a.rest("POST", "/auth/logout", Some(&ann.token), None).await;
    assert!((200..300).contains(&status), "{status}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let status = loop {
        let (status, _) = b.rest("GET", "/users/me", Some(&ann.token), None).await;
        if status == 401 || tokio::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 401, "node b still accepts a session ended on node a");
}
