//! `spawn_app()`: a real SyncChat server on 127.0.0.1:0 with its own fresh database (on
//! Postgres a clone of a migrated template), and a small client for both façades.

use std::path::Path;

use clap::Parser;
use serde_json::{Value, json};
use syncchat_api::App;
use syncchat_api::config::{Cli, Config};
use syncchat_test_support::{DATABASE_URL, REDIS_URL, skip_or_fail};
use tokio::sync::{OnceCell, oneshot};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub database_url: String,
    /// The server's service layer, for what only the server can see (stored files, the
    /// collector).
    pub services: syncchat_api::service::Services,
    /// The server's background tasks (they stop with it).
    pub background: syncchat_api::background::Background,
    /// The flags it was started with beyond the base ones; a restart keeps them.
    extra: Vec<String>,
    _data: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A registered user with tokens.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub token: String,
    pub refresh: String,
}

pub const PASSWORD: &str = "correct horse battery";

/// Arguments every test server gets; tests add their own after these.
fn base_args(database_url: &str, data: &Path) -> Vec<String> {
    vec![
        "syncchat".into(),
        "--bind".into(),
        "127.0.0.1:0".into(),
        "--database-url".into(),
        database_url.into(),
        "--data-dir".into(),
        data.display().to_string(),
        "--jwt-secret".into(),
        "test-secret-test-secret-test-secret!".into(),
        "--log".into(),
        "warn".into(),
        // Generous limits; the limit tests lower the one they test.
        "--rate-send-per-sec".into(),
        "1000".into(),
        "--rate-send-burst".into(),
        "1000".into(),
        "--rate-conversations-per-min".into(),
        "1000".into(),
        "--rate-auth-per-ip-per-min".into(),
        "1000".into(),
        "--rate-auth-per-account-per-min".into(),
        "1000".into(),
    ]
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, &[]).await
}

/// Spawns a server; `None` when the backend is not configured (Postgres without
/// `SYNCCHAT_TEST_DATABASE_URL`), which fails instead when `SYNCCHAT_TEST_REQUIRE_ALL=1`.
pub async fn spawn_app_with(backend: Backend, extra: &[&str]) -> Option<TestApp> {
    let data = tempfile::tempdir().expect("tempdir");
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}/syncchat.db?mode=rwc", data.path().display()),
        Backend::Postgres => match fresh_postgres_database().await {
            Some(url) => url,
            None => {
                skip_or_fail("the Postgres runs", &format!("{DATABASE_URL} is not set"));
                return None;
            }
        },
    };
    Some(start(backend, database_url, data, extra).await)
}

/// `n` nodes sharing one fresh Postgres database and the Redis of `SYNCCHAT_TEST_REDIS_URL`;
/// `None` when either is not configured (a failure under `SYNCCHAT_TEST_REQUIRE_ALL=1`).
pub async fn spawn_cluster(n: usize, extra: &[&str]) -> Option<Vec<TestApp>> {
    spawn_cluster_with(std::env::var(REDIS_URL).ok(), n, extra).await
}

/// Like [`spawn_cluster`], on the Redis at `redis_url` (one the test runs itself).
pub async fn spawn_cluster_on(redis_url: &str, n: usize, extra: &[&str]) -> Option<Vec<TestApp>> {
    spawn_cluster_with(Some(redis_url.to_owned()), n, extra).await
}

async fn spawn_cluster_with(redis: Option<String>, n: usize, extra: &[&str]) -> Option<Vec<TestApp>> {
    let database = match redis {
        Some(_) => fresh_postgres_database().await,
        None => None,
    };
    let (Some(redis), Some(database_url)) = (redis, database) else {
        skip_or_fail("the cluster runs", &format!("{DATABASE_URL} or {REDIS_URL} is not set"));
        return None;
    };
    let mut nodes = Vec::new();
    let cluster = format!("test-{}", uuid::Uuid::now_v7().simple());
    for _ in 0..n {
        let mut args = vec!["--redis-url", redis.as_str(), "--cluster-name", cluster.as_str()];
        args.extend_from_slice(extra);
        let data = tempfile::tempdir().expect("tempdir");
        nodes.push(start(Backend::Postgres, database_url.clone(), data, &args).await);
    }
    Some(nodes)
}

