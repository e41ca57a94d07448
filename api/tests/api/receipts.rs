//! Read receipts: `Conversation.readBy` (how far each participant has read) and a per-user
//! `readReceipts: PRIVATE` setting that keeps my marker to myself, live and stored, on both
//! façades.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, on_both_backends};
use crate::ws_client::WsClient;

const EVENTS: &str = "subscription { events { __typename \
    ... on MessageAddedEvent { message { seq } } \
    ... on ReadEvent { userId lastReadSeq } } }";

on_both_backends!(receipts_show_how_far_each_member_read_unless_they_keep_it_private);

async fn read(app: &TestApp, who: &TestUser, conv: &str, seq: i64) {
    let (status, body) =
        app.rest("POST", &format!("/conversations/{conv}/read"), Some(&who.token), Some(json!({"seq": seq}))).await;
    assert_eq!(status, 200, "{body}");
}

/// (username, lastReadSeq) of the conversation's `readBy`, as `who` sees it.
async fn read_by(app: &TestApp, who: &TestUser, conv: &str) -> Vec<(String, i64)> {
    let (status, view) = app.rest("GET", &format!("/conversations/{conv}"), Some(&who.token), None).await;
    assert_eq!(status, 200, "{view}");
    view["readBy"]
        .as_array()
        .expect("readBy")
        .iter()
        .map(|r| {
            (r["user"]["username"].as_str().unwrap_or_default().to_owned(), r["lastReadSeq"].as_i64().unwrap_or(-1))
        })
        .collect()
}

fn participant_marker(view: &Value, username: &str) -> Value {
    view["participants"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["user"]["username"] == username))
        .map(|p| p["lastReadSeq"].clone())
        .unwrap_or(Value::String("absent".into()))
}

async fn receipts_show_how_far_each_member_read_unless_they_keep_it_private(app: TestApp) {
    let (ann, ben, cat) = (app.register("ann").await, app.register("ben").await, app.register("cat").await);
    let conv = app.conversation(&ann, &[&ben, &cat], Some("receipts")).await;
    for i in 1..=3 {
        app.send(&ann, &conv, &format!("m{i}")).await;
    }
    read(&app, &ben, &conv, 2).await;
    read(&app, &cat, &conv, 3).await;
    // ann's own marker moves with what she sends.
    let seen = read_by(&app, &ann, &conv).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[2], ("ben".to_owned(), 2), "furthest first: {seen:?}");
    assert!(seen.contains(&("cat".to_owned(), 3)) && seen.contains(&("ann".to_owned(), 3)), "{seen:?}");
    let gql = app
        .gql_ok(
            Some(&ann.token),
            "query($c: UUID!) { conversation(id: $c) { readBy { user { username } lastReadSeq } } me { settings { readReceipts } } }",
            json!({"c": conv}),
        )
        .await;
    assert_eq!(gql["conversation"]["readBy"][2], json!({"user": {"username": "ben"}, "lastReadSeq": 2}));
    assert_eq!(gql["me"]["settings"]["readReceipts"], "PUBLIC", "public by default");

    // ben keeps his receipts private from now on.
    let mut anns = WsClient::signed_in(&app, &ann.token).await;
    anns.subscribe("e", EVENTS, json!({})).await;
    let mut bens = WsClient::signed_in(&app, &ben.token).await;
    bens.subscribe("e", EVENTS, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, settings) =
        app.rest("PATCH", "/users/me/settings", Some(&ben.token), Some(json!({"readReceipts": "private"}))).await;
    assert_eq!((status, settings), (200, json!({"readReceipts": "private", "blockedMessages": "flag"})));
    let (_, me) = app.rest("GET", "/users/me", Some(&ben.token), None).await;
    assert_eq!(me["settings"]["readReceipts"], "private", "{me}");
    let (_, ben_for_ann) = app.rest("GET", &format!("/users/{}", ben.id), Some(&ann.token), None).await;
    assert!(ben_for_ann["settings"].is_null(), "settings are ben's own: {ben_for_ann}");

    app.send(&ann, &conv, "m4").await;
    assert_eq!(anns.next_data("e").await["events"]["message"]["seq"], 4);
    assert_eq!(bens.next_data("e").await["events"]["message"]["seq"], 4);
    read(&app, &ben, &conv, 4).await;
    let own = bens.next_data("e").await;
    assert_eq!(
        own["events"],
        json!({"__typename": "ReadEvent", "userId": ben.id, "lastReadSeq": 4}),
        "his own devices hear of it"
    );
    anns.assert_silent(Duration::from_millis(400)).await;
    let seen = read_by(&app, &ann, &conv).await;
    assert!(seen.iter().all(|(u, _)| u != "ben"), "ann no longer sees ben's receipt: {seen:?}");
    let (_, view) = app.rest("GET", &format!("/conversations/{conv}"), Some(&ann.token), None).await;
    assert_eq!(participant_marker(&view, "ben"), Value::Null, "nor his marker among the participants");
    let (_, his) = app.rest("GET", &format!("/conversations/{conv}"), Some(&ben.token), None).await;
    assert_eq!(
        (his["lastReadSeq"].as_i64(), his["unreadCount"].as_i64()),
        (Some(4), Some(0)),
        "his unread count works"
    );
    assert_eq!(participant_marker(&his, "ben"), json!(4), "he sees his own");
    assert!(read_by(&app, &ben, &conv).await.contains(&("ben".to_owned(), 4)));

    // cat's receipts are still public, live.
    read(&app, &cat, &conv, 4).await;
    let cats = anns.next_data("e").await;
    assert_eq!(cats["events"], json!({"__typename": "ReadEvent", "userId": cat.id, "lastReadSeq": 4}));

    // Back to public: the stored marker shows again; GraphQL changes it too.
    let changed = app
        .gql_ok(
            Some(&ben.token),
            "mutation { updateSettings(input: {readReceipts: PUBLIC}) { readReceipts } }",
            json!({}),
        )
        .await;
    assert_eq!(changed["updateSettings"]["readReceipts"], "PUBLIC");
    assert!(read_by(&app, &ann, &conv).await.contains(&("ben".to_owned(), 4)));

    // Bad input changes nothing.
    let (status, body) =
        app.rest("PATCH", "/users/me/settings", Some(&ben.token), Some(json!({"readReceipts": "secret"}))).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_USER_INPUT")), "{body}");
    let (_, me) = app.rest("GET", "/users/me", Some(&ben.token), None).await;
    assert_eq!(me["settings"]["readReceipts"], "public");
    let metrics = app.metrics().await;
    let private =
        syncchat_test_support::metric_sum(&metrics, "syncchat_settings_changed_total", &["value=\"private\""]);
    assert!(private >= 1.0, "{private}");
}

