use async_graphql::connection::Connection;
use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use crate::graphql::{GqlResult, caller, connection, services};
use crate::service::views::{UserRef, UserView};

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<UserView> {
        let caller = caller(ctx).gql()?;
        services(ctx).users.me(&caller).await.gql()
    }

    /// Whom the signed-in user blocked, the latest first.
    async fn blocked_users(&self, ctx: &Context<'_>) -> Result<Vec<UserRef>> {
        let caller = caller(ctx).gql()?;
        services(ctx).users.blocked(&caller).await.gql()
    }

    async fn user(&self, ctx: &Context<'_>, id: Uuid) -> Result<UserView> {
        let caller = caller(ctx).gql()?;
        services(ctx).users.get(&caller, id).await.gql()
    }

    /// Users by username prefix, in username order.
    async fn users(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<u64>,
        after: Option<String>,
    ) -> Result<Connection<String, UserView>> {
        let caller = caller(ctx).gql()?;
        let page = services(ctx).users.search(&caller, search, first, after).await.gql()?;
        Ok(connection(page, false, |u| u.username.clone()))
    }
}