async fn start(backend: Backend, database_url: String, data: tempfile::TempDir, extra: &[&str]) -> TestApp {
    let mut args = base_args(&database_url, data.path());
    // `extra` is flag/value pairs that replace the base value of the same flag.
    for pair in extra.chunks(2) {
        if let [flag, value] = pair {
            match args.iter().position(|a| a == flag) {
                Some(i) => args[i + 1] = (*value).to_owned(),
                None => args.extend([(*flag).to_owned(), (*value).to_owned()]),
            }
        }
    }
    let extra = extra.iter().map(|a| (*a).to_owned()).collect();
    let config: Config = Cli::parse_from(args).config;
    syncchat_api::telemetry::init(&config.log, config.log_format);
    let app = App::build(config).await.expect("app builds");
    let base = format!("http://{}", app.addr());
    let services = app.services().clone();
    let background = app.background().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = app
            .run_until(async move {
                let _ = rx.await;
            })
            .await;
    });
    TestApp {
        base,
        client: reqwest::Client::new(),
        backend,
        database_url,
        services,
        background,
        extra,
        _data: data,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server (and its background work) and starts a new one on the same database
    /// and data folder, with the same flags.
    pub async fn restart(mut self) -> TestApp {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        let data = std::mem::replace(&mut self._data, tempfile::tempdir().expect("tempdir"));
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        start(self.backend, self.database_url.clone(), data, &extra).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST /graphql; returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self.client.post(self.url("/graphql")).json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("graphql request").json().await.expect("graphql json")
    }

    /// GraphQL call that must succeed; returns `data`.
    pub async fn gql_ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// A REST call; returns (status, body as JSON or Null).
    pub async fn rest(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, self.url(&format!("/api/v1{path}")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("rest request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn register(&self, username: &str) -> TestUser {
        let (status, body) = self
            .rest(
                "POST",
                "/auth/register",
                None,
                Some(json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, 200, "register {username}: {body}");
        TestUser {
            id: body["user"]["id"].as_str().expect("id").to_owned(),
            token: body["accessToken"].as_str().expect("token").to_owned(),
            refresh: body["refreshToken"].as_str().expect("refresh").to_owned(),
        }
    }

    /// Creates a conversation through REST and returns its id.
    pub async fn conversation(&self, owner: &TestUser, others: &[&TestUser], title: Option<&str>) -> String {
        let ids: Vec<&str> = others.iter().map(|u| u.id.as_str()).collect();
        let (status, body) = self
            .rest("POST", "/conversations", Some(&owner.token), Some(json!({"participantIds": ids, "title": title})))
            .await;
        assert_eq!(status, 200, "create conversation: {body}");
        body["id"].as_str().expect("conversation id").to_owned()
    }

    pub async fn send(&self, user: &TestUser, conversation: &str, body: &str) -> Value {
        let (status, resp) = self
            .rest(
                "POST",
                &format!("/conversations/{conversation}/messages"),
                Some(&user.token),
                Some(json!({"body": body})),
            )
            .await;
        assert_eq!(status, 200, "send: {resp}");
        resp
    }

    pub async fn metrics(&self) -> String {
        self.client.get(self.url("/metrics")).send().await.expect("metrics").text().await.expect("text")
    }
}

/// The `code` of the first GraphQL error.
pub fn gql_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("<none>").to_owned()
}

/// Test databases are named `syncchat_t_<pid>_<uuid>`: a later run drops those whose process
/// has ended, and leaves the databases of runs still going (other checkouts, other binaries).
const TEST_DATABASE_PREFIX: &str = "syncchat_t_";
/// The session advisory lock under which one process at a time builds a template.
const TEMPLATE_LOCK: i64 = 0x5359_4e43_5445_4d50;

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// A new Postgres database on the server of `SYNCCHAT_TEST_DATABASE_URL`, migrated: a clone of
/// the template database of the current migrations (migrating takes longer than copying).
async fn fresh_postgres_database() -> Option<String> {
    use sea_orm::ConnectionTrait;
    let admin_url = std::env::var(DATABASE_URL).ok()?;
    let admin = connect_once(&admin_url).await;
    let template = TEMPLATE.get_or_init(|| prepare_template(&admin, &admin_url)).await;
    let name = format!("{TEST_DATABASE_PREFIX}{}_{}", std::process::id(), uuid::Uuid::now_v7().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""))
        .await
        .expect("clone the template database");
    let _ = admin.close().await;
    Some(database_url(&admin_url, &name))
}

/// Once per process: drops the databases of ended runs, and builds the template of the current
/// migrations unless it exists (under an advisory lock, so concurrent runs build it once; under
/// another name first, so a run that dies half-way leaves no half-migrated template). Returns
/// the template's name.
async fn prepare_template(admin: &sea_orm::DatabaseConnection, admin_url: &str) -> String {
    use sea_orm::ConnectionTrait;
    use syncchat_migrations::{Migrator, MigratorTrait};
    drop_databases_of_ended_runs(admin).await;
    let template = format!("syncchat_template_{}", migrations_hash());
    admin.execute_unprepared(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})")).await.expect("template lock");
    let exists = admin
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT 1 AS found FROM pg_database WHERE datname = $1",
            [template.clone().into()],
        ))
        .await
        .expect("look for the template database")
        .is_some();
    if !exists {
        let building = format!("{template}_new");
        for sql in
            [format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"), format!("CREATE DATABASE \"{building}\"")]
        {
            admin.execute_unprepared(&sql).await.expect("create the template database");
        }
        let db = connect_once(&database_url(admin_url, &building)).await;
        Migrator::up(&db, None).await.expect("migrate the template database");
        let _ = db.close().await;
        admin
            .execute_unprepared(&format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""))
            .await
            .expect("name the template database");
    }
    admin.execute_unprepared(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})")).await.expect("template unlock");
    template
}

