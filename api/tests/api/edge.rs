//! The edge of the server: every request body is bounded while it streams in (whatever its
//! headers or HTTP version say), files the server creates are private, and the docs pages
//! carry a Content-Security-Policy that lets them run.

use std::time::Duration;

use futures_util::stream;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, count, spawn_app, spawn_app_with};

const LIMIT: &str = "65536";
const OVER: usize = 200_000;

async fn small_limit_app() -> TestApp {
    spawn_app_with(Backend::Sqlite, &["--max-body-bytes", LIMIT]).await.expect("app")
}

/// A valid GraphQL request of about `size` bytes (the padding is an unused variable).
fn padded_query(size: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({"query": "{ __typename }", "variables": {"pad": "x".repeat(size)}})).expect("json")
}

/// A registration of about `size` bytes.
fn padded_registration(size: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "username": "padded", "email": "padded@example.com", "password": "correct horse battery",
        "displayName": "p", "pad": "x".repeat(size)
    }))
    .expect("json")
}

/// `bytes` as a body of unknown length (chunked on HTTP/1.1, plain DATA frames on HTTP/2).
fn streamed(bytes: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(stream::iter(chunks))
}

/// Asserts a 413 problem+json with `BAD_USER_INPUT`.
async fn assert_too_large(resp: reqwest::Response, what: &str) {
    assert_eq!(resp.status(), 413, "{what}");
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(content_type.starts_with("application/problem+json"), "{what}: {content_type}");
    let body: Value = resp.json().await.expect("problem json");
    assert_eq!(body["code"], "BAD_USER_INPUT", "{what}: {body}");
}

async fn user_count(app: &TestApp) -> i64 {
    count(app, "SELECT COUNT(*) AS n FROM users").await
}

#[tokio::test]
async fn an_upgrade_header_does_not_lift_the_body_limit() {
    let app = small_limit_app().await;
    for upgrade in ["foo", "websocket", "h2c"] {
        let resp = app
            .client
            .post(app.url("/graphql"))
            .header("upgrade", upgrade)
            .header("connection", "upgrade")
            .header("content-type", "application/json")
            .body(padded_query(OVER))
            .send()
            .await
            .expect("post");
        assert_too_large(resp, &format!("POST /graphql with Upgrade: {upgrade}")).await;
    }
    let resp = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("upgrade", "foo")
        .header("content-type", "application/json")
        .body(padded_registration(OVER))
        .send()
        .await
        .expect("post");
    assert_too_large(resp, "POST /api/v1/auth/register with Upgrade").await;
    // Without a Content-Length either.
    let resp = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("upgrade", "foo")
        .header("content-type", "application/json")
        .body(streamed(padded_registration(OVER)))
        .send()
        .await
        .expect("post");
    assert_too_large(resp, "chunked POST /api/v1/auth/register with Upgrade").await;
    assert_eq!(user_count(&app).await, 0, "nothing was registered");
    // Under the limit the same requests still work.
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header("upgrade", "foo")
        .header("content-type", "application/json")
        .body(padded_query(1000))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused() {
    let app = small_limit_app().await;
    for path in ["/graphql", "/api/v1/auth/login"] {
        let resp = app
            .client
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(streamed(padded_query(OVER)))
            .send()
            .await
            .expect("post");
        assert_too_large(resp, &format!("chunked POST {path}")).await;
    }
}

#[tokio::test]
async fn h2c_bodies_over_the_limit_are_refused_while_they_stream() {
    let app = small_limit_app().await;
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().expect("h2c client");
    // The server speaks cleartext HTTP/2 with prior knowledge.
    let resp =
        h2.post(app.url("/graphql")).json(&json!({"query": "{ __typename }"})).send().await.expect("h2c request");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);

    // HTTP/2 bodies carry neither Content-Length nor Transfer-Encoding when streamed.
    let resp = h2.post(app.url("/graphql")).body(streamed(padded_query(OVER))).send().await.expect("post");
    assert_too_large(resp, "h2c POST /graphql").await;
    let resp = h2
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body(streamed(padded_registration(OVER)))
        .send()
        .await
        .expect("post");
    assert_too_large(resp, "h2c POST /api/v1/auth/register").await;
    assert_eq!(user_count(&app).await, 0);

    // A body far larger than the limit is refused before it is all sent: the server stops
    // reading at the limit (on the unfixed server it read all 64 MiB).
    let huge = stream::iter((0..1024).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])));
    let resp = tokio::time::timeout(
        Duration::from_secs(60),
        h2.post(app.url("/graphql")).body(reqwest::Body::wrap_stream(huge)).send(),
    )
    .await
    .expect("an answer")
    .expect("post");
    assert_too_large(resp, "h2c POST /graphql of 64 MiB").await;
}

#[tokio::test]
async fn uploads_keep_their_own_larger_limit_on_every_protocol() {
    let app = spawn_app_with(Backend::Sqlite, &["--max-body-bytes", LIMIT, "--max-upload-bytes", "300000"])
        .await
        .expect("app");
    let ann = app.register("ann").await;
    let ticket = |app: &TestApp, ann: &TestUser| {
        let (base, token) = (app.url(""), ann.token.clone());
        async move {
            let body: Value = reqwest::Client::new()
                .post(format!("{base}/graphql"))
                .bearer_auth(token)
                .json(&json!({"query": "mutation { createUploadUrl(fileName: \"a.txt\") { uploadUrl } }"}))
                .send()
                .await
                .expect("ticket")
                .json()
                .await
                .expect("json");
            format!("{base}{}", body["data"]["createUploadUrl"]["uploadUrl"].as_str().expect("url"))
        }
    };
    // Larger than the body limit, smaller than the upload limit: accepted, also over h2c.
    let resp = app.client.put(ticket(&app, &ann).await).body(vec![b'a'; 200_000]).send().await.expect("put");
    assert_eq!(resp.status(), 200);
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().expect("h2c client");
    let resp = h2.put(ticket(&app, &ann).await).body(streamed(vec![b'b'; 200_000])).send().await.expect("put");
    assert_eq!(resp.status(), 200);
    // Over the upload limit, streamed over h2c: 413, nothing kept.
    let before = app.services.files.storage_usage().await.expect("usage");
    let resp = h2.put(ticket(&app, &ann).await).body(streamed(vec![b'c'; 400_000])).send().await.expect("put");
    assert_too_large(resp, "h2c upload over the upload limit").await;
    assert_eq!(app.services.files.storage_usage().await.expect("usage"), before);
}

