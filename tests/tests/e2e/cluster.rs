//! Several `syncchat` processes on one Postgres and Redis, driven by a real third-party
//! client (the graphql-ws library under Node): through nginx, across a SIGKILL, and the
//! presence of a crashed node's users. Needs `SYNCCHAT_TEST_DATABASE_URL`,
//! `SYNCCHAT_TEST_REDIS_URL`, nginx, and `npm ci --prefix tests/js`; without them the tests
//! skip, unless `SYNCCHAT_TEST_REQUIRE_ALL=1` (CI), where they fail.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{Server, free_port};

const SECRET: &str = "cluster-test-secret-cluster-test-secret";

pub struct Cluster {
    name: String,
    database_url: String,
    redis_url: String,
    pub dir: tempfile::TempDir,
}

fn skip_or_fail(what: &str) -> Option<Cluster> {
    syncchat_test_support::skip_or_fail("the cluster tests", what);
    None
}

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

impl Cluster {
    pub fn new() -> Option<Cluster> {
        let what = "the cluster tests";
        let admin = syncchat_test_support::env_or_skip(syncchat_test_support::DATABASE_URL, what)?;
        let redis_url = syncchat_test_support::env_or_skip(syncchat_test_support::REDIS_URL, what)?;
        if !js_dir().join("node_modules/graphql-ws").exists() {
            return skip_or_fail("tests/js has no node_modules: run `npm ci --prefix tests/js`");
        }
        let name = format!("syncchat_e2e_{}_{}", std::process::id(), free_port());
        let created = Command::new("psql").args([admin.as_str(), "-qc", &format!("CREATE DATABASE {name}")]).status();
        assert!(created.is_ok_and(|s| s.success()), "creating database {name}");
        let (prefix, _) = admin.rsplit_once('/').expect("database url has a path");
        let dir = tempfile::tempdir().expect("tempdir");
        Some(Cluster { database_url: format!("{prefix}/{name}"), name, redis_url, dir })
    }

    /// Creates an admin account in the cluster's database with `syncchat admin create-user`.
    pub fn create_admin(&self, username: &str, password: &str) {
        let made = Command::new(crate::process::binary())
            .current_dir(self.dir.path())
            .env("DATABASE_URL", &self.database_url)
            .env("SYNCCHAT_LOG", "warn")
            .args(["admin", "create-user", "--username", username, "--password", password])
            .args(["--email", &format!("{username}@example.com")])
            .output()
            .expect("run syncchat admin create-user");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    }

    pub async fn node(&self, name: &str, extra: &[(&str, &str)]) -> Server {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("node dir");
        let mut env = vec![
            ("DATABASE_URL", self.database_url.as_str()),
            ("REDIS_URL", self.redis_url.as_str()),
            ("SYNCCHAT_JWT_SECRET", SECRET),
            ("SYNCCHAT_NODE_ID", name),
            ("SYNCCHAT_CLUSTER", self.name.as_str()),
            ("SYNCCHAT_LOG", "warn"),
        ];
        env.extend_from_slice(extra);
        Server::start(&dir, &env).await
    }
}