/// Drops the test databases whose run has ended (every one where `/proc` cannot tell).
async fn drop_databases_of_ended_runs(admin: &sea_orm::DatabaseConnection) {
    use sea_orm::ConnectionTrait;
    let rows = admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT datname FROM pg_database WHERE datname LIKE '{}%'",
                TEST_DATABASE_PREFIX.replace('_', "\\_")
            ),
        ))
        .await
        .unwrap_or_default();
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "datname") else { continue };
        let pid = name.strip_prefix(TEST_DATABASE_PREFIX).and_then(|rest| rest.split_once('_')).map(|(pid, _)| pid);
        let running = pid.is_some_and(|pid| pid.parse::<u32>().is_ok() && Path::new("/proc").join(pid).exists());
        if !running {
            let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
        }
    }
}

/// What identifies the migrations: a hash of their source files.
fn migrations_hash() -> String {
    use sha2::{Digest, Sha256};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/src");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).expect("the migrations' sources").filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        hash.update(file.file_name().unwrap_or_default().as_encoded_bytes());
        hash.update(std::fs::read(&file).expect("a migration's source"));
    }
    hex::encode(&hash.finalize()[..8])
}

/// One connection, so session state (the advisory lock) stays with it.
async fn connect_once(url: &str) -> sea_orm::DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(url.to_owned());
    options.max_connections(1).sqlx_logging(false);
    sea_orm::Database::connect(options).await.expect("connect to SYNCCHAT_TEST_DATABASE_URL")
}

/// The URL of database `name` on the server of `admin_url`.
fn database_url(admin_url: &str, name: &str) -> String {
    let (prefix, _) = admin_url.rsplit_once('/').expect("database url has a path");
    format!("{prefix}/{name}")
}

/// Declares each scenario once per backend: `mod sqlite { fn x() }` and `mod postgres { fn x() }`.
macro_rules! on_both_backends {
    (with $args:tt; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, &$args).await.expect("sqlite app");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = crate::helpers::spawn_app_with(crate::helpers::Backend::Postgres, &$args).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await.expect("sqlite app");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// A server on a database URL the test provides (a private Postgres it can stop and start).
pub async fn spawn_app_on(database_url: String) -> TestApp {
    let data = tempfile::tempdir().expect("tempdir");
    start(Backend::Postgres, database_url, data, &[]).await
}

/// The `n` of a `SELECT COUNT(*) AS n ...` against the app's database.
pub async fn count(app: &TestApp, sql: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let db = Database::connect(app.database_url.as_str()).await.expect("connect");
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_owned()))
        .await
        .expect("count")
        .expect("a row");
    let n: i64 = row.try_get("", "n").expect("n");
    let _ = db.close().await;
    n
}

/// Makes `username` an admin (straight in the database, as an operator would with
/// `syncchat admin create-user --admin`).
pub async fn make_admin(app: &TestApp, username: &str) {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
    let db = Database::connect(app.database_url.as_str()).await.expect("connect");
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "UPDATE users SET role = 'admin' WHERE username = $1",
        _ => "UPDATE users SET role = 'admin' WHERE username = ?",
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [username.into()])).await.expect("update");
    let _ = db.close().await;
}

/// An app made through `POST /apps` by `admin`: (the app as answered, its first key).
pub async fn create_app(app: &TestApp, admin: &TestUser, name: &str, scopes: &[&str]) -> (Value, String) {
    let (status, body) =
        app.rest("POST", "/apps", Some(&admin.token), Some(json!({"name": name, "scopes": scopes}))).await;
    assert_eq!(status, 200, "create app {name}: {body}");
    let key = body["key"]["secret"].as_str().expect("the key's secret").to_owned();
    (body, key)
}
