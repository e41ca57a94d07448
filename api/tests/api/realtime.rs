//! Live delivery over GraphQL subscriptions: order, resume, membership, authorization,
//! typing, presence and the WebSocket protocols, with a real WebSocket client.

use std::time::Duration;

use serde_json::json;
use syncchat_test_support::metric_sum;

use crate::auth::set_disabled;
use crate::helpers::{Backend, TestApp, on_both_backends, spawn_app_with};
use crate::ws_client::{Received, WsClient};

const MESSAGE_ADDED: &str = "subscription($c: UUID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { seq body sender { username } } }";
const EVENTS: &str = "subscription($after: [ResumeFrom!]) { events(after: $after) { __typename \
    ... on MessageAddedEvent { message { conversationId seq body } } \
    ... on TypingEvent { conversationId username typing } \
    ... on ReadEvent { conversationId lastReadSeq } \
    ... on ConversationChangedEvent { conversationId added removed } \
    ... on Presence { userId online } } }";

async fn expect_seqs(ws: &mut WsClient, id: &str, expected: impl IntoIterator<Item = i64>) {
    for want in expected {
        let data = ws.next_data(id).await;
        assert_eq!(data["messageAdded"]["seq"], want, "{data}");
    }
}

async fn subscribers_receive_each_message_once_in_order(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let mut ws = WsClient::signed_in(&app, &ben.token).await;
    ws.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    // Make sure the subscription is live before sending.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bodies: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    futures_util::future::join_all(bodies.iter().map(|b| app.send(&ann, &conv, b))).await;
    expect_seqs(&mut ws, "1", 1..=20).await;
    ws.assert_silent(Duration::from_millis(300)).await;
}

