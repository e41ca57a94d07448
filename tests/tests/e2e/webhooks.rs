//! Webhooks across a SIGKILL: two `syncchat` processes on one Postgres and Redis deliver to a
//! slow receiver (tests/webhooks/receiver.py, verifying with the official standardwebhooks
//! library); the node holding a delivery is killed mid-request. Nothing is lost: the other
//! node takes the delivery over once its lease runs out, and the only repeats carry the same
//! `webhook-id` and body. Needs what the cluster tests need, and python3 with
//! `standardwebhooks`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{Api, Cluster};

fn receiver_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("webhooks/receiver.py")
}

struct Receiver {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Receiver {
    fn start(secret: &str, mode: &str) -> Receiver {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("mode"), mode).expect("mode");
        let mut child = Command::new("python3")
            .arg(receiver_script())
            .args(["--port", "0", "--secrets", secret])
            .arg("--out")
            .arg(dir.path().join("got.jsonl"))
            .arg("--mode-file")
            .arg(dir.path().join("mode"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
        let port = line.trim().strip_prefix("listening ").and_then(|p| p.parse().ok()).expect("port");
        Receiver { child, dir, port }
    }

    fn answer(&self, mode: &str) {
        std::fs::write(self.dir.path().join("mode"), mode).expect("mode");
    }

    fn received(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join("got.jsonl")).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn call(api: &Api, method: reqwest::Method, url: String, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = api.client.request(method, url).bearer_auth(token).timeout(Duration::from_secs(10));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_delivery_loses_nothing_and_repeats_only_with_the_same_id() {
    let Some(cluster) = Cluster::new() else { return };
    let python = Command::new("python3").args(["-c", "import standardwebhooks"]).status();
    if !python.is_ok_and(|s| s.success()) {
        syncchat_test_support::skip_or_fail("the webhook kill test", "python3 with standardwebhooks is missing");
        return;
    }
    let env = [
        ("SYNCCHAT_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"),
        ("SYNCCHAT_WEBHOOK_POLL_MS", "50"),
        ("SYNCCHAT_WEBHOOK_TIMEOUT_SECS", "2"),
        ("SYNCCHAT_WEBHOOK_BACKOFF_MAX_SECS", "1"),
    ];
    cluster.create_admin("ops", "correct horse battery");
    let a = cluster.node("a", &env).await;
    let api = Api { client: reqwest::Client::new() };
    let v1 = |base: &str, path: &str| format!("{base}/api/v1{path}");
    let (_, login) = api
        .post(&a.base, "/auth/login", None, json!({"login": "ops", "password": "correct horse battery"}))
        .await
        .expect("login");
    let admin = login["accessToken"].as_str().expect("admin token").to_owned();
    let (status, app) = api
        .post(&a.base, "/apps", Some(&admin), json!({"name": "relay", "scopes": ["webhooks:manage"]}))
        .await
        .expect("app");
    assert_eq!(status, 200, "{app}");
    let key = app["key"]["secret"].as_str().expect("key").to_owned();
    let bot = app["botUser"]["id"].as_str().expect("bot").to_owned();
    let (status, hook) = api
        .post(&a.base, "/webhooks", Some(&key), json!({"url": "http://127.0.0.1:1/x", "events": ["message.created"]}))
        .await
        .expect("webhook");
    assert_eq!(status, 200, "{hook}");
    // Each answer takes 1.5 s, so a delivery is in flight most of the time.
    let receiver = Receiver::start(hook["secret"].as_str().expect("secret"), "slow 1.5");
    let id = hook["id"].as_str().expect("id");
    let (status, _) = call(
        &api,
        reqwest::Method::PATCH,
        v1(&a.base, &format!("/webhooks/{id}")),
        &key,
        Some(json!({"url": format!("http://127.0.0.1:{}/hooks", receiver.port)})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, ann) = api.register(&a.base, "ann").await;
    let conv = api.conversation(&a.base, &ann, &bot).await;
    const SENT: usize = 6;
    for i in 0..SENT {
        let (status, _) = api
            .post(&a.base, &format!("/conversations/{conv}/messages"), Some(&ann), json!({"body": format!("m{i}")}))
            .await
            .expect("send");
        assert_eq!(status, 200);
    }
    // Node a is the only worker until one delivery is through and the next is in flight;
    // then b starts and a is killed holding it.
    let start = Instant::now();
    while receiver.received().is_empty() && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!receiver.received().is_empty(), "node a delivers");
    let b = cluster.node("b", &env).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.kill();
    receiver.answer("ok");
    let start = Instant::now();
    let ids = |got: &[Value]| got.iter().map(|r| r["webhookId"].to_string()).collect::<std::collections::BTreeSet<_>>();
    while ids(&receiver.received()).len() < SENT && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = receiver.received();
    assert_eq!(ids(&got).len(), SENT, "every message arrives after the kill: {got:?}");
    assert!(got.iter().all(|r| r["verified"] == json!([0])), "all signed");
    // Repeats carry the same webhook-id and body; first arrivals are in seq order.
    let mut first: Vec<i64> = Vec::new();
    let mut bodies = std::collections::HashMap::new();
    for r in &got {
        let id = r["webhookId"].to_string();
        match bodies.get(&id) {
            Some(data) => assert_eq!(data, &r["data"], "a repeat is the same event"),
            None => {
                bodies.insert(id, r["data"].clone());
                first.push(r["seq"].as_i64().expect("seq"));
            }
        }
    }
    assert_eq!(first, (1..=SENT as i64).collect::<Vec<_>>(), "in order per conversation");
    eprintln!("{} requests for {SENT} events across the kill", got.len());
    drop(b);
}
