//! The admin console's doors: only admins get in, with an HttpOnly SameSite=Strict session
//! cookie, every form needs its CSRF token, and nobody else ever sees data.

use crate::helpers::{Backend, PASSWORD, TestApp, spawn_app};

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

async fn make_admin(app: &TestApp, username: &str) {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
    let db = Database::connect(app.database_url.as_str()).await.expect("connect");
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "UPDATE users SET role = 'admin' WHERE username = $1",
        _ => "UPDATE users SET role = 'admin' WHERE username = ?",
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [username.into()])).await.expect("update");
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