/// The graphql-ws client as a child process; its stdout lines are collected as they come.
pub struct JsSubscriber {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl JsSubscriber {
    pub fn start(count: usize, token: &str, conversation: &str, after: i64, urls: &[String]) -> JsSubscriber {
        let mut child = Command::new("node")
            .arg(js_dir().join("subscribe.mjs"))
            .arg(count.to_string())
            .arg(token)
            .arg(conversation)
            .arg(after.to_string())
            .args(urls)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && let Ok(mut l) = sink.lock()
                {
                    l.push(v);
                }
            }
        });
        JsSubscriber { child, lines }
    }

    /// The messages received (not the close notices).
    fn received(&self) -> Vec<Value> {
        self.lines.lock().map(|l| l.iter().filter(|v| v.get("closed").is_none()).cloned().collect()).unwrap_or_default()
    }

    /// Close codes the server ended the subscription's connections with, in order.
    pub fn close_codes(&self) -> Vec<u64> {
        self.lines.lock().map(|l| l.iter().filter_map(|v| v["closed"].as_u64()).collect()).unwrap_or_default()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        while self.received().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.received()
    }

    pub async fn finish(mut self, within: Duration) -> (bool, Vec<Value>) {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                return (status.success(), self.received());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return (false, self.received());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for JsSubscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub struct Api {
    pub client: reqwest::Client,
}

impl Api {
    pub async fn post(
        &self,
        base: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> reqwest::Result<(u16, Value)> {
        let mut req = self.client.post(format!("{base}/api/v1{path}")).json(&body).timeout(Duration::from_secs(5));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    pub async fn register(&self, base: &str, name: &str) -> (String, String) {
        let body =
            json!({"username": name, "email": format!("{name}@example.com"), "password": "correct horse battery"});
        let (status, user) = self.post(base, "/auth/register", None, body).await.expect("register");
        assert_eq!(status, 200, "{user}");
        (
            user["user"]["id"].as_str().unwrap_or_default().to_owned(),
            user["accessToken"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// Sends `count` messages (`m<first>`…) as `token`, alternating between the two nodes.
    pub async fn send_alternating(&self, nodes: [&str; 2], token: &str, conv: &str, first: usize, count: usize) {
        for i in first..first + count {
            let base = nodes[i % 2];
            let body = json!({"body": format!("m{i}")});
            let (status, _) =
                self.post(base, &format!("/conversations/{conv}/messages"), Some(token), body).await.expect("send");
            assert_eq!(status, 200);
        }
    }

    pub async fn conversation(&self, base: &str, token: &str, other: &str) -> String {
        let (status, conv) = self
            .post(base, "/conversations", Some(token), json!({"participantIds": [other]}))
            .await
            .expect("conversation");
        assert_eq!(status, 200, "{conv}");
        conv["id"].as_str().unwrap_or_default().to_owned()
    }
}

fn seqs(lines: &[Value]) -> Vec<i64> {
    lines.iter().filter_map(|l| l["seq"].as_i64()).collect()
}

pub fn ws_url(server: &Server) -> String {
    format!("ws://127.0.0.1:{}/graphql/ws", server.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_ws_client_receives_through_nginx_what_either_node_stores() {
    let Some(cluster) = Cluster::new() else { return };
    let Some(nginx) = which("nginx") else {
        syncchat_test_support::skip_or_fail("the nginx test", "nginx is not installed");
        return;
    };
    let (a, b) = (cluster.node("a", &[]).await, cluster.node("b", &[]).await);
    let proxy = Nginx::start(&nginx, cluster.dir.path(), &[a.port(), b.port()]);
    let api = Api { client: reqwest::Client::new() };
    let (ann_id, ann) = api.register(&a.base, "ann").await;
    let (_, ben) = api.register(&b.base, "ben").await;
    let conv = api.conversation(&b.base, &ben, &ann_id).await;

    let url = format!("ws://127.0.0.1:{}/graphql/ws", proxy.port);
    let sub = JsSubscriber::start(10, &ann, &conv, 0, &[url]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Half through each node: whichever one nginx picked for the socket, the other node's
    // messages must arrive too.
    api.send_alternating([&a.base, &b.base], &ben, &conv, 1, 10).await;
    let (ok, lines) = sub.finish(Duration::from_secs(20)).await;
    assert!(ok, "the client got all messages: {lines:?}");
    assert_eq!(seqs(&lines), (1..=10).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_resume_on_the_other_node_after_a_sigkill_with_nothing_lost_or_doubled() {
    let Some(cluster) = Cluster::new() else { return };
    let (a, b) = (cluster.node("a", &[]).await, cluster.node("b", &[]).await);
    let api = Api { client: reqwest::Client::new() };
    let (ann_id, ann) = api.register(&a.base, "ann").await;
    let (_, ben) = api.register(&a.base, "ben").await;
    let conv = api.conversation(&a.base, &ben, &ann_id).await;
    const TOTAL: i64 = 60;

    let sub = JsSubscriber::start(TOTAL as usize, &ann, &conv, 0, &[ws_url(&a), ws_url(&b)]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut a = Some(a);
    let (a_base, b_base) = (a.as_ref().map(|s| s.base.clone()).unwrap_or_default(), b.base.clone());
    for i in 1..=TOTAL {
        let body = json!({"body": format!("m{i}"), "clientMessageId": format!("c-{i}")});
        let path = format!("/conversations/{conv}/messages");
        // Senders prefer node A and retry on B with the same client id when A is gone.
        let first = if a.is_some() { &a_base } else { &b_base };
        let sent = match api.post(first, &path, Some(&ben), body.clone()).await {
            Ok((200, _)) => true,
            _ => matches!(api.post(&b_base, &path, Some(&ben), body).await, Ok((200, _))),
        };
        assert!(sent, "message {i} was stored");
        if i == 20 {
            sub.wait_for(20, Duration::from_secs(10)).await;
            if let Some(node) = a.take() {
                node.kill();
            }
        }
    }
    let (ok, lines) = sub.finish(Duration::from_secs(30)).await;
    assert!(ok, "the client resumed and got everything: {:?}", seqs(&lines));
    assert_eq!(seqs(&lines), (1..=TOTAL).collect::<Vec<_>>(), "in order, nothing lost, nothing twice");
    let bodies: Vec<String> = lines.iter().filter_map(|l| l["body"].as_str().map(str::to_owned)).collect();
    assert_eq!(bodies, (1..=TOTAL).map(|i| format!("m{i}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_nodes_users_go_offline_within_the_presence_ttl() {
    let Some(cluster) = Cluster::new() else { return };
    let ttl = [("SYNCCHAT_PRESENCE_TTL_SECS", "3")];
    let (a, c) = (cluster.node("a", &ttl).await, cluster.node("c", &ttl).await);
    let api = Api { client: reqwest::Client::new() };
    let (ann_id, ann) = api.register(&a.base, "ann").await;
    let (ben_id, ben) = api.register(&a.base, "ben").await;
    let conv = api.conversation(&a.base, &ben, &ann_id).await;
    let presence = || async {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1/presence?userIds={ben_id}", a.base))
            .bearer_auth(&ann)
            .send()
            .await
            .expect("presence");
        let body: Value = resp.json().await.expect("json");
        body[0].clone()
    };
    let connected = JsSubscriber::start(1000, &ben, &conv, 0, &[ws_url(&c)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while presence().await["online"] != true && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(presence().await["online"], true, "ben is online through node c");
    c.kill();
    let killed = Instant::now();
    // Offline as soon as c's heartbeat expires; a surviving node's sweeper then records
    // when ben was last seen.
    loop {
        let now = presence().await;
        if (now["online"] == false && now["lastSeenAt"].is_string()) || killed.elapsed() > Duration::from_secs(15) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = presence().await;
    assert_eq!(after["online"], false, "offline after the crash");
    assert!(after["lastSeenAt"].is_string());
    eprintln!("offline {:?} after SIGKILL (TTL 3 s)", killed.elapsed());
    drop(connected);
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.exists())
}

/// nginx on loopback in front of the given nodes, as deploy/nginx.conf does it.
struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(binary: &Path, dir: &Path, upstreams: &[u16]) -> Nginx {
        let port = free_port();
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(prefix.join("logs")).expect("nginx dir");
        let servers: String = upstreams.iter().map(|p| format!("        server 127.0.0.1:{p};\n")).collect();
        let conf = format!(
            "worker_processes 1;\nerror_log {prefix}/logs/error.log warn;\npid {prefix}/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {prefix}/body;\n    proxy_temp_path {prefix}/proxy;\n\
                 fastcgi_temp_path {prefix}/fastcgi;\n    uwsgi_temp_path {prefix}/uwsgi;\n    scgi_temp_path {prefix}/scgi;\n\
                 map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
                 upstream syncchat {{\n{servers}    }}\n\
                 server {{\n        listen 127.0.0.1:{port};\n        location / {{\n            proxy_pass http://syncchat;\n\
                         proxy_http_version 1.1;\n            proxy_set_header Upgrade $http_upgrade;\n\
                         proxy_set_header Connection $connection_upgrade;\n            proxy_read_timeout 1h;\n        }}\n    }}\n}}\n",
            prefix = prefix.display()
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let child = Command::new(binary)
            .args(["-c", &conf_path.display().to_string(), "-p", &prefix.display().to_string(), "-g", "daemon off;"])
            .stdout(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { child, port }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
