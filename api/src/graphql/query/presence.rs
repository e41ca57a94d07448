use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use crate::graphql::{GqlResult, caller, services};
use crate::service::views::PresenceView;

#[derive(Default)]
pub struct PresenceQuery;

#[Object]
impl PresenceQuery {
    /// Whether each user is online now (on any node), and when they were last seen: for you
    /// and the people you share a conversation with (others are left out, as unknown ids
    /// are), unless the server shows everyone's.
    async fn presence(&self, ctx: &Context<'_>, user_ids: Vec<Uuid>) -> Result<Vec<PresenceView>> {
        let caller = caller(ctx).gql()?;
        services(ctx).live.presence(&caller, user_ids).await.gql()
    }
}
