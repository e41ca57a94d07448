//! Apps, API keys, scopes and bot users as an integrator and an admin see them: a key is
//! shown once, acts as the app's bot (on REST, GraphQL and the WebSocket) only where the bot
//! was added, only within its scopes, and stops working at once when revoked, on every node.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, count, create_app, gql_code, make_admin, on_both_backends};
use crate::ws_client::{Received, WsClient};

const SEND: &str =
    "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq sender { username isBot } } }";

async fn admin(app: &TestApp) -> TestUser {
    let root = app.register("root").await;
    make_admin(app, "root").await;
    root
}

async fn an_admin_makes_an_app_whose_bot_works_only_where_it_was_added(app: TestApp) {
    let root = admin(&app).await;
    let (made, key) =
        create_app(&app, &root, "Help Desk", &["conversations:read", "messages:read", "messages:write"]).await;
    assert!(key.starts_with("sck_") && key.len() > 50, "{key}");
    assert_eq!(made["botUser"]["isBot"], true);
    assert_eq!(made["botUser"]["username"], "help_desk_bot");
    assert_eq!(made["scopes"], json!(["conversations:read", "messages:read", "messages:write"]));
    let prefix = made["key"]["prefix"].as_str().unwrap();
    assert!(key.starts_with(&format!("sck_{prefix}_")));
    // Lists show the prefix, never the secret.
    let (status, list) = app.rest("GET", "/apps", Some(&root.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"][0]["keys"][0]["prefix"], prefix);
    assert!(!list.to_string().contains(&key[prefix.len() + 5..]), "no secret in lists: {list}");

    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let bot =
        TestUser { id: made["botUser"]["id"].as_str().unwrap().to_owned(), token: key.clone(), refresh: String::new() };
    let room = app.conversation(&ann, &[&ben, &bot], Some("support")).await;
    let elsewhere = app.conversation(&ann, &[&ben], Some("private")).await;
    app.send(&ann, &room, "hello bot").await;

    // The bot reads and writes where it was added, over REST and GraphQL.
    let (status, page) = app.rest("GET", &format!("/conversations/{room}/messages"), Some(&key), None).await;
    assert_eq!((status, page["items"][0]["body"].as_str()), (200, Some("hello bot")), "{page}");
    let sent = app.send(&bot, &room, "hi, how can I help?").await;
    assert_eq!(
        (sent["sender"]["isBot"].as_bool(), sent["sender"]["username"].as_str()),
        (Some(true), Some("help_desk_bot"))
    );
    let via_gql =
        app.gql_ok(Some(&key), SEND, json!({"input": {"conversationId": room, "body": "over GraphQL"}})).await;
    assert_eq!(via_gql["sendMessage"]["sender"]["isBot"], true);
    let (_, history) = app.rest("GET", &format!("/conversations/{room}/messages"), Some(&ann.token), None).await;
    let senders: Vec<Value> =
        history["items"].as_array().unwrap().iter().map(|m| m["sender"]["isBot"].clone()).collect();
    assert_eq!(senders, vec![json!(false), json!(true), json!(true)], "history says who is a bot");
    // ...and nowhere else.
    let (status, body) = app.rest("GET", &format!("/conversations/{elsewhere}/messages"), Some(&key), None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
    let (_, convs) = app.rest("GET", "/conversations", Some(&key), None).await;
    assert_eq!(convs["items"].as_array().map(Vec::len), Some(1));
    let me = app.gql_ok(Some(&key), "{ me { username role } }", json!({})).await;
    assert_eq!(me["me"]["role"], "BOT");

    // A bot has no password; a non-admin cannot make apps; bad input stores nothing.
    let (status, body) = app
        .rest(
            "POST",
            "/auth/login",
            None,
            Some(json!({"login": "help_desk_bot", "password": crate::helpers::PASSWORD})),
        )
        .await;
    assert_eq!(status, 401);
    assert!(body["detail"].as_str().unwrap().contains("API keys"), "{body}");
    let apps_before = count(&app, "SELECT COUNT(*) AS n FROM apps").await;
    let users_before = count(&app, "SELECT COUNT(*) AS n FROM users").await;
    let (status, body) =
        app.rest("POST", "/apps", Some(&ann.token), Some(json!({"name": "x", "scopes": ["users:read"]}))).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")));
    let (status, body) =
        app.rest("POST", "/apps", Some(&key), Some(json!({"name": "x", "scopes": ["users:read"]}))).await;
    assert_eq!(status, 403, "a key is never an admin: {body}");
    for (input, field) in [
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "  ", "scopes": ["users:read"]}), "name"),
        (json!({"name": "x".repeat(101), "scopes": ["users:read"]}), "name"),
    ] {
        let (status, body) = app.rest("POST", "/apps", Some(&root.token), Some(input)).await;
        assert_eq!((status, body["field"].as_str()), (400, Some(field)), "{body}");
    }
    // Scopes are an enum in the spec: an unknown one is refused by name.
    let (status, body) =
        app.rest("POST", "/apps", Some(&root.token), Some(json!({"name": "x", "scopes": ["admin"]}))).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_USER_INPUT")), "{body}");
    assert!(body["detail"].as_str().unwrap_or_default().contains("\"admin\""), "{body}");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM apps").await, apps_before);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM users").await, users_before);
    let (status, body) = app.rest("GET", "/users/me", Some("sck_nosuchprefix_secret"), None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHENTICATED")));
}

