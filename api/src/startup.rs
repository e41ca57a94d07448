//! Building the application from its configuration, and running it: the same code path for
//! `syncchat serve` and for tests, which bind port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::{EndpointExt, Route, Server, get};
use sea_orm::{DatabaseConnection, DbBackend};
use syncchat_migrations::{Migrator, MigratorTrait};
use syncchat_realtime::{
    EventBus, InProcessPresence, InProcessSnapshots, PresenceStore, RedisFanout, RedisPresence, RedisSnapshots,
    SnapshotStore,
};

use crate::background::{Background, SHUTDOWN_GRACE, next_tick};
use crate::config::Config;
use crate::files::FileStore;
use crate::graphql::ws::WsSettings;
use crate::graphql::{self, SchemaLimits};
use crate::service::{self, FileSettings, Files, LimitSettings, Services, TokenSettings, WebhookSettings};
use crate::{admin, health, metrics, rest, stats, storage, web};

pub struct App {
    acceptor: TcpAcceptor,
    addr: SocketAddr,
    services: Services,
    endpoint: poem::endpoint::BoxEndpoint<'static>,
    node_id: String,
    metrics_server: Option<(TcpAcceptor, poem::endpoint::BoxEndpoint<'static>, Option<SocketAddr>)>,
    background: Background,
    /// Stops the background work of an app that is dropped without being run.
    stop_on_drop: tokio_util::sync::DropGuard,
}

impl App {
    /// Connects to storage, applies migrations, binds the listener and starts the background
    /// work (every loop is started here, in [`Background`], and stopped by [`App::run_until`]).
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let node_id = config.node_id();
        let prometheus = metrics::install(&node_id)?;
        let background = Background::new();
        let stop_on_drop = background.stop_on_drop();
        let db = storage::connect_watched(&config.database_url, config.db_max_connections, &background).await?;
        Migrator::up(&db, None).await.context("applying database migrations")?;
        let (bus, presence) = live_layer(&config, &node_id, &background).await?;
        let snapshots: Arc<dyn SnapshotStore> = match &config.redis_url {
            Some(url) => Arc::new(
                RedisSnapshots::connect(url, &config.cluster_name)
                    .await
                    .context("connecting to Redis for the console's stats")?,
            ),
            None => Arc::new(InProcessSnapshots::default()),
        };
        let stats_interval = Duration::from_secs(config.stats_interval_secs.max(1));
        let services = Services::new(
            service::Context::new(db, bus),
            presence,
            TokenSettings {
                secret: config.resolve_jwt_secret()?.0,
                access_ttl_secs: config.access_token_ttl_secs,
                refresh_ttl_secs: config.refresh_token_ttl_secs,
            },
            limit_settings(&config),
            file_layer(&config)?,
            webhook_settings(&config),
            &background,
        );
        let limits =
            SchemaLimits { max_depth: config.graphql_max_depth, max_complexity: config.graphql_max_complexity };
        let schema = graphql::build_schema(Some(services.clone()), limits);
        let api = rest::api_service(Some(services.clone()));
        let max_body = web::BodyLimits { body: config.max_body_bytes, upload: config.max_upload_bytes };

        // /metrics on its own listener when SYNCCHAT_METRICS_BIND is set, so it need not be public.
        let metrics_listener = match config.metrics_bind {
            Some(bind) => Some(
                TcpListener::bind(bind)
                    .into_acceptor()
                    .await
                    .with_context(|| format!("binding the metrics listener {bind}"))?,
            ),
            None => None,
        };
        let mut routes = Route::new();
        if metrics_listener.is_none() {
            routes = routes.at("/metrics", get(MetricsEndpoint(prometheus.clone())));
        }
        let routes = routes
            .at("/graphql", get(graphql::http::GraphqlGet).post(graphql::http::execute))
            .at("/graphql/ws", get(graphql::ws::upgrade))
            .nest("/api/docs", Route::new().at("/", get(web::DocsPage::new(api.swagger_ui_html()))))
            .at("/api/openapi.yaml", web::SpecEndpoint::new(rest::spec_yaml(&api)))
            .nest(
                "/api/v1",
                rest::idempotency::Idempotent {
                    inner: poem::IntoEndpoint::into_endpoint(api),
                    services: services.clone(),
                },
            )
            .at("/healthz", get(health::healthz))
            .at("/readyz", get(health::readyz))
            .nest("/admin", admin::routes())
            .data(schema)
            .data(WsSettings {
                init_timeout: Duration::from_secs(config.ws_init_timeout_secs.max(1)),
                keepalive: Duration::from_secs(config.ws_keepalive_secs.max(1)),
                queue: config.ws_queue,
                max_operations: config.ws_max_operations.max(1),
                max_connections_per_user: config.ws_max_connections_per_user.max(1),
                admission: crate::graphql::ws::Admission::per_second(config.ws_admit_per_sec),
            })
            .data(services.clone())
            .data(admin::Console {
                node_id: node_id.clone(),
                snapshots: snapshots.clone(),
                stats_interval,
                planning_file: config.console_config.clone(),
                history: Arc::default(),
            })
            .around(move |ep, req| web::around(ep, req, max_body))
            .boxed();

