//! Database outages as clients see them, against a private Postgres that each test starts on
//! its own port and data folder and then stops, starts and restarts (by its own `pg_ctl`):
//! answers are `UNAVAILABLE` (503 with `Retry-After`), never `UNAUTHENTICATED` or `INTERNAL`,
//! they come at once, and the server heals by itself when the database is back.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use syncchat_test_support::{DATABASE_URL, env_or_skip, metric_sum, skip_or_fail};

use crate::helpers::{TestApp, TestUser, gql_code, spawn_app_on};
use crate::ws_client::{Received, WsClient};

/// Far below the old 10 s pool timeout: a hang detector, not a speed target.
const HANG: Duration = Duration::from_secs(5);

/// A Postgres server of the test's own (`initdb` + `pg_ctl`), removed when dropped.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// `None` (a skip, or a failure under `SYNCCHAT_TEST_REQUIRE_ALL=1`) without Postgres
    /// binaries or without `SYNCCHAT_TEST_DATABASE_URL`, like the other Postgres tests.
    fn start() -> Option<PrivatePostgres> {
        env_or_skip(DATABASE_URL, "the outage tests")?;
        let Some(bin) = postgres_bin() else {
            skip_or_fail(
                "the outage tests",
                "Postgres binaries (initdb, pg_ctl) are missing (set SYNCCHAT_TEST_PG_BIN)",
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let pg = PrivatePostgres { bin, dir, port };
        if as_root() {
            let status = Command::new("chown").arg("postgres").arg(pg.dir.path()).status().expect("chown");
            assert!(status.success(), "chown the data folder to postgres");
        }
        let data = pg.data();
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"]);
        pg.ctl(&["start"]);
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs a Postgres program, as the `postgres` user when the tests run as root.
    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut cmd = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd.args(args).output().expect("run a Postgres program");
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `pg_ctl <action>` that waits for it to finish.
    fn ctl(&self, action: &[&str]) {
        let data = self.data();
        let socket_dir = self.dir.path().display().to_string();
        let options = format!("-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off", self.port);
        let log = self.dir.path().join("log").display().to_string();
        let mut args = vec!["-D", data.as_str(), "-w", "-o", options.as_str(), "-l", log.as_str()];
        args.extend_from_slice(action);
        self.run("pg_ctl", &args);
    }

    fn stop(&self) {
        self.ctl(&["-m", "fast", "stop"]);
    }

    fn start_again(&self) {
        self.ctl(&["start"]);
    }

    fn restart_fast(&self) {
        self.ctl(&["-m", "fast", "restart"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let path = self.bin.join("pg_ctl");
        let mut cmd = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let _ = cmd.args(["-D", data.as_str(), "-m", "immediate", "-w", "stop"]).output();
    }
}

/// The folder of `initdb` and `pg_ctl`: `SYNCCHAT_TEST_PG_BIN`, else the newest Debian one.
fn postgres_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("SYNCCHAT_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn as_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// A send with its status, body, `Retry-After` and how long it took.
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
    took: Duration,
}

async fn send(app: &TestApp, user: &TestUser, conversation: &str, body: &str) -> Answer {
    let started = Instant::now();
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{conversation}/messages")))
        .bearer_auth(&user.token)
        .json(&json!({"body": body}))
        .send()
        .await
        .expect("send request");
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer { status, body, retry_after, took: started.elapsed() }
}

async fn readyz(app: &TestApp) -> (u16, Duration) {
    let started = Instant::now();
    let resp = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    (resp.status().as_u16(), started.elapsed())
}

#[tokio::test]
async fn a_stopped_database_is_unavailable_at_once_and_heals_by_itself() {
    let Some(pg) = PrivatePostgres::start() else { return };
    let app = spawn_app_on(pg.url()).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    // Carol's and Dave's tokens have never been checked: the server has to ask the database.
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let conversation = app.conversation(&alice, &[&bob], Some("outage")).await;
    app.send(&alice, &conversation, "before").await;

    pg.stop();

    let answer = send(&app, &alice, &conversation, "while down").await;
    assert_eq!(answer.status, 503, "a send while the database is down: {}", answer.body);
    assert_eq!(answer.body["code"], "UNAVAILABLE", "{}", answer.body);
    let retry = answer.retry_after.expect("a 503 says when to retry (Retry-After)");
    assert!((1..=30).contains(&retry), "Retry-After is a few seconds, got {retry}");
    assert!(answer.took < HANG, "the send hung for {:?}", answer.took);

    let started = Instant::now();
    let me = app.gql(Some(&carol.token), "{ me { id } }", json!({})).await;
    assert_eq!(gql_code(&me), "UNAVAILABLE", "a token that cannot be checked is not a bad token: {me}");
    assert!(started.elapsed() < HANG, "the query hung for {:?}", started.elapsed());

    // A WebSocket handshake is refused at once, and not as if the token were bad (4401).
    let started = Instant::now();
    let mut ws = WsClient::connect(&app, "/graphql/ws", "graphql-transport-ws", None).await;
    ws.init(json!({"token": dave.token})).await;
    let handshake = ws.recv_within(HANG).await;
    eprintln!("database stopped: WebSocket handshake {handshake:?} after {:?}", started.elapsed());
    assert!(matches!(handshake, Received::Closed(code, _) if code != 4401), "{handshake:?}");

    let (status, took) = readyz(&app).await;
    eprintln!("database stopped: send answered {} in {:?}, /readyz {status} in {took:?}", answer.status, answer.took);
    assert_eq!(status, 503, "/readyz while the database is down");
    assert!(took < HANG, "/readyz hung for {took:?}");
    assert!(metric_sum(&app.metrics().await, "syncchat_requests_unavailable_total", &[]) >= 2.0);

    pg.start_again();
    let back = Instant::now();

    // The same server heals without a restart (the watcher sees the database back).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answer = send(&app, &alice, &conversation, "after").await;
    while answer.status != 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = send(&app, &alice, &conversation, "after").await;
    }
    assert_eq!(answer.status, 200, "a send once the database is back: {}", answer.body);
    eprintln!("database started again: sends succeed {:?} after pg_ctl returned", back.elapsed());
    let me = app.gql_ok(Some(&carol.token), "{ me { id } }", json!({})).await;
    assert_eq!(me["me"]["id"], carol.id.as_str());
    assert_eq!(readyz(&app).await.0, 200, "/readyz once the database is back");
    let (status, history) =
        app.rest("GET", &format!("/conversations/{conversation}/messages"), Some(&bob.token), None).await;
    assert_eq!(status, 200);
    let bodies: Vec<&str> =
        history["items"].as_array().expect("items").iter().filter_map(|m| m["body"].as_str()).collect();
    assert!(bodies.contains(&"before") && bodies.contains(&"after"), "{history}");
    assert!(!bodies.contains(&"while down"), "a refused send stored nothing: {history}");
}

/// One request of the traffic: when it started (since the test began), its status, its code.
struct Outcome {
    started: Duration,
    ended: Duration,
    status: u16,
    code: String,
}

#[tokio::test]
async fn a_fast_restart_under_traffic_leaves_no_failure_behind() {
    let Some(pg) = PrivatePostgres::start() else { return };
    let app = Arc::new(spawn_app_on(pg.url()).await);
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let conversation = app.conversation(&alice, &[&bob], Some("restart")).await;

    let t0 = Instant::now();
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let stop_at = Arc::new(Mutex::new(None::<Instant>));
    let mut clients = Vec::new();
    for client in 0..20 {
        let (app, outcomes, stop_at) = (app.clone(), outcomes.clone(), stop_at.clone());
        let (user, conversation) = (if client % 2 == 0 { alice.clone() } else { bob.clone() }, conversation.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                if stop_at.lock().await.is_some_and(|at| Instant::now() >= at) {
                    return;
                }
                n += 1;
                let started = t0.elapsed();
                let (status, body) = if n.is_multiple_of(2) {
                    let path = format!("/conversations/{conversation}/messages?limit=20");
                    app.rest("GET", &path, Some(&user.token), None).await
                } else {
                    let a = send(&app, &user, &conversation, &format!("c{client} #{n}")).await;
                    (a.status, a.body)
                };
                let code = body["code"].as_str().unwrap_or("").to_owned();
                outcomes.lock().await.push(Outcome { started, ended: t0.elapsed(), status, code });
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let restart_began = t0.elapsed();
    let pg_for_restart = tokio::task::spawn_blocking(move || {
        pg.restart_fast();
        pg
    });
    let pg = pg_for_restart.await.expect("restart");
    let restarted = t0.elapsed();
    *stop_at.lock().await = Some(Instant::now() + Duration::from_secs(4));
    for client in clients {
        client.await.expect("client");
    }
    drop(pg);

    let outcomes = outcomes.lock().await;
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.status != 200).collect();
    let internal = failed.iter().filter(|o| o.status >= 500 && o.code != "UNAVAILABLE").count();
    // The first request that succeeded once the restart was over: from then on, nothing may
    // fail (stale pooled connections used to fail ~30 requests here).
    let healed = outcomes.iter().filter(|o| o.status == 200 && o.started >= restarted).map(|o| o.ended).min();
    let after: Vec<&&Outcome> = failed.iter().filter(|o| healed.is_some_and(|h| o.started > h)).collect();
    // Generous, for a loaded machine: the server reconnects within a few hundred ms.
    let late: Vec<&&Outcome> = failed.iter().filter(|o| o.started > restarted + Duration::from_secs(2)).collect();
    eprintln!(
        "fast restart: {} requests, {} failed (all 503 UNAVAILABLE: {}), restart {:?}..{:?}, first success after it at {:?}",
        outcomes.len(),
        failed.len(),
        internal == 0,
        restart_began,
        restarted,
        healed,
    );
    assert_eq!(internal, 0, "a restart is UNAVAILABLE, never INTERNAL");
    assert!(failed.iter().all(|o| o.status == 503), "failures are 503s");
    assert!(healed.is_some(), "requests succeed after the restart");
    assert!(after.is_empty(), "{} requests failed after the server had healed", after.len());
    assert!(late.is_empty(), "{} requests failed more than 2 s after the restart", late.len());
}