/// Two nodes on Postgres and Redis: a private marker set through node A reaches its owner's
/// socket on node B and no one else's; a public one reaches the others across nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_nodes_a_private_marker_reaches_only_its_owner() {
    let Some(nodes) = crate::helpers::spawn_cluster(2, &[]).await else { return };
    let (a, b) = (&nodes[0], &nodes[1]);
    let (ann, ben) = (a.register("ann").await, a.register("ben").await);
    let conv = a.conversation(&ann, &[&ben], Some("two nodes")).await;
    a.send(&ann, &conv, "one").await;
    let mut anns = WsClient::signed_in(b, &ann.token).await;
    anns.subscribe("e", EVENTS, json!({})).await;
    let mut bens = WsClient::signed_in(b, &ben.token).await;
    bens.subscribe("e", EVENTS, json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) =
        a.rest("PATCH", "/users/me/settings", Some(&ben.token), Some(json!({"readReceipts": "private"}))).await;
    assert_eq!(status, 200);
    read(a, &ben, &conv, 1).await;
    let own = bens.next_data("e").await;
    assert_eq!(own["events"]["lastReadSeq"], 1, "ben's socket on node B: {own}");
    anns.assert_silent(Duration::from_millis(500)).await;
    let (status, _) =
        a.rest("PATCH", "/users/me/settings", Some(&ben.token), Some(json!({"readReceipts": "public"}))).await;
    assert_eq!(status, 200);
    a.send(&ann, &conv, "two").await;
    assert_eq!(anns.next_data("e").await["events"]["message"]["seq"], 2);
    assert_eq!(bens.next_data("e").await["events"]["message"]["seq"], 2);
    read(a, &ben, &conv, 2).await;
    let public = anns.next_data("e").await;
    assert_eq!(public["events"], json!({"__typename": "ReadEvent", "userId": ben.id, "lastReadSeq": 2}));
}
