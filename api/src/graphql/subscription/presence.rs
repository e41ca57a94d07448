use async_graphql::{Context, Result, Subscription};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

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
    ) -> Result<impl Stream<Item = Result<PresenceView>>> {
        let caller = caller(ctx).gql()?;
        let stream = Box::pin(services(ctx).subscribe_presence(&caller, user_ids)).await.gql()?;
        Ok(stream.map(GqlResult::gql))
    }
}
