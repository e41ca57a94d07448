//! The admin console's doors: only admins get in, with an HttpOnly SameSite=Strict session
//! cookie, every form needs its CSRF token, and nobody else ever sees data.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    Backend, PASSWORD, TestApp, TestUser, make_admin, on_both_backends, spawn_app, spawn_app_with, spawn_cluster,
};
use crate::ws_client::{Received, WsClient};

const MESSAGE_ADDED: &str = "subscription($c: UUID!) { messageAdded(conversationId: $c) { seq body } }";

struct Browser {
    client: reqwest::Client,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new() -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Browser { client, cookies: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn remember(&mut self, resp: &reqwest::Response) -> Vec<String> {
        let set: Vec<String> =
            resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok().map(str::to_owned)).collect();
        for raw in &set {
            if let Some((pair, _)) = raw.split_once(';')
                && let Some((k, v)) = pair.split_once('=')
            {
                self.cookies.retain(|(name, _)| name != k);
                if !v.is_empty() {
                    self.cookies.push((k.to_owned(), v.to_owned()));
                }
            }
        }
        set
    }

    async fn get(&mut self, app: &TestApp, path: &str) -> (u16, String) {
        let resp = self.client.get(app.url(path)).header("cookie", self.cookie_header()).send().await.expect("get");
        self.remember(&resp);
        (resp.status().as_u16(), resp.text().await.unwrap_or_default())
    }

