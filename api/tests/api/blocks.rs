//! Blocking: what the blocked user can no longer do or see (start a direct conversation, see
//! presence and typing), what the blocker sees (their messages flagged), and that the other
//! way round nothing changes, on both façades.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, count, gql_code, on_both_backends};
use crate::ws_client::WsClient;

const TYPING: &str = "subscription($c: UUID!) { typing(conversationId: $c) { username typing } }";

on_both_backends!(
    a_blocked_user_loses_direct_conversations_presence_and_typing_and_is_flagged,
    hiding_blocked_senders_leaves_their_messages_out_everywhere_i_read
);

async fn a_blocked_user_loses_direct_conversations_presence_and_typing_and_is_flagged(app: TestApp) {
    let (ann, ben, cat) = (app.register("ann").await, app.register("ben").await, app.register("cat").await);
    let group = app.conversation(&ann, &[&ben, &cat], Some("shared")).await;

    // ann blocks ben (REST), idempotently; GraphQL lists him.
    let (status, body) = app.rest("PUT", &format!("/users/{}/block", ben.id), Some(&ann.token), None).await;
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)), "{body}");
    let (_, again) = app.rest("PUT", &format!("/users/{}/block", ben.id), Some(&ann.token), None).await;
    assert_eq!(again["ok"], false, "already blocked");
    let listed = app.gql_ok(Some(&ann.token), "{ blockedUsers { username } }", json!({})).await;
    assert_eq!(listed["blockedUsers"], json!([{"username": "ben"}]));
    let (_, rest_list) = app.rest("GET", "/users/me/blocked", Some(&ann.token), None).await;
    assert_eq!(rest_list["items"][0]["id"], ben.id.as_str());

    // ben cannot start a direct conversation with ann; nothing is created.
    let before = count(&app, "SELECT COUNT(*) AS n FROM conversations").await;
    let (status, body) =
        app.rest("POST", "/conversations", Some(&ben.token), Some(json!({"participantIds": [ann.id]}))).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")), "{body}");
    let gql = app
        .gql(
            Some(&ben.token),
            "mutation($u: [UUID!]!) { createConversation(input: {participantIds: $u}) { id } }",
            json!({"u": [ann.id]}),
        )
        .await;
    assert_eq!(gql_code(&gql), "FORBIDDEN");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM conversations").await, before);

    // ben's messages are flagged for ann only.
    app.send(&ben, &group, "hello all").await;
    let flag = |who: &crate::helpers::TestUser| {
        let (app, token, path) = (&app, who.token.clone(), format!("/conversations/{group}/messages"));
        async move { app.rest("GET", &path, Some(&token), None).await.1["items"][0]["senderBlocked"].clone() }
    };
    assert_eq!(flag(&ann).await, true, "the blocker sees them flagged");
    assert_eq!(flag(&cat).await, false);
    let gql = app
        .gql_ok(
            Some(&ann.token),
            "query($c: UUID!) { messages(conversationId: $c, last: 1) { edges { node { senderBlocked } } } }",
            json!({"c": group}),
        )
        .await;
    assert_eq!(gql["messages"]["edges"][0]["node"]["senderBlocked"], true);

    // ben no longer sees ann's presence; cat does; ann still sees ben's.
    let presence = |who: &crate::helpers::TestUser, of: &str| {
        let (app, token, path) = (&app, who.token.clone(), format!("/presence?userIds={of}"));
        async move { app.rest("GET", &path, Some(&token), None).await.1 }
    };
    assert_eq!(presence(&ben, &ann.id).await, json!([]), "hidden from the blocked user");
    assert_eq!(presence(&cat, &ann.id).await[0]["userId"], ann.id.as_str());
    assert_eq!(presence(&ann, &ben.id).await[0]["userId"], ben.id.as_str(), "the blocker still sees him");

    // ann's typing reaches cat, not ben; ben's typing still reaches ann.
    let mut bens = WsClient::signed_in(&app, &ben.token).await;
    bens.subscribe("t", TYPING, json!({"c": group})).await;
    let mut cats = WsClient::signed_in(&app, &cat.token).await;
    cats.subscribe("t", TYPING, json!({"c": group})).await;
    let mut anns = WsClient::signed_in(&app, &ann.token).await;
    anns.subscribe("t", TYPING, json!({"c": group})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let typing = "mutation($c: UUID!) { setTyping(conversationId: $c, typing: true) }";
    app.gql_ok(Some(&ann.token), typing, json!({"c": group})).await;
    assert_eq!(cats.next_data("t").await["typing"]["username"], "ann");
    bens.assert_silent(Duration::from_millis(400)).await;
    app.gql_ok(Some(&ben.token), typing, json!({"c": group})).await;
    assert_eq!(anns.next_data("t").await["typing"]["username"], "ben", "blocking is one way");

    // Unblocked, all is as before.
    let (status, body) = app.rest("DELETE", &format!("/users/{}/block", ben.id), Some(&ann.token), None).await;
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)));
    let (status, _) =
        app.rest("POST", "/conversations", Some(&ben.token), Some(json!({"participantIds": [ann.id]}))).await;
    assert_eq!(status, 200, "ben may start one again");
    assert_eq!(presence(&ben, &ann.id).await[0]["userId"], ann.id.as_str());
    assert_eq!(flag(&ann).await, false);

    // Bad input.
    let (status, body) = app.rest("PUT", &format!("/users/{}/block", ann.id), Some(&ann.token), None).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_USER_INPUT")), "not oneself: {body}");
    let (status, _) = app.rest("PUT", &format!("/users/{}/block", uuid::Uuid::now_v7()), Some(&ann.token), None).await;
    assert_eq!(status, 404);
    let blocks =
        syncchat_test_support::metric_sum(&app.metrics().await, "syncchat_blocks_total", &["action=\"blocked\""]);
    assert!(blocks >= 1.0, "{blocks}");
}

