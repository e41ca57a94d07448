//! API keys: an app's credentials, `sck_<prefix>_<secret>`, of which only a hash is kept.

use sea_orm::entity::prelude::*;

/// One key of an app. `prefix` identifies it (unique, shown in lists); `secret_hash` is the
/// SHA-256 (hex) of the secret part. A revoked key keeps its row with `revoked_at` set.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub app_id: Uuid,
    pub prefix: String,
    pub secret_hash: String,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
