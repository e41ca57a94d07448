//! Mutation root, merged from one object per area.

mod auth;
mod conversations;
mod files;
mod messages;
mod users;

#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    auth::AuthMutation,
    conversations::ConversationMutation,
    messages::MessageMutation,
    files::FileMutation,
    users::UserMutation,
);