async fn a_key_without_a_scope_is_refused_naming_it_on_every_surface(app: TestApp) {
    let root = admin(&app).await;
    let (made, reader) = create_app(&app, &root, "reader", &["conversations:read", "messages:read"]).await;
    let (_, writer) = create_app(&app, &root, "writer", &["messages:write"]).await;
    let ann = app.register("ann").await;
    let bot = |made: &Value, key: &str| TestUser {
        id: made["botUser"]["id"].as_str().unwrap().to_owned(),
        token: key.to_owned(),
        refresh: String::new(),
    };
    let (_, wmade) = app.rest("GET", "/apps", Some(&root.token), None).await;
    let writer_app = wmade["items"].as_array().unwrap().iter().find(|a| a["name"] == "writer").unwrap().clone();
    let room = app.conversation(&ann, &[&bot(&made, &reader), &bot(&writer_app, &writer)], None).await;

    let (status, body) =
        app.rest("POST", &format!("/conversations/{room}/messages"), Some(&reader), Some(json!({"body": "x"}))).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")));
    assert!(body["detail"].as_str().unwrap().contains("messages:write"), "{body}");
    let gql = app.gql(Some(&reader), SEND, json!({"input": {"conversationId": room, "body": "x"}})).await;
    assert_eq!(gql_code(&gql), "FORBIDDEN");
    assert!(gql.to_string().contains("messages:write"), "{gql}");
    let (status, body) = app.rest("GET", &format!("/conversations/{room}/messages"), Some(&writer), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("messages:read"));
    let (status, body) = app.rest("GET", "/users", Some(&reader), None).await;
    assert!(status == 403 && body["detail"].as_str().unwrap().contains("users:read"), "{body}");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM messages").await, 0, "nothing was stored");
    // The writer sends (it needs no read scope for that).
    let (status, _) =
        app.rest("POST", &format!("/conversations/{room}/messages"), Some(&writer), Some(json!({"body": "ok"}))).await;
    assert_eq!(status, 200);

    // Over the WebSocket: the key signs in through connection_init; a subscription needs
    // messages:read.
    let mut ws = WsClient::signed_in(&app, &writer).await;
    ws.subscribe("1", "subscription($c: ID!) { messageAdded(conversationId: $c) { seq } }", json!({"c": room})).await;
    let refused = ws.recv_within(Duration::from_secs(5)).await;
    assert!(matches!(&refused, Received::Message(m) if m.to_string().contains("messages:read")), "{refused:?}");
    let mut ws = WsClient::signed_in(&app, &reader).await;
    ws.subscribe("1", "subscription($c: ID!) { messageAdded(conversationId: $c) { seq body } }", json!({"c": room}))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.send(&ann, &room, "live").await;
    let live = ws.next_data("1").await;
    assert_eq!(live["messageAdded"]["body"], "live", "{live}");
}

