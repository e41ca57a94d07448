//! The subcommands of `syncchat`: serve (default), migrate, admin create-user, openapi,
//! graphql-schema.

use anyhow::Context;
use syncchat_migrations::{Migrator, MigratorTrait};
use syncchat_realtime::EventBus;

use crate::config::{AdminCommand, Cli, Command, Config};
use crate::domain::{Email, Password, Username};
use crate::graphql::{SchemaLimits, build_schema};
use crate::service::{self, Users};
use crate::storage::user::ROLE_ADMIN;
use crate::{App, rest, storage};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Box::pin(serve(config)).await,
        Command::Migrate => {
            let db = storage::connect(&config.database_url, 1).await?;
            Migrator::up(&db, None).await.context("applying migrations")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin(AdminCommand::CreateUser { username, email, password }) => {
            create_admin(&config, &username, &email, &password).await
        }
        Command::Openapi => {
            print!("{}", openapi_yaml());
            Ok(())
        }
        Command::GraphqlSchema => {
            print!("{}", graphql_sdl());
            Ok(())
        }
    }
}

/// The REST contract as checked in at `openapi.yaml`.
pub fn openapi_yaml() -> String {
    rest::spec_yaml(&rest::api_service(None))
}

/// The GraphQL contract as checked in at `schema.graphql`.
pub fn graphql_sdl() -> String {
    let defaults = Config::from_defaults();
    build_schema(
        None,
        SchemaLimits { max_depth: defaults.graphql_max_depth, max_complexity: defaults.graphql_max_complexity },
    )
    .sdl()
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(config.clone()).await?;
    let base = format!("http://{}", app.addr());
    tracing::info!(node = app.node_id(), addr = %app.addr(), database = %storage_kind(&config), "SyncChat is up");
    println!("SyncChat {} listening on {base}", env!("CARGO_PKG_VERSION"));
    println!("  GraphQL (GraphiQL): {base}/graphql   subscriptions: ws://{}/graphql/ws", app.addr());
    println!("  REST docs:          {base}/api/docs   spec: {base}/api/openapi.yaml");
    println!("  Admin console:      {base}/admin");
    println!("  Files:              {}", app.services().files.describe());
    let metrics = app.metrics_addr().map_or_else(|| format!("{base}/metrics"), |a| format!("http://{a}/metrics"));
    println!("  Metrics:            {metrics}   health: {base}/healthz  {base}/readyz");
    app.run().await.context("serving")
}

fn storage_kind(config: &Config) -> &'static str {
    if config.is_sqlite() { "sqlite" } else { "postgres" }
}

async fn create_admin(config: &Config, username: &str, email: &str, password: &str) -> anyhow::Result<()> {
    let username = Username::parse(username).map_err(|e| anyhow::anyhow!("{e}"))?;
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{e}"))?;
    let password = Password::parse(password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = storage::connect(&config.database_url, 1).await?;
    Migrator::up(&db, None).await.context("applying migrations")?;
    // Inserting a user needs the database and password hashing, nothing else.
    let users = Users::new(service::Context::new(db, EventBus::in_process()));
    let user =
        users.create(&username, &email, &password, None, ROLE_ADMIN).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("created admin {} ({})", user.username, user.id);
    Ok(())
}
