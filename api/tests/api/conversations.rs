//! Conversations: direct dedupe, groups, membership, listing by activity, and privacy.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, gql_code, on_both_backends};

const CREATE: &str = "mutation($input: CreateConversationInput!) { createConversation(input: $input) { id kind title participants { user { username } } } }";

async fn a_direct_conversation_exists_once_per_pair(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let first = app.conversation(&ann, &[&ben], None).await;
    let again = app.conversation(&ann, &[&ben], None).await;
    let reverse = app.conversation(&ben, &[&ann], None).await;
    let via_gql =
        app.gql_ok(Some(&ben.token), CREATE, json!({"input": {"participantIds": [ann.id], "kind": "DIRECT"}})).await;
    assert_eq!(again, first);
    assert_eq!(reverse, first);
    assert_eq!(via_gql["createConversation"]["id"], first.as_str());
    assert_eq!(via_gql["createConversation"]["kind"], "DIRECT");
    // Concurrent creations of a new pair still end in one conversation.
    let cat = app.register("cat").await;
    let (to_cat, to_ann) = ([&cat], [&ann]);
    let (a, b) = tokio::join!(app.conversation(&ann, &to_cat, None), app.conversation(&cat, &to_ann, None));
    assert_eq!(a, b);
    let (_, list) = app.rest("GET", "/conversations", Some(&ann.token), None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list}");
}

