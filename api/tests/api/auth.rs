//! Registration, login, refresh rotation, logout and disabled accounts, through both façades.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, gql_code, on_both_backends};

const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { accessToken refreshToken user { id username email role } } }";
const LOGIN: &str =
    "mutation($input: LoginInput!) { login(input: $input) { accessToken refreshToken user { username } } }";
const REFRESH: &str = "mutation($t: String!) { refreshToken(token: $t) { accessToken refreshToken } }";
const ME: &str = "{ me { id username email } }";

async fn register_then_login_by_username_or_email(app: TestApp) {
    let data = app
        .gql_ok(None, REGISTER, json!({"input": {"username": "ada", "email": "Ada@Example.com", "password": PASSWORD}}))
        .await;
    assert_eq!(data["register"]["user"]["username"], "ada");
    assert_eq!(data["register"]["user"]["email"], "ada@example.com");
    assert_eq!(data["register"]["user"]["role"], "USER");
    let token = data["register"]["accessToken"].as_str().unwrap_or_default().to_owned();
    let me = app.gql_ok(Some(&token), ME, json!({})).await;
    assert_eq!(me["me"]["username"], "ada");

    for login in ["ada", "ADA@example.com"] {
        let (status, body) =
            app.rest("POST", "/auth/login", None, Some(json!({"login": login, "password": PASSWORD}))).await;
        assert_eq!(status, 200, "{login}: {body}");
        let (status, me) = app.rest("GET", "/users/me", body["accessToken"].as_str(), None).await;
        assert_eq!((status, me["username"].as_str()), (200, Some("ada")));
    }
    let gql_login = app.gql_ok(None, LOGIN, json!({"input": {"login": "ada", "password": PASSWORD}})).await;
    assert_eq!(gql_login["login"]["user"]["username"], "ada");
}

async fn wrong_password_and_unknown_user_are_refused_alike(app: TestApp) {
    app.register("bob").await;
    let (s1, b1) =
        app.rest("POST", "/auth/login", None, Some(json!({"login": "bob", "password": "wrong password!"}))).await;
    let (s2, b2) = app.rest("POST", "/auth/login", None, Some(json!({"login": "nobody", "password": PASSWORD}))).await;
    assert_eq!((s1, b1["code"].as_str()), (401, Some("UNAUTHENTICATED")));
    assert_eq!((s2, b2["code"].as_str()), (401, Some("UNAUTHENTICATED")));
    assert_eq!(b1["detail"], b2["detail"], "the answer must not reveal which accounts exist");
    let gql = app.gql(None, LOGIN, json!({"input": {"login": "bob", "password": "wrong password!"}})).await;
    assert_eq!(gql_code(&gql), "UNAUTHENTICATED");
}

