//! Input Postgres cannot store, refused on both backends before it reaches the database:
//! NUL and other control characters in every text a person types, and far-out timestamps in
//! cursors. Each is `BAD_USER_INPUT` naming the field, on REST and GraphQL, and stores nothing.

use serde_json::{Value, json};

use crate::helpers::{TestApp, count, gql_code, on_both_backends};

on_both_backends!(
    nul_and_control_characters_are_bad_input_on_both_facades_and_store_nothing,
    far_out_timestamps_in_conversation_cursors_are_bad_input,
);

/// Asserts a REST 400 `BAD_USER_INPUT` naming `field`.
fn assert_rest_bad(status: u16, body: &Value, field: &str, what: &str) {
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_USER_INPUT")), "{what}: {body}");
    assert_eq!(body["field"], field, "{what}: {body}");
}

/// Asserts a GraphQL `BAD_USER_INPUT` naming `field`.
fn assert_gql_bad(body: &Value, field: &str, what: &str) {
    assert_eq!(gql_code(body), "BAD_USER_INPUT", "{what}: {body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], field, "{what}: {body}");
}

async fn nul_and_control_characters_are_bad_input_on_both_facades_and_store_nothing(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let sent = app.send(&ann, &conv, "original").await;
    let msg = sent["id"].as_str().expect("id").to_owned();

    // Message bodies: NUL and other control characters are refused, \n and \t are kept.
    for bad in ["a\u{0}b", "bell\u{7}", "esc\u{1b}[31m", "del\u{7f}", "c1\u{85}x"] {
        let path = format!("/conversations/{conv}/messages");
        let (status, body) = app.rest("POST", &path, Some(&ann.token), Some(json!({"body": bad}))).await;
        assert_rest_bad(status, &body, "body", &format!("REST send {bad:?}"));
        let gql = app
            .gql(
                Some(&ann.token),
                "mutation($c: UUID!, $b: String!) { sendMessage(input: {conversationId: $c, body: $b}) { seq } }",
                json!({"c": conv, "b": bad}),
            )
            .await;
        assert_gql_bad(&gql, "body", &format!("GraphQL send {bad:?}"));
        let (status, body) =
            app.rest("PATCH", &format!("/messages/{msg}"), Some(&ann.token), Some(json!({"body": bad}))).await;
        assert_rest_bad(status, &body, "body", &format!("REST edit {bad:?}"));
        let gql = app
            .gql(
                Some(&ann.token),
                "mutation($m: UUID!, $b: String!) { editMessage(id: $m, body: $b) { body } }",
                json!({"m": msg, "b": bad}),
            )
            .await;
        assert_gql_bad(&gql, "body", &format!("GraphQL edit {bad:?}"));
    }
    // A client message id with a NUL (Postgres cannot store it) is refused the same way.
    let path = format!("/conversations/{conv}/messages");
    let (status, body) =
        app.rest("POST", &path, Some(&ann.token), Some(json!({"body": "ok", "clientMessageId": "c\u{0}1"}))).await;
    assert_rest_bad(status, &body, "clientMessageId", "REST send with a NUL clientMessageId");
    let kept = app.send(&ann, &conv, "two\nlines\tand a tab").await;
    assert_eq!(kept["body"], "two\nlines\tand a tab");
    let (_, history) = app.rest("GET", &format!("/conversations/{conv}/messages"), Some(&ben.token), None).await;
    let bodies: Vec<&str> =
        history["items"].as_array().expect("items").iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies.len(), 2, "only the two good messages were stored: {history}");
    assert!(bodies.contains(&"original"), "the edits changed nothing: {bodies:?}");

    // Titles.
    let (status, body) = app
        .rest("POST", "/conversations", Some(&ann.token), Some(json!({"participantIds": [], "title": "t\u{0}"})))
        .await;
    assert_rest_bad(status, &body, "title", "REST title");
    let gql = app
        .gql(
            Some(&ann.token),
            "mutation($t: String) { createConversation(input: {participantIds: [], title: $t}) { id } }",
            json!({"t": "t\u{0}x"}),
        )
        .await;
    assert_gql_bad(&gql, "title", "GraphQL title");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM conversations").await, 1);

    // Registration: display name (and the other fields) with NUL.
    let users = count(&app, "SELECT COUNT(*) AS n FROM users").await;
    for (field, input) in [
        (
            "displayName",
            json!({"username": "cat", "email": "cat@example.com", "password": "correct horse battery", "displayName": "C\u{0}at"}),
        ),
        ("username", json!({"username": "cat\u{0}", "email": "cat@example.com", "password": "correct horse battery"})),
        ("email", json!({"username": "cat", "email": "cat\u{0}@example.com", "password": "correct horse battery"})),
    ] {
        let (status, body) = app.rest("POST", "/auth/register", None, Some(input.clone())).await;
        assert_rest_bad(status, &body, field, "REST register");
        let gql = app
            .gql(None, "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }", json!({"i": input}))
            .await;
        assert_gql_bad(&gql, field, "GraphQL register");
    }
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM users").await, users);

    // Login and device names.
    let sessions = count(&app, "SELECT COUNT(*) AS n FROM sessions").await;
    for (field, input) in [
        ("login", json!({"login": "ann\u{0}", "password": "correct horse battery"})),
        ("login", json!({"login": "ann\u{0}@example.com", "password": "correct horse battery"})),
        ("device", json!({"login": "ann", "password": "correct horse battery", "device": "phone\u{0}"})),
        ("device", json!({"login": "ann", "password": "correct horse battery", "device": "phone\u{1b}"})),
    ] {
        let (status, body) = app.rest("POST", "/auth/login", None, Some(input.clone())).await;
        assert_rest_bad(status, &body, field, &format!("REST login {input}"));
        let gql =
            app.gql(None, "mutation($i: LoginInput!) { login(input: $i) { accessToken } }", json!({"i": input})).await;
        assert_gql_bad(&gql, field, &format!("GraphQL login {input}"));
    }
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM sessions").await, sessions, "no session was opened");

    // User search and its cursor.
    for (field, query) in [("search", "search=a%00"), ("after", "after=a%00"), ("search", "search=a%07")] {
        let (status, body) = app.rest("GET", &format!("/users?{query}"), Some(&ann.token), None).await;
        assert_rest_bad(status, &body, field, &format!("REST users?{query}"));
    }
    for (field, vars) in [("search", json!({"s": "a\u{0}", "a": null})), ("after", json!({"s": null, "a": "a\u{0}"}))] {
        let gql = app
            .gql(
                Some(&ann.token),
                "query($s: String, $a: String) { users(search: $s, after: $a) { edges { node { id } } } }",
                vars,
            )
            .await;
        assert_gql_bad(&gql, field, "GraphQL users");
    }
}

