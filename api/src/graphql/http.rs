//! HTTP endpoints of the GraphQL façade: POST `/graphql` executes, GET serves GraphiQL.

use async_graphql::http::GraphiQLSource;
use async_graphql_poem::{GraphQLRequest, GraphQLResponse};
use poem::web::{Data, Html};
use poem::{Request, handler};

use super::{AppSchema, AuthState, ClientInfo};
use crate::error::ErrorCode;
use crate::service::Services;

#[handler]
pub async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}

#[handler]
pub async fn execute(
    schema: Data<&AppSchema>,
    services: Data<&Services>,
    req: &Request,
    gql: GraphQLRequest,
) -> GraphQLResponse {
    let auth = match bearer_token(req) {
        None => AuthState::Anonymous,
        Some(token) => match services.authenticate(token).await {
            Ok(caller) => AuthState::Authenticated(caller),
            Err(e) => AuthState::Rejected(e.to_string()),
        },
    };
    let ip = req.remote_addr().as_socket_addr().map(|a| a.ip());
    let mut response = schema
        .execute(gql.0.data(auth).data(ClientInfo { ip }))
        .await;
    // Parse, validation and argument-coercion errors come from async-graphql without a code:
    // they are all the client's input. Every error of ours already carries one.
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if !has_code {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", ErrorCode::BadUserInput.as_str());
        }
    }
    response.into()
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(req: &Request) -> Option<&str> {
    let value = req.header("authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
