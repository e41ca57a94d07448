//! The embedded default keeps everything across a restart: users, messages, and the
//! generated JWT secret (so tokens issued before the restart still work).

use serde_json::{json, Value};

use crate::process::Server;

async fn post(client: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn data_survives_a_restart_on_the_embedded_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = reqwest::Client::new();
    let server = Server::start_default(dir.path()).await;
    let printed = server.output();
    for url in ["/graphql", "/api/docs", "/admin", "/metrics"] {
        assert!(printed.contains(&format!("{}{url}", server.base)), "start-up output names {url}:\n{printed}");
    }
    assert!(printed.contains("SYNCCHAT_JWT_SECRET is not set"), "a generated secret is warned about");

    let (status, ada) = post(
        &client,
        format!("{}/api/v1/auth/register", server.base),
        None,
        json!({"username": "ada", "email": "ada@example.com", "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(status, 200, "{ada}");
    let token = ada["accessToken"].as_str().expect("token").to_owned();
    let (_, conv) = post(&client, format!("{}/api/v1/conversations", server.base), Some(&token), json!({"participantIds": [], "title": "notes"})).await;
    let conv_id = conv["id"].as_str().expect("conversation id").to_owned();
    let (status, _) = post(
        &client,
        format!("{}/api/v1/conversations/{conv_id}/messages", server.base),
        Some(&token),
        json!({"body": "remember me"}),
    )
    .await;
    assert_eq!(status, 200);

    let status = server.terminate();
    assert!(status.success(), "SIGTERM drains and exits cleanly: {status:?}");
    assert!(dir.path().join("data/syncchat.db").exists());
    assert!(dir.path().join("data/jwt-secret").exists());

    let server = Server::start_default(dir.path()).await;
    let resp = client
        .get(format!("{}/api/v1/conversations/{conv_id}/messages", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("history");
    assert_eq!(resp.status(), 200, "the token from before the restart is still valid");
    let history: Value = resp.json().await.expect("json");
    assert_eq!(history["items"][0]["body"], "remember me");
    assert_eq!(history["items"][0]["seq"], 1);
}