async fn keys_rotate_and_a_revoked_key_stops_at_once(app: TestApp) {
    let root = admin(&app).await;
    let (made, first) = create_app(&app, &root, "rotator", &["messages:read", "conversations:read"]).await;
    let id = made["id"].as_str().unwrap();
    let (status, second) = app.rest("POST", &format!("/apps/{id}/keys"), Some(&root.token), None).await;
    assert_eq!(status, 200, "{second}");
    let second_key = second["secret"].as_str().unwrap().to_owned();
    for key in [&first, &second_key] {
        let (status, _) = app.rest("GET", "/conversations", Some(key), None).await;
        assert_eq!(status, 200, "both keys are live");
    }
    let mut ws = WsClient::signed_in(&app, &first).await;
    let first_id = made["key"]["id"].as_str().unwrap();
    let (status, body) = app.rest("DELETE", &format!("/apps/{id}/keys/{first_id}"), Some(&root.token), None).await;
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)));
    let (status, body) = app.rest("GET", "/conversations", Some(&first), None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHENTICATED")), "revoked at once: {body}");
    let closed = ws.recv_within(Duration::from_secs(5)).await;
    assert!(matches!(closed, Received::Closed(4401, _)), "its connection is closed: {closed:?}");
    let (status, _) = app.rest("GET", "/conversations", Some(&second_key), None).await;
    assert_eq!(status, 200, "the other key still works");
    let (_, keys) = app.rest("GET", &format!("/apps/{id}/keys"), Some(&root.token), None).await;
    let revoked: Vec<bool> = keys["items"].as_array().unwrap().iter().map(|k| k["revokedAt"].is_string()).collect();
    assert_eq!(revoked, vec![true, false]);
    assert!(keys["items"][1]["lastUsedAt"].is_string(), "last use is shown: {keys}");

    let (status, _) = app.rest("DELETE", &format!("/apps/{id}"), Some(&root.token), None).await;
    assert_eq!(status, 200);
    let (status, _) = app.rest("GET", "/conversations", Some(&second_key), None).await;
    assert_eq!(status, 401, "a deleted app's keys stop working");
    let audit = count(&app, "SELECT COUNT(*) AS n FROM admin_audit WHERE action IN ('app.create', 'key.create', 'key.revoke', 'app.delete')").await;
    assert_eq!(audit, 5, "create, its first key, a second key, a revocation, the deletion");
    // Each key's first use is in the audit log once, however often it was used.
    let first_uses = count(&app, "SELECT COUNT(*) AS n FROM admin_audit WHERE action = 'key.first_use'").await;
    assert_eq!(first_uses, 2, "both keys were used, several times");
}

on_both_backends!(
    an_admin_makes_an_app_whose_bot_works_only_where_it_was_added,
    a_key_without_a_scope_is_refused_naming_it_on_every_surface,
    keys_rotate_and_a_revoked_key_stops_at_once,
);

/// Two nodes on Postgres and Redis: a key revoked through one is refused by the other at once,
/// and the other closes the WebSocket opened with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_on_every_node() {
    let Some(nodes) = crate::helpers::spawn_cluster(2, &[]).await else { return };
    let root = admin(&nodes[0]).await;
    let (made, key) = create_app(&nodes[0], &root, "fleet", &["conversations:read", "messages:read"]).await;
    let (status, _) = nodes[1].rest("GET", "/conversations", Some(&key), None).await;
    assert_eq!(status, 200, "the key works on the other node");
    let mut ws = WsClient::signed_in(&nodes[1], &key).await;
    let (id, key_id) = (made["id"].as_str().unwrap(), made["key"]["id"].as_str().unwrap());
    let (status, _) = nodes[0].rest("DELETE", &format!("/apps/{id}/keys/{key_id}"), Some(&root.token), None).await;
    assert_eq!(status, 200);
    let mut refused = false;
    for _ in 0..20 {
        let (status, _) = nodes[1].rest("GET", "/conversations", Some(&key), None).await;
        if status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "node B refuses the key within a second");
    let closed = ws.recv_within(Duration::from_secs(5)).await;
    assert!(matches!(closed, Received::Closed(4401, _)), "{closed:?}");
}
