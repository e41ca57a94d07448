use async_graphql::{Context, Object, Result};

use crate::graphql::{GqlResult, caller, client_ip, services};
use crate::service::views::AuthPayload;
use crate::service::{LoginInput, RegisterInput};

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        services(ctx).auth.register(input, client_ip(ctx)).await.gql()
    }

    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        services(ctx).auth.login(input, client_ip(ctx)).await.gql()
    }

    /// Exchanges a refresh token for new tokens; the old refresh token stops working.
    async fn refresh_token(&self, ctx: &Context<'_>, token: String) -> Result<AuthPayload> {
        services(ctx).auth.refresh(&token, client_ip(ctx)).await.gql()
    }

    /// Ends the current session.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let caller = caller(ctx).gql()?;
        services(ctx).auth.logout(&caller).await.gql()
    }
}
