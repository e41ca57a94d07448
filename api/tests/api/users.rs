//! Finding people: `users(search)` by username prefix with cursor paging, `user(id)`, and
//! what others may see of an account.

use serde_json::json;

use crate::helpers::{TestApp, gql_code, on_both_backends};

async fn search_pages_by_username_and_hides_private_fields(app: TestApp) {
    let ann = app.register("ann").await;
    for name in ["bob_1", "bob_2", "bob_3", "bobby", "carl"] {
        app.register(name).await;
    }
    let (status, page) = app.rest("GET", "/users?search=bob&limit=2", Some(&ann.token), None).await;
    assert_eq!(status, 200);
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["items"].as_array().into_iter().flatten().filter_map(|u| u["username"].as_str().map(str::to_owned)).collect()
    };
    assert_eq!(names(&page), vec!["bob_1", "bob_2"]);
    assert!(page["items"][0]["email"].is_null(), "other people's emails are private");
    let cursor = page["nextCursor"].as_str().unwrap_or_default().to_owned();
    let (_, rest) = app.rest("GET", &format!("/users?search=bob&limit=2&after={cursor}"), Some(&ann.token), None).await;
    assert_eq!(names(&rest), vec!["bob_3", "bobby"]);
    assert!(rest["nextCursor"].is_null());

    let q = "query($s: String) { users(search: $s, first: 10) { edges { node { username email } } pageInfo { hasNextPage } } }";
    let data = app.gql_ok(Some(&ann.token), q, json!({"s": "CA"})).await;
    assert_eq!(data["users"]["edges"][0]["node"]["username"], "carl");
    assert_eq!(data["users"]["edges"].as_array().map(Vec::len), Some(1));

    // `_` and `%` in a search are literal characters, not wildcards.
    let (_, page) = app.rest("GET", "/users?search=bob_&limit=10", Some(&ann.token), None).await;
    assert_eq!(names(&page), vec!["bob_1", "bob_2", "bob_3"], "bobby does not match bob_");
    let (_, page) = app.rest("GET", "/users?search=%25&limit=10", Some(&ann.token), None).await;
    assert!(names(&page).is_empty());
}

async fn user_by_id_and_me(app: TestApp) {
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let (status, seen) = app.rest("GET", &format!("/users/{}", ben.id), Some(&ann.token), None).await;
    assert_eq!((status, seen["username"].as_str()), (200, Some("ben")));
    assert!(seen["email"].is_null());
    let me = app
        .gql_ok(Some(&ben.token), "query($id: UUID!) { user(id: $id) { username email } }", json!({"id": ben.id}))
        .await;
    assert_eq!(me["user"]["email"], "ben@example.com", "you see your own email");
    let missing =
        app.gql(Some(&ann.token), "{ user(id: \"0190b6b1-0000-7000-8000-000000000000\") { id } }", json!({})).await;
    assert_eq!(gql_code(&missing), "NOT_FOUND");
    let (status, body) = app.rest("GET", "/users/not-a-uuid", Some(&ann.token), None).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_USER_INPUT")));
}

on_both_backends!(search_pages_by_username_and_hides_private_fields, user_by_id_and_me);
