//! Webhooks as an integrator sees them: a real receiver (`tests/webhooks/receiver.py`) that
//! verifies every delivery with the official Standard Webhooks library, events for exactly
//! the conversations the app's bot is in, in order per conversation, none lost while the
//! receiver is down, a 410 disabling the endpoint and re-enabling resuming it, rotation,
//! replay and the pull feed, and an outbox that follows the transaction.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use syncchat_api::service::Caller;
use syncchat_api::service::scopes::Scope;
use syncchat_api::service::webhooks::{EndpointChanges, NewEndpoint, ReplayRequest};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, count, create_app, on_both_backends};

/// Flags for webhook tests: the receiver on 127.0.0.1 is allowed, workers look often, and
/// retries wait at most a second.
pub const FLAGS: [&str; 8] = [
    "--webhook-allowed-hosts",
    "127.0.0.1",
    "--webhook-poll-ms",
    "50",
    "--webhook-backoff-max-secs",
    "1",
    "--webhook-timeout-secs",
    "3",
];

/// An app with its bot user and an API key, and the caller that key authenticates as.
pub struct Integration {
    pub caller: Caller,
    pub bot: TestUser,
    pub key: String,
}

/// Creates an app whose key has `scopes`, through `POST /apps` as an admin (made once per
/// app server).
pub async fn integration(app: &TestApp, name: &str, scopes: &[Scope]) -> Integration {
    let admin_name = "webhook_admin";
    let login = json!({"login": admin_name, "password": crate::helpers::PASSWORD});
    let (status, body) = app.rest("POST", "/auth/login", None, Some(login)).await;
    let admin = if status == 200 {
        TestUser {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            token: body["accessToken"].as_str().unwrap().to_owned(),
            refresh: String::new(),
        }
    } else {
        let user = app.register(admin_name).await;
        crate::helpers::make_admin(app, admin_name).await;
        user
    };
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let (made, key) = create_app(app, &admin, name, &names).await;
    let caller = app.services.auth.authenticate(&key).await.expect("the key authenticates");
    let bot_id = made["botUser"]["id"].as_str().unwrap().to_owned();
    assert_eq!(caller.user_id.to_string(), bot_id);
    Integration { caller, bot: TestUser { id: bot_id, token: key.clone(), refresh: String::new() }, key }
}

/// The test receiver process.
pub struct Receiver {
    pub port: u16,
    secrets: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/webhooks/receiver.py")
}

/// Whether the receiver can run (python3 with `standardwebhooks`); says so when not.
pub fn receiver_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        syncchat_test_support::skip_or_fail(
            "the webhook delivery tests",
            "python3 with the standardwebhooks package is missing: pip install standardwebhooks",
        );
    }
    ok
}