#[tokio::test]
async fn websocket_upgrades_are_only_served_by_get_on_their_routes() {
    let app = small_limit_app().await;
    let ann = app.register("ann").await;
    // The real thing still works on both routes.
    for path in ["/graphql/ws", "/graphql"] {
        let mut ws = crate::ws_client::WsClient::connect(&app, path, "graphql-transport-ws", None).await;
        ws.init(json!({"token": ann.token})).await;
        match ws.recv().await {
            crate::ws_client::Received::Message(m) => assert_eq!(m["type"], "connection_ack", "{path}"),
            other => panic!("{path}: expected an ack, got {other:?}"),
        }
    }
    // A POST asking for a WebSocket is an ordinary POST.
    let resp = app
        .client
        .post(app.url("/graphql/ws"))
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "graphql-transport-ws")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 405);
}

// --- Files the server creates are private ---

#[cfg(unix)]
#[tokio::test]
async fn the_generated_secret_and_the_sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("fresh").join("data");
    let db = data.join("syncchat.db");
    let config: syncchat_api::config::Config = <syncchat_api::config::Cli as clap::Parser>::parse_from([
        "syncchat",
        "--data-dir",
        &data.display().to_string(),
        "--database-url",
        &format!("sqlite://{}?mode=rwc", db.display()),
    ])
    .config;
    config.resolve_jwt_secret().expect("secret");
    assert_eq!(mode(&data.join("jwt-secret")), 0o600, "the JWT secret is readable by its owner only");
    assert_eq!(mode(&data), 0o700, "the data folder we created is private");
    let conn = syncchat_api::storage::connect(&config.database_url, 2).await.expect("connect");
    use sea_orm::ConnectionTrait;
    conn.execute_unprepared("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);").await.expect("write");
    for file in ["syncchat.db", "syncchat.db-wal", "syncchat.db-shm"] {
        let path = data.join(file);
        assert!(path.exists(), "{file} exists");
        assert_eq!(mode(&path), 0o600, "{file} is readable by its owner only");
    }
    let _ = conn.close().await;
}

// --- Content-Security-Policy on the docs pages ---

/// A page's scripts: the sha256 CSP sources of the inline ones, the URLs of the others, and
/// the page with every script's content left out.
fn scripts(page: &str) -> (Vec<String>, Vec<String>, String) {
    use base64::Engine;
    use sha2::Digest;
    let (mut inline, mut external, mut markup) = (Vec::new(), Vec::new(), String::new());
    let mut rest = page;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(head_end) = after.find('>') else { break };
        let head = &after[..head_end];
        let Some(body_len) = after[head_end + 1..].find("</script>") else { break };
        let body = &after[head_end + 1..head_end + 1 + body_len];
        match head.split_once("src=\"") {
            Some((_, src)) => external.push(src.split('"').next().unwrap_or("").to_owned()),
            None => {
                let digest = sha2::Sha256::digest(body.as_bytes());
                inline.push(format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest)));
            }
        }
        markup.push_str(&rest[..start]);
        markup.push_str(head);
        rest = &after[head_end + 1 + body_len..];
    }
    markup.push_str(rest);
    (inline, external, markup)
}

/// `https://host` of a URL (`//host/...` counts as https).
fn origin(url: &str) -> String {
    let url = if url.starts_with("//") { format!("https:{url}") } else { url.to_owned() };
    url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")
}

#[tokio::test]
async fn swagger_ui_and_graphiql_carry_a_content_security_policy_that_lets_them_run() {
    let app = spawn_app(Backend::Sqlite).await.expect("app");
    for path in ["/api/docs", "/graphql"] {
        let resp = app.client.get(app.url(path)).send().await.expect("get");
        assert_eq!(resp.status(), 200, "{path}");
        let csp = resp
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path} has no Content-Security-Policy"))
            .to_owned();
        let page = resp.text().await.expect("page");
        let directive = |name: &str| {
            csp.split(';').map(str::trim).find(|d| d.starts_with(&format!("{name} "))).unwrap_or("").to_owned()
        };
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!directive("script-src").contains("'unsafe-inline'"), "{path}: {csp}");
        assert!(!directive("script-src").contains('*'), "{path}: {csp}");
        let (inline, external, markup) = scripts(&page);
        for hash in inline {
            assert!(directive("script-src").contains(&hash), "{path}: inline script {hash} is allowed: {csp}");
        }
        // Every external script and stylesheet comes from an origin the policy names.
        for url in external {
            assert!(directive("script-src").contains(&origin(&url)), "{path}: {url} is allowed: {csp}");
        }
        for part in markup.split("rel=\"stylesheet\" href=\"").skip(1) {
            let url = part.split('"').next().unwrap_or("");
            assert!(directive("style-src").contains(&origin(url)), "{path}: {url} is allowed: {csp}");
        }
    }
}
