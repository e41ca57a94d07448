//! Mentions: parsed on the server with positions a browser can slice by, counted per reader
//! beside the unread count and reset by markRead, listed across conversations, kept current
//! by edits and deletes, live on one node and across two, refused when they would ping a
//! crowd or when only owners may mention everyone; outsiders are never mentioned.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, count, gql_code, on_both_backends};
use crate::ws_client::WsClient;

const MESSAGE_MENTIONS: &str =
    "... on MessageAddedEvent { message { body mentions { kind user { username } start end } } }";

/// `body.slice(start, end)` as a browser computes it (UTF-16 code units).
fn js_slice(body: &str, start: &Value, end: &Value) -> String {
    let units: Vec<u16> = body.encode_utf16().collect();
    let (s, e) = (start.as_u64().unwrap() as usize, end.as_u64().unwrap() as usize);
    String::from_utf16_lossy(&units[s..e])
}

/// (unreadCount, mentionCount) of `who` in `conv`.
async fn counts(app: &TestApp, who: &TestUser, conv: &str) -> (i64, i64) {
    let (status, view) = app.rest("GET", &format!("/conversations/{conv}"), Some(&who.token), None).await;
    assert_eq!(status, 200, "{view}");
    (view["unreadCount"].as_i64().unwrap(), view["mentionCount"].as_i64().unwrap())
}

/// The bodies of the messages that mention `who`, newest first (REST).
async fn mentioning(app: &TestApp, who: &TestUser) -> Vec<String> {
    let (status, page) = app.rest("GET", "/users/me/mentions", Some(&who.token), None).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().iter().filter_map(|m| m["body"].as_str().map(str::to_owned)).collect()
}

on_both_backends!(
    mentions_carry_positions_count_until_read_and_follow_edits_and_deletes,
    a_crowd_of_mentions_is_refused_and_changes_nothing
);

