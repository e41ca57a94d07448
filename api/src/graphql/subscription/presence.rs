use async_graphql::{Context, Result, Subscription};
use uuid::Uuid;

use super::presence_key;
use crate::graphql::shared::{SharedItems, subscription_items};
use crate::graphql::{GqlResult, caller, services};
use crate::service::views::PresenceView;

#[derive(Default)]
pub struct PresenceSubscription;

#[Subscription]
impl PresenceSubscription {
    /// The current status of each user, then every change: for you and the people you share
    /// a conversation with (others stay silent, as unknown ids do), unless the server shows
    /// everyone's.
    async fn presence(&self, ctx: &Context<'_>, user_ids: Vec<Uuid>) -> Result<SharedItems<PresenceView>> {
        subscription_items(ctx, presence_key, async move {
            let caller = caller(ctx).gql()?;
            // Boxed: the subscribe future is large and the resolver's must stay small
            // (per-subscription memory; issue #14 item 7 turns this into a lint).
            Box::pin(services(ctx).live.subscribe_presence(&caller, user_ids)).await.gql()
        })
        .await
    }
}
