//! `syncchat-migrations [up|down|status|fresh]`: the Migrator as a CLI, on `DATABASE_URL`.

use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_orm::Database;
use syncchat_migrations::Migrator;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let command = std::env::args().nth(1).unwrap_or_else(|| "up".to_owned());
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("DATABASE_URL is not set");
        return std::process::ExitCode::from(2);
    };
    let result = async {
        let db = Database::connect(&url).await?;
        match command.as_str() {
            "up" => Migrator::up(&db, None).await,
            "down" => Migrator::down(&db, Some(1)).await,
            "status" => Migrator::status(&db).await,
            "fresh" => Migrator::fresh(&db).await,
            other => Err(sea_orm_migration::DbErr::Custom(format!(
                "unknown command {other}: expected up, down, status or fresh"
            ))),
        }
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("migration failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