async fn resume_replays_exactly_what_was_missed_then_goes_live(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let mut ws = WsClient::signed_in(&app, &ben.token).await;
    ws.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..3 {
        app.send(&ann, &conv, &format!("before {i}")).await;
    }
    expect_seqs(&mut ws, "1", 1..=3).await;
    ws.close().await;

    for i in 0..100 {
        app.send(&ann, &conv, &format!("while away {i}")).await;
    }
    let mut ws = WsClient::signed_in(&app, &ben.token).await;
    ws.subscribe("2", MESSAGE_ADDED, json!({"c": conv, "after": 3})).await;
    // Messages sent during the replay must neither be lost nor doubled.
    let sender = {
        let (app_base, token, conv) = (app.url(""), ann.token.clone(), conv.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..5 {
                let _ = client
                    .post(format!("{app_base}/api/v1/conversations/{conv}/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"body": format!("during replay {i}")}))
                    .send()
                    .await;
            }
        })
    };
    expect_seqs(&mut ws, "2", 4..=108).await;
    let _ = sender.await;
    app.send(&ann, &conv, "live again").await;
    let data = ws.next_data("2").await;
    assert_eq!(
        (data["messageAdded"]["seq"].as_i64(), data["messageAdded"]["body"].as_str()),
        (Some(109), Some("live again"))
    );
    ws.assert_silent(Duration::from_millis(300)).await;
}

async fn events_follow_membership(app: TestApp) {
    let (ann, ben, cat) = (app.register("ann").await, app.register("ben").await, app.register("cat").await);
    let group = app.conversation(&ann, &[&ben], Some("team")).await;
    let mut ws = WsClient::signed_in(&app, &cat.token).await;
    ws.subscribe("e", EVENTS, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.send(&ann, &group, "before cat joined").await;
    ws.assert_silent(Duration::from_millis(300)).await;

    // Joining starts delivery.
    let (status, _) = app
        .rest(
            "POST",
            &format!("/conversations/{group}/participants"),
            Some(&ann.token),
            Some(json!({"userIds": [cat.id]})),
        )
        .await;
    assert_eq!(status, 200);
    let joined = ws.next_data("e").await;
    assert_eq!(joined["events"]["__typename"], "ConversationChangedEvent");
    assert_eq!(joined["events"]["added"], json!([cat.id]));
    app.send(&ann, &group, "welcome cat").await;
    let msg = ws.next_data("e").await;
    assert_eq!(msg["events"]["message"]["body"], "welcome cat");
    assert_eq!(msg["events"]["message"]["seq"], 2);

    // Typing and read markers of others arrive too.
    let (status, _) =
        app.rest("POST", &format!("/conversations/{group}/read"), Some(&ben.token), Some(json!({"seq": 2}))).await;
    assert_eq!(status, 200);
    let read = ws.next_data("e").await;
    assert_eq!(
        (read["events"]["__typename"].as_str(), read["events"]["lastReadSeq"].as_i64()),
        (Some("ReadEvent"), Some(2))
    );
    app.gql_ok(
        Some(&ben.token),
        "mutation($c: UUID!) { setTyping(conversationId: $c, typing: true) }",
        json!({"c": group}),
    )
    .await;
    let typing = ws.next_data("e").await;
    assert_eq!(
        (typing["events"]["username"].as_str(), typing["events"]["typing"].as_bool()),
        (Some("ben"), Some(true))
    );

    // Leaving stops it.
    let (status, _) =
        app.rest("DELETE", &format!("/conversations/{group}/participants/me"), Some(&cat.token), None).await;
    assert_eq!(status, 200);
    let left = ws.next_data("e").await;
    assert_eq!(left["events"]["removed"], json!([cat.id]));
    app.send(&ann, &group, "after cat left").await;
    ws.assert_silent(Duration::from_millis(400)).await;
}

async fn outsiders_are_refused_and_never_see_an_event(app: TestApp) {
    let (ann, ben, eve) = (app.register("ann").await, app.register("ben").await, app.register("eve").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let mut ws = WsClient::signed_in(&app, &eve.token).await;
    ws.subscribe("x", MESSAGE_ADDED, json!({"c": conv, "after": 0})).await;
    match ws.recv().await {
        Received::Message(m) => {
            assert_eq!(m["type"], "error", "{m}");
            assert_eq!(m["payload"][0]["extensions"]["code"], "FORBIDDEN");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    ws.subscribe("t", "subscription($c: UUID!) { typing(conversationId: $c) { typing } }", json!({"c": conv})).await;
    match ws.recv().await {
        Received::Message(m) => assert_eq!(m["payload"][0]["extensions"]["code"], "FORBIDDEN"),
        other => panic!("expected an error, got {other:?}"),
    }
    ws.subscribe("e", EVENTS, json!({"after": [{"conversationId": conv, "seq": 0}]})).await;
    app.send(&ann, &conv, "private").await;
    app.gql_ok(
        Some(&ann.token),
        "mutation($c: UUID!) { setTyping(conversationId: $c, typing: true) }",
        json!({"c": conv}),
    )
    .await;
    ws.assert_silent(Duration::from_millis(500)).await;
}

/// Subscribers asking for the same fields share one rendering of each message; a different
/// selection, or the same message once edited, is rendered again, never served stale.
async fn items_are_rendered_once_per_selection(app: TestApp) {
    let (ann, ben, cid) = (app.register("ann").await, app.register("ben").await, app.register("cid").await);
    let conv = app.conversation(&ann, &[&ben, &cid], None).await;
    let narrow = "subscription($c: UUID!) { messageAdded(conversationId: $c) { seq body } }";
    let wide = "subscription($c: UUID!) { m: messageAdded(conversationId: $c) { seq sender { username } } }";
    let mut b1 = WsClient::signed_in(&app, &ben.token).await;
    let mut b2 = WsClient::signed_in(&app, &ben.token).await;
    let mut c1 = WsClient::signed_in(&app, &cid.token).await;
    let mut other = WsClient::signed_in(&app, &cid.token).await;
    b1.subscribe("1", narrow, json!({"c": conv})).await;
    b2.subscribe("x", narrow, json!({"c": conv})).await;
    c1.subscribe("1", narrow, json!({"c": conv})).await;
    other.subscribe("w", wide, json!({"c": conv})).await;
    // Two root fields of one subscription: each is rendered for its own selection.
    let mut twice = WsClient::signed_in(&app, &cid.token).await;
    let both = "subscription($c: UUID!) { a: messageAdded(conversationId: $c) { seq } \
        b: messageAdded(conversationId: $c) { body } }";
    twice.subscribe("t", both, json!({"c": conv})).await;
    let mut edits = WsClient::signed_in(&app, &cid.token).await;
    let events = "subscription { events { __typename \
        ... on MessageAddedEvent { message { body } } ... on MessageEditedEvent { message { body } } } }";
    edits.subscribe("e", events, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let hits = |m: &str| metric_sum(m, "syncchat_render_cache_total", &["result=\"hit\""]);
    let before = hits(&app.metrics().await);

    let sent = app.send(&ann, &conv, "hello").await;
    let want = json!({"messageAdded": {"seq": 1, "body": "hello"}});
    assert_eq!(b1.next_data("1").await, want);
    assert_eq!(b2.next_data("x").await, want, "same selection, another operation id");
    assert_eq!(c1.next_data("1").await, want, "same selection, another user");
    assert_eq!(other.next_data("w").await, json!({"m": {"seq": 1, "sender": {"username": "ann"}}}));
    assert_eq!(edits.next_data("e").await["events"]["message"]["body"], "hello");
    let mut got = vec![twice.next_data("t").await, twice.next_data("t").await];
    got.sort_by_key(|d| d.to_string());
    assert_eq!(got, vec![json!({"a": {"seq": 1}}), json!({"b": {"body": "hello"}})]);
    // Three subscribers of one shape: the JSON is reused. Two connections on two worker
    // threads may both render it first at the same moment, so at least one reuse (other
    // tests share the process's counters).
    assert!(hits(&app.metrics().await) - before >= 1.0);

    // An edit is a new version: the events subscriber sees the new body.
    let id = sent["id"].as_str().unwrap_or_default().to_owned();
    app.gql_ok(
        Some(&ann.token),
        "mutation($id: UUID!) { editMessage(id: $id, body: \"edited\") { id } }",
        json!({"id": id}),
    )
    .await;
    let edited = edits.next_data("e").await;
    assert_eq!(edited["events"]["__typename"], "MessageEditedEvent", "{edited}");
    assert_eq!(edited["events"]["message"]["body"], "edited");
}

/// The lifecycle of a subscription as a client sees it, whichever way the server runs it:
/// `complete` stops it and frees its id at once, and leaving the conversation ends it with a
/// `complete` from the server. A subscription is counted in the operation metrics.
async fn a_subscription_stops_when_completed_and_ends_when_its_user_leaves(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], Some("lifecycle")).await;
    let subscriptions = |m: &str| {
        metric_sum(m, "syncchat_graphql_operations_total", &["type=\"subscription\"", "name=\"messageAdded\""])
    };
    let before = subscriptions(&app.metrics().await);
    let mut ws = WsClient::signed_in(&app, &ben.token).await;
    ws.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.send(&ann, &conv, "first").await;
    expect_seqs(&mut ws, "1", [1]).await;
    assert!(subscriptions(&app.metrics().await) - before >= 1.0);

    ws.send(json!({"type": "complete", "id": "1"})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.send(&ann, &conv, "after complete").await;
    ws.assert_silent(Duration::from_millis(300)).await;

    // The id is free again; the new subscription gets only what is sent from now on.
    ws.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.send(&ann, &conv, "third").await;
    let data = ws.next_data("1").await;
    assert_eq!(data["messageAdded"]["body"], "third", "{data}");

    app.gql_ok(Some(&ben.token), "mutation($c: UUID!) { leaveConversation(conversationId: $c) }", json!({"c": conv}))
        .await;
    match ws.recv().await {
        Received::Message(m) => assert_eq!(m, json!({"type": "complete", "id": "1"})),
        other => panic!("expected complete, got {other:?}"),
    }
    app.send(&ann, &conv, "after leaving").await;
    ws.assert_silent(Duration::from_millis(300)).await;
}

/// Typing and read markers render once for everyone who asked for the same fields, and a
/// change is never served from an earlier rendering: each subscriber sees every state.
async fn small_events_are_shared_but_never_stale(app: TestApp) {
    let (ann, ben, cid) = (app.register("ann").await, app.register("ben").await, app.register("cid").await);
    let conv = app.conversation(&ann, &[&ben, &cid], None).await;
    let typing = "subscription($c: UUID!) { typing(conversationId: $c) { username typing } }";
    let reads = "subscription { events { __typename ... on ReadEvent { lastReadSeq } } }";
    let mut b = WsClient::signed_in(&app, &ben.token).await;
    let mut c = WsClient::signed_in(&app, &cid.token).await;
    b.subscribe("t", typing, json!({"c": conv})).await;
    c.subscribe("t", typing, json!({"c": conv})).await;
    let mut br = WsClient::signed_in(&app, &ben.token).await;
    let mut cr = WsClient::signed_in(&app, &cid.token).await;
    br.subscribe("e", reads, json!({})).await;
    cr.subscribe("e", reads, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let set = |on: bool| format!("mutation($c: UUID!) {{ setTyping(conversationId: $c, typing: {on}) }}");
    for on in [true, false, true] {
        app.gql_ok(Some(&ann.token), &set(on), json!({"c": conv})).await;
        let want = json!({"typing": {"username": "ann", "typing": on}});
        assert_eq!(b.next_data("t").await, want);
        assert_eq!(c.next_data("t").await, want);
    }

    for i in 0..2 {
        app.send(&cid, &conv, &format!("m{i}")).await;
    }
    let read = "mutation($c: UUID!, $s: Int!) { markRead(conversationId: $c, seq: $s) { lastReadSeq } }";
    for seq in [1, 2] {
        app.gql_ok(Some(&ann.token), read, json!({"c": conv, "s": seq})).await;
        let want = json!({"events": {"__typename": "ReadEvent", "lastReadSeq": seq}});
        assert_eq!(next_read(&mut br).await, want);
        assert_eq!(next_read(&mut cr).await, want);
    }
}

/// The next read marker on an `events` subscription, past the typing and messages before it.
async fn next_read(ws: &mut WsClient) -> serde_json::Value {
    loop {
        let data = ws.next_data("e").await;
        if data["events"]["__typename"] == "ReadEvent" {
            return data;
        }
    }
}

/// `conversationEvents`: everything of one conversation (messages, reactions, pins, typing,
/// reads) and nothing of another, resumable by seq, ending when the subscriber leaves.
async fn a_conversation_subscription_carries_its_events_and_no_others(app: TestApp) {
    let (ann, ben, cat) = (app.register("ann").await, app.register("ben").await, app.register("cat").await);
    let room = app.conversation(&ann, &[&ben], Some("room")).await;
    let other = app.conversation(&ann, &[&ben], Some("other")).await;
    let first = app.send(&ann, &room, "before").await["id"].as_str().unwrap().to_owned();
    let mut ws = WsClient::signed_in(&app, &ben.token).await;
    ws.subscribe(
        "c",
        "subscription($c: UUID!, $s: Int) { conversationEvents(conversationId: $c, afterSeq: $s) { __typename \
           ... on MessageAddedEvent { message { conversationId seq body } } \
           ... on ReactionsUpdatedEvent { emoji } ... on PinsChangedEvent { pinned } \
           ... on TypingEvent { username } ... on ReadEvent { lastReadSeq } } }",
        json!({"c": room, "s": 0}),
    )
    .await;
    let replayed = ws.next_data("c").await;
    assert_eq!(replayed["conversationEvents"]["message"]["body"], "before", "resumed from seq 0: {replayed}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.send(&ann, &other, "elsewhere").await;
    app.conversation(&ann, &[&ben, &cat], Some("a new one")).await;
    app.send(&ann, &room, "here").await;
    let here = ws.next_data("c").await;
    assert_eq!(here["conversationEvents"]["message"]["body"], "here", "nothing of the other conversations: {here}");
    let (status, _) =
        app.rest("PUT", &format!("/messages/{first}/reactions/%F0%9F%91%8D"), Some(&ann.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(ws.next_data("c").await["conversationEvents"]["emoji"], "👍");
    app.rest("PUT", &format!("/messages/{first}/pin"), Some(&ann.token), None).await;
    assert_eq!(ws.next_data("c").await["conversationEvents"]["pinned"], true);
    app.gql_ok(
        Some(&ann.token),
        "mutation($c: UUID!) { setTyping(conversationId: $c, typing: true) }",
        json!({"c": room}),
    )
    .await;
    assert_eq!(ws.next_data("c").await["conversationEvents"]["username"], "ann");
    app.rest("POST", &format!("/conversations/{room}/read"), Some(&ben.token), Some(json!({"seq": 2}))).await;
    assert_eq!(ws.next_data("c").await["conversationEvents"]["lastReadSeq"], 2);
    // Leaving ends it.
    app.gql_ok(Some(&ben.token), "mutation($c: UUID!) { leaveConversation(conversationId: $c) }", json!({"c": room}))
        .await;
    loop {
        match ws.recv().await {
            Received::Message(m) if m["type"] == "complete" => break,
            Received::Message(m) if m["type"] == "next" => continue,
            other => panic!("expected the subscription to complete, got {other:?}"),
        }
    }
    // An outsider cannot subscribe.
    let mut eves = WsClient::signed_in(&app, &cat.token).await;
    eves.subscribe(
        "x",
        "subscription($c: UUID!) { conversationEvents(conversationId: $c) { __typename } }",
        json!({"c": room}),
    )
    .await;
    match eves.recv().await {
        Received::Message(m) => assert_eq!(m["payload"][0]["extensions"]["code"], "FORBIDDEN", "{m}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

on_both_backends!(
    a_conversation_subscription_carries_its_events_and_no_others,
    small_events_are_shared_but_never_stale,
    a_subscription_stops_when_completed_and_ends_when_its_user_leaves,
    items_are_rendered_once_per_selection,
    subscribers_receive_each_message_once_in_order,
    resume_replays_exactly_what_was_missed_then_goes_live,
    events_follow_membership,
    outsiders_are_refused_and_never_see_an_event,
);

#[tokio::test]
async fn bad_credentials_close_with_4401_and_disabled_users_with_4403() {
    let app = spawn_app_with(Backend::Sqlite, &["--ws-init-timeout-secs", "1"]).await.expect("app");
    let ann = app.register("ann").await;

    let mut ws = WsClient::connect(&app, "/graphql/ws", "graphql-transport-ws", None).await;
    ws.init(json!({})).await;
    assert!(matches!(ws.recv().await, Received::Closed(4401, _)));

    let mut ws = WsClient::connect(&app, "/graphql/ws", "graphql-transport-ws", None).await;
    ws.init(json!({"token": "forged"})).await;
    assert!(matches!(ws.recv().await, Received::Closed(4401, _)));

    // Silence after connecting: the init timeout closes it.
    let mut ws = WsClient::connect(&app, "/graphql/ws", "graphql-transport-ws", None).await;
    assert!(matches!(ws.recv_within(Duration::from_secs(5)).await, Received::Closed(4408, _)));

    // The Authorization header of the upgrade works as well as the payload.
    let mut ws = WsClient::connect(&app, "/graphql/ws", "graphql-transport-ws", Some(&ann.token)).await;
    ws.init(json!({})).await;
    assert!(matches!(ws.recv().await, Received::Message(m) if m["type"] == "connection_ack"));

    set_disabled(&app, "ann", true).await;
    let mut ws = WsClient::connect(&app, "/graphql/ws", "graphql-transport-ws", None).await;
    ws.init(json!({"token": ann.token})).await;
    assert!(matches!(ws.recv().await, Received::Closed(4403, _)));
}

#[tokio::test]
async fn the_legacy_protocol_and_the_graphql_upgrade_work_too() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await.expect("app");
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;

    let mut legacy = WsClient::connect(&app, "/graphql/ws", "graphql-ws", None).await;
    legacy.init(json!({"token": ben.token})).await;
    assert!(matches!(legacy.recv().await, Received::Message(m) if m["type"] == "connection_ack"));
    legacy.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;

    let mut upgraded = WsClient::connect(&app, "/graphql", "graphql-transport-ws", None).await;
    upgraded.init(json!({"token": ben.token})).await;
    assert!(matches!(upgraded.recv().await, Received::Message(m) if m["type"] == "connection_ack"));
    upgraded.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    app.send(&ann, &conv, "hello both").await;
    assert_eq!(legacy.next_data("1").await["messageAdded"]["body"], "hello both");
    assert_eq!(upgraded.next_data("1").await["messageAdded"]["body"], "hello both");

    // Stopping an operation completes it.
    upgraded.send(json!({"type": "complete", "id": "1"})).await;
    app.send(&ann, &conv, "after stop").await;
    assert_eq!(legacy.next_data("1").await["messageAdded"]["body"], "after stop");
    upgraded.assert_silent(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn presence_counts_every_device_and_remembers_last_seen() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await.expect("app");
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    // Presence is shown to people who share a conversation.
    app.conversation(&ann, &[&ben], None).await;
    let mut watcher = WsClient::signed_in(&app, &ann.token).await;
    watcher
        .subscribe(
            "p",
            "subscription($u: [UUID!]!) { presence(userIds: $u) { userId online lastSeenAt } }",
            json!({"u": [ben.id]}),
        )
        .await;
    assert_eq!(watcher.next_data("p").await["presence"]["online"], false);

    let phone = WsClient::signed_in(&app, &ben.token).await;
    assert_eq!(watcher.next_data("p").await["presence"]["online"], true);
    let laptop = WsClient::signed_in(&app, &ben.token).await;
    phone.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let q = "query($u: [UUID!]!) { presence(userIds: $u) { online lastSeenAt } }";
    let now = app.gql_ok(Some(&ann.token), q, json!({"u": [ben.id]})).await;
    assert_eq!(now["presence"][0]["online"], true, "one device left: still online");
    watcher.assert_silent(Duration::from_millis(200)).await;

    laptop.close().await;
    let offline = watcher.next_data("p").await;
    assert_eq!(offline["presence"]["online"], false);
    assert!(offline["presence"]["lastSeenAt"].is_string());
    let (status, rest) = app.rest("GET", &format!("/presence?userIds={}", ben.id), Some(&ann.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(rest[0]["online"], false);
    assert_eq!(rest[0]["lastSeenAt"], offline["presence"]["lastSeenAt"]);
}

#[tokio::test]
async fn typing_expires_by_itself_and_is_rate_limited() {
    let app = spawn_app_with(Backend::Sqlite, &["--rate-typing-per-sec", "1"]).await.expect("app");
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let mut ws = WsClient::signed_in(&app, &ben.token).await;
    ws.subscribe(
        "t",
        "subscription($c: UUID!) { typing(conversationId: $c) { username typing expiresAt } }",
        json!({"c": conv}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let set = "mutation($c: UUID!) { setTyping(conversationId: $c, typing: true) }";
    app.gql_ok(Some(&ann.token), set, json!({"c": conv})).await;
    let started = ws.next_data("t").await;
    assert_eq!(
        (started["typing"]["username"].as_str(), started["typing"]["typing"].as_bool()),
        (Some("ann"), Some(true))
    );
    assert!(started["typing"]["expiresAt"].is_string());
    // No refresh: it ends by itself after about five seconds.
    match ws.recv_within(Duration::from_secs(8)).await {
        Received::Message(m) => assert_eq!(m["payload"]["data"]["typing"]["typing"], false, "{m}"),
        other => panic!("expected typing to end, got {other:?}"),
    }
    // Burst over the limit (1/s, burst 3).
    let mut codes = Vec::new();
    for _ in 0..5 {
        let body = app.gql(Some(&ann.token), set, json!({"c": conv})).await;
        codes.push(crate::helpers::gql_code(&body));
    }
    assert!(codes.iter().any(|c| c == "RATE_LIMITED"), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_dropped_without_delaying_others_and_resumes() {
    let app = spawn_app_with(Backend::Sqlite, &["--ws-queue", "8"]).await.expect("app");
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    // `slow` never reads; `fast` does.
    let mut slow = WsClient::signed_in_slow(&app, &ben.token).await;
    slow.subscribe("s", MESSAGE_ADDED, json!({"c": conv})).await;
    let mut fast = WsClient::signed_in(&app, &ben.token).await;
    fast.subscribe("f", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = app.metrics().await;

    // 600 messages of 16 KB (4000 four-byte characters): far more than socket buffers hold.
    const TOTAL: i64 = 1200;
    let big = "😀".repeat(4000);
    let sender = {
        let (url, token, conv, big) = (app.url(""), ann.token.clone(), conv.clone(), big.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for _ in 0..TOTAL {
                let _ = client
                    .post(format!("{url}/api/v1/conversations/{conv}/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"body": big}))
                    .send()
                    .await;
            }
        })
    };
    for want in 1..=TOTAL {
        let data = fast.next_data("f").await;
        assert_eq!(data["messageAdded"]["seq"], want, "the reader keeps up regardless");
    }
    let _ = sender.await;
    let dropped = |m: &str| metric_sum(m, "syncchat_dropped_events_total", &["slow_consumer"]);
    // The slow client reads nothing until the server gives up on it (its queue stayed full
    // for the 2 s grace). Reading earlier would let it catch up, as a burst is allowed to.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while dropped(&app.metrics().await) <= dropped(&before) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The slow one was cut off: it finds some messages, then the close.
    let mut last = 0;
    let closed = loop {
        match slow.recv().await {
            Received::Message(m) => last = m["payload"]["data"]["messageAdded"]["seq"].as_i64().unwrap_or(last),
            Received::Closed(code, _) => break code,
            Received::TimedOut => {
                let metrics = app.metrics().await;
                let closes: Vec<&str> =
                    metrics.lines().filter(|l| l.starts_with("syncchat_websocket_closed_total")).collect();
                panic!("the slow consumer was never dropped (last seq {last}); {closes:?}");
            }
        }
    };
    // The close frame gets through the backlog: the client learns why.
    assert_eq!(closed, 1013, "closed with {closed}");
    assert!(last < TOTAL);
    let after = app.metrics().await;
    assert!(dropped(&after) > dropped(&before), "the drop is counted");

    // It resumes from what it had and gets the rest, once each.
    let mut again = WsClient::signed_in(&app, &ben.token).await;
    again.subscribe("r", MESSAGE_ADDED, json!({"c": conv, "after": last})).await;
    for want in last + 1..=TOTAL {
        assert_eq!(again.next_data("r").await["messageAdded"]["seq"], want);
    }
}
