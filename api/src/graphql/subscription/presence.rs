use async_graphql::{Context, Result, Subscription};
use futures_util::stream::BoxStream;
use uuid::Uuid;

use super::presence_key;
use crate::graphql::shared::{Shared, injected, subscription_items};
use crate::graphql::{GqlResult, caller, services};
use crate::service::views::PresenceView;

#[derive(Default)]
pub struct PresenceSubscription;

#[Subscription]
impl PresenceSubscription {
    /// The current status of each user, then every change: for you and the people you share
    /// a conversation with (others stay silent, as unknown ids do), unless the server shows
    /// everyone's.
    async fn presence(
        &self,
        ctx: &Context<'_>,
        user_ids: Vec<Uuid>,
    ) -> Result<BoxStream<'static, Result<Shared<PresenceView>>>> {
        if let Some(item) = injected(ctx) {
            return Ok(item);
        }
        let caller = caller(ctx).gql()?;
        let stream = Box::pin(services(ctx).live.subscribe_presence(&caller, user_ids)).await.gql()?;
        Ok(subscription_items(ctx, stream, presence_key))
    }
}
