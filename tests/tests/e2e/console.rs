//! The admin console in a real browser: Debian's Chromium driven through ChromeDriver
//! (WebDriver, `fantoccini`) against the `syncchat` binary with its embedded defaults. An
//! admin signs in, watches the overview's figures change live as messages are sent, edits a
//! unit price and sees the cost change, disables a user whose graphql-ws subscription (the npm
//! client) is then closed, and creates an app whose key (shown once) then works against the
//! API until the admin revokes it from the page. Screenshots go to `target/e2e-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (Debian packages `chromium`, `chromium-driver`) and
//! `npm ci --prefix tests/js`; without them the test skips, unless
//! `SYNCCHAT_TEST_REQUIRE_ALL=1` (CI), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::cluster::{Api, JsSubscriber, ws_url};
use crate::process::{Server, binary, free_port};

const PASSWORD: &str = "correct horse battery";

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

fn find_tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.exists())
}

/// ChromeDriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(chromedriver: &Path) -> Driver {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        // Owned from here on, so it is killed and reaped on every path (Drop).
        let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if reqwest::get(format!("{}/status", driver.url)).await.is_ok_and(|r| r.status().is_success()) {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium.display().to_string(),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-quic", "--no-first-run",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1100",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a Chromium session")
}

async fn text(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(el) => el.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the element's text satisfies `ok`; returns the last text seen.
async fn wait_text(c: &Client, css: &str, within: Duration, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let t = text(c, css).await;
        if ok(&t) || Instant::now() > deadline {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(name), png).expect("save screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_uses_the_console_in_chromium() {
    let what = "the console test";
    let (Some(chromium), Some(chromedriver)) = (find_tool("chromium"), find_tool("chromedriver")) else {
        syncchat_test_support::skip_or_fail(
            what,
            "chromium or chromedriver is missing (apt install chromium chromium-driver)",
        );
        return;
    };
    let js = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js/node_modules/graphql-ws");
    if !js.exists() {
        syncchat_test_support::skip_or_fail(what, "tests/js has no node_modules: run `npm ci --prefix tests/js`");
        return;
    }

    // The embedded defaults, plus fast stats so the test need not wait long.
    let dir = tempfile::tempdir().expect("tempdir");
    let created = Command::new(binary())
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SYNCCHAT_LOG", "warn")
        .args(["admin", "create-user", "--username", "root", "--email", "root@example.com", "--password", PASSWORD])
        .output()
        .expect("run syncchat");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let server = Server::start(dir.path(), &[("SYNCCHAT_STATS_INTERVAL_SECS", "1"), ("SYNCCHAT_LOG", "warn")]).await;
    let api = Api { client: reqwest::Client::new() };
    let (ann_id, ann_token) = api.register(&server.base, "ann").await;
    let (bob_id, _) = api.register(&server.base, "bob").await;
    let conv = api.conversation(&server.base, &ann_token, &bob_id).await;

    let driver = Driver::start(&chromedriver).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let c = browser(&driver, &chromium, profile.path()).await;

    // Sign in.
    c.goto(&format!("{}/admin", server.base)).await.expect("open the console");
    c.find(Locator::Css("input[name=login]")).await.expect("login field").send_keys("root").await.expect("type");
    c.find(Locator::Css("input[name=password]")).await.expect("password").send_keys(PASSWORD).await.expect("type");
    c.find(Locator::Css("form[action='/admin/login'] button")).await.expect("button").click().await.expect("submit");
    let messages = wait_text(&c, "[data-figure=Messages] b", Duration::from_secs(10), |t| t == "0").await;
    assert_eq!(messages, "0", "the overview after signing in");
    screenshot(&c, "1-overview.png").await;

    // Messages sent by a client show up on the open page, without a reload.
    let marker = "window.__sameDocument = true;";
    c.execute(marker, vec![]).await.expect("mark the document");
    for i in 0..6 {
        let (status, _) = api
            .post(
                &server.base,
                &format!("/conversations/{conv}/messages"),
                Some(&ann_token),
                json!({"body": format!("hi {i}")}),
            )
            .await
            .expect("send");
        assert_eq!(status, 200);
    }
    let messages = wait_text(&c, "[data-figure=Messages] b", Duration::from_secs(15), |t| t == "6").await;
    assert_eq!(messages, "6", "the live panel refreshed");
    let rate = wait_text(&c, "[data-value=messages_per_sec]", Duration::from_secs(10), |t| t != "0.0/s").await;
    assert_ne!(rate, "0.0/s", "messages/s moved");
    let same = c.execute("return window.__sameDocument === true;", vec![]).await.expect("script");
    assert_eq!(same, json!(true), "no page reload: the panel was swapped in place");
    assert!(text(&c, "[data-node]").await.contains("s ago"), "this node reports");
    screenshot(&c, "2-overview-after-messages.png").await;

    // Cost: editing a unit price recomputes the bill.
    c.goto(&format!("{}/admin/cost", server.base)).await.expect("cost page");
    let before = text(&c, "[data-total=projected]").await;
    assert_eq!(before, "$300", "the guide's 10K-user table");
    let server_price = c.find(Locator::Css("input[name=server]")).await.expect("server price");
    server_price.clear().await.expect("clear");
    server_price.send_keys("80").await.expect("type");
    let after = wait_text(&c, "[data-total=projected]", Duration::from_secs(10), |t| t != "$300").await;
    assert_eq!(after, "$390", "3 servers at $80");
    screenshot(&c, "3-cost-edited.png").await;

    // Disable ann while her subscription is open: the server closes it (4403).
    let sub = JsSubscriber::start(100, &ann_token, &conv, 6, &[ws_url(&server)]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, _) = api
        .post(&server.base, &format!("/conversations/{conv}/messages"), Some(&ann_token), json!({"body": "still here"}))
        .await
        .expect("send");
    assert_eq!(status, 200);
    let got = sub.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "the subscription is live before the disable");
    c.goto(&format!("{}/admin/moderation?q=ann", server.base)).await.expect("moderation page");
    c.find(Locator::Css("button[aria-label='Disable ann']"))
        .await
        .expect("disable button")
        .click()
        .await
        .expect("click");
    let notice = wait_text(&c, "p.notice", Duration::from_secs(10), |t| t.contains("disabled")).await;
    assert!(notice.contains("disabled"), "{notice}");
    assert_eq!(text(&c, "[data-user-status]").await, "disabled");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sub.close_codes().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sub.close_codes().first(), Some(&4403), "ann's subscription was closed as forbidden");
    assert!(text(&c, "[data-audit='user.disable']").await.contains("ann"), "the audit log shows it");
    screenshot(&c, "4-moderation-disabled.png").await;
    let _ = ann_id;

    // Integrations: create an app with two scopes; its key is shown once and works.
    c.goto(&format!("{}/admin/integrations", server.base)).await.expect("integrations page");
    let form = "form[data-form=new-app]";
    c.find(Locator::Css(&format!("{form} input[name=name]")))
        .await
        .expect("name")
        .send_keys("Help Desk")
        .await
        .expect("type");
    for scope in ["conversations:read", "messages:write"] {
        let boxed = format!("{form} input[name=scopes][value='{scope}']");
        c.find(Locator::Css(&boxed)).await.expect("scope box").click().await.expect("tick");
    }
    c.find(Locator::Css(&format!("{form} button[type=submit]"))).await.expect("create").click().await.expect("submit");
    let secret = wait_text(&c, "[data-secret]", Duration::from_secs(10), |t| t.starts_with("sck_")).await;
    assert!(text(&c, "p.notice").await.contains("help_desk_bot"), "the bot user is named");
    assert_eq!(text(&c, "tr[data-app='Help Desk'] td:nth-child(3)").await, "conversations:read, messages:write");
    screenshot(&c, "5-integrations-new-app.png").await;
    let me = |key: String| {
        let (client, base) = (api.client.clone(), server.base.clone());
        async move {
            let resp = client.get(format!("{base}/api/v1/users/me")).bearer_auth(key).send().await.expect("me");
            let status = resp.status().as_u16();
            (status, resp.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (status, bot) = me(secret.clone()).await;
    assert_eq!((status, bot["username"].as_str()), (200, Some("help_desk_bot")), "the key signs in as the bot: {bot}");
    let (status, _) = api
        .post(&server.base, "/apps", Some(&secret), json!({"name": "x", "scopes": ["users:read"]}))
        .await
        .expect("post");
    assert_eq!(status, 403, "a key is not an admin");
    // Reloading the page does not show the secret again; revoking from it ends the key.
    c.goto(&format!("{}/admin/integrations", server.base)).await.expect("integrations again");
    assert!(c.find(Locator::Css("[data-secret]")).await.is_err(), "the secret is shown only once");
    let prefix = secret.split('_').nth(1).expect("prefix").to_owned();
    c.find(Locator::Css(&format!("button[aria-label='Revoke sck_{prefix}']")))
        .await
        .expect("revoke button")
        .click()
        .await
        .expect("click");
    let notice = wait_text(&c, "p.notice", Duration::from_secs(10), |t| t.contains("revoked")).await;
    assert!(notice.contains("revoked"), "{notice}");
    assert!(text(&c, &format!("li[data-key='{prefix}']")).await.contains("revoked"), "the list shows it revoked");
    assert_eq!(me(secret).await.0, 401, "a revoked key is refused at once");
    screenshot(&c, "6-integrations-revoked.png").await;

    // Page weight of the overview, for the record.
    let jar = c.get_all_cookies().await.expect("cookies");
    let cookie = jar.iter().map(|k| format!("{}={}", k.name(), k.value())).collect::<Vec<_>>().join("; ");
    let weigh = |path: &'static str| {
        let (client, base, cookie) = (api.client.clone(), server.base.clone(), cookie.clone());
        async move {
            let body = client.get(format!("{base}{path}")).header("cookie", cookie).send().await.expect("get");
            body.bytes().await.map(|b| b.len()).unwrap_or_default()
        }
    };
    let (html, css, script, fragment) = (
        weigh("/admin").await,
        weigh("/admin/assets/console.css").await,
        weigh("/admin/assets/console.js").await,
        weigh("/admin/live/overview").await,
    );
    eprintln!(
        "overview page weight: html {html} B + css {css} B + js {script} B = {} B; live fragment {fragment} B",
        html + css + script
    );
    assert!(html > 0 && css > 0 && script > 0);

    c.close().await.expect("close the browser");
}
