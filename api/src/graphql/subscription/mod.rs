//! Subscription root, merged from one object per area. Each resolver authorizes, then hands
//! back the service's live stream.

mod conversations;
mod presence;

#[derive(async_graphql::MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(conversations::ConversationSubscription, presence::PresenceSubscription);