async fn mentions_carry_positions_count_until_read_and_follow_edits_and_deletes(app: TestApp) {
    let (ann, ben, cat) = (app.register("ann").await, app.register("ben").await, app.register("cat").await);
    let eve = app.register("eve").await;
    let group = app.conversation(&ann, &[&ben, &cat], Some("standup")).await;
    let mut bens = WsClient::signed_in(&app, &ben.token).await;
    bens.subscribe("e", &format!("subscription {{ events {{ __typename {MESSAGE_MENTIONS} }} }}"), json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Names match case-insensitively; eve is not in the group, code and emails mention no one.
    let body = "hi @Ben 😀 and @eve, `@cat` is code, mail ben@example.com, cc @cat @ben";
    let sent = app.send(&ann, &group, body).await;
    let mentions = sent["mentions"].as_array().unwrap().clone();
    let named: Vec<(&str, String)> = mentions
        .iter()
        .map(|m| (m["user"]["username"].as_str().unwrap(), js_slice(body, &m["start"], &m["end"])))
        .collect();
    assert_eq!(named, [("ben", "@Ben".into()), ("cat", "@cat".into()), ("ben", "@ben".into())], "{sent}");
    assert_eq!(
        (mentions[0]["kind"].as_str(), &mentions[0]["start"], &mentions[0]["end"]),
        (Some("user"), &json!(3), &json!(7))
    );
    let live = bens.next_data("e").await;
    let spans = |list: &Value| -> Vec<(String, i64, i64)> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["user"]["username"].as_str().unwrap().to_owned(),
                    m["start"].as_i64().unwrap(),
                    m["end"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        spans(&live["events"]["message"]["mentions"]),
        spans(&sent["mentions"]),
        "live mentions are the stored ones"
    );
    assert_eq!(live["events"]["message"]["mentions"][0]["kind"], "USER");

    // A mention counts once per message, for the mentioned only, beside the unread count.
    assert_eq!(counts(&app, &ben, &group).await, (1, 1));
    assert_eq!(counts(&app, &cat, &group).await, (1, 1));
    assert_eq!(counts(&app, &ann, &group).await, (0, 0));
    let (_, eves) = app.rest("GET", "/users/me/mentions", Some(&eve.token), None).await;
    assert_eq!(eves["items"], json!([]), "someone outside the conversation is not mentioned");

    app.send(&ann, &group, "nothing for anyone").await;
    let everyone = app
        .gql_ok(
            Some(&ann.token),
            "mutation($c: UUID!) { sendMessage(input: {conversationId: $c, body: \"@all standup in 5\"}) { seq mentions { kind user { id } start end } } }",
            json!({"c": group}),
        )
        .await;
    assert_eq!(everyone["sendMessage"]["mentions"], json!([{"kind": "ALL", "user": null, "start": 0, "end": 4}]));
    assert_eq!(counts(&app, &ben, &group).await, (3, 2));
    assert_eq!(counts(&app, &cat, &group).await, (3, 2));

    // Listed newest first, a page at a time, on both façades.
    let q = "query($a: String) { mentions(first: 1, after: $a) { edges { cursor node { body } } pageInfo { hasNextPage } } }";
    let page1 = app.gql_ok(Some(&ben.token), q, json!({"a": null})).await;
    assert_eq!(page1["mentions"]["edges"][0]["node"]["body"], "@all standup in 5");
    assert_eq!(page1["mentions"]["pageInfo"]["hasNextPage"], true);
    let cursor = page1["mentions"]["edges"][0]["cursor"].clone();
    let page2 = app.gql_ok(Some(&ben.token), q, json!({"a": cursor})).await;
    assert_eq!(page2["mentions"]["edges"][0]["node"]["body"], body);
    assert_eq!(page2["mentions"]["pageInfo"]["hasNextPage"], false);
    let (_, rest1) = app.rest("GET", "/users/me/mentions?limit=1", Some(&ben.token), None).await;
    let next = rest1["nextCursor"].as_str().unwrap();
    let (_, rest2) = app.rest("GET", &format!("/users/me/mentions?limit=1&after={next}"), Some(&ben.token), None).await;
    assert_eq!((rest2["items"][0]["body"].as_str(), &rest2["nextCursor"]), (Some(body), &Value::Null));

    // History shows them too; markRead resets the count up to where it reads.
    let (_, history) = app.rest("GET", &format!("/conversations/{group}/messages"), Some(&ben.token), None).await;
    assert_eq!(history["items"][0]["mentions"], json!(mentions));
    assert_eq!(history["items"][1]["mentions"], json!([]));
    let (_, read) =
        app.rest("POST", &format!("/conversations/{group}/read"), Some(&ben.token), Some(json!({"seq": 1}))).await;
    assert_eq!((&read["unreadCount"], &read["mentionCount"]), (&json!(2), &json!(1)), "{read}");
    let read = app
        .gql_ok(
            Some(&ben.token),
            "mutation($c: UUID!) { markRead(conversationId: $c, seq: 3) { unreadCount mentionCount } }",
            json!({"c": group}),
        )
        .await;
    assert_eq!(read["markRead"], json!({"unreadCount": 0, "mentionCount": 0}));

    // An edit re-reads the mentions; a delete takes them away.
    let first = sent["id"].as_str().unwrap();
    let (status, edited) = app
        .rest("PATCH", &format!("/messages/{first}"), Some(&ann.token), Some(json!({"body": "only @cat now"})))
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["mentions"][0]["user"]["username"], "cat");
    assert_eq!(mentioning(&app, &ben).await, ["@all standup in 5"]);
    assert_eq!(mentioning(&app, &cat).await, ["@all standup in 5", "only @cat now"]);
    let all_id = everyone["sendMessage"]["seq"].as_i64().unwrap();
    let (_, history) = app.rest("GET", &format!("/conversations/{group}/messages"), Some(&cat.token), None).await;
    let all_msg = history["items"].as_array().unwrap().iter().find(|m| m["seq"] == all_id).unwrap()["id"].clone();
    let (status, _) =
        app.rest("DELETE", &format!("/messages/{}", all_msg.as_str().unwrap()), Some(&ann.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(mentioning(&app, &ben).await, Vec::<String>::new());
    assert_eq!(counts(&app, &cat, &group).await, (2, 1), "the deleted @all no longer counts");

    // Leaving a conversation takes its mentions out of the list.
    let (status, _) =
        app.rest("DELETE", &format!("/conversations/{group}/participants/me"), Some(&cat.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(mentioning(&app, &cat).await, Vec::<String>::new());

    // The server's metrics are shared by every test of this process: at least these.
    let metrics = app.metrics().await;
    let sum = |kind: &str| {
        syncchat_test_support::metric_sum(&metrics, "syncchat_mentions_total", &[&format!("kind=\"{kind}\"")])
    };
    assert!(sum("user") >= 3.0 && sum("all") >= 1.0, "{} {}", sum("user"), sum("all"));
}

async fn a_crowd_of_mentions_is_refused_and_changes_nothing(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let group = app.conversation(&ann, &[&ben], Some("crowd")).await;
    let crowd: Vec<String> = (0..51).map(|i| format!("@user_{i:02}")).collect();
    let body = crowd.join(" ");
    let (status, problem) = app
        .rest("POST", &format!("/conversations/{group}/messages"), Some(&ann.token), Some(json!({"body": body})))
        .await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["field"].as_str()),
        (400, Some("BAD_USER_INPUT"), Some("body")),
        "{problem}"
    );
    let gql = app
        .gql(
            Some(&ann.token),
            "mutation($c: UUID!, $b: String!) { sendMessage(input: {conversationId: $c, body: $b}) { id } }",
            json!({"c": group, "b": body}),
        )
        .await;
    assert_eq!(gql_code(&gql), "BAD_USER_INPUT");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM messages").await, 0);
    // A cursor that is not one.
    let (status, _) = app.rest("GET", "/users/me/mentions?after=yesterday", Some(&ben.token), None).await;
    assert_eq!(status, 400);
    let gql = app.gql(Some(&ben.token), "{ mentions(after: \"yesterday\") { edges { cursor } } }", json!({})).await;
    assert_eq!(gql_code(&gql), "BAD_USER_INPUT");
}

mod owners_only {
    use super::*;

    on_both_backends!(with ["--mention-everyone", "owners"]; only_owners_mention_everyone_and_here_means_online);

    async fn only_owners_mention_everyone_and_here_means_online(app: TestApp) {
        let (ann, ben, cat) = (app.register("ann").await, app.register("ben").await, app.register("cat").await);
        let group = app.conversation(&ann, &[&ben, &cat], Some("team")).await;
        let (status, problem) = app
            .rest(
                "POST",
                &format!("/conversations/{group}/messages"),
                Some(&ben.token),
                Some(json!({"body": "@all hey"})),
            )
            .await;
        assert_eq!((status, problem["code"].as_str()), (403, Some("FORBIDDEN")), "{problem}");
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM messages").await, 0);
        // A name is still fine for a member.
        app.send(&ben, &group, "@ann ok?").await;

        // @here reaches those online: ben has a connection open, cat has none.
        let _online = WsClient::signed_in(&app, &ben.token).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = app.send(&ann, &group, "@here quick one").await;
        let here = &sent["mentions"][0];
        assert_eq!(
            (here["kind"].as_str(), &here["user"], &here["start"], &here["end"]),
            (Some("here"), &Value::Null, &json!(0), &json!(5)),
            "{sent}"
        );
        assert_eq!(counts(&app, &ben, &group).await.1, 1);
        assert_eq!(counts(&app, &cat, &group).await.1, 0);
    }
}

/// Two nodes on Postgres and Redis: a mention sent through node A reaches a subscriber on
/// node B with its positions, and B counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_reach_subscribers_on_another_node() {
    let Some(nodes) = crate::helpers::spawn_cluster(2, &[]).await else { return };
    let (a, b) = (&nodes[0], &nodes[1]);
    let (ann, ben) = (a.register("ann").await, a.register("ben").await);
    let conv = a.conversation(&ann, &[&ben], None).await;
    let mut bens = WsClient::signed_in(b, &ben.token).await;
    bens.subscribe("e", &format!("subscription {{ events {{ __typename {MESSAGE_MENTIONS} }} }}"), json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.send(&ann, &conv, "over there, @ben?").await;
    let live = bens.next_data("e").await;
    assert_eq!(
        live["events"]["message"]["mentions"],
        json!([{"kind": "USER", "user": {"username": "ben"}, "start": 12, "end": 16}])
    );
    assert_eq!(counts(b, &ben, &conv).await, (1, 1));
}
