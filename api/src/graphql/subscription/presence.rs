use async_graphql::{Context, Result, Subscription};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use uuid::Uuid;

use crate::graphql::shared::{ItemKey, Shared, injected, subscription_items};
use crate::graphql::{GqlResult, caller, services};
use crate::service::views::PresenceView;

#[derive(Default)]
pub struct PresenceSubscription;

#[Subscription]
impl PresenceSubscription {
    /// The current status of each user, then every change.
    async fn presence(
        &self,
        ctx: &Context<'_>,
        user_ids: Vec<Uuid>,
    ) -> Result<BoxStream<'static, Result<Shared<PresenceView>>>> {
        if let Some(item) = injected(ctx) {
            return Ok(item);
        }
        let caller = caller(ctx).gql()?;
        let stream = Box::pin(services(ctx).subscribe_presence(&caller, user_ids)).await.gql()?;
        // A status renders the same for everyone who asked for the same fields.
        let items = stream.map(|item| item.map(|p| Shared::new(Some(ItemKey::of(p.user_id, 7, &p)), p)).gql());
        Ok(subscription_items(ctx, items))
    }
}
