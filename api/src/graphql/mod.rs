//! The GraphQL façade (async-graphql): resolvers translate arguments into service calls and
//! service results into GraphQL values. No rule lives here.

mod errors;
mod extension;
pub mod http;
mod mutation;
mod query;
pub mod shared;
mod subscription;
pub mod ws;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, OutputType, Schema};

use crate::error::AppError;
use crate::service::views::Page;
use crate::service::{Caller, Services};
pub use errors::GqlResult;

pub type AppSchema = Schema<query::QueryRoot, mutation::MutationRoot, subscription::SubscriptionRoot>;

#[derive(Clone, Copy, Debug)]
pub struct SchemaLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
}

pub fn build_schema(services: Option<Services>, limits: SchemaLimits) -> AppSchema {
    let mut builder = Schema::build(
        query::QueryRoot::default(),
        mutation::MutationRoot::default(),
        subscription::SubscriptionRoot::default(),
    )
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity)
    .extension(extension::OperationMetrics);
    if let Some(services) = services {
        builder = builder.data(services);
    }
    builder.finish()
}

/// Who is asking, as established by the HTTP layer from the `Authorization` header. Read it
/// through [`caller`] only: a shared subscription item must not ask (see [`shared::SharedView`]).
#[derive(Clone, Debug)]
pub enum AuthState {
    Anonymous,
    Authenticated(Caller),
    /// The token was refused: `FORBIDDEN` for a disabled account, `UNAUTHENTICATED` otherwise.
    Rejected {
        forbidden: bool,
        message: String,
    },
}

/// Request facts the HTTP layer hands to resolvers; read them through [`client_ip`] only.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub ip: Option<std::net::IpAddr>,
}

pub(crate) fn services<'a>(ctx: &Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Services>()
}

pub(crate) fn caller(ctx: &Context<'_>) -> Result<Caller, AppError> {
    if shared::rendering_shared() {
        return Err(AppError::Internal(anyhow::anyhow!("a shared subscription item asked who is reading")));
    }
    match ctx.data_opt::<AuthState>() {
        Some(AuthState::Authenticated(c)) => Ok(c.clone()),
        Some(AuthState::Rejected { forbidden: true, message }) => Err(AppError::Forbidden(message.clone())),
        Some(AuthState::Rejected { message, .. }) => Err(AppError::Unauthenticated(message.clone())),
        _ => Err(AppError::Unauthenticated("sign in first: send Authorization: Bearer <accessToken>".into())),
    }
}

pub(crate) fn client_ip(ctx: &Context<'_>) -> Option<std::net::IpAddr> {
    if shared::rendering_shared() {
        return None;
    }
    ctx.data_opt::<ClientInfo>().and_then(|c| c.ip)
}

/// A Relay connection from a service page; `cursor` names each item.
pub(crate) fn connection<T: OutputType>(
    page: Page<T>,
    backward: bool,
    cursor: impl Fn(&T) -> String,
) -> Connection<String, T> {
    let (has_previous, has_next) = if backward { (page.has_more, false) } else { (false, page.has_more) };
    let mut conn = Connection::new(has_previous, has_next);
    conn.edges.extend(page.items.into_iter().map(|item| Edge::new(cursor(&item), item)));
    conn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdl_names_the_design_operations() {
        let sdl = build_schema(None, SchemaLimits { max_depth: 16, max_complexity: 2000 }).sdl();
        for name in [
            "register(",
            "login(",
            "refreshToken(",
            "logout",
            "createConversation(",
            "addParticipants(",
            "leaveConversation(",
            "sendMessage(",
            "editMessage(",
            "deleteMessage(",
            "markRead(",
            "me:",
            "user(",
            "users(",
            "conversations(",
            "conversation(",
            "messages(",
        ] {
            assert!(sdl.contains(name), "schema lacks {name}");
        }
    }
}
