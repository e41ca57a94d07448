//! Reactions: one per (user, message, emoji), idempotent, validated, bounded per message,
//! summarised on the message for each reader, live to the conversation, on both façades.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, count, gql_code, on_both_backends};
use crate::ws_client::WsClient;

/// At most three distinct emoji per message here, and one custom shortcode.
pub const FLAGS: [&str; 4] = ["--max-reactions-per-message", "3", "--reaction-shortcodes", "parrot"];

const REACT: &str = "mutation($m: UUID!, $e: String!) { addReaction(messageId: $m, emoji: $e) { reactions { emoji count reactedByMe users(first: 2) { username } } } }";

on_both_backends!(with (super::FLAGS);
    reactions_are_counted_per_emoji_for_each_reader_and_told_live,
    reactions_are_validated_bounded_and_private_to_participants,
);

fn path(message: &str, emoji: &str) -> String {
    let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
    format!("/messages/{message}/reactions/{encoded}")
}

async fn react(app: &TestApp, who: &TestUser, message: &str, emoji: &str) -> (u16, Value) {
    app.rest("PUT", &path(message, emoji), Some(&who.token), None).await
}

async fn reactions_are_counted_per_emoji_for_each_reader_and_told_live(app: TestApp) {
    let (ann, ben, cat) = (app.register("ann").await, app.register("ben").await, app.register("cat").await);
    let conv = app.conversation(&ann, &[&ben, &cat], Some("reactions")).await;
    let msg = app.send(&ann, &conv, "ship it?").await["id"].as_str().unwrap().to_owned();
    let mut cats = WsClient::signed_in(&app, &cat.token).await;
    cats.subscribe(
        "e",
        "subscription { events { __typename ... on ReactionsUpdatedEvent { messageId seq username emoji added reactions { emoji count users { username } } } } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (status, view) = react(&app, &ben, &msg, "👍").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["reactions"],
        json!([{"emoji": "👍", "count": 1, "reactedByMe": true, "users": [{"id": ben.id, "username": "ben"}]}])
    );
    let live = cats.next_data("e").await;
    assert_eq!(
        live["events"],
        json!({"__typename": "ReactionsUpdatedEvent", "messageId": msg, "seq": 1, "username": "ben", "emoji": "👍",
               "added": true, "reactions": [{"emoji": "👍", "count": 1, "users": [{"username": "ben"}]}]})
    );
    // The same again changes nothing and tells no one.
    let (status, again) = react(&app, &ben, &msg, "👍").await;
    assert_eq!((status, again["reactions"][0]["count"].as_i64()), (200, Some(1)));
    cats.assert_silent(Duration::from_millis(300)).await;
    // GraphQL; a gemoji shortcode is stored as its emoji; a custom one as itself.
    let data = app.gql_ok(Some(&cat.token), REACT, json!({"m": msg, "e": ":thumbsup:"})).await;
    assert_eq!(
        data["addReaction"]["reactions"][0],
        json!({"emoji": "👍", "count": 2, "reactedByMe": true, "users": [{"username": "ben"}, {"username": "cat"}]})
    );
    assert_eq!(cats.next_data("e").await["events"]["reactions"][0]["count"], 2);
    react(&app, &ann, &msg, ":parrot:").await;
    cats.next_data("e").await;

    // History shows each reader their own reactedByMe.
    let history = |who: &TestUser| {
        let token = who.token.clone();
        let path = format!("/conversations/{conv}/messages");
        let app = &app;
        async move { app.rest("GET", &path, Some(&token), None).await.1["items"][0]["reactions"].clone() }
    };
    let for_ann = history(&ann).await;
    assert_eq!(
        for_ann.as_array().map(|r| r
            .iter()
            .map(|x| (x["emoji"].clone(), x["count"].clone(), x["reactedByMe"].clone()))
            .collect::<Vec<_>>()),
        Some(vec![(json!("👍"), json!(2), json!(false)), (json!(":parrot:"), json!(1), json!(true))]),
        "in the order first used: {for_ann}"
    );
    assert_eq!(history(&ben).await[0]["reactedByMe"], true);
    let gql = app
        .gql_ok(
            Some(&ben.token),
            "query($c: UUID!) { messages(conversationId: $c, last: 5) { edges { node { reactions { emoji count reactedByMe } } } } }",
            json!({"c": conv}),
        )
        .await;
    assert_eq!(
        gql["messages"]["edges"][0]["node"]["reactions"][1],
        json!({"emoji": ":parrot:", "count": 1, "reactedByMe": false})
    );

    // Taking one back, twice: one event, the count drops, then nothing.
    let (status, view) = app.rest("DELETE", &path(&msg, "👍"), Some(&ben.token), None).await;
    assert_eq!(
        (status, view["reactions"][0]["count"].as_i64(), view["reactions"][0]["reactedByMe"].as_bool()),
        (200, Some(1), Some(false))
    );
    let removed = cats.next_data("e").await;
    assert_eq!(
        (removed["events"]["added"].as_bool(), removed["events"]["username"].as_str()),
        (Some(false), Some("ben"))
    );
    let (status, _) = app.rest("DELETE", &path(&msg, "👍"), Some(&ben.token), None).await;
    assert_eq!(status, 200);
    cats.assert_silent(Duration::from_millis(300)).await;
    let metrics = app.metrics().await;
    let added = syncchat_test_support::metric_sum(&metrics, "syncchat_reactions_total", &["action=\"added\""]);
    let taken = syncchat_test_support::metric_sum(&metrics, "syncchat_reactions_total", &["action=\"removed\""]);
    assert!(added >= 3.0 && taken >= 1.0, "{added} {taken}");

    // A deleted message loses its reactions and takes no more.
    let (status, _) = app.rest("DELETE", &format!("/messages/{msg}"), Some(&ann.token), None).await;
    assert_eq!(status, 200);
    let left = count(&app, &format!("SELECT COUNT(*) AS n FROM reactions WHERE message_id = '{msg}'")).await;
    assert_eq!(left, 0, "its reactions went with it");
    let (status, body) = react(&app, &ben, &msg, "🎉").await;
    assert_eq!((status, body["code"].as_str()), (409, Some("CONFLICT")), "{body}");
}