impl Receiver {
    /// Starts a receiver verifying with `secrets` (comma-separated).
    pub fn start(secrets: &str) -> Receiver {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut r = Receiver { port: 0, secrets: secrets.to_owned(), dir, child: None };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .arg(script())
            .args(["--port", &self.port.to_string(), "--secrets", &self.secrets])
            .arg("--out")
            .arg(self.dir.path().join("deliveries.jsonl"))
            .arg("--mode-file")
            .arg(self.dir.path().join("mode"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the webhook receiver");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).expect("receiver says where it listens");
        self.port = line.trim().strip_prefix("listening ").and_then(|p| p.parse().ok()).expect("a port");
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// How it answers from now on: `ok`, `fail`, `gone`, `slow <secs>`.
    pub fn answer(&self, mode: &str) {
        std::fs::write(self.dir.path().join("mode"), mode).expect("mode");
    }

    /// Goes away (connections are refused) until [`Receiver::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Comes back on the same port, verifying with `secrets`.
    pub fn restart(&mut self, secrets: &str) {
        self.stop();
        self.secrets = secrets.to_owned();
        self.spawn();
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join("deliveries.jsonl")).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The requests answered 200, in order.
    pub fn accepted(&self) -> Vec<Value> {
        self.received().into_iter().filter(|r| r["status"] == 200).collect()
    }

    /// Waits until `n` requests were answered 200.
    pub async fn wait_accepted(&self, n: usize, within: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let got = self.accepted();
            if got.len() >= n || start.elapsed() > within {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Registers an endpoint for every event type; answers its id and secret.
pub async fn endpoint(app: &TestApp, who: &Integration, url: &str) -> (Uuid, String) {
    let all = syncchat_api::service::webhooks::payload::EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect();
    let made = app
        .services
        .webhooks
        .create(&who.caller, NewEndpoint { url: url.into(), events: all, description: Some("tests".into()) })
        .await
        .expect("endpoint");
    (made.endpoint.id, made.secret)
}

/// Per conversation, the `message.created` seqs in the order they arrived.
fn created_seqs(got: &[Value], conversation: &str) -> Vec<i64> {
    got.iter()
        .filter(|r| r["type"] == "message.created" && r["conversationId"] == conversation)
        .filter_map(|r| r["seq"].as_i64())
        .collect()
}

async fn an_app_hears_every_change_in_its_conversations_in_order_and_signed(app: TestApp) {
    if !receiver_available() {
        return;
    }
    let helpdesk = integration(&app, "helpdesk", &Scope::ALL).await;
    let (ann, ben, cat) = (app.register("ann").await, app.register("ben").await, app.register("cat").await);
    let mut receiver = Receiver::start("whsec_placeholder");
    let (_, secret) = endpoint(&app, &helpdesk, &receiver.url()).await;
    receiver.restart(&secret);
    let room = app.conversation(&ann, &[&ben, &helpdesk.bot], Some("support")).await;
    let private = app.conversation(&ann, &[&ben], Some("no bots here")).await;
    app.send(&ann, &private, "not for the app").await;
    // Two senders at once: the app still sees the conversation's order.
    let (a, ()) = tokio::join!(
        async {
            let mut ids = Vec::new();
            for i in 0..10 {
                ids.push(app.send(&ann, &room, &format!("ann {i}")).await["id"].as_str().unwrap().to_owned());
            }
            ids
        },
        async {
            for i in 0..10 {
                app.send(&ben, &room, &format!("ben {i}")).await;
            }
        }
    );
    // The last word is ann's, so ben's read marker moves.
    app.send(&ann, &room, "last").await;
    let (s, _) =
        app.rest("PATCH", &format!("/messages/{}", a[0]), Some(&ann.token), Some(json!({"body": "edited"}))).await;
    assert_eq!(s, 200);
    let (s, _) = app.rest("DELETE", &format!("/messages/{}", a[1]), Some(&ann.token), None).await;
    assert_eq!(s, 200);
    let (s, body) =
        app.rest("POST", &format!("/conversations/{room}/read"), Some(&ben.token), Some(json!({"seq": 21}))).await;
    assert_eq!(s, 200, "{body}");
    let (s, _) = app
        .rest(
            "POST",
            &format!("/conversations/{room}/participants"),
            Some(&ann.token),
            Some(json!({"userIds": [cat.id]})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app.rest("DELETE", &format!("/conversations/{room}/participants/me"), Some(&cat.token), None).await;
    assert_eq!(s, 200);
    let (s, _) =
        app.rest("PATCH", &format!("/conversations/{room}"), Some(&ben.token), Some(json!({"title": "Renamed"}))).await;
    assert_eq!(s, 200);

    // conversation.created, app.added_to_conversation, 21 sends, an edit, a delete, a read,
    // an addition, a departure, a rename.
    let got = receiver.wait_accepted(29, Duration::from_secs(30)).await;
    let types: Vec<&str> = got.iter().filter_map(|r| r["type"].as_str()).collect();
    assert_eq!(got.len(), 29, "{types:?}");
    assert!(got.iter().all(|r| r["verified"] == json!([0])), "every delivery verifies with the secret: {got:?}");
    assert!(got.iter().all(|r| r["webhookId"] == r["bodyId"]), "webhook-id is the event id");
    let ids: std::collections::HashSet<_> = got.iter().map(|r| r["webhookId"].to_string()).collect();
    assert_eq!(ids.len(), 29, "no event twice");
    assert!(got.iter().all(|r| r["conversationId"] == room.as_str()), "nothing from the conversation without the bot");
    assert_eq!(created_seqs(&got, &room), (1..=21).collect::<Vec<_>>(), "sends arrive in seq order");
    let first = |t: &str| types.iter().position(|x| *x == t).unwrap_or(usize::MAX);
    assert_eq!(&types[..2], &["conversation.created", "app.added_to_conversation"]);
    assert!(first("message.edited") > 2 && first("message.deleted") > first("message.edited"));
    assert!(first("participant.removed") > first("participant.added"));
    let edited = got.iter().find(|r| r["type"] == "message.edited").unwrap();
    assert_eq!(edited["data"]["body"], "edited");
    assert_eq!(edited["data"]["id"], a[0].as_str());
    assert_eq!(edited["data"]["sender"]["username"], "ann");
    let sent = got.iter().find(|r| r["type"] == "message.created").unwrap();
    assert!(sent["data"]["createdAt"].is_string() && sent["data"]["sender"]["isBot"] == false, "{sent}");
    let read = got.iter().find(|r| r["type"] == "read.updated").unwrap();
    assert_eq!((read["seq"].as_i64(), read["data"]["user"]["username"].as_str()), (Some(21), Some("ben")));
    let renamed = got.last().unwrap();
    assert_eq!(renamed["type"], "conversation.updated", "{types:?}");
    assert_eq!(
        (renamed["data"]["title"].as_str(), renamed["data"]["updatedBy"]["username"].as_str()),
        (Some("Renamed"), Some("ben"))
    );

    let metrics = app.metrics().await;
    let delivered =
        syncchat_test_support::metric_sum(&metrics, "syncchat_webhook_deliveries_total", &["outcome=\"delivered\""]);
    assert!(delivered >= 29.0, "deliveries are counted: {delivered}");
}

async fn a_receiver_that_was_down_gets_every_event_afterwards_in_order(app: TestApp) {
    if !receiver_available() {
        return;
    }
    let crm = integration(&app, "crm", &Scope::ALL).await;
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let mut receiver = Receiver::start("whsec_placeholder");
    let (endpoint_id, secret) = endpoint(&app, &crm, &receiver.url()).await;
    // Down from the start: nothing of what follows can have arrived before.
    receiver.stop();
    let rooms = [
        app.conversation(&ann, &[&ben, &crm.bot], Some("one")).await,
        app.conversation(&ann, &[&ben, &crm.bot], Some("two")).await,
    ];
    for i in 0..15 {
        for room in &rooms {
            app.send(if i % 2 == 0 { &ann } else { &ben }, room, &format!("while down {i}")).await;
        }
    }
    // The attempts fail, are logged with why, and are retried.
    let start = Instant::now();
    let log = loop {
        let page = app.services.webhooks.deliveries(&crm.caller, endpoint_id, None, Some(200)).await.unwrap();
        if page.items.iter().any(|d| d.attempts >= 2) || start.elapsed() > Duration::from_secs(20) {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let failed = log.items.iter().find(|d| d.attempts >= 1).expect("attempts were made");
    assert!(
        failed.state == "pending" && failed.last_error.as_deref().is_some_and(|e| e.contains("connect")),
        "{failed:?}"
    );
    assert!(failed.next_attempt_at.is_some());
    assert!(log.items.iter().all(|d| d.state == "pending"));

    receiver.restart(&secret);
    // 2 conversation.created + 2 app.added + 30 sends.
    let got = receiver.wait_accepted(34, Duration::from_secs(60)).await;
    assert_eq!(got.len(), 34, "every event arrives once the receiver is back");
    for room in &rooms {
        assert_eq!(created_seqs(&got, room), (1..=15).collect::<Vec<_>>(), "in order, none lost, none twice");
    }
    assert!(got.iter().all(|r| r["verified"] == json!([0])));
    // The log says so too (the worker records the answer just after the receiver gives it).
    let settled = |items: &[syncchat_api::service::webhooks::views::DeliveryView]| {
        items.len() == 34 && items.iter().all(|d| d.state == "delivered" && d.last_status == Some(200))
    };
    let start = Instant::now();
    let page = loop {
        let page = app.services.webhooks.deliveries(&crm.caller, endpoint_id, None, Some(200)).await.unwrap();
        if settled(&page.items) || start.elapsed() > Duration::from_secs(10) {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(settled(&page.items), "{:?}", page.items.iter().find(|d| d.state != "delivered"));
    assert!(page.items.iter().any(|d| d.attempts > 1), "the ones sent while it was down were retried");
}

async fn a_410_disables_the_endpoint_and_enabling_it_resumes_where_it_stopped(app: TestApp) {
    if !receiver_available() {
        return;
    }
    let bot = integration(&app, "notifier", &Scope::ALL).await;
    let ann = app.register("ann").await;
    let mut receiver = Receiver::start("whsec_placeholder");
    let (id, secret) = endpoint(&app, &bot, &receiver.url()).await;
    receiver.restart(&secret);
    let room = app.conversation(&ann, &[&bot.bot], Some("alerts")).await;
    receiver.wait_accepted(2, Duration::from_secs(20)).await;
    receiver.answer("gone");
    app.send(&ann, &room, "first").await;
    let start = Instant::now();
    let disabled = loop {
        let e = app.services.webhooks.get(&bot.caller, id).await.unwrap();
        if !e.enabled || start.elapsed() > Duration::from_secs(20) {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!disabled.enabled, "a 410 disables the endpoint");
    assert!(disabled.disabled_reason.as_deref().is_some_and(|r| r.contains("410")), "{disabled:?}");
    let gone_attempts = receiver.received().len();
    receiver.answer("ok");
    for body in ["second", "third"] {
        app.send(&ann, &room, body).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), gone_attempts, "a disabled endpoint gets nothing");
    let metrics = app.metrics().await;
    assert!(
        syncchat_test_support::metric_sum(&metrics, "syncchat_webhook_deliveries_total", &["outcome=\"gone\""]) >= 1.0
    );

    let enabled = app
        .services
        .webhooks
        .update(&bot.caller, id, EndpointChanges { enabled: Some(true), ..Default::default() })
        .await
        .unwrap();
    assert!(enabled.enabled && enabled.disabled_reason.is_none());
    let got = receiver.wait_accepted(5, Duration::from_secs(20)).await;
    assert_eq!(created_seqs(&got, &room), vec![1, 2, 3], "resumed at the event it stopped at, in order");
}

async fn rotation_signs_with_both_secrets_and_replay_and_the_feed_give_the_same_events(app: TestApp) {
    if !receiver_available() {
        return;
    }
    let bot = integration(&app, "archiver", &Scope::ALL).await;
    let ann = app.register("ann").await;
    let mut receiver = Receiver::start("whsec_placeholder");
    let (id, old) = endpoint(&app, &bot, &receiver.url()).await;
    let since = chrono::Utc::now();
    let rotated = app.services.webhooks.rotate_secret(&bot.caller, id).await.unwrap();
    assert_ne!(rotated.secret, old);
    receiver.restart(&format!("{old},{}", rotated.secret));
    let room = app.conversation(&ann, &[&bot.bot], None).await;
    for i in 0..3 {
        app.send(&ann, &room, &format!("m{i}")).await;
    }
    let got = receiver.wait_accepted(5, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|r| r["verified"] == json!([0, 1])), "both secrets sign during the grace period: {got:?}");

    // The pull feed holds the same events, in the same order, with the same bodies.
    let feed = app.services.webhooks.events(&bot.caller, None, Some(2)).await.unwrap();
    assert_eq!(feed.items.len(), 2);
    let rest = app.services.webhooks.events(&bot.caller, feed.next_cursor.clone(), None).await.unwrap();
    let ids: Vec<String> = feed.items.iter().chain(&rest.items).map(|e| e.id.to_string()).collect();
    let delivered: Vec<String> = got.iter().map(|r| r["webhookId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, delivered);
    let again = app.services.webhooks.events(&bot.caller, rest.next_cursor.clone(), None).await.unwrap();
    assert!(again.items.is_empty() && again.next_cursor == rest.next_cursor, "the cursor waits at the end");
    assert_eq!(rest.items.last().unwrap().data["body"], "m2");

    // A replay re-sends them with their original webhook-id.
    let queued =
        app.services.webhooks.replay(&bot.caller, id, ReplayRequest { since: Some(since), ..Default::default() }).await;
    assert_eq!(queued.unwrap(), 5);
    let all = receiver.wait_accepted(10, Duration::from_secs(20)).await;
    let replayed: Vec<String> = all[5..].iter().map(|r| r["webhookId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(replayed, delivered);
    let bad = app.services.webhooks.replay(&bot.caller, id, ReplayRequest::default()).await.unwrap_err();
    assert!(bad.to_string().contains("exactly one"), "{bad}");
}

async fn the_outbox_follows_the_transaction_and_bad_input_changes_nothing(app: TestApp) {
    let bot = integration(&app, "auditor", &Scope::ALL).await;
    let (ann, ben) = (app.register("ann").await, app.register("ben").await);
    let room = app.conversation(&ann, &[&ben, &bot.bot], None).await;
    app.send(&ann, &room, "kept").await;
    // A send that fails (a file that is not the sender's) stores neither message nor event.
    let (status, _) = app
        .rest(
            "POST",
            &format!("/conversations/{room}/messages"),
            Some(&ann.token),
            Some(json!({"body": "with a stranger's file", "attachmentIds": [Uuid::now_v7()]})),
        )
        .await;
    assert_ne!(status, 200);
    let events = count(&app, "SELECT COUNT(*) AS n FROM webhook_events WHERE kind = 'message.created'").await;
    let messages = count(&app, "SELECT COUNT(*) AS n FROM messages").await;
    assert_eq!((events, messages), (1, 1), "one event per stored message, none for the refused send");

    // Bad endpoints are refused with the reason and nothing is stored.
    let w = &app.services.webhooks;
    let new = |url: &str, events: &[&str]| NewEndpoint {
        url: url.into(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        description: None,
    };
    for (input, why) in [
        (new("http://10.0.0.8/hook", &["message.created"]), "SYNCCHAT_WEBHOOK_ALLOWED_HOSTS"),
        (new("http://169.254.169.254/latest", &["message.created"]), "metadata"),
        (new("ftp://example.com/", &["message.created"]), "http or https"),
        (new("http://127.0.0.1:1/hook", &["message.sent"]), "unknown event type"),
        (new("http://127.0.0.1:1/hook", &[]), "at least one"),
    ] {
        let err = w.create(&bot.caller, input).await.unwrap_err();
        assert_eq!(err.code().as_str(), "BAD_USER_INPUT", "{err}");
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
    let user = app.services.auth.authenticate(&ann.token).await.unwrap();
    let err = w.create(&user, new("http://127.0.0.1:1/hook", &["message.created"])).await.unwrap_err();
    assert_eq!(err.code().as_str(), "FORBIDDEN");
    let reader = integration(&app, "reader", &[Scope::MessagesRead]).await;
    let err = w.create(&reader.caller, new("http://127.0.0.1:1/hook", &["message.created"])).await.unwrap_err();
    assert!(err.to_string().contains("webhooks:manage"), "{err}");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM webhook_endpoints").await, 0);
}

async fn the_webhook_api_over_rest_with_an_app_key(app: TestApp) {
    if !receiver_available() {
        return;
    }
    let bot = integration(&app, "rest_client", &Scope::ALL).await;
    let key = Some(bot.key.as_str());
    let mut receiver = Receiver::start("whsec_placeholder");
    let (status, made) = app
        .rest(
            "POST",
            "/webhooks",
            key,
            Some(json!({"url": receiver.url(), "events": ["message.created"], "description": "crm"})),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    let secret = made["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    let id = made["id"].as_str().unwrap();
    receiver.restart(secret);
    let (_, list) = app.rest("GET", "/webhooks", key, None).await;
    assert_eq!(list["items"][0]["id"], id);
    assert!(list["items"][0].get("secret").is_none(), "the secret is shown once: {list}");
    let ann = app.register("ann").await;
    let room = app.conversation(&ann, &[&bot.bot], None).await;
    app.send(&ann, &room, "over rest").await;
    let got = receiver.wait_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["type"], "message.created", "only the subscribed type");
    let start = Instant::now();
    let log = loop {
        let (_, log) = app.rest("GET", &format!("/webhooks/{id}/deliveries"), key, None).await;
        if log["items"][0]["state"] == "delivered" || start.elapsed() > Duration::from_secs(5) {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(log["items"][0]["state"], "delivered", "{log}");
    assert_eq!(log["items"][0]["lastStatus"], 200);
    assert_eq!(log["items"][0]["eventId"], got[0]["webhookId"]);
    let (_, feed) = app.rest("GET", "/events?limit=10", key, None).await;
    let types: Vec<&str> = feed["items"].as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["conversation.created", "app.added_to_conversation", "message.created"], "{feed}");
    let (status, _) = app
        .rest("POST", &format!("/webhooks/{id}/replay"), key, Some(json!({"deliveryIds": [log["items"][0]["id"]]})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(receiver.wait_accepted(2, Duration::from_secs(20)).await[1]["webhookId"], got[0]["webhookId"]);

    // Bad input: problem+json with the field, nothing changed.
    for (method, path, body, field) in [
        (
            "POST",
            "/webhooks".to_owned(),
            json!({"url": "http://10.0.0.1/x", "events": ["message.created"]}),
            Some("url"),
        ),
        // An enum in the spec: refused by name, before the handler.
        ("POST", "/webhooks".to_owned(), json!({"url": receiver.url(), "events": ["nope"]}), None),
        ("PATCH", format!("/webhooks/{id}"), json!({"events": []}), Some("events")),
        ("POST", format!("/webhooks/{id}/replay"), json!({}), Some("since")),
    ] {
        let (status, problem) = app.rest(method, &path, key, Some(body)).await;
        assert_eq!((status, problem["code"].as_str()), (400, Some("BAD_USER_INPUT")), "{path}: {problem}");
        assert_eq!(problem["field"].as_str(), field, "{path}: {problem}");
    }
    let (status, _) = app.rest("GET", "/events?after=-3", key, None).await;
    assert_eq!(status, 400);
    let (status, problem) = app.rest("GET", "/webhooks", Some(&ann.token), None).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("FORBIDDEN")), "a user is not an app");
    let (status, _) = app.rest("DELETE", &format!("/webhooks/{id}"), key, None).await;
    assert_eq!(status, 200);
    let (status, _) = app.rest("GET", &format!("/webhooks/{id}"), key, None).await;
    assert_eq!(status, 404);
}

on_both_backends!(with (super::FLAGS);
    the_webhook_api_over_rest_with_an_app_key,
    an_app_hears_every_change_in_its_conversations_in_order_and_signed,
    a_receiver_that_was_down_gets_every_event_afterwards_in_order,
    a_410_disables_the_endpoint_and_enabling_it_resumes_where_it_stopped,
    rotation_signs_with_both_secrets_and_replay_and_the_feed_give_the_same_events,
    the_outbox_follows_the_transaction_and_bad_input_changes_nothing,
);

/// Three nodes on one Postgres (and Redis) each run the worker: every event is delivered
/// once, in order per conversation, whichever node took the send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_each_event_once_in_order() {
    let Some(nodes) = crate::helpers::spawn_cluster(3, &FLAGS).await else { return };
    if !receiver_available() {
        return;
    }
    let bot = integration(&nodes[0], "sync", &Scope::ALL).await;
    let (ann, ben) = (nodes[0].register("ann").await, nodes[1].register("ben").await);
    let mut receiver = Receiver::start("whsec_placeholder");
    let (_, secret) = endpoint(&nodes[0], &bot, &receiver.url()).await;
    receiver.restart(&secret);
    let rooms = [
        nodes[0].conversation(&ann, &[&ben, &bot.bot], Some("a")).await,
        nodes[1].conversation(&ben, &[&ann, &bot.bot], Some("b")).await,
    ];
    for i in 0..30 {
        let node = &nodes[i % 3];
        let who = if i % 2 == 0 { &ann } else { &ben };
        node.send(who, &rooms[i % 2], &format!("m{i}")).await;
    }
    let got = receiver.wait_accepted(34, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = receiver.received();
    assert_eq!(all.len(), 34, "each event once: {} requests", all.len());
    let ids: std::collections::HashSet<_> = all.iter().map(|r| r["webhookId"].to_string()).collect();
    assert_eq!(ids.len(), 34);
    for room in &rooms {
        assert_eq!(created_seqs(&got, room), (1..=15).collect::<Vec<_>>());
    }
}