async fn hiding_blocked_senders_leaves_their_messages_out_everywhere_i_read(app: TestApp) {
    let (ann, ben, cat) = (app.register("ann").await, app.register("ben").await, app.register("cat").await);
    let group = app.conversation(&ann, &[&ben, &cat], Some("shared")).await;
    app.send(&cat, &group, "first from cat").await;
    app.send(&ben, &group, "ben says @ann hello").await;
    let (status, _) = app.rest("PUT", &format!("/users/{}/block", ben.id), Some(&ann.token), None).await;
    assert_eq!(status, 200);
    let bodies = |page: &serde_json::Value, at: &str| -> Vec<String> {
        page["items"].as_array().unwrap().iter().filter_map(|m| m.pointer(at)?.as_str().map(str::to_owned)).collect()
    };

    // The default flags them.
    let (_, flagged) = app.rest("GET", &format!("/conversations/{group}/messages"), Some(&ann.token), None).await;
    assert_eq!(flagged["items"][1]["senderBlocked"], true);
    let me = app.gql_ok(Some(&ann.token), "{ me { settings { blockedMessages readReceipts } } }", json!({})).await;
    assert_eq!(me["me"]["settings"], json!({"blockedMessages": "FLAG", "readReceipts": "PUBLIC"}));

    // Hide (REST), the other setting kept.
    let (status, settings) =
        app.rest("PATCH", "/users/me/settings", Some(&ann.token), Some(json!({"blockedMessages": "hide"}))).await;
    assert_eq!((status, &settings), (200, &json!({"blockedMessages": "hide", "readReceipts": "public"})), "{settings}");
    let (_, history) = app.rest("GET", &format!("/conversations/{group}/messages"), Some(&ann.token), None).await;
    assert_eq!(bodies(&history, "/body"), ["first from cat"]);
    let (_, found) = app.rest("GET", "/search/messages?q=hello", Some(&ann.token), None).await;
    assert_eq!(found["items"], json!([]), "{found}");
    let (_, mentions) = app.rest("GET", "/users/me/mentions", Some(&ann.token), None).await;
    assert_eq!(mentions["items"], json!([]));

    // Live: ben's new message does not come; cat's next one does, with no gap reported.
    let mut anns = WsClient::signed_in(&app, &ann.token).await;
    anns.subscribe(
        "e",
        "subscription { events { __typename ... on MessageAddedEvent { message { body seq } } } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.send(&ben, &group, "hidden live").await;
    app.send(&cat, &group, "cat again").await;
    let live = anns.next_data("e").await;
    assert_eq!(live["events"]["message"], json!({"body": "cat again", "seq": 4}));

    // Someone else, who does not hide him, sees everything; back to flag brings them back.
    let (_, cats) = app.rest("GET", &format!("/conversations/{group}/messages"), Some(&cat.token), None).await;
    assert_eq!(cats["items"].as_array().map(Vec::len), Some(4));
    let flag = app
        .gql_ok(
            Some(&ann.token),
            "mutation { updateSettings(input: {blockedMessages: FLAG}) { blockedMessages } }",
            json!({}),
        )
        .await;
    assert_eq!(flag["updateSettings"]["blockedMessages"], "FLAG");
    let (_, history) = app.rest("GET", &format!("/conversations/{group}/messages"), Some(&ann.token), None).await;
    assert_eq!(history["items"].as_array().map(Vec::len), Some(4));
}