async fn reactions_are_validated_bounded_and_private_to_participants(app: TestApp) {
    let (ann, ben, eve) = (app.register("ann").await, app.register("ben").await, app.register("eve").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let msg = app.send(&ann, &conv, "react to me").await["id"].as_str().unwrap().to_owned();
    for bad in ["a", "👍👍", ":nope:", "👍 "] {
        let (status, body) = react(&app, &ben, &msg, bad).await;
        assert_eq!(
            (status, body["code"].as_str(), body["field"].as_str()),
            (400, Some("BAD_USER_INPUT"), Some("emoji")),
            "{bad:?}: {body}"
        );
        let gql = app.gql(Some(&ben.token), REACT, json!({"m": msg, "e": bad})).await;
        assert_eq!(gql_code(&gql), "BAD_USER_INPUT", "{bad:?}: {gql}");
    }
    // An outsider learns nothing: the message is not found, and nothing is stored.
    let (status, body) = react(&app, &eve, &msg, "👀").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
    let gql = app.gql(Some(&eve.token), REACT, json!({"m": msg, "e": "👀"})).await;
    assert_eq!(gql_code(&gql), "NOT_FOUND");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM reactions").await, 0, "refused reactions store nothing");
    // Three distinct emoji at most (this server's setting); more of one that is there is fine.
    for emoji in ["👍", "🎉", "🚀"] {
        assert_eq!(react(&app, &ben, &msg, emoji).await.0, 200);
    }
    let (status, body) = react(&app, &ben, &msg, "👀").await;
    assert_eq!((status, body["code"].as_str()), (409, Some("CONFLICT")), "a fourth emoji: {body}");
    assert_eq!(react(&app, &ann, &msg, "🎉").await.0, 200, "another 🎉 is not a new emoji");
    let (_, history) = app.rest("GET", &format!("/conversations/{conv}/messages"), Some(&ann.token), None).await;
    let emoji: Vec<&str> =
        history["items"][0]["reactions"].as_array().unwrap().iter().filter_map(|r| r["emoji"].as_str()).collect();
    assert_eq!(emoji, ["👍", "🎉", "🚀"]);
}

/// Two nodes on Postgres and Redis: a reaction and a pin made through node A reach a
/// subscriber on node B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_and_pins_reach_subscribers_on_another_node() {
    let Some(nodes) = crate::helpers::spawn_cluster(2, &[]).await else { return };
    let (a, b) = (&nodes[0], &nodes[1]);
    let (ann, ben) = (a.register("ann").await, a.register("ben").await);
    let conv = a.conversation(&ann, &[&ben], None).await;
    let msg = a.send(&ann, &conv, "across nodes").await["id"].as_str().unwrap().to_owned();
    let mut bens = WsClient::signed_in(b, &ben.token).await;
    bens.subscribe(
        "e",
        "subscription { events { __typename \
           ... on ReactionsUpdatedEvent { emoji reactions { count } } \
           ... on PinsChangedEvent { messageId pinned } } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(react(a, &ann, &msg, "🎉").await.0, 200);
    let reacted = bens.next_data("e").await;
    assert_eq!(
        reacted["events"],
        json!({"__typename": "ReactionsUpdatedEvent", "emoji": "🎉", "reactions": [{"count": 1}]})
    );
    let (status, _) = a.rest("PUT", &format!("/messages/{msg}/pin"), Some(&ann.token), None).await;
    assert_eq!(status, 200);
    let pinned = bens.next_data("e").await;
    assert_eq!(pinned["events"], json!({"__typename": "PinsChangedEvent", "messageId": msg, "pinned": true}));
}
