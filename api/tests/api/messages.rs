//! Messages: send, history paging by seq, idempotent retries, edit/delete, read markers,
//! validation, authorization and persistence across restarts.

use serde_json::{Value, json};
use syncchat_test_support::metric_sum;

use crate::helpers::{TestApp, gql_code, on_both_backends};

const SEND: &str = "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq body clientMessageId sender { id username } } }";

fn seqs(items: &Value) -> Vec<i64> {
    items.as_array().into_iter().flatten().filter_map(|m| m["seq"].as_i64()).collect()
}

async fn history_pages_by_seq_without_gaps_or_repeats(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    for i in 1..=120 {
        let sender = if i % 2 == 0 { &ann } else { &ben };
        let sent = app.send(sender, &conv, &format!("message {i}")).await;
        assert_eq!(sent["seq"], i);
    }
    // Default page: the newest 50, ascending.
    let (_, newest) = app.rest("GET", &format!("/conversations/{conv}/messages"), Some(&ann.token), None).await;
    assert_eq!(seqs(&newest["items"]), (71..=120).collect::<Vec<_>>());
    assert_eq!(newest["items"][49]["body"], "message 120");

    // Backwards with `before` until the start.
    let mut collected = seqs(&newest["items"]);
    let mut cursor = newest["nextCursor"].as_str().map(str::to_owned);
    while let Some(before) = cursor {
        let (_, page) = app
            .rest("GET", &format!("/conversations/{conv}/messages?before={before}&limit=50"), Some(&ann.token), None)
            .await;
        let mut older = seqs(&page["items"]);
        older.extend(collected);
        collected = older;
        cursor = page["nextCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(collected, (1..=120).collect::<Vec<_>>());

    // Forwards with `after` over GraphQL.
    let q = "query($c: UUID!, $after: Int) { messages(conversationId: $c, after: $after, first: 50) { edges { cursor node { seq } } pageInfo { hasNextPage } } }";
    let mut forward = Vec::new();
    let mut after = json!(0);
    loop {
        let data = app.gql_ok(Some(&ben.token), q, json!({"c": conv, "after": after})).await;
        let edges = data["messages"]["edges"].as_array().cloned().unwrap_or_default();
        forward.extend(edges.iter().filter_map(|e| e["node"]["seq"].as_i64()));
        if data["messages"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = json!(edges.last().and_then(|e| e["cursor"].as_str()).and_then(|c| c.parse::<i64>().ok()));
    }
    assert_eq!(forward, (1..=120).collect::<Vec<_>>());

    // Limits: max 200, and nonsense is refused.
    let (_, all) = app.rest("GET", &format!("/conversations/{conv}/messages?limit=200"), Some(&ann.token), None).await;
    assert_eq!(seqs(&all["items"]).len(), 120);
    for bad in ["limit=201", "limit=0", "before=-5"] {
        let (status, body) =
            app.rest("GET", &format!("/conversations/{conv}/messages?{bad}"), Some(&ann.token), None).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("BAD_USER_INPUT")), "{bad}");
    }
}

async fn a_retried_send_returns_the_first_message_and_stores_nothing_twice(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let input = json!({"input": {"conversationId": conv, "body": "once", "clientMessageId": "c-1"}});
    let first = app.gql_ok(Some(&ann.token), SEND, input.clone()).await;
    let again = app.gql_ok(Some(&ann.token), SEND, input).await;
    let (status, rest) = app
        .rest(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some(&ann.token),
            Some(json!({"body": "once", "clientMessageId": "c-1"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["sendMessage"]["id"], again["sendMessage"]["id"]);
    assert_eq!(first["sendMessage"]["id"], rest["id"]);
    assert_eq!(first["sendMessage"]["seq"], 1);
    // Concurrent retries also collapse into one.
    let payload = json!({"body": "racy", "clientMessageId": "c-2"});
    let path = format!("/conversations/{conv}/messages");
    let (a, b, c) = tokio::join!(
        app.rest("POST", &path, Some(&ann.token), Some(payload.clone())),
        app.rest("POST", &path, Some(&ann.token), Some(payload.clone())),
        app.rest("POST", &path, Some(&ann.token), Some(payload.clone())),
    );
    assert_eq!((a.0, b.0, c.0), (200, 200, 200), "{a:?} {b:?} {c:?}");
    assert!(a.1["id"] == b.1["id"] && b.1["id"] == c.1["id"]);
    let (_, history) = app.rest("GET", &format!("/conversations/{conv}/messages"), Some(&ben.token), None).await;
    assert_eq!(seqs(&history["items"]), vec![1, 2], "{history}");
}

async fn concurrent_sends_get_distinct_consecutive_seqs(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let sends = (0..20).map(|i| {
        let (app, user, conv) = (&app, if i % 2 == 0 { &ann } else { &ben }, &conv);
        async move { app.send(user, conv, &format!("parallel {i}")).await["seq"].as_i64().unwrap_or(-1) }
    });
    let mut got = futures_util::future::join_all(sends).await;
    got.sort_unstable();
    assert_eq!(got, (1..=20).collect::<Vec<_>>());
}

/// Many sends at once into two conversations, one from an outsider and two retries of one
/// client message id among them: each gets its own answer, each conversation's seqs run
/// 1..n in the order the answers were given, every stored message is readable, and on
/// Postgres the sends were stored several per statement (group commit).
async fn concurrent_sends_are_grouped_without_mixing_answers(app: TestApp) {
    let (ann, ben, eve) = (app.register("ann").await, app.register("ben").await, app.register("eve").await);
    let first = app.conversation(&ann, &[&ben], None).await;
    let second = app.conversation(&ben, &[&ann], Some("second")).await;
    let url = |c: &str| app.url(&format!("/api/v1/conversations/{c}/messages"));
    let post = |user: &crate::helpers::TestUser, conv: String, body: Value| {
        let (client, url, token) = (app.client.clone(), url(&conv), user.token.clone());
        async move {
            let response = client.post(url).bearer_auth(token).json(&body).send().await.expect("send");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let mut sends = Vec::new();
    for i in 0..60 {
        let (user, conv) = match i % 3 {
            0 => (&ann, first.clone()),
            1 => (&ben, first.clone()),
            _ => (&ben, second.clone()),
        };
        sends.push(post(user, conv, json!({"body": format!("m{i}")})));
    }
    sends.push(post(&eve, first.clone(), json!({"body": "outsider"})));
    sends.push(post(&ann, second.clone(), json!({"body": "once", "clientMessageId": "same"})));
    sends.push(post(&ann, second.clone(), json!({"body": "once", "clientMessageId": "same"})));
    let answers = futures_util::future::join_all(sends).await;

    let (outsider, retries) = (&answers[60], &answers[61..]);
    assert_eq!(outsider.0, 404, "{outsider:?}");
    assert!(retries.iter().all(|(status, _)| *status == 200 || *status == 201), "{retries:?}");
    assert_eq!(retries[0].1["id"], retries[1].1["id"], "a retry answers with the first message");
    for (i, (status, body)) in answers[..60].iter().enumerate() {
        assert!(*status == 200 || *status == 201, "send {i}: {status} {body}");
        assert_eq!(body["body"], format!("m{i}"), "send {i} got another send's answer");
    }
    for (conv, expected) in [(&first, 40), (&second, 21)] {
        let mut seqs: Vec<i64> = answers
            .iter()
            .filter(|(_, b)| b["conversationId"].as_str() == Some(conv.as_str()))
            .map(|(_, b)| b["seq"].as_i64().unwrap_or(-1))
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs, (1..=expected).collect::<Vec<_>>(), "conversation {conv}");
        let (_, page) =
            app.rest("GET", &format!("/conversations/{conv}/messages?limit=100"), Some(&ben.token), None).await;
        assert_eq!(page["items"].as_array().map(Vec::len), Some(expected as usize));
    }
    if app.backend == crate::helpers::Backend::Postgres {
        let metrics = app.metrics().await;
        let statements = metric_sum(&metrics, "syncchat_send_batch_size_count", &[]);
        let single = metric_sum(&metrics, "syncchat_send_batch_size_bucket", &["le=\"1\""]);
        assert!(
            statements > 0.0 && single < statements,
            "no send was grouped: {statements} statements, {single} alone"
        );
    }
}

async fn edit_and_delete_own_messages_only(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let msg = app.send(&ann, &conv, "frist").await;
    let id = msg["id"].as_str().unwrap_or_default().to_owned();

    let edited = app
        .gql_ok(
            Some(&ann.token),
            "mutation($id: UUID!) { editMessage(id: $id, body: \" first \") { body editedAt seq } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(edited["editMessage"]["body"], "first");
    assert!(edited["editMessage"]["editedAt"].is_string());
    assert_eq!(edited["editMessage"]["seq"], 1);

    let (status, body) =
        app.rest("PATCH", &format!("/messages/{id}"), Some(&ben.token), Some(json!({"body": "hijack"}))).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")));
    let (status, _) = app.rest("DELETE", &format!("/messages/{id}"), Some(&ben.token), None).await;
    assert_eq!(status, 403);
    let (status, body) =
        app.rest("PATCH", &format!("/messages/{id}"), Some(&ann.token), Some(json!({"body": "   "}))).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_USER_INPUT")));

    let (status, deleted) = app.rest("DELETE", &format!("/messages/{id}"), Some(&ann.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["body"], Value::Null);
    assert!(deleted["deletedAt"].is_string());
    let (_, history) = app.rest("GET", &format!("/conversations/{conv}/messages"), Some(&ben.token), None).await;
    assert_eq!(history["items"][0]["body"], Value::Null, "the body is gone for everyone");
    assert_eq!(history["items"][0]["seq"], 1, "the seq stays: no hole in history");
    let (status, body) =
        app.rest("PATCH", &format!("/messages/{id}"), Some(&ann.token), Some(json!({"body": "back"}))).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("CONFLICT")));
    assert_eq!(
        app.rest("DELETE", &format!("/messages/{id}"), Some(&ann.token), None).await.0,
        200,
        "delete is idempotent"
    );
}

async fn bodies_are_validated_and_bad_ones_write_nothing(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    for body in [String::new(), "  \n\t ".to_owned(), "x".repeat(4001)] {
        let (status, resp) = app
            .rest("POST", &format!("/conversations/{conv}/messages"), Some(&ann.token), Some(json!({"body": body})))
            .await;
        assert_eq!(
            (status, resp["code"].as_str(), resp["field"].as_str()),
            (400, Some("BAD_USER_INPUT"), Some("body"))
        );
        let gql = app.gql(Some(&ann.token), SEND, json!({"input": {"conversationId": conv, "body": body}})).await;
        assert_eq!(gql_code(&gql), "BAD_USER_INPUT");
    }
    let long_id = "c".repeat(65);
    let (status, _) = app
        .rest(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some(&ann.token),
            Some(json!({"body": "ok", "clientMessageId": long_id})),
        )
        .await;
    assert_eq!(status, 400);
    let (_, conv_view) = app.rest("GET", &format!("/conversations/{conv}"), Some(&ann.token), None).await;
    assert_eq!(conv_view["lastSeq"], 0, "no seq was used up");
    // 4000 characters as sent is fine (spaces around it are trimmed, but they count).
    let sent = app.send(&ann, &conv, &format!("  {}  ", "é".repeat(3996))).await;
    assert_eq!(sent["body"].as_str().map(|b| b.chars().count()), Some(3996));
    let padded = format!(" {}", "é".repeat(4000));
    let (status, _) = app
        .rest("POST", &format!("/conversations/{conv}/messages"), Some(&ann.token), Some(json!({"body": padded})))
        .await;
    assert_eq!(status, 400, "4001 characters as sent");
    let gql = app.gql(Some(&ann.token), SEND, json!({"input": {"conversationId": conv, "body": padded}})).await;
    assert_eq!(gql_code(&gql), "BAD_USER_INPUT", "the same on GraphQL");
    assert_eq!(sent["seq"], 1);
}

async fn outsiders_can_neither_read_nor_write(app: TestApp) {
    let (ann, ben, eve) = (app.register("ann").await, app.register("ben").await, app.register("eve").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let msg = app.send(&ann, &conv, "secret").await;
    let id = msg["id"].as_str().unwrap_or_default().to_owned();

    let checks = [
        app.rest("GET", &format!("/conversations/{conv}/messages"), Some(&eve.token), None).await,
        app.rest("POST", &format!("/conversations/{conv}/messages"), Some(&eve.token), Some(json!({"body": "hi"})))
            .await,
        app.rest("PATCH", &format!("/messages/{id}"), Some(&eve.token), Some(json!({"body": "x"}))).await,
        app.rest("DELETE", &format!("/messages/{id}"), Some(&eve.token), None).await,
        app.rest("POST", &format!("/conversations/{conv}/read"), Some(&eve.token), Some(json!({"seq": 1}))).await,
    ];
    for (status, body) in checks {
        assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
        assert!(!body.to_string().contains("secret"));
    }
    let q = "query($c: UUID!) { messages(conversationId: $c) { edges { node { body } } } }";
    assert_eq!(gql_code(&app.gql(Some(&eve.token), q, json!({"c": conv})).await), "NOT_FOUND");
    let send = app.gql(Some(&eve.token), SEND, json!({"input": {"conversationId": conv, "body": "hi"}})).await;
    assert_eq!(gql_code(&send), "NOT_FOUND");
    let (_, history) = app.rest("GET", &format!("/conversations/{conv}/messages"), Some(&ann.token), None).await;
    assert_eq!(seqs(&history["items"]), vec![1], "nothing was written by the outsider");
}

async fn mark_read_moves_forward_only(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    for i in 0..5 {
        app.send(&ben, &conv, &format!("m{i}")).await;
    }
    let read_path = format!("/conversations/{conv}/read");
    let read = |seq: i64| app.rest("POST", &read_path, Some(&ann.token), Some(json!({"seq": seq})));
    let (status, state) = read(3).await;
    assert_eq!((status, state["lastReadSeq"].as_i64(), state["unreadCount"].as_i64()), (200, Some(3), Some(2)));
    let (_, state) = read(1).await;
    assert_eq!((state["lastReadSeq"].as_i64(), state["unreadCount"].as_i64()), (Some(3), Some(2)), "never backwards");
    let (status, body) = read(6).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("CONFLICT")), "beyond the last message");
    let (status, body) = read(-1).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_USER_INPUT")));
    let data = app
        .gql_ok(
            Some(&ann.token),
            "mutation($c: UUID!) { markRead(conversationId: $c, seq: 5) { lastReadSeq unreadCount } }",
            json!({"c": conv}),
        )
        .await;
    assert_eq!(data["markRead"], json!({"lastReadSeq": 5, "unreadCount": 0}));
    let (_, view) = app.rest("GET", &format!("/conversations/{conv}"), Some(&ann.token), None).await;
    assert_eq!((view["lastReadSeq"].as_i64(), view["unreadCount"].as_i64()), (Some(5), Some(0)));
    // Your own messages are never unread for you.
    app.send(&ann, &conv, "mine").await;
    let (_, view) = app.rest("GET", &format!("/conversations/{conv}"), Some(&ann.token), None).await;
    assert_eq!(view["unreadCount"], 0);
}

async fn data_survives_a_restart(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    app.send(&ann, &conv, "still here?").await;
    let app = app.restart().await;
    let (status, login) = app
        .rest("POST", "/auth/login", None, Some(json!({"login": "ben", "password": crate::helpers::PASSWORD})))
        .await;
    assert_eq!(status, 200);
    let token = login["accessToken"].as_str();
    let (_, history) = app.rest("GET", &format!("/conversations/{conv}/messages"), token, None).await;
    assert_eq!(history["items"][0]["body"], "still here?");
    // Refresh tokens from before the restart keep working.
    let (status, _) = app.rest("POST", "/auth/refresh", None, Some(json!({"refreshToken": ann.refresh}))).await;
    assert_eq!(status, 200);
}

on_both_backends!(
    history_pages_by_seq_without_gaps_or_repeats,
    a_retried_send_returns_the_first_message_and_stores_nothing_twice,
    concurrent_sends_get_distinct_consecutive_seqs,
    concurrent_sends_are_grouped_without_mixing_answers,
    edit_and_delete_own_messages_only,
    bodies_are_validated_and_bad_ones_write_nothing,
    outsiders_can_neither_read_nor_write,
    mark_read_moves_forward_only,
    data_survives_a_restart,
);