    async fn post(&mut self, app: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, Vec<String>, String) {
        let resp = self
            .client
            .post(app.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("post");
        let set = self.remember(&resp);
        (resp.status().as_u16(), set, resp.text().await.unwrap_or_default())
    }
}

fn csrf_in(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    page.split_once(marker).and_then(|(_, rest)| rest.split_once('"')).map(|(v, _)| v.to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn anonymous_and_non_admin_users_only_ever_get_the_login_page() {
    let app = spawn_app(Backend::Sqlite).await.expect("app");
    let ann = app.register("ann").await;
    app.send(&ann, &app.conversation(&ann, &[], Some("secret room")).await, "hi").await;
    let mut browser = Browser::new();
    let (status, page) = browser.get(&app, "/admin").await;
    assert_eq!(status, 200);
    assert!(page.contains("action=\"/admin/login\""));
    assert!(!page.contains("data-figure"), "no data for anonymous users");

    let csrf = csrf_in(&page);
    let (status, set, page) =
        browser.post(&app, "/admin/login", &[("login", "ann"), ("password", PASSWORD), ("csrf", &csrf)]).await;
    assert_eq!(status, 403, "ann is not an admin");
    assert!(set.iter().all(|c| !c.starts_with("syncchat_admin=")), "no session for a non-admin: {set:?}");
    assert!(page.contains("for admins") && !page.contains("data-figure"));

    // An API access token is not a console session either.
    let resp = app.client.get(app.url("/admin")).bearer_auth(&ann.token).send().await.expect("get");
    assert!(!resp.text().await.unwrap_or_default().contains("data-figure"));
    for path in ["/admin/live/overview", "/admin/cost/results", "/admin/capacity/results"] {
        let resp = app.client.get(app.url(path)).bearer_auth(&ann.token).send().await.expect("get");
        assert_eq!(resp.status(), 401, "{path}");
        assert_eq!(resp.text().await.unwrap_or_default(), "", "{path} gives nothing away");
    }
    for page in ["/admin/capacity", "/admin/cost", "/admin/moderation", "/admin/business"] {
        let (status, body) = browser.get(&app, page).await;
        assert_eq!(status, 200);
        assert!(body.contains("action=\"/admin/login\"") && !body.contains("data-figure"), "{page}");
        assert!(!body.contains("ann@example.com"), "{page}");
    }
    // Moderation posts without a console session change nothing.
    let disable = app.url(&format!("/admin/moderation/users/{}/disable", ann.id));
    let resp = app.client.post(&disable).bearer_auth(&ann.token).form(&[("csrf", "x")]).send().await.expect("post");
    assert_eq!(resp.status(), 401);
    let (status, _) = app.rest("GET", "/users/me", Some(&ann.token), None).await;
    assert_eq!(status, 200, "ann was not disabled");
}

#[tokio::test]
async fn forms_without_their_csrf_token_are_refused() {
    let app = spawn_app(Backend::Sqlite).await.expect("app");
    app.register("root").await;
    make_admin(&app, "root").await;
    let mut browser = Browser::new();
    let (_, page) = browser.get(&app, "/admin").await;
    let csrf = csrf_in(&page);
    for form in [
        vec![("login", "root"), ("password", PASSWORD)],
        vec![("login", "root"), ("password", PASSWORD), ("csrf", "forged")],
    ] {
        let (status, set, _) = browser.post(&app, "/admin/login", &form).await;
        assert_eq!(status, 403);
        assert!(set.iter().all(|c| !c.starts_with("syncchat_admin=")));
    }
    // A cross-site post carries no cookies at all (SameSite=Strict): also refused.
    let bare = reqwest::Client::new()
        .post(app.url("/admin/login"))
        .form(&[("login", "root"), ("password", PASSWORD), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(bare.status(), 403);
}

#[tokio::test]
async fn an_admin_signs_in_sees_the_overview_and_signs_out() {
    let app = spawn_app(Backend::Sqlite).await.expect("app");
    let (root, ann) = (app.register("root").await, app.register("ann").await);
    make_admin(&app, "root").await;
    let conv = app.conversation(&ann, &[&root], None).await;
    for i in 0..3 {
        app.send(&ann, &conv, &format!("m{i}")).await;
    }
    let mut browser = Browser::new();
    let (_, page) = browser.get(&app, "/admin").await;
    let csrf = csrf_in(&page);
    let (status, set, _) =
        browser.post(&app, "/admin/login", &[("login", "root"), ("password", PASSWORD), ("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let session = set.iter().find(|c| c.starts_with("syncchat_admin=")).cloned().unwrap_or_default();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"), "{session}");
    assert!(session.contains("Max-Age=43200"), "a console sign-in lasts 12 hours: {session}");
    // The cookie's token is a console session only: it mints no API tokens.
    let value = session.trim_start_matches("syncchat_admin=").split(';').next().unwrap_or_default().to_owned();
    let (status, _) = app.rest("POST", "/auth/refresh", None, Some(serde_json::json!({"refreshToken": value}))).await;
    assert_eq!(status, 401);

    let (status, overview) = browser.get(&app, "/admin").await;
    assert_eq!(status, 200);
    assert!(overview.contains("data-figure=\"Users\""), "{overview}");
    assert!(overview.contains("<b>2</b>"), "two users");
    assert!(overview.contains("<b>3</b>"), "three messages");

    // Signing out needs the session's CSRF token.
    let (status, _, _) = browser.post(&app, "/admin/logout", &[("csrf", "forged")]).await;
    assert_eq!(status, 403);
    let token = csrf_in(&overview);
    let (status, _, _) = browser.post(&app, "/admin/logout", &[("csrf", &token)]).await;
    assert_eq!(status, 303);
    let (_, after) = browser.get(&app, "/admin").await;
    assert!(after.contains("action=\"/admin/login\"") && !after.contains("data-figure"));
}

#[tokio::test]
async fn an_admins_api_refresh_token_is_not_a_console_session() {
    let app = spawn_app(Backend::Sqlite).await.expect("app");
    let root = app.register("root").await;
    make_admin(&app, "root").await;
    // An API login, even one that calls its device "admin console".
    let (status, api_login) =
        app.rest("POST", "/auth/login", None, Some(json!({"login": "root", "password": PASSWORD}))).await;
    assert_eq!(status, 200);
    let (status, named) = app
        .rest(
            "POST",
            "/auth/login",
            None,
            Some(json!({"login": "root", "password": PASSWORD, "device": "admin console"})),
        )
        .await;
    let mut refresh_tokens =
        vec![root.refresh.clone(), api_login["refreshToken"].as_str().unwrap_or_default().to_owned()];
    if status == 200 {
        refresh_tokens.push(named["refreshToken"].as_str().unwrap_or_default().to_owned());
    } else {
        assert_eq!((status, named["code"].as_str()), (400, Some("BAD_USER_INPUT")), "{named}");
    }
    for token in refresh_tokens {
        let cookie = format!("syncchat_admin={token}");
        let resp = app.client.get(app.url("/admin")).header("cookie", &cookie).send().await.expect("get");
        let page = resp.text().await.unwrap_or_default();
        assert!(page.contains("action=\"/admin/login\"") && !page.contains("data-figure"), "{token}: {page}");
        let resp = app.client.get(app.url("/admin/live/overview")).header("cookie", &cookie).send().await.expect("get");
        assert_eq!(resp.status(), 401);
    }
}

#[tokio::test]
async fn the_console_sign_in_says_when_to_retry_after_too_many_attempts() {
    let app = spawn_app_with(Backend::Sqlite, &["--rate-auth-per-account-per-min", "2"]).await.expect("app");
    app.register("root").await;
    make_admin(&app, "root").await;
    let mut browser = Browser::new();
    let mut last = None;
    for _ in 0..3 {
        let (_, page) = browser.get(&app, "/admin").await;
        let csrf = csrf_in(&page);
        let resp = browser
            .client
            .post(app.url("/admin/login"))
            .header("cookie", browser.cookie_header())
            .form(&[("login", "root"), ("password", "wrong password"), ("csrf", &csrf)])
            .send()
            .await
            .expect("post");
        last = Some((
            resp.status().as_u16(),
            resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned),
        ));
    }
    let (status, retry_after) = last.expect("three attempts");
    assert_eq!(status, 429);
    let secs = retry_after.and_then(|v| v.parse::<u64>().ok()).expect("a Retry-After in seconds");
    assert!((1..=60).contains(&secs), "{secs}");
}

/// Registers `root`, makes them an admin and signs a browser in.
async fn signed_in_admin(app: &TestApp) -> (TestUser, Browser) {
    let root = app.register("root").await;
    make_admin(app, "root").await;
    let mut browser = Browser::new();
    let (_, page) = browser.get(app, "/admin").await;
    let csrf = csrf_in(&page);
    let (status, _, _) =
        browser.post(app, "/admin/login", &[("login", "root"), ("password", PASSWORD), ("csrf", &csrf)]).await;
    assert_eq!(status, 303, "the admin signs in");
    (root, browser)
}

/// The text of the element carrying `attr` (e.g. `data-total="current"`).
fn text_at(page: &str, attr: &str) -> String {
    page.split_once(attr)
        .and_then(|(_, rest)| rest.split_once('>'))
        .and_then(|(_, rest)| rest.split_once('<'))
        .map(|(text, _)| text.to_owned())
        .unwrap_or_default()
}

/// Inside the figure card `label`: its number.
fn figure(page: &str, label: &str) -> String {
    page.split_once(&format!("data-figure=\"{label}\""))
        .and_then(|(_, rest)| rest.split_once("<b>"))
        .and_then(|(_, rest)| rest.split_once("</b>"))
        .map(|(n, _)| n.to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_overview_panel_refreshes_with_this_nodes_live_figures() {
    let app = spawn_app_with(Backend::Sqlite, &["--stats-interval-secs", "1"]).await.expect("app");
    let (root, mut browser) = signed_in_admin(&app).await;
    let ann = app.register("ann").await;
    let conv = app.conversation(&ann, &[&root], None).await;

    // Anonymous fragment requests get nothing.
    let anon = reqwest::get(app.url("/admin/live/overview")).await.expect("get");
    assert_eq!(anon.status(), 401);
    assert_eq!(anon.text().await.unwrap_or_default(), "");

    let (_, page) = browser.get(&app, "/admin").await;
    assert!(page.contains("data-refresh=\"/admin/live/overview\""), "the panel names its fragment");
    assert!(page.contains("This node only"), "without Redis the page says so");
    assert_eq!(figure(&page, "Messages"), "0");

    let mut ws = WsClient::signed_in(&app, &root.token).await;
    ws.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..5 {
        app.send(&ann, &conv, &format!("m{i}")).await;
        let _ = ws.next_data("1").await;
    }
    // Within a few snapshots the panel shows the messages, this node and its deliveries.
    let mut panel = String::new();
    for _ in 0..50 {
        let (status, fragment) = browser.get(&app, "/admin/live/overview").await;
        assert_eq!(status, 200);
        panel = fragment;
        if figure(&panel, "Messages") == "5"
            && panel.contains("data-node=")
            && !text_at(&panel, "data-value=\"delivery_latency\"").starts_with('–')
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!panel.contains("<html"), "a fragment, not a page");
    assert_eq!(figure(&panel, "Messages"), "5", "{panel}");
    assert!(panel.contains("data-node="), "this node reports: {panel}");
    let latency = text_at(&panel, "data-value=\"delivery_latency\"");
    assert!(latency.contains("ms"), "delivery percentiles from the deliveries just made: {latency}");
    assert_ne!(text_at(&panel, "data-value=\"messages_per_sec\""), "0.0/s", "{panel}");
    assert!(
        panel.contains("data-row=\"delivery_latency\"") && panel.contains("data-status="),
        "judged against targets"
    );
    assert!(panel.contains("<polyline"), "sparklines");
    ws.close().await;
}

#[tokio::test]
async fn capacity_and_cost_recompute_from_their_inputs_and_the_planning_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("console.toml");
    std::fs::write(
        &file,
        "[node_capacity]\nconnections = 5000\nmessages_per_sec = 500\nsource = \"measured\"\n\n[prices]\nserver = 40\ndatabase = 60\nredis = 30\nload_balancer = 20\ncdn = 20\nmonitoring = 20\n",
    )
    .expect("write planning file");
    let path = file.display().to_string();
    let app = spawn_app_with(Backend::Sqlite, &["--console-config", &path]).await.expect("app");
    let (_, mut browser) = signed_in_admin(&app).await;

    let (status, cost) = browser.get(&app, "/admin/cost?projected=10000").await;
    assert_eq!(status, 200);
    // 10,000 users, 10 % online: 1,000 connections fit one 5,000-connection node; phase 2
    // keeps three. 3 × $40 + 60 + 30 + 20 + 20 + 20.
    assert_eq!(text_at(&cost, "data-total=\"projected\""), "$270", "prices from the file");
    assert!(cost.contains("name=\"server\" value=\"40\""));
    let (_, cost) = browser.get(&app, "/admin/cost/results?projected=10000&server=50").await;
    assert_eq!(text_at(&cost, "data-total=\"projected\""), "$300", "an edited price changes the total");
    assert!(!cost.contains("<html"));
    let (status, bad) = browser.get(&app, "/admin/cost?online_pct=abc").await;
    assert_eq!(status, 400);
    assert!(bad.contains("online_pct"), "{bad}");

    let (_, capacity) = browser.get(&app, "/admin/capacity?projected=1000000").await;
    assert_eq!(text_at(&capacity, "data-figure=\"node-connections\""), "5,000", "capacity from the file");
    // 100,000 peak connections / (5,000 × 70 %) = 29 nodes, + 1 spare.
    assert!(capacity.contains("data-nodes=\"projected\" class=\"num\"><b>30</b>"), "{capacity}");
    assert!(capacity.contains("data-phase=\"1\""), "one registered user: phase 1");
    let (_, results) = browser.get(&app, "/admin/capacity/results?projected=2000").await;
    assert!(results.contains("data-nodes=\"projected\" class=\"num\"><b>3</b>"), "{results}");

    let anon = reqwest::get(app.url("/admin/cost/results?projected=10")).await.expect("get");
    assert_eq!(anon.status(), 401);
}

on_both_backends!(
    disabling_a_user_closes_their_sockets_revokes_sessions_and_is_audited,
    deleting_a_message_wipes_it_for_everyone_and_is_audited,
    the_business_page_counts_todays_activity
);

async fn disabling_a_user_closes_their_sockets_revokes_sessions_and_is_audited(app: TestApp) {
    let (root, mut browser) = signed_in_admin(&app).await;
    let ann = app.register("ann").await;
    app.register("anna").await;
    let conv = app.conversation(&ann, &[&root], None).await;
    let mut ws = WsClient::signed_in(&app, &ann.token).await;
    ws.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (_, page) = browser.get(&app, "/admin/moderation?q=AN").await;
    assert!(page.contains("data-user=\"ann\"") && page.contains("data-user=\"anna\""), "{page}");
    assert!(!page.contains("data-user=\"root\""));
    assert_eq!(text_at(&page, "data-conversations=\"ann\""), "1");
    let csrf = csrf_in(&page);
    let disable = format!("/admin/moderation/users/{}/disable", ann.id);

    // Without the session's CSRF token nothing happens.
    let (status, _, _) = browser.post(&app, &disable, &[("csrf", "forged"), ("q", "an")]).await;
    assert_eq!(status, 403);
    let (status, _) = app.rest("GET", "/users/me", Some(&ann.token), None).await;
    assert_eq!(status, 200, "ann still works");

    let (status, _, _) = browser.post(&app, &disable, &[("csrf", &csrf), ("q", "an")]).await;
    assert_eq!(status, 303);
    match ws.recv().await {
        Received::Closed(code, _) => assert_eq!(code, 4403, "the live connection is closed as forbidden"),
        other => panic!("expected the socket to close, got {other:?}"),
    }
    let (status, _) = app.rest("GET", "/users/me", Some(&ann.token), None).await;
    assert_eq!(status, 401, "the access token no longer works: its session is revoked");
    let (status, _) = app.rest("POST", "/auth/refresh", None, Some(json!({"refreshToken": ann.refresh}))).await;
    assert!(status == 401 || status == 403, "the session is revoked: {status}");

    let (_, page) = browser.get(&app, "/admin/moderation?q=ann").await;
    assert!(page.contains("data-user-status=\"disabled\""), "{page}");
    assert!(page.contains("data-audit=\"user.disable\""), "the action is in the audit log");
    assert!(!page.contains("data-audit=\"user.enable\""));

    let csrf = csrf_in(&page);
    let enable = format!("/admin/moderation/users/{}/enable", ann.id);
    let (status, _, _) = browser.post(&app, &enable, &[("csrf", &csrf), ("q", "ann")]).await;
    assert_eq!(status, 303);
    let (status, _) = app.rest("POST", "/auth/login", None, Some(json!({"login": "ann", "password": PASSWORD}))).await;
    assert_eq!(status, 200, "enabled again");
    let (_, page) = browser.get(&app, "/admin/moderation").await;
    assert!(page.contains("data-audit=\"user.enable\""));
    let metrics = app.metrics().await;
    let disables =
        syncchat_test_support::metric_sum(&metrics, "syncchat_admin_actions_total", &["action=\"user.disable\""]);
    assert!(disables >= 1.0, "counted in /metrics");

    // An admin cannot lock themselves out.
    let own = format!("/admin/moderation/users/{}/disable", root.id);
    let (status, _, _) = browser.post(&app, &own, &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let (_, page) = browser.get(&app, "/admin/moderation?q=root").await;
    assert!(!page.contains("data-user-status=\"disabled\""), "root is still enabled");
}

async fn deleting_a_message_wipes_it_for_everyone_and_is_audited(app: TestApp) {
    let (root, mut browser) = signed_in_admin(&app).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let conv = app.conversation(&ann, &[&bob], None).await;
    let kept = app.send(&ann, &conv, "fine").await;
    let bad = app.send(&ann, &conv, "spam spam").await;
    let bad_id = bad["id"].as_str().expect("id").to_owned();
    let mut ws = WsClient::signed_in(&app, &bob.token).await;
    ws.subscribe(
        "d",
        "subscription { events { __typename ... on MessageDeletedEvent { message { id body } } } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = root;

    let (_, page) = browser.get(&app, "/admin/moderation").await;
    let csrf = csrf_in(&page);
    let (status, _, _) = browser
        .post(
            &app,
            "/admin/moderation/messages/delete",
            &[("csrf", &csrf), ("message_id", &bad_id), ("reason", "spam")],
        )
        .await;
    assert_eq!(status, 303);
    let (_, history) = app.rest("GET", &format!("/conversations/{conv}/messages"), Some(&bob.token), None).await;
    let bodies: Vec<&serde_json::Value> =
        history["items"].as_array().expect("items").iter().map(|m| &m["body"]).collect();
    assert_eq!(bodies, vec![&kept["body"], &serde_json::Value::Null], "the body is gone, the seq stays");
    let deleted = ws.next_data("d").await;
    assert_eq!(deleted["events"]["__typename"], "MessageDeletedEvent", "participants see it live");
    assert_eq!(deleted["events"]["message"]["id"], bad_id.as_str());
    assert!(deleted["events"]["message"]["body"].is_null());

    let (_, page) = browser.get(&app, "/admin/moderation").await;
    assert!(page.contains("data-audit=\"message.delete\""));
    assert!(page.contains(&bad_id) && page.contains("spam"), "target and reason are logged");

    // Unknown and malformed ids are refused with a clear message and change nothing.
    for id in [uuid::Uuid::now_v7().to_string(), "not-an-id".to_owned()] {
        let resp = browser
            .client
            .post(app.url("/admin/moderation/messages/delete"))
            .header("cookie", browser.cookie_header())
            .form(&[("csrf", csrf.as_str()), ("message_id", id.as_str())])
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 303);
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(location.contains("error="), "{location}");
        let (_, page) = browser.get(&app, &location).await;
        assert!(page.contains("role=\"alert\""), "the error is shown");
    }
    let (_, page) = browser.get(&app, "/admin/moderation").await;
    assert_eq!(page.matches("data-audit=\"message.delete\"").count(), 1, "nothing else was logged");
}

async fn the_business_page_counts_todays_activity(app: TestApp) {
    let (root, mut browser) = signed_in_admin(&app).await;
    let ann = app.register("ann").await;
    app.register("bob").await;
    let conv = app.conversation(&ann, &[&root], None).await;
    for i in 0..4 {
        app.send(&ann, &conv, &format!("m{i}")).await;
    }
    let (status, page) = browser.get(&app, "/admin/business").await;
    assert_eq!(status, 200);
    assert_eq!(figure(&page, "users"), "3");
    assert_eq!(figure(&page, "registrations_today"), "3");
    assert_eq!(figure(&page, "messages_today"), "4");
    assert_eq!(figure(&page, "conversations"), "1");
    // ann sent messages today; root and bob have been seen at registration at most.
    let dau: u64 = figure(&page, "dau").parse().expect("a number");
    assert!((1..=3).contains(&dau), "{dau}");
    assert_eq!(figure(&page, "retention"), "–", "no users registered 7-14 days ago");
    assert_eq!(page.matches("<rect").count(), 3 * 14, "a bar per day for 14 days in each chart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_on_one_node_closes_sockets_on_every_node_and_the_overview_sees_both() {
    let Some(nodes) = spawn_cluster(2, &["--stats-interval-secs", "1"]).await else { return };
    let (a, b) = (&nodes[0], &nodes[1]);
    let (_, mut browser) = signed_in_admin(a).await;
    let ann = a.register("ann").await;
    let conv = a.conversation(&ann, &[], Some("notes")).await;
    let mut on_b = WsClient::signed_in(b, &ann.token).await;
    on_b.subscribe("1", MESSAGE_ADDED, json!({"c": conv})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.send(&ann, &conv, "hello").await;
    let _ = on_b.next_data("1").await;

    let (_, page) = browser.get(a, "/admin/moderation?q=ann").await;
    let csrf = csrf_in(&page);
    let (status, _, _) =
        browser.post(a, &format!("/admin/moderation/users/{}/disable", ann.id), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    match on_b.recv().await {
        Received::Closed(code, _) => assert_eq!(code, 4403),
        other => panic!("the socket on the other node should close, got {other:?}"),
    }

    let mut panel = String::new();
    for _ in 0..50 {
        panel = browser.get(a, "/admin/live/overview").await.1;
        if panel.matches("data-node=").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(panel.matches("data-node=").count(), 2, "both nodes report through Redis: {panel}");
    assert!(panel.contains("data-scope=\"cluster\""));
    assert!(text_at(&panel, "data-value=\"redis\"").starts_with("up"), "Redis health: {panel}");
}

/// The Integrations page: an admin sees each app with its bot and keys, and each webhook
/// endpoint with its success rate, backlog and why it was disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_integrations_page_shows_apps_and_a_failing_endpoint() {
    use crate::webhooks::{FLAGS, Receiver, endpoint, integration, receiver_available};
    let app = spawn_app_with(Backend::Sqlite, &FLAGS).await.expect("app");
    if !receiver_available() {
        return;
    }
    let (_, mut browser) = signed_in_admin(&app).await;
    let bot = integration(&app, "pager", &syncchat_api::service::scopes::Scope::ALL).await;
    let ann = app.register("ann").await;
    let receiver = Receiver::start("whsec_placeholder");
    receiver.answer("gone");
    let (id, _) = endpoint(&app, &bot, &receiver.url()).await;
    let room = app.conversation(&ann, &[&bot.bot], None).await;
    app.send(&ann, &room, "hello").await;
    let mut page = String::new();
    for _ in 0..100 {
        page = browser.get(&app, "/admin/integrations").await.1;
        if page.contains("data-endpoint-state=\"disabled\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(page.contains("data-app=\"pager\"") && page.contains("pager_bot"), "{page}");
    assert!(page.contains(&format!("data-endpoint=\"{id}\"")), "{page}");
    assert!(page.contains("data-endpoint-state=\"disabled\"") && page.contains("410 Gone"), "{page}");
    assert!(page.contains("answered 410"), "recent failures are listed: {page}");
    assert_eq!(figure(&page, "endpoints_disabled"), "1");
    assert!(text_at(&page, &format!("data-success=\"{id}\"")).starts_with("0"), "{page}");
    let anon = reqwest::get(app.url("/admin/integrations")).await.expect("get").text().await.unwrap_or_default();
    assert!(anon.contains("action=\"/admin/login\"") && !anon.contains("data-endpoint"), "anonymous: login page only");
}
