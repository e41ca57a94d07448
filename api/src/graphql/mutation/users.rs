use async_graphql::{Context, Object, Result};

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
}
