//! Query root, merged from one object per area.

mod conversations;
mod messages;
mod users;

#[derive(async_graphql::MergedObject, Default)]
pub struct QueryRoot(
    users::UserQuery,
    conversations::ConversationQuery,
    messages::MessageQuery,
);