/// A conversation-list cursor in the server's own format at `micros` since the epoch.
fn activity_cursor(micros: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{micros}|{}", uuid::Uuid::now_v7()))
}

async fn far_out_timestamps_in_conversation_cursors_are_bad_input(app: TestApp) {
    let ann = app.register("ann").await;
    app.conversation(&ann, &[], Some("notes")).await;
    // About 100,000 BC and AD 200,000: chrono takes them, Postgres cannot.
    for micros in [-3_217_862_419_200_000_000_i64, 6_249_223_680_000_000_000] {
        let cursor = activity_cursor(micros);
        let (status, body) = app.rest("GET", &format!("/conversations?after={cursor}"), Some(&ann.token), None).await;
        assert_rest_bad(status, &body, "after", &format!("REST cursor at {micros}"));
        let gql = app
            .gql(
                Some(&ann.token),
                "query($a: String) { conversations(first: 10, after: $a) { edges { node { id } } } }",
                json!({"a": cursor}),
            )
            .await;
        assert_gql_bad(&gql, "after", &format!("GraphQL cursor at {micros}"));
    }
    // A cursor the server made still pages.
    let first =
        app.gql_ok(Some(&ann.token), "{ conversations(first: 1) { edges { cursor node { id } } } }", json!({})).await;
    let cursor = first["conversations"]["edges"][0]["cursor"].as_str().expect("cursor").to_owned();
    let (status, _) = app.rest("GET", &format!("/conversations?after={cursor}"), Some(&ann.token), None).await;
    assert_eq!(status, 200);
}
