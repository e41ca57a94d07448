//! Abuse limits: query depth, send and auth rate limits, request body size.

use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, gql_code, spawn_app_with};

#[tokio::test]
async fn a_too_deep_query_is_refused_but_graphiql_introspection_works() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await.expect("app");
    let nested = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType {".repeat(16),
        "}".repeat(16)
    );
    let body = app.gql(None, &nested, json!({})).await;
    assert_eq!(gql_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["data"].is_null());
    // The standard introspection query (TypeRef nested 7 deep) still passes.
    let typeref = format!("kind name {} kind name {}", "ofType {".repeat(7), "}".repeat(7));
    let introspection = format!(
        "{{ __schema {{ types {{ name fields {{ name args {{ type {{ {typeref} }} }} type {{ {typeref} }} }} }} }} }}"
    );
    let body = app.gql(None, &introspection, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn a_burst_over_the_send_limit_is_rate_limited_and_writes_nothing() {
    let app =
        spawn_app_with(Backend::Sqlite, &["--rate-send-per-sec", "1", "--rate-send-burst", "3"]).await.expect("app");
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let conv = app.conversation(&ann, &[&ben], None).await;
    let path = format!("/conversations/{conv}/messages");
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..5 {
        let resp = app
            .client
            .post(app.url(&format!("/api/v1{path}")))
            .bearer_auth(&ann.token)
            .json(&json!({"body": format!("burst {i}")}))
            .send()
            .await
            .expect("send");
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body: serde_json::Value = resp.json().await.expect("json");
            assert_eq!(body["code"], "RATE_LIMITED");
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert_eq!(&statuses[3..], &[429, 429]);
    assert!(retry_after.and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| (1..=2).contains(&s)));
    let gql = app
        .gql(
            Some(&ann.token),
            "mutation($c: UUID!) { sendMessage(input: {conversationId: $c, body: \"x\"}) { seq } }",
            json!({"c": conv}),
        )
        .await;
    assert_eq!(gql_code(&gql), "RATE_LIMITED");
    assert!(gql["errors"][0]["extensions"]["retryAfter"].as_u64().is_some());
    let (_, view) = app.rest("GET", &format!("/conversations/{conv}"), Some(&ben.token), None).await;
    assert_eq!(view["lastSeq"], 3, "refused sends stored nothing");
    // Another user has their own budget.
    app.send(&ben, &conv, "my turn").await;
}

#[tokio::test]
async fn repeated_logins_to_one_account_are_rate_limited() {
    let app = spawn_app_with(Backend::Sqlite, &["--rate-auth-per-account-per-min", "3"]).await.expect("app");
    app.register("ann").await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        let (status, _) =
            app.rest("POST", "/auth/login", None, Some(json!({"login": "ann", "password": "wrong password"}))).await;
        codes.push(status);
    }
    assert_eq!(codes, vec![401, 401, 401, 429]);
    // Even the right password waits: the budget is per account.
    let (status, body) =
        app.rest("POST", "/auth/login", None, Some(json!({"login": "ANN", "password": PASSWORD}))).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("RATE_LIMITED")));
}

#[tokio::test]
async fn the_login_limit_counts_the_account_whichever_name_it_is_given() {
    let app = spawn_app_with(Backend::Sqlite, &["--rate-auth-per-account-per-min", "3"]).await.expect("app");
    app.register("ann").await;
    let mut codes = Vec::new();
    for login in ["ann", "ann@example.com", "Ann@Example.com", "ANN"] {
        let (status, _) =
            app.rest("POST", "/auth/login", None, Some(json!({"login": login, "password": "wrong password"}))).await;
        codes.push(status);
    }
    assert_eq!(codes, vec![401, 401, 401, 429], "username and email share one budget");
    // Unknown logins are counted by their normalised text, so they are limited too.
    let mut codes = Vec::new();
    for login in ["nobody", " Nobody ", "NOBODY", "nobody"] {
        let (status, _) =
            app.rest("POST", "/auth/login", None, Some(json!({"login": login, "password": "wrong password"}))).await;
        codes.push(status);
    }
    assert_eq!(codes, vec![401, 401, 401, 429]);
}

#[tokio::test]
async fn auth_attempts_per_ip_are_rate_limited() {
    let app = spawn_app_with(Backend::Sqlite, &["--rate-auth-per-ip-per-min", "2"]).await.expect("app");
    let attempt = |name: &str| {
        app.rest(
            "POST",
            "/auth/register",
            None,
            Some(json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD})),
        )
    };
    assert_eq!(attempt("one").await.0, 200);
    assert_eq!(attempt("two").await.0, 200);
    let (status, body) = attempt("three").await;
    assert_eq!((status, body["code"].as_str()), (429, Some("RATE_LIMITED")));
}

#[tokio::test]
async fn oversized_bodies_and_malformed_json_get_problem_json() {
    let app: TestApp = spawn_app_with(Backend::Sqlite, &["--max-body-bytes", "2048"]).await.expect("app");
    let ann = app.register("ann").await;
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&ann.token)
        .header("content-type", "application/json")
        .body(format!("{{\"query\": \"{{ me {{ id }} }}\", \"pad\": \"{}\"}}", "x".repeat(4096)))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.expect("problem json");
    assert_eq!(body["code"], "BAD_USER_INPUT");

    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
    let body: serde_json::Value = resp.json().await.expect("problem json");
    assert_eq!(body["code"], "BAD_USER_INPUT");

    let (status, body) = app.rest("GET", "/no/such/route", None, None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
}

#[tokio::test]
async fn creating_conversations_is_rate_limited_per_user() {
    let app = spawn_app_with(Backend::Sqlite, &["--rate-conversations-per-min", "2"]).await.expect("app");
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let mut statuses = Vec::new();
    for i in 0..3 {
        let (status, _) = app
            .rest(
                "POST",
                "/conversations",
                Some(&ann.token),
                Some(json!({"participantIds": [ben.id], "title": format!("g{i}")})),
            )
            .await;
        statuses.push(status);
    }
    assert_eq!(statuses, vec![200, 200, 429]);
    let (_, list) = app.rest("GET", "/conversations", Some(&ann.token), None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
}