async fn every_registration_rule_is_bad_user_input_and_writes_nothing(app: TestApp) {
    let cases = [
        ("ab", "ab@example.com", PASSWORD, "username"),
        (&"a".repeat(33) as &str, "long@example.com", PASSWORD, "username"),
        ("Upper", "upper@example.com", PASSWORD, "username"),
        ("dash-name", "dash@example.com", PASSWORD, "username"),
        ("goodname", "not-an-email", PASSWORD, "email"),
        ("goodname", "x@nodot", PASSWORD, "email"),
        ("goodname", "good@example.com", "short", "password"),
        ("goodname", "good@example.com", "123456789", "password"),
    ];
    for (username, email, password, field) in cases {
        let input = json!({"username": username, "email": email, "password": password});
        let (status, body) = app.rest("POST", "/auth/register", None, Some(input.clone())).await;
        assert_eq!(
            (status, body["code"].as_str(), body["field"].as_str()),
            (400, Some("BAD_USER_INPUT"), Some(field)),
            "{input}"
        );
        let gql = app.gql(None, REGISTER, json!({"input": input})).await;
        assert_eq!(gql_code(&gql), "BAD_USER_INPUT");
        assert_eq!(gql["errors"][0]["extensions"]["field"], field);
    }
    // Nothing was stored: the one valid name is still free.
    let user = app.register("goodname").await;
    let (_, list) = app.rest("GET", "/users", Some(&user.token), None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
}

async fn taken_username_or_email_is_a_conflict(app: TestApp) {
    app.register("carol").await;
    let (s, b) = app
        .rest(
            "POST",
            "/auth/register",
            None,
            Some(json!({"username": "carol", "email": "other@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("CONFLICT")));
    let (s, b) = app
        .rest(
            "POST",
            "/auth/register",
            None,
            Some(json!({"username": "carol2", "email": "CAROL@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("CONFLICT")));
}

async fn refresh_rotates_and_a_reused_token_revokes_the_session(app: TestApp) {
    let user = app.register("dave").await;
    let first = app.gql_ok(None, REFRESH, json!({"t": user.refresh})).await;
    let rotated = first["refreshToken"]["refreshToken"].as_str().unwrap_or_default().to_owned();
    let new_access = first["refreshToken"]["accessToken"].as_str().unwrap_or_default().to_owned();
    assert_ne!(rotated, user.refresh);
    assert_eq!(app.rest("GET", "/users/me", Some(&new_access), None).await.0, 200);

    // The old token again: theft is assumed, the whole session ends.
    let (status, body) = app.rest("POST", "/auth/refresh", None, Some(json!({"refreshToken": user.refresh}))).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHENTICATED")));
    let (status, _) = app.rest("POST", "/auth/refresh", None, Some(json!({"refreshToken": rotated}))).await;
    assert_eq!(status, 401, "the rotated token dies with the session");
    assert_eq!(app.rest("GET", "/users/me", Some(&new_access), None).await.0, 401);
    assert_eq!(app.rest("GET", "/users/me", Some(&user.token), None).await.0, 401);

    // Another login is a new session and works.
    let (status, _) = app.rest("POST", "/auth/login", None, Some(json!({"login": "dave", "password": PASSWORD}))).await;
    assert_eq!(status, 200);
    let (status, body) = app.rest("POST", "/auth/refresh", None, Some(json!({"refreshToken": "garbage"}))).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHENTICATED")));
}

async fn logout_ends_access_and_refresh(app: TestApp) {
    let user = app.register("erin").await;
    let (status, body) = app.rest("POST", "/auth/logout", Some(&user.token), None).await;
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)));
    assert_eq!(app.rest("GET", "/users/me", Some(&user.token), None).await.0, 401);
    assert_eq!(app.rest("POST", "/auth/refresh", None, Some(json!({"refreshToken": user.refresh}))).await.0, 401);

    let second = app.register("erin2").await;
    let out = app.gql_ok(Some(&second.token), "mutation { logout }", json!({})).await;
    assert_eq!(out["logout"], true);
    let me = app.gql(Some(&second.token), ME, json!({})).await;
    assert_eq!(gql_code(&me), "UNAUTHENTICATED");
}

async fn disabled_users_cannot_log_in_or_use_old_tokens(app: TestApp) {
    let user = app.register("frank").await;
    set_disabled(&app, "frank", true).await;
    let (status, body) =
        app.rest("POST", "/auth/login", None, Some(json!({"login": "frank", "password": PASSWORD}))).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")));
    let (status, body) = app.rest("GET", "/users/me", Some(&user.token), None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")), "old tokens stop working");
    assert_eq!(gql_code(&app.gql(Some(&user.token), ME, json!({})).await), "FORBIDDEN");
    assert_eq!(app.rest("POST", "/auth/refresh", None, Some(json!({"refreshToken": user.refresh}))).await.0, 401);
    set_disabled(&app, "frank", false).await;
    let (status, _) =
        app.rest("POST", "/auth/login", None, Some(json!({"login": "frank", "password": PASSWORD}))).await;
    assert_eq!(status, 200, "enabled again, the account works");
}

async fn anonymous_and_forged_tokens_are_unauthenticated(app: TestApp) {
    let (status, body) = app.rest("GET", "/conversations", None, None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHENTICATED")));
    let (status, _) = app.rest("GET", "/conversations", Some("not.a.jwt"), None).await;
    assert_eq!(status, 401);
    assert_eq!(
        gql_code(&app.gql(None, "{ conversations { edges { node { id } } } }", json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(gql_code(&app.gql(Some("forged"), ME, json!({})).await), "UNAUTHENTICATED");
}

/// Flips `users.disabled` directly: the admin console that does this arrives later.
pub async fn set_disabled(app: &TestApp, username: &str, disabled: bool) {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
    let db = Database::connect(app.database_url.as_str()).await.expect("connect");
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "UPDATE users SET disabled = $1 WHERE username = $2",
        _ => "UPDATE users SET disabled = ? WHERE username = ?",
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [disabled.into(), username.into()]))
        .await
        .expect("update");
}

on_both_backends!(
    register_then_login_by_username_or_email,
    wrong_password_and_unknown_user_are_refused_alike,
    every_registration_rule_is_bad_user_input_and_writes_nothing,
    taken_username_or_email_is_a_conflict,
    refresh_rotates_and_a_reused_token_revokes_the_session,
    logout_ends_access_and_refresh,
    disabled_users_cannot_log_in_or_use_old_tokens,
    anonymous_and_forged_tokens_are_unauthenticated,
);