        let acceptor =
            TcpListener::bind(config.bind).into_acceptor().await.with_context(|| format!("binding {}", config.bind))?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("listener has no address")?;
        let metrics_server = metrics_listener.map(|acceptor| {
            let addr = acceptor.local_addr().first().and_then(|a| a.as_socket_addr().copied());
            let endpoint = Route::new()
                .at("/metrics", get(MetricsEndpoint(prometheus.clone())))
                .around(move |ep, req| web::around(ep, req, max_body))
                .boxed();
            (acceptor, endpoint, addr)
        });
        services.live.spawn_control_listener(&background);
        services.live.spawn_healer(&background, Duration::from_secs(config.bus_heal_interval_secs.max(1)));
        stats::Sampler {
            node: node_id.clone(),
            prometheus: prometheus.clone(),
            db: services.ctx.db.clone(),
            store: snapshots,
            interval: stats_interval,
        }
        .spawn(&background);
        spawn_file_collector(&background, services.clone(), Duration::from_secs(config.files_gc_interval_secs.max(1)));
        spawn_housekeeping(&background, services.clone(), prometheus);
        spawn_business_gauges(&background, services.clone());
        spawn_presence_sweeper(&background, services.clone(), Duration::from_secs(config.presence_ttl_secs.max(3)));
        Ok(App { acceptor, addr, services, endpoint: routes, node_id, metrics_server, background, stop_on_drop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where `/metrics` is served when `SYNCCHAT_METRICS_BIND` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().and_then(|(_, _, addr)| *addr)
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The app's background tasks (what runs, and what the last shutdown could not stop).
    pub fn background(&self) -> &Background {
        &self.background
    }

    /// Serves until SIGINT/SIGTERM, then drains for up to 10 s.
    pub async fn run(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, drains for up to 10 s, then stops the background
    /// work (waiting [`SHUTDOWN_GRACE`] for it; what did not stop is logged and aborted).
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let App { acceptor, endpoint, metrics_server, background, stop_on_drop, .. } = self;
        if let Some((acceptor, endpoint, _)) = metrics_server {
            let stop = background.token();
            background.spawn("metrics_listener", async move {
                let server = Server::new_with_acceptor(acceptor);
                let stopped =
                    server.run_with_graceful_shutdown(endpoint, stop.cancelled_owned(), Some(Duration::from_secs(1)));
                if let Err(e) = stopped.await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            });
        }
        let served = Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(endpoint, shutdown, Some(Duration::from_secs(10)))
            .await;
        background.shutdown(SHUTDOWN_GRACE).await;
        drop(stop_on_drop);
        served
    }
}

/// The event bus and presence store: in-process, or shared through Redis when configured.
async fn live_layer(
    config: &Config,
    node_id: &str,
    background: &Background,
) -> anyhow::Result<(EventBus, Arc<dyn PresenceStore>)> {
    let Some(url) = &config.redis_url else {
        return Ok((EventBus::in_process(), Arc::new(InProcessPresence::default())));
    };
    let fanout = RedisFanout::connect(url, &config.cluster_name).await.context("connecting to Redis (REDIS_URL)")?;
    let bus = EventBus::new(fanout.clone(), syncchat_realtime::BUS_CAPACITY);
    for (name, task) in fanout.loops(bus.clone(), background.token()) {
        background.spawn(name, task);
    }
    let ttl = Duration::from_secs(config.presence_ttl_secs.max(3));
    let presence = RedisPresence::connect(url, &config.cluster_name, node_id.to_owned(), ttl)
        .await
        .context("connecting to Redis for presence")?;
    Ok((bus, presence))
}

/// File storage (a folder, or S3) and the upload rules.
pub(crate) fn file_layer(config: &Config) -> anyhow::Result<Files> {
    let store = FileStore::open(&config.files_url(), config.s3_endpoint.as_deref(), config.files_redirect)?;
    tracing::info!(files.store = store.describe(), "file storage ready");
    let allowed_types = if config.files_allowed_types.is_empty() {
        crate::files::sniff::DEFAULT_ALLOWED.iter().map(|t| (*t).to_owned()).collect()
    } else {
        config.files_allowed_types.iter().map(|t| t.trim().to_ascii_lowercase()).filter(|t| !t.is_empty()).collect()
    };
    Ok(Files::new(
        store,
        FileSettings {
            max_upload_bytes: config.max_upload_bytes,
            allowed_types,
            orphan_grace: Duration::from_secs(config.files_orphan_grace_secs),
        },
    ))
}

/// Deletes uploads that were never attached, every `interval`.
fn spawn_file_collector(background: &Background, services: Services, interval: Duration) {
    let stop = background.token();
    background.spawn("file_collector", async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        while next_tick(&mut tick, &stop).await {
            match services.files.collect_orphans().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(files.collected = n, "deleted files never attached to a message"),
                Err(e) => tracing::warn!(error = %e, "the file collector failed"),
            }
        }
    });
}

fn webhook_settings(config: &Config) -> WebhookSettings {
    WebhookSettings {
        allowed_hosts: config.webhook_allowed_hosts.clone(),
        timeout: Duration::from_secs(config.webhook_timeout_secs.max(1)),
        retry_window: Duration::from_secs(config.webhook_retry_window_secs),
        max_failures: config.webhook_max_failures,
        secret_grace: Duration::from_secs(config.webhook_secret_grace_secs),
        poll: Duration::from_millis(config.webhook_poll_ms.max(10)),
        backoff_max: Duration::from_secs(config.webhook_backoff_max_secs.max(1)),
    }
}

fn limit_settings(config: &Config) -> LimitSettings {
    LimitSettings {
        send_per_sec: config.rate_send_per_sec,
        send_burst: config.rate_send_burst,
        conversations_per_min: config.rate_conversations_per_min,
        app_per_min: config.rate_app_per_min,
        idempotency_ttl: Duration::from_secs(config.idempotency_ttl_secs.max(1)),
        auth_per_ip_per_min: config.rate_auth_per_ip_per_min,
        auth_per_account_per_min: config.rate_auth_per_account_per_min,
        typing_per_sec: config.rate_typing_per_sec,
        presence_visibility: config.presence_visibility,
        mention_everyone: config.mention_everyone,
        reactions: crate::service::ReactionSettings {
            max_per_message: config.max_reactions_per_message.max(1),
            shortcodes: config
                .reaction_shortcodes
                .iter()
                .map(|s| s.trim().trim_matches(':').to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        },
    }
}

/// Background upkeep: pool gauges, histogram upkeep, rate-limiter memory.
fn spawn_housekeeping(background: &Background, services: Services, prometheus: PrometheusHandle) {
    let collector = metrics_process::Collector::new("syncchat_");
    collector.describe();
    let stop = background.token();
    background.spawn("housekeeping", async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        while next_tick(&mut tick, &stop).await {
            collector.collect();
            record_pool(&services.ctx.db);
            prometheus.run_upkeep();
            services.shrink_limits();
            if let Err(e) = services.idempotency.collect(chrono::Utc::now()).await {
                tracing::debug!(error = %e, "could not delete expired idempotency keys");
            }
        }
    });
}

/// Heartbeats this node and turns connections of crashed nodes into "offline".
fn spawn_presence_sweeper(background: &Background, services: Services, ttl: Duration) {
    let stop = background.token();
    background.spawn("presence_sweeper", async move {
        let mut tick = tokio::time::interval(ttl / 3);
        while next_tick(&mut tick, &stop).await {
            for user in services.live.presence_store().sweep().await {
                services.live.user_went_offline(user).await;
            }
        }
    });
}

/// Daily and monthly active users, from the database so every node reports the cluster's.
fn spawn_business_gauges(background: &Background, services: Services) {
    let stop = background.token();
    background.spawn("business_gauges", async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        while next_tick(&mut tick, &stop).await {
            let now = chrono::Utc::now();
            for (window, span) in [("day", chrono::Duration::days(1)), ("month", chrono::Duration::days(30))] {
                match services.users.active_users(now - span).await {
                    Ok(n) => metrics::active_users(window, n),
                    Err(e) => tracing::warn!(error = %e, "could not count active users"),
                }
            }
            match services.users.seven_day_retention(now).await {
                Ok(ratio) => metrics::retention("7d", ratio.unwrap_or(0.0)),
                Err(e) => tracing::warn!(error = %e, "could not compute retention"),
            }
        }
    });
}

fn record_pool(db: &DatabaseConnection) {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            let idle = pool.num_idle();
            metrics::set_db_pool(
                idle,
                (pool.size() as usize).saturating_sub(idle),
                pool.options().get_max_connections(),
            );
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            let idle = pool.num_idle();
            metrics::set_db_pool(
                idle,
                (pool.size() as usize).saturating_sub(idle),
                pool.options().get_max_connections(),
            );
        }
        _ => {}
    }
}

struct MetricsEndpoint(PrometheusHandle);

impl poem::Endpoint for MetricsEndpoint {
    type Output = poem::Response;

    async fn call(&self, _req: poem::Request) -> poem::Result<Self::Output> {
        Ok(poem::Response::builder().content_type("text/plain; version=0.0.4; charset=utf-8").body(self.0.render()))
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining connections");
}
