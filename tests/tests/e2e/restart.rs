//! The embedded default keeps everything across a restart: users, messages, and the
//! generated JWT secret (so tokens issued before the restart still work).

use serde_json::{Value, json};

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
    let (_, conv) = post(
        &client,
        format!("{}/api/v1/conversations", server.base),
        Some(&token),
        json!({"participantIds": [], "title": "notes"}),
    )
    .await;
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

#[tokio::test]
async fn migrate_and_admin_create_user_work_from_the_command_line() {
    use std::process::Command;
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        Command::new(crate::process::binary())
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SYNCCHAT_LOG", "warn")
            .args(args)
            .output()
            .expect("run syncchat")
    };
    let migrated = run(&["migrate"]);
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let created = run(&[
        "admin",
        "create-user",
        "--username",
        "root_admin",
        "--email",
        "root@example.com",
        "--password",
        "correct horse battery",
    ]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(String::from_utf8_lossy(&created.stdout).contains("created admin root_admin"));
    let again = run(&[
        "admin",
        "create-user",
        "--username",
        "root_admin",
        "--email",
        "x@example.com",
        "--password",
        "correct horse battery",
    ]);
    assert!(!again.status.success(), "a taken username is refused");
    let weak = run(&["admin", "create-user", "--username", "other", "--email", "o@example.com", "--password", "short"]);
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 10 characters"));

    // The admin can sign in and is an admin.
    let server = Server::start_default(dir.path()).await;
    let client = reqwest::Client::new();
    let (status, body) = post(
        &client,
        format!("{}/api/v1/auth/login", server.base),
        None,
        json!({"login": "root_admin", "password": "correct horse battery"}),
    )
    .await;
    assert_eq!((status, body["user"]["role"].as_str()), (200, Some("admin")), "{body}");
}
