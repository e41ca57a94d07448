//! Query root, merged from one object per area.

mod conversations;
mod messages;
mod presence;
mod users;

#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    users::UserQuery,
    conversations::ConversationQuery,
    messages::MessageQuery,
    presence::PresenceQuery,
);
