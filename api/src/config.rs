//! Configuration: every setting is an environment variable with a matching flag and a default
//! that runs out of the box. The README's configuration table lists them all; a test keeps
//! the two in sync.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "syncchat", version, about = "SyncChat: a real-time chat backend")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Administrative tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print the REST OpenAPI spec (YAML).
    Openapi,
    /// Print the GraphQL schema (SDL).
    GraphqlSchema,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user with the admin role.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, env = "SYNCCHAT_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

/// A value that must never show up in logs or debug output.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "SYNCCHAT_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: SocketAddr,

    /// Separate address for `/metrics` (then not served on the main port); unset = main port.
    #[arg(long, env = "SYNCCHAT_METRICS_BIND", global = true)]
    pub metrics_bind: Option<SocketAddr>,

    /// Database URL: `sqlite://path?mode=rwc` or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://./data/syncchat.db?mode=rwc", global = true)]
    pub database_url: String,

    /// Largest number of pooled database connections.
    #[arg(long, env = "SYNCCHAT_DB_MAX_CONNECTIONS", default_value_t = 16, global = true)]
    pub db_max_connections: u32,

    /// Redis URL for presence and cross-node fan-out; unset = in-process.
    #[arg(long, env = "REDIS_URL", global = true)]
    pub redis_url: Option<String>,

    /// Folder for embedded state (SQLite file, generated JWT secret, files).
    #[arg(long, env = "SYNCCHAT_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// Secret that signs access tokens; unset = generated once and kept in the data folder.
    #[arg(long, env = "SYNCCHAT_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<Secret>,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "SYNCCHAT_ACCESS_TOKEN_TTL_SECS", default_value_t = 900, global = true)]
    pub access_token_ttl_secs: u64,

    /// Lifetime of a refresh token (a session), in seconds.
    #[arg(long, env = "SYNCCHAT_REFRESH_TOKEN_TTL_SECS", default_value_t = 2_592_000, global = true)]
    pub refresh_token_ttl_secs: u64,

    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "SYNCCHAT_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log format: `text` or `json`.
    #[arg(long, env = "SYNCCHAT_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: LogFormat,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "SYNCCHAT_MAX_BODY_BYTES", default_value_t = 1_048_576, global = true)]
    pub max_body_bytes: usize,

    /// Deepest GraphQL query accepted.
    #[arg(long, env = "SYNCCHAT_GRAPHQL_MAX_DEPTH", default_value_t = 16, global = true)]
    pub graphql_max_depth: usize,

    /// Highest GraphQL query complexity accepted.
    #[arg(long, env = "SYNCCHAT_GRAPHQL_MAX_COMPLEXITY", default_value_t = 2000, global = true)]
    pub graphql_max_complexity: usize,

    /// Messages a user may send per second, sustained.
    #[arg(long, env = "SYNCCHAT_RATE_SEND_PER_SEC", default_value_t = 20, global = true)]
    pub rate_send_per_sec: u32,

    /// Messages a user may send in a burst above the sustained rate.
    #[arg(long, env = "SYNCCHAT_RATE_SEND_BURST", default_value_t = 40, global = true)]
    pub rate_send_burst: u32,

    /// Conversations a user may create per minute.
    #[arg(long, env = "SYNCCHAT_RATE_CONVERSATIONS_PER_MIN", default_value_t = 30, global = true)]
    pub rate_conversations_per_min: u32,

    /// Register/login/refresh attempts per client IP per minute.
    #[arg(long, env = "SYNCCHAT_RATE_AUTH_PER_IP_PER_MIN", default_value_t = 60, global = true)]
    pub rate_auth_per_ip_per_min: u32,

    /// Login attempts per account per minute.
    #[arg(long, env = "SYNCCHAT_RATE_AUTH_PER_ACCOUNT_PER_MIN", default_value_t = 10, global = true)]
    pub rate_auth_per_account_per_min: u32,

    /// Calls per minute an app's API keys may make, all its keys together.
    #[arg(long, env = "SYNCCHAT_RATE_APP_PER_MIN", default_value_t = 6000, global = true)]
    pub rate_app_per_min: u32,

    /// Most distinct emoji one message may carry as reactions.
    #[arg(long, env = "SYNCCHAT_MAX_REACTIONS_PER_MESSAGE", default_value_t = 20, global = true)]
    pub max_reactions_per_message: usize,

    /// Custom reaction shortcodes allowed besides Unicode's emoji, comma-separated
    /// (`parrot,shipit`: reacted with as `:parrot:`).
    #[arg(long, env = "SYNCCHAT_REACTION_SHORTCODES", value_delimiter = ',', global = true)]
    pub reaction_shortcodes: Vec<String>,

    /// Who may mention everyone in a group (`@here`, `@all`): `anyone` in it, or only its
    /// `owners` (and platform admins).
    #[arg(long, env = "SYNCCHAT_MENTION_EVERYONE", value_enum, default_value = "anyone", global = true)]
    pub mention_everyone: crate::service::MentionEveryone,

    /// Seconds an `Idempotency-Key`'s first answer is kept (and replayed to repeats).
    #[arg(long, env = "SYNCCHAT_IDEMPOTENCY_TTL_SECS", default_value_t = 86_400, global = true)]
    pub idempotency_ttl_secs: u64,

    /// `setTyping` calls a user may make per second (bursts of three times that).
    #[arg(long, env = "SYNCCHAT_RATE_TYPING_PER_SEC", default_value_t = 2, global = true)]
    pub rate_typing_per_sec: u32,

    /// Seconds a WebSocket may take to send `connection_init` before it is closed (4408).
    #[arg(long, env = "SYNCCHAT_WS_INIT_TIMEOUT_SECS", default_value_t = 10, global = true)]
    pub ws_init_timeout_secs: u64,

    /// Seconds between server keep-alive pings on WebSockets; a client silent for three
    /// intervals is disconnected.
    #[arg(long, env = "SYNCCHAT_WS_KEEPALIVE_SECS", default_value_t = 15, global = true)]
    pub ws_keepalive_secs: u64,

    /// Outgoing messages buffered per WebSocket; a client that lets more pile up is
    /// disconnected as a slow consumer (and resumes by seq).
    #[arg(long, env = "SYNCCHAT_WS_QUEUE", default_value_t = 1024, global = true)]
    pub ws_queue: usize,

    /// Most operations (subscriptions, queries, mutations) running on one WebSocket; another
    /// is refused with an `error` (`RATE_LIMITED`) and the connection stays.
    #[arg(long, env = "SYNCCHAT_WS_MAX_OPERATIONS", default_value_t = 100, global = true)]
    pub ws_max_operations: usize,

    /// Most live WebSocket connections of one user on one node; another is closed with 4429.
    #[arg(long, env = "SYNCCHAT_WS_MAX_CONNECTIONS_PER_USER", default_value_t = 32, global = true)]
    pub ws_max_connections_per_user: usize,

    /// New WebSocket connections a node admits per second (and in a burst); beyond it a new
    /// connection is closed with 1013 "Try again later", so a reconnect storm cannot starve
    /// live traffic. 0 = no limit.
    #[arg(long, env = "SYNCCHAT_WS_ADMIT_PER_SEC", default_value_t = 500, global = true)]
    pub ws_admit_per_sec: u32,

    /// With Redis: how often each node checks that its live subscribers have every committed
    /// message, whatever the bus lost (while the bus is down: every second).
    #[arg(long, env = "SYNCCHAT_BUS_HEAL_INTERVAL_SECS", default_value_t = 10, global = true)]
    pub bus_heal_interval_secs: u64,

    /// Seconds after which a node that stopped heartbeating (a crash) no longer keeps its
    /// users online (Redis presence).
    #[arg(long, env = "SYNCCHAT_PRESENCE_TTL_SECS", default_value_t = 30, global = true)]
    pub presence_ttl_secs: u64,

    /// Name of the cluster: prefixes every Redis key and channel, so that several clusters
    /// can share one Redis.
    #[arg(long, env = "SYNCCHAT_CLUSTER", default_value = "syncchat", global = true)]
    pub cluster_name: String,

    /// Name of this node in metrics and logs; unset = generated at start.
    #[arg(long, env = "SYNCCHAT_NODE_ID", global = true)]
    pub node_id: Option<String>,

    /// Where files are stored: `file://<folder>` or `s3://bucket/prefix` (with the usual
    /// `AWS_*` variables); unset = `file://<data dir>/files`.
    #[arg(long, env = "SYNCCHAT_FILES_URL", global = true)]
    pub files_url: Option<String>,

    /// Endpoint of an S3-compatible store (MinIO, moto, R2...); unset = AWS (or `AWS_ENDPOINT`).
    #[arg(long, env = "SYNCCHAT_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,

    /// Largest file upload in bytes; larger is refused with 413 `BAD_USER_INPUT`.
    #[arg(long, env = "SYNCCHAT_MAX_UPLOAD_BYTES", default_value_t = 26_214_400, global = true)]
    pub max_upload_bytes: u64,

    /// Accepted file types (detected from the bytes), comma-separated MIME types; unset = images,
    /// PDF, plain text and common office documents.
    #[arg(long, env = "SYNCCHAT_FILES_ALLOWED_TYPES", value_delimiter = ',', global = true)]
    pub files_allowed_types: Vec<String>,

    /// `presigned`: downloads redirect to a presigned bucket URL (S3 only), so the bucket or a
    /// CDN serves the bytes; `none`: SyncChat serves them.
    #[arg(long, env = "SYNCCHAT_FILES_REDIRECT", value_enum, default_value = "none", global = true)]
    pub files_redirect: crate::files::RedirectMode,

    /// Uploaded files not attached to a message within this many seconds are deleted.
    #[arg(long, env = "SYNCCHAT_FILES_ORPHAN_GRACE_SECS", default_value_t = 86_400, global = true)]
    pub files_orphan_grace_secs: u64,

    /// Seconds between runs of the orphan collector.
    #[arg(long, env = "SYNCCHAT_FILES_GC_INTERVAL_SECS", default_value_t = 600, global = true)]
    pub files_gc_interval_secs: u64,

    /// Seconds between the stats snapshots each node takes for the admin console.
    #[arg(long, env = "SYNCCHAT_STATS_INTERVAL_SECS", default_value_t = 5, global = true)]
    pub stats_interval_secs: u64,

    /// Whose presence and last-seen a signed-in user may see: `shared` (themself and the
    /// people they share a conversation with) or `all` (anyone's).
    #[arg(long, env = "SYNCCHAT_PRESENCE_VISIBILITY", value_enum, default_value = "shared", global = true)]
    pub presence_visibility: PresenceVisibility,

    /// Hosts webhooks may reach even though they are (or resolve to) loopback, private or
    /// link-local addresses, comma-separated (for example `127.0.0.1` in tests).
    #[arg(long, env = "SYNCCHAT_WEBHOOK_ALLOWED_HOSTS", value_delimiter = ',', global = true)]
    pub webhook_allowed_hosts: Vec<String>,

    /// Seconds one webhook attempt may take, connect to answer.
    #[arg(long, env = "SYNCCHAT_WEBHOOK_TIMEOUT_SECS", default_value_t = 10, global = true)]
    pub webhook_timeout_secs: u64,

    /// Seconds a webhook endpoint may keep failing (retried with backoff) before it is
    /// disabled; 3 days by default.
    #[arg(long, env = "SYNCCHAT_WEBHOOK_RETRY_WINDOW_SECS", default_value_t = 259_200, global = true)]
    pub webhook_retry_window_secs: u64,

    /// Attempts failing in a row that disable a webhook endpoint; 0 leaves it to the window.
    #[arg(long, env = "SYNCCHAT_WEBHOOK_MAX_FAILURES", default_value_t = 0, global = true)]
    pub webhook_max_failures: u32,

    /// Seconds a webhook's previous secret keeps signing after a rotation.
    #[arg(long, env = "SYNCCHAT_WEBHOOK_SECRET_GRACE_SECS", default_value_t = 86_400, global = true)]
    pub webhook_secret_grace_secs: u64,

    /// The longest wait between two attempts of a webhook delivery, in seconds (waits double
    /// from 1 s up to this, each drawn at random below its ceiling).
    #[arg(long, env = "SYNCCHAT_WEBHOOK_BACKOFF_MAX_SECS", default_value_t = 3600, global = true)]
    pub webhook_backoff_max_secs: u64,

    /// Milliseconds between an idle webhook worker's looks for new events.
    #[arg(long, env = "SYNCCHAT_WEBHOOK_POLL_MS", default_value_t = 200, global = true)]
    pub webhook_poll_ms: u64,

    /// The admin console's planning file: per-node capacity and monthly unit prices (TOML).
    /// A missing file means the built-in defaults, which are the same as the shipped file.
    #[arg(long, env = "SYNCCHAT_CONSOLE_CONFIG", default_value = "config/console.toml", global = true)]
    pub console_config: std::path::PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Whose presence (online, last seen) a signed-in user may see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PresenceVisibility {
    /// Themself and the people they share a conversation with.
    #[default]
    Shared,
    /// Anyone's.
    All,
}

