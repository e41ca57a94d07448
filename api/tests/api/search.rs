//! Message search as a user types it: words, phrases, prefixes, exclusions, from:/in:/dates,
//! ranked with highlighted snippets, Chinese, Japanese and Korean found by part of a
//! sentence, edits and deletes reflected at once, paged, on both façades and both backends;
//! and never a hit from a conversation the searcher is not in.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, gql_code, on_both_backends};

/// The bodies `who` finds for `q` (REST), best first.
async fn found(app: &TestApp, who: &TestUser, q: &str) -> Vec<String> {
    let (status, page) = search(app, who, &[("q", q)]).await;
    assert_eq!(status, 200, "{q}: {page}");
    bodies(&page["items"])
}

async fn search(app: &TestApp, who: &TestUser, params: &[(&str, &str)]) -> (u16, Value) {
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", urlencoding(v))).collect();
    app.rest("GET", &format!("/search/messages?{}", query.join("&")), Some(&who.token), None).await
}

fn urlencoding(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn bodies(items: &Value) -> Vec<String> {
    items.as_array().unwrap().iter().filter_map(|h| h["message"]["body"].as_str().map(str::to_owned)).collect()
}

on_both_backends!(search_finds_ranks_and_highlights_what_the_searcher_may_see, bad_searches_are_refused_clearly);

async fn search_finds_ranks_and_highlights_what_the_searcher_may_see(app: TestApp) {
    let (ann, ben, cat, eve) =
        (app.register("ann").await, app.register("ben").await, app.register("cat").await, app.register("eve").await);
    let team = app.conversation(&ann, &[&ben], Some("team")).await;
    let direct = app.conversation(&ann, &[&cat], None).await;
    let elsewhere = app.conversation(&eve, &[&cat], None).await;
    let friday = app.send(&ann, &team, "Deploy the release on <Friday>").await;
    app.send(&ben, &team, "release notes are ready").await;
    let thrice = app.send(&ann, &team, "deploy, deploy, deploy now").await;
    app.send(&cat, &direct, "deployment tomorrow?").await;
    app.send(&eve, &elsewhere, "deploy the secrets").await;
    app.send(&ann, &team, "明天开会").await;
    app.send(&ben, &team, "東京タワーに行きました").await;
    app.send(&ben, &team, "회의는 내일 오전에").await;

    // Words, ranked (the message saying it three times first), never someone else's.
    assert_eq!(found(&app, &ann, "deploy").await, ["deploy, deploy, deploy now", "Deploy the release on <Friday>"]);
    assert_eq!(found(&app, &ann, "DEPLOY*").await.len(), 3, "a prefix finds deployment too");
    assert_eq!(found(&app, &ann, "\"release notes\"").await, ["release notes are ready"]);
    assert_eq!(found(&app, &ann, "\"notes release\"").await, Vec::<String>::new(), "a phrase keeps its order");
    assert_eq!(found(&app, &ann, "release -friday").await, ["release notes are ready"]);
    assert_eq!(found(&app, &ann, "from:ben release").await, ["release notes are ready"]);
    assert_eq!(found(&app, &ann, "from:nobody_here release").await, Vec::<String>::new());
    assert_eq!(found(&app, &ann, &format!("in:{direct} deploy*")).await, ["deployment tomorrow?"]);
    let (_, in_team) = search(&app, &ann, &[("q", "deploy*"), ("conversationId", &team)]).await;
    assert_eq!(bodies(&in_team["items"]).len(), 2);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(found(&app, &ann, &format!("on:{today} deploy")).await.len(), 2);
    assert_eq!(found(&app, &ann, &format!("after:{today} deploy")).await.len(), 0);
    assert_eq!(found(&app, &ann, &format!("before:{today} deploy")).await.len(), 0);
    assert_eq!(found(&app, &eve, "deploy").await, ["deploy the secrets"]);
    assert_eq!(found(&app, &cat, "deploy*").await.len(), 2, "cat is in the direct conversation and eve's");

    // The snippet is HTML: escaped, the hits marked.
    let (_, page) = search(&app, &ann, &[("q", "friday deploy")]).await;
    assert_eq!(page["items"][0]["snippet"], "<mark>Deploy</mark> the release on &lt;<mark>Friday</mark>&gt;");

    // Part of a sentence in Chinese, Japanese or Korean, even one character.
    assert_eq!(found(&app, &ben, "开会").await, ["明天开会"]);
    assert_eq!(found(&app, &ben, "会").await, ["明天开会"]);
    assert_eq!(found(&app, &ben, "タワー").await, ["東京タワーに行きました"]);
    assert_eq!(found(&app, &ben, "내일").await, ["회의는 내일 오전에"]);
    let (_, page) = search(&app, &ben, &[("q", "开会")]).await;
    assert_eq!(page["items"][0]["snippet"], "明天<mark>开会</mark>");

    // GraphQL: the same hits, paged one at a time without repeats.
    let q = "query($q: String!, $a: String) { searchMessages(query: $q, first: 1, after: $a) { \
               edges { cursor node { snippet message { body sender { username } } } } pageInfo { hasNextPage } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app.gql_ok(Some(&ann.token), q, json!({"q": "deploy*", "a": after})).await;
        let conn = &data["searchMessages"];
        seen.push(conn["edges"][0]["node"]["message"]["body"].as_str().unwrap().to_owned());
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["edges"][0]["cursor"].clone();
    }
    let mut all = found(&app, &ann, "deploy*").await;
    assert_eq!(seen, all, "pages in the order of one search");
    all.dedup();
    assert_eq!(all.len(), 3);

    // An edit re-indexes, a delete removes the text.
    let friday_id = friday["id"].as_str().unwrap();
    let (status, _) = app
        .rest("PATCH", &format!("/messages/{friday_id}"), Some(&ann.token), Some(json!({"body": "Ship it Friday"})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(found(&app, &ann, "ship").await, ["Ship it Friday"]);
    assert_eq!(found(&app, &ann, "deploy").await, ["deploy, deploy, deploy now"]);
    let (status, _) =
        app.rest("DELETE", &format!("/messages/{}", thrice["id"].as_str().unwrap()), Some(&ann.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(found(&app, &ann, "deploy").await, Vec::<String>::new());

    // Someone who leaves no longer finds what they could see.
    let (status, _) =
        app.rest("DELETE", &format!("/conversations/{team}/participants/me"), Some(&ben.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(found(&app, &ben, "开会").await, Vec::<String>::new());

    let metrics = app.metrics().await;
    let hits = syncchat_test_support::metric_sum(&metrics, "syncchat_searches_total", &["outcome=\"hits\""]);
    let timed = syncchat_test_support::metric_sum(&metrics, "syncchat_search_duration_seconds_count", &[]);
    assert!(hits >= 10.0 && timed >= hits, "{hits} {timed}");
}

async fn bad_searches_are_refused_clearly(app: TestApp) {
    let (ann, bob, eve) = (app.register("ann").await, app.register("bob").await, app.register("eve").await);
    let team = app.conversation(&ann, &[&bob], Some("team")).await;
    app.send(&ann, &team, "hello").await;
    for q in ["-hello", "before:yesterday hello", "in:team hello", "from: hello", "!!!"] {
        let (status, problem) = search(&app, &ann, &[("q", q)]).await;
        assert_eq!(
            (status, problem["code"].as_str(), problem["field"].as_str()),
            (400, Some("BAD_USER_INPUT"), Some("query")),
            "{q}: {problem}"
        );
    }
    for params in [vec![("q", "")], vec![("q", "hello"), ("after", "next")], vec![("q", "hello"), ("limit", "51")]] {
        let (status, problem) = search(&app, &ann, &params).await;
        assert_eq!((status, problem["code"].as_str()), (400, Some("BAD_USER_INPUT")), "{params:?}: {problem}");
    }
    let (status, problem) = search(&app, &ann, &[("q", "hello"), ("after", "5000")]).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("after")), "{problem}");
    // Someone outside the conversation learns nothing about it.
    let (status, _) = search(&app, &eve, &[("q", "hello"), ("conversationId", &team)]).await;
    assert_eq!(status, 404);
    let gql = app.gql(Some(&ann.token), "{ searchMessages(query: \"-hello\") { edges { cursor } } }", json!({})).await;
    assert_eq!(gql_code(&gql), "BAD_USER_INPUT");
    let gql = app
        .gql(
            Some(&eve.token),
            "query($c: UUID!) { searchMessages(query: \"hello\", conversationId: $c) { edges { cursor } } }",
            json!({"c": team}),
        )
        .await;
    assert_eq!(gql_code(&gql), "NOT_FOUND");
}