async fn direct_needs_exactly_one_other_person(app: TestApp) {
    let (ann, ben, cat) = (app.register("ann").await, app.register("ben").await, app.register("cat").await);
    for input in [
        json!({"participantIds": [ben.id, cat.id], "kind": "DIRECT"}),
        json!({"participantIds": [], "kind": "DIRECT"}),
        json!({"participantIds": [ann.id], "kind": "DIRECT"}),
        json!({"participantIds": [ben.id], "kind": "DIRECT", "title": "no titles"}),
        json!({"participantIds": [ben.id], "title": "x".repeat(201)}),
    ] {
        let body = app.gql(Some(&ann.token), CREATE, json!({"input": input})).await;
        assert_eq!(gql_code(&body), "BAD_USER_INPUT", "{input}: {body}");
    }
    let (status, body) = app
        .rest(
            "POST",
            "/conversations",
            Some(&ann.token),
            Some(json!({"participantIds": [ben.id, cat.id], "kind": "direct"})),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_USER_INPUT")));
    let nobody = json!({"participantIds": ["0190b6b1-0000-7000-8000-000000000000"]});
    let body = app.gql(Some(&ann.token), CREATE, json!({"input": nobody})).await;
    assert_eq!(gql_code(&body), "NOT_FOUND", "someone who does not exist: {body}");
    let (status, body) = app.rest("POST", "/conversations", Some(&ann.token), Some(nobody)).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
    let (_, list) = app.rest("GET", "/conversations", Some(&ann.token), None).await;
    assert_eq!(list["items"], json!([]), "nothing was created");
}

async fn groups_add_participants_and_leave(app: TestApp) {
    let (ann, ben, cat) = (app.register("ann").await, app.register("ben").await, app.register("cat").await);
    let group = app.conversation(&ann, &[&ben], Some("Team")).await;
    let (status, conv) = app.rest("GET", &format!("/conversations/{group}"), Some(&ben.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(conv["kind"], "group");
    assert_eq!(conv["title"], "Team");
    assert_eq!(names(&conv), HashSet::from(["ann".to_owned(), "ben".to_owned()]));

    // cat cannot see it until added.
    assert_eq!(app.rest("GET", &format!("/conversations/{group}"), Some(&cat.token), None).await.0, 404);
    let added = app
        .gql_ok(
            Some(&ben.token),
            "mutation($c: UUID!, $u: [UUID!]!) { addParticipants(conversationId: $c, userIds: $u) { participants { user { username } } } }",
            json!({"c": group, "u": [cat.id, ann.id]}),
        )
        .await;
    assert_eq!(added["addParticipants"]["participants"].as_array().map(Vec::len), Some(3));
    assert_eq!(app.rest("GET", &format!("/conversations/{group}"), Some(&cat.token), None).await.0, 200);

    let (status, left) =
        app.rest("DELETE", &format!("/conversations/{group}/participants/me"), Some(&cat.token), None).await;
    assert_eq!((status, left["ok"].as_bool()), (200, Some(true)));
    assert_eq!(app.rest("GET", &format!("/conversations/{group}"), Some(&cat.token), None).await.0, 404);
    let (_, conv) = app.rest("GET", &format!("/conversations/{group}"), Some(&ann.token), None).await;
    assert_eq!(names(&conv), HashSet::from(["ann".to_owned(), "ben".to_owned()]));

    // A direct conversation can neither grow nor be left.
    let direct = app.conversation(&ann, &[&ben], None).await;
    let (status, body) = app
        .rest(
            "POST",
            &format!("/conversations/{direct}/participants"),
            Some(&ann.token),
            Some(json!({"userIds": [cat.id]})),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_USER_INPUT")));
    let body = app
        .gql(Some(&ann.token), "mutation($c: UUID!) { leaveConversation(conversationId: $c) }", json!({"c": direct}))
        .await;
    assert_eq!(gql_code(&body), "BAD_USER_INPUT");
}

async fn list_is_newest_activity_first_with_last_message_and_unread(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(app.conversation(&ann, &[&ben], Some(&format!("room {i}"))).await);
    }
    // Activity in room 2 moves it to the top; ben's two messages are unread for ann.
    app.send(&ben, &ids[2], "hello").await;
    app.send(&ben, &ids[2], "anyone?").await;
    let mut expected: Vec<String> = ids.iter().rev().cloned().collect();
    expected.retain(|id| id != &ids[2]);
    expected.insert(0, ids[2].clone());

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(c) => format!("/conversations?limit=3&after={c}"),
            None => "/conversations?limit=3".to_owned(),
        };
        let (status, page) = app.rest("GET", &path, Some(&ann.token), None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 3);
        if seen.is_empty() {
            assert_eq!(items[0]["lastMessage"]["body"], "anyone?");
            assert_eq!(items[0]["unreadCount"], 2);
            assert_eq!(items[1]["unreadCount"], 0);
        }
        seen.extend(items.iter().map(|c| c["id"].as_str().unwrap_or_default().to_owned()));
        match page["nextCursor"].as_str() {
            Some(c) => after = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected, "pages have no gap, no repeat, and newest activity first");

    // GraphQL walks the same order with Relay cursors.
    let q = "query($after: String) { conversations(first: 4, after: $after) { edges { cursor node { id unreadCount } } pageInfo { hasNextPage } } }";
    let first = app.gql_ok(Some(&ann.token), q, json!({})).await;
    let edges = first["conversations"]["edges"].as_array().cloned().unwrap_or_default();
    assert_eq!(first["conversations"]["pageInfo"]["hasNextPage"], true);
    let cursor = edges[3]["cursor"].clone();
    let second = app.gql_ok(Some(&ann.token), q, json!({"after": cursor})).await;
    let mut gql_ids: Vec<String> =
        edges.iter().map(|e| e["node"]["id"].as_str().unwrap_or_default().to_owned()).collect();
    gql_ids.extend(
        second["conversations"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["node"]["id"].as_str().unwrap_or_default().to_owned()),
    );
    assert_eq!(gql_ids, expected);
    assert_eq!(second["conversations"]["pageInfo"]["hasNextPage"], false);
}

async fn outsiders_cannot_learn_a_conversation_exists(app: TestApp) {
    let (ann, ben, eve) = (app.register("ann").await, app.register("ben").await, app.register("eve").await);
    let private = app.conversation(&ann, &[&ben], Some("private")).await;
    let unknown = "0190b6b1-0000-7000-8000-000000000000";
    let (s1, b1) = app.rest("GET", &format!("/conversations/{private}"), Some(&eve.token), None).await;
    let (s2, b2) = app.rest("GET", &format!("/conversations/{unknown}"), Some(&eve.token), None).await;
    assert_eq!((s1, b1["code"].as_str()), (404, Some("NOT_FOUND")));
    assert_eq!((s1, &b1["detail"]), (s2, &b2["detail"]), "a private conversation looks exactly like a missing one");
    let q = "query($id: UUID!) { conversation(id: $id) { id title } }";
    assert_eq!(gql_code(&app.gql(Some(&eve.token), q, json!({"id": private})).await), "NOT_FOUND");
    let (_, list) = app.rest("GET", "/conversations", Some(&eve.token), None).await;
    assert_eq!(list["items"], json!([]));
    // Nor can they add themselves.
    let (status, _) = app
        .rest(
            "POST",
            &format!("/conversations/{private}/participants"),
            Some(&eve.token),
            Some(json!({"userIds": [eve.id]})),
        )
        .await;
    assert_eq!(status, 404);
}

async fn page_limits_are_validated(app: TestApp) {
    let ann = app.register("ann").await;
    for limit in ["0", "101", "-1"] {
        let (status, body) = app.rest("GET", &format!("/conversations?limit={limit}"), Some(&ann.token), None).await;
        assert_eq!(status, 400, "limit={limit}: {body}");
        assert_eq!(body["code"], "BAD_USER_INPUT");
    }
    let (status, body) = app.rest("GET", "/conversations?after=not-a-cursor", Some(&ann.token), None).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_USER_INPUT")));
}

fn names(conv: &Value) -> HashSet<String> {
    conv["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["user"]["username"].as_str().map(str::to_owned))
        .collect()
}

/// Renaming a group: REST and GraphQL, a live "conversation changed" for the members, the
/// list's order moves with it, and the rules (no title for a direct conversation, members only,
/// a real title).
async fn renames(app: &TestApp) -> f64 {
    syncchat_test_support::metric_sum(&app.metrics().await, "syncchat_conversations_renamed_total", &[])
}

async fn a_group_is_renamed_and_its_members_hear_of_it(app: TestApp) {
    let (ann, ben, eve) = (app.register("ann").await, app.register("ben").await, app.register("eve").await);
    let group = app.conversation(&ann, &[&ben], Some("Team")).await;
    let direct = app.conversation(&ann, &[&eve], None).await;
    let mut ws = crate::ws_client::WsClient::signed_in(&app, &ben.token).await;
    ws.subscribe(
        "e",
        "subscription { events { __typename ... on ConversationChangedEvent { conversationId added removed } } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let renamed_before = renames(&app).await;

    let (status, view) = app
        .rest("PATCH", &format!("/conversations/{group}"), Some(&ben.token), Some(json!({"title": " Core team "})))
        .await;
    assert_eq!((status, view["title"].as_str()), (200, Some("Core team")), "{view}");
    let changed = ws.next_data("e").await;
    assert_eq!(changed["events"]["__typename"], "ConversationChangedEvent", "{changed}");
    assert_eq!((changed["events"]["added"].clone(), changed["events"]["removed"].clone()), (json!([]), json!([])));
    let (_, list) = app.rest("GET", "/conversations", Some(&ann.token), None).await;
    assert_eq!(list["items"][0]["id"], group, "a rename is activity: {list}");
    let renamed = app
        .gql_ok(
            Some(&ann.token),
            "mutation($c: UUID!) { updateConversation(conversationId: $c, input: {title: \"Core\"}) { title } }",
            json!({"c": group}),
        )
        .await;
    assert_eq!(renamed["updateConversation"]["title"], "Core");
    assert_eq!(ws.next_data("e").await["events"]["__typename"], "ConversationChangedEvent");
    // The same title again changes nothing and says nothing.
    let (status, _) =
        app.rest("PATCH", &format!("/conversations/{group}"), Some(&ann.token), Some(json!({"title": "Core"}))).await;
    assert_eq!(status, 200);
    ws.assert_silent(std::time::Duration::from_millis(300)).await;

    let (status, body) =
        app.rest("PATCH", &format!("/conversations/{direct}"), Some(&ann.token), Some(json!({"title": "us"}))).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("CONFLICT")), "a direct conversation has no title");
    let (status, body) =
        app.rest("PATCH", &format!("/conversations/{group}"), Some(&eve.token), Some(json!({"title": "mine"}))).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")), "outsiders cannot");
    for bad in [json!({"title": "   "}), json!({"title": "x".repeat(201)}), json!({"title": false}), json!({})] {
        let (status, body) =
            app.rest("PATCH", &format!("/conversations/{group}"), Some(&ann.token), Some(bad.clone())).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("BAD_USER_INPUT")), "{bad}: {body}");
    }
    let body = app
        .gql(
            Some(&ann.token),
            "mutation($c: UUID!) { updateConversation(conversationId: $c, input: {title: \" \"}) { title } }",
            json!({"c": group}),
        )
        .await;
    assert_eq!(gql_code(&body), "BAD_USER_INPUT", "{body}");
    let (_, view) = app.rest("GET", &format!("/conversations/{group}"), Some(&ben.token), None).await;
    assert_eq!(view["title"], "Core", "refused changes changed nothing");
    let renamed = renames(&app).await - renamed_before;
    assert!(renamed >= 2.0, "the renames are counted: {renamed}");
}

on_both_backends!(
    a_group_is_renamed_and_its_members_hear_of_it,
    a_direct_conversation_exists_once_per_pair,
    direct_needs_exactly_one_other_person,
    groups_add_participants_and_leave,
    list_is_newest_activity_first_with_last_message_and_unread,
    outsiders_cannot_learn_a_conversation_exists,
    page_limits_are_validated,
);