impl Config {
    /// The configuration from defaults alone, as a fresh machine would run it.
    pub fn from_defaults() -> Self {
        Cli::parse_from(["syncchat"]).config
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    pub fn node_id(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            let id = uuid::Uuid::now_v7().simple().to_string();
            format!("node-{}", &id[id.len() - 6..])
        })
    }

    /// The JWT secret: configured, or generated once and kept in the data folder.
    pub fn resolve_jwt_secret(&self) -> anyhow::Result<Secret> {
        if let Some(secret) = &self.jwt_secret {
            anyhow::ensure!(secret.0.len() >= 32, "SYNCCHAT_JWT_SECRET must be at least 32 characters");
            return Ok(secret.clone());
        }
        load_or_create_secret(&self.data_dir.join("jwt-secret"))
    }
}

fn load_or_create_secret(path: &Path) -> anyhow::Result<Secret> {
    use anyhow::Context;
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= 32 {
            return Ok(Secret(existing));
        }
    }
    if let Some(dir) = path.parent() {
        create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let bytes: [u8; 32] = rand::random();
    let secret = hex::encode(bytes);
    write_private_file(path, secret.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "SYNCCHAT_JWT_SECRET is not set: generated one and stored it in the data folder; \
         set it explicitly when running several nodes"
    );
    Ok(Secret(secret))
}

/// Creates `dir` and its missing parents readable by their owner only (0700 on Unix):
/// the data folder holds the JWT secret and the database.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes `bytes` to `path`, a file readable by its owner only (0600 on Unix) from the moment
/// it exists.
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // A file that was already there (too short to be a secret) keeps its old mode otherwise.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

impl Config {
    /// The files store URL, defaulting to a folder in the data directory.
    pub fn files_url(&self) -> String {
        self.files_url.clone().unwrap_or_else(|| format!("file://{}/files", self.data_dir.display()))
    }
}
