#![doc = include_str!("../README.md")]

pub use m20261207_000003_search::pg_search_vector;
pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_core_tables;
mod m20261126_000001_admin_audit;
mod m20261126_000002_files;
mod m20261201_000001_create_upload_claims;
mod m20261202_000001_integrations;
mod m20261202_000002_idempotency_keys;
mod m20261203_000001_user_settings;
mod m20261203_000002_reactions;
mod m20261203_000003_pins;
mod m20261203_000004_blocks;
mod m20261207_000001_mentions;
mod m20261207_000002_reaction_count;
mod m20261207_000003_search;
mod m20261207_000004_blocked_messages;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_core_tables::Migration),
            Box::new(m20261126_000001_admin_audit::Migration),
            Box::new(m20261126_000002_files::Migration),
            Box::new(m20261201_000001_create_upload_claims::Migration),
            Box::new(m20261202_000001_integrations::Migration),
            Box::new(m20261202_000002_idempotency_keys::Migration),
            Box::new(m20261203_000001_user_settings::Migration),
            Box::new(m20261203_000002_reactions::Migration),
            Box::new(m20261203_000003_pins::Migration),
            Box::new(m20261203_000004_blocks::Migration),
            Box::new(m20261207_000001_mentions::Migration),
            Box::new(m20261207_000002_reaction_count::Migration),
            Box::new(m20261207_000003_search::Migration),
            Box::new(m20261207_000004_blocked_messages::Migration),
        ]
    }
}
