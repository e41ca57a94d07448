//! Pinned messages: who may pin, the bound, what participants read and hear live, and that
//! outsiders learn nothing, on both façades.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, count, gql_code, on_both_backends};
use crate::ws_client::WsClient;

/// The next pin change `ws` hears (other events of the subscription are passed over).
async fn next_pin(ws: &mut WsClient) -> serde_json::Value {
    loop {
        let data = ws.next_data("e").await;
        if data["events"]["__typename"] == "PinsChangedEvent" {
            return data["events"].clone();
        }
    }
}

on_both_backends!(owners_pin_in_groups_anyone_in_direct_and_members_hear_of_it, at_most_fifty_pins_per_conversation);

async fn owners_pin_in_groups_anyone_in_direct_and_members_hear_of_it(app: TestApp) {
    let (ann, ben, eve) = (app.register("ann").await, app.register("ben").await, app.register("eve").await);
    let group = app.conversation(&ann, &[&ben], Some("pins")).await;
    let first = app.send(&ben, &group, "the plan").await["id"].as_str().unwrap().to_owned();
    let second = app.send(&ann, &group, "the minutes").await["id"].as_str().unwrap().to_owned();
    let mut bens = WsClient::signed_in(&app, &ben.token).await;
    bens.subscribe(
        "e",
        "subscription { events { __typename ... on PinsChangedEvent { messageId seq username pinned } } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The owner pins (REST and GraphQL); a repeat changes nothing.
    let (status, pinned) = app.rest("PUT", &format!("/messages/{first}/pin"), Some(&ann.token), None).await;
    assert_eq!(
        (status, pinned["message"]["body"].as_str(), pinned["pinnedBy"]["username"].as_str()),
        (200, Some("the plan"), Some("ann")),
        "{pinned}"
    );
    let live = next_pin(&mut bens).await;
    assert_eq!(
        live,
        json!({"__typename": "PinsChangedEvent", "messageId": first, "seq": 1, "username": "ann", "pinned": true})
    );
    let data = app
        .gql_ok(
            Some(&ann.token),
            "mutation($m: UUID!) { pinMessage(messageId: $m) { message { seq } } }",
            json!({"m": second}),
        )
        .await;
    assert_eq!(data["pinMessage"]["message"]["seq"], 2);
    next_pin(&mut bens).await;
    let (status, _) = app.rest("PUT", &format!("/messages/{first}/pin"), Some(&ann.token), None).await;
    assert_eq!(status, 200);
    bens.assert_silent(Duration::from_millis(300)).await;

    // Members read them, newest pin first, on both façades.
    let (_, list) = app.rest("GET", &format!("/conversations/{group}/pins"), Some(&ben.token), None).await;
    let seqs: Vec<i64> =
        list["items"].as_array().unwrap().iter().filter_map(|p| p["message"]["seq"].as_i64()).collect();
    assert_eq!(seqs, [2, 1], "{list}");
    let gql = app
        .gql_ok(
            Some(&ben.token),
            "query($c: UUID!) { conversation(id: $c) { pinnedMessages { message { body } pinnedBy { username } } } }",
            json!({"c": group}),
        )
        .await;
    assert_eq!(
        gql["conversation"]["pinnedMessages"][1],
        json!({"message": {"body": "the plan"}, "pinnedBy": {"username": "ann"}})
    );

    // A member of a group may not pin; an outsider learns nothing.
    let (status, body) = app.rest("PUT", &format!("/messages/{second}/pin"), Some(&ben.token), None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")), "{body}");
    let (status, _) = app.rest("PUT", &format!("/messages/{first}/pin"), Some(&eve.token), None).await;
    assert_eq!(status, 404);
    let (status, _) = app.rest("GET", &format!("/conversations/{group}/pins"), Some(&eve.token), None).await;
    assert_eq!(status, 404);
    let gql =
        app.gql(Some(&eve.token), "mutation($m: UUID!) { unpinMessage(messageId: $m) }", json!({"m": first})).await;
    assert_eq!(gql_code(&gql), "NOT_FOUND");

    // In a direct conversation either may pin.
    let direct = app.conversation(&ann, &[&ben], None).await;
    let note = app.send(&ann, &direct, "just us").await["id"].as_str().unwrap().to_owned();
    let (status, _) = app.rest("PUT", &format!("/messages/{note}/pin"), Some(&ben.token), None).await;
    assert_eq!(status, 200, "anyone pins in a direct conversation");
    assert_eq!(next_pin(&mut bens).await["messageId"], note.as_str());

    // Unpinning, twice; a deleted message is unpinned and cannot be pinned again.
    let (status, body) = app.rest("DELETE", &format!("/messages/{second}/pin"), Some(&ann.token), None).await;
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)));
    assert_eq!(next_pin(&mut bens).await["pinned"], false);
    let (_, body) = app.rest("DELETE", &format!("/messages/{second}/pin"), Some(&ann.token), None).await;
    assert_eq!(body["ok"], false);
    let (status, _) = app.rest("DELETE", &format!("/messages/{first}"), Some(&ben.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(count(&app, &format!("SELECT COUNT(*) AS n FROM pins WHERE message_id = '{first}'")).await, 0);
    let (status, body) = app.rest("PUT", &format!("/messages/{first}/pin"), Some(&ann.token), None).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("CONFLICT")));
    let pins = syncchat_test_support::metric_sum(&app.metrics().await, "syncchat_pins_total", &["action=\"pinned\""]);
    assert!(pins >= 3.0, "{pins}");
}

async fn at_most_fifty_pins_per_conversation(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let mut ids = Vec::new();
    for i in 0..51 {
        ids.push(app.send(&ann, &conv, &format!("m{i}")).await["id"].as_str().unwrap().to_owned());
    }
    for id in &ids[..50] {
        let (status, body) = app.rest("PUT", &format!("/messages/{id}/pin"), Some(&ann.token), None).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = app.rest("PUT", &format!("/messages/{}/pin", ids[50]), Some(&ann.token), None).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("CONFLICT")), "the 51st: {body}");
    let (status, _) = app.rest("PUT", &format!("/messages/{}/pin", ids[0]), Some(&ann.token), None).await;
    assert_eq!(status, 200, "pinning one that is pinned is fine at the bound");
    app.rest("DELETE", &format!("/messages/{}/pin", ids[0]), Some(&ann.token), None).await;
    let (status, _) = app.rest("PUT", &format!("/messages/{}/pin", ids[50]), Some(&ann.token), None).await;
    assert_eq!(status, 200, "room again after an unpin");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM pins").await, 50);
}
