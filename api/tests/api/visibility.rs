//! Presence (online, last seen) is shown to the caller and the people they share a
//! conversation with; anyone else gets the answer an unknown id gets.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Backend, TestApp, TestUser, on_both_backends, spawn_app_with};

on_both_backends!(presence_is_only_shown_to_people_who_share_a_conversation);

const PRESENCE_Q: &str = "query($u: [UUID!]!) { presence(userIds: $u) { userId online } }";
const PRESENCE_SUB: &str = "subscription($u: [UUID!]!) { presence(userIds: $u) { userId online } }";

/// The user ids a presence answer (GraphQL and REST) names.
async fn visible_to(app: &TestApp, viewer: &TestUser, ids: &[&str]) -> (Vec<String>, Vec<String>) {
    let data = app.gql_ok(Some(&viewer.token), PRESENCE_Q, json!({"u": ids})).await;
    let gql: Vec<String> = data["presence"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["userId"].as_str().map(str::to_owned))
        .collect();
    let (status, rest) =
        app.rest("GET", &format!("/presence?userIds={}", ids.join(",")), Some(&viewer.token), None).await;
    assert_eq!(status, 200, "{rest}");
    let rest: Vec<String> =
        rest.as_array().expect("list").iter().filter_map(|p| p["userId"].as_str().map(str::to_owned)).collect();
    (gql, rest)
}

async fn presence_is_only_shown_to_people_who_share_a_conversation(app: TestApp) {
    let (ann, ben, cat) = (app.register("ann").await, app.register("ben").await, app.register("cat").await);
    app.conversation(&ann, &[&ben], Some("ann and ben")).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let ids = [ann.id.as_str(), ben.id.as_str(), cat.id.as_str(), unknown.as_str()];
    let (gql, rest) = visible_to(&app, &ann, &ids).await;
    assert_eq!(gql, vec![ann.id.clone(), ben.id.clone()], "ann sees herself and ben, not cat");
    assert_eq!(rest, gql);
    // Cat, a stranger, gets the same answer for ann as for an id that does not exist.
    let (gql, rest) = visible_to(&app, &cat, &[ann.id.as_str(), unknown.as_str()]).await;
    assert!(gql.is_empty() && rest.is_empty(), "{gql:?} {rest:?}");

    // The subscription: cat hears nothing about ann going online; ben does.
    let mut cat_ws = crate::ws_client::WsClient::signed_in(&app, &cat.token).await;
    cat_ws.subscribe("p", PRESENCE_SUB, json!({"u": [ann.id]})).await;
    let mut ben_ws = crate::ws_client::WsClient::signed_in(&app, &ben.token).await;
    ben_ws.subscribe("p", PRESENCE_SUB, json!({"u": [ann.id]})).await;
    assert_eq!(ben_ws.next_data("p").await["presence"]["online"], false);
    let ann_ws = crate::ws_client::WsClient::signed_in(&app, &ann.token).await;
    assert_eq!(ben_ws.next_data("p").await["presence"]["online"], true);
    cat_ws.assert_silent(Duration::from_millis(300)).await;
    ann_ws.close().await;
    assert_eq!(ben_ws.next_data("p").await["presence"]["online"], false);
    cat_ws.assert_silent(Duration::from_millis(300)).await;
    // Nor can a stranger read last-seen off the user's profile.
    let data =
        app.gql_ok(Some(&cat.token), "query($u: UUID!) { user(id: $u) { lastSeenAt } }", json!({"u": ann.id})).await;
    assert!(data["user"]["lastSeenAt"].is_null(), "{data}");
    let data =
        app.gql_ok(Some(&cat.token), "{ users(search: \"ann\") { edges { node { lastSeenAt } } } }", json!({})).await;
    assert!(data["users"]["edges"][0]["node"]["lastSeenAt"].is_null(), "{data}");
}

#[tokio::test]
async fn presence_of_everyone_can_be_configured() {
    let app = spawn_app_with(Backend::Sqlite, &["--presence-visibility", "all"]).await.expect("app");
    let (ann, cat) = (app.register("ann").await, app.register("cat").await);
    let (gql, rest) = visible_to(&app, &cat, &[ann.id.as_str()]).await;
    assert_eq!((gql, rest), (vec![ann.id.clone()], vec![ann.id.clone()]));
}
