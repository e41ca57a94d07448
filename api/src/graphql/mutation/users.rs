use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use crate::graphql::{GqlResult, caller, services};
use crate::service::views::{SettingsInput, SettingsView};

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Changes the signed-in user's settings (`readReceipts: PRIVATE` keeps how far I have
    /// read to myself).
    async fn update_settings(&self, ctx: &Context<'_>, input: SettingsInput) -> Result<SettingsView> {
        let caller = caller(ctx).gql()?;
        services(ctx).users.update_settings(&caller, input).await.gql()
    }

    /// Blocks a user: they cannot start a direct conversation with you, do not see your
    /// presence or typing, and their messages are flagged for you (`senderBlocked`). `false`
    /// when already blocked.
    async fn block_user(&self, ctx: &Context<'_>, user_id: Uuid) -> Result<bool> {
        let caller = caller(ctx).gql()?;
        services(ctx).users.block(&caller, user_id).await.gql()
    }

    /// Unblocks a user; `false` when they were not blocked.
    async fn unblock_user(&self, ctx: &Context<'_>, user_id: Uuid) -> Result<bool> {
        let caller = caller(ctx).gql()?;
        services(ctx).users.unblock(&caller, user_id).await.gql()
    }
}
