//! HTTP endpoints of the GraphQL façade: POST `/graphql` executes, GET serves GraphiQL.

use std::sync::LazyLock;

use async_graphql::http::GraphiQLSource;
use async_graphql::{ErrorExtensions, Pos, ServerError, Value};
use async_graphql_poem::{GraphQLRequest, GraphQLResponse};
use poem::web::{Data, Html};
use poem::{Endpoint, IntoResponse, Request, handler};

use super::{AppSchema, AuthState, ClientInfo};
use crate::error::{AppError, ErrorCode};
use crate::service::Services;

/// GET `/graphql`: a WebSocket upgrade goes to the subscription transport, anything else
/// gets GraphiQL.
pub struct GraphqlGet;

impl Endpoint for GraphqlGet {
    type Output = poem::Response;

    async fn call(&self, req: Request) -> poem::Result<Self::Output> {
        let is_upgrade = req.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        if is_upgrade {
            return super::ws::upgrade.call(req).await;
        }
        let (page, csp) = &*GRAPHIQL;
        Ok(Html(page.clone()).with_header("content-security-policy", csp.as_str()).into_response())
    }
}

/// Where GraphiQL's page loads React and GraphiQL from (async-graphql's template).
const GRAPHIQL_CDN: &str = "https://unpkg.com";

/// The GraphiQL page and its Content-Security-Policy: scripts and styles from the CDN the
/// page names and its own inline script, the favicon from graphql.org, requests only to us.
static GRAPHIQL: LazyLock<(String, String)> = LazyLock::new(|| {
    let page = GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").finish();
    // GraphiQL's editor styles elements as it renders them, hence inline styles.
    let extra = format!(
        "style-src {GRAPHIQL_CDN} 'unsafe-inline'; font-src {GRAPHIQL_CDN} data:; \
         img-src 'self' https://graphql.org data:; connect-src 'self'"
    );
    let csp = crate::web::page_csp(&page, &[GRAPHIQL_CDN], &extra);
    (page, csp)
});

#[handler]
pub async fn execute(
    schema: Data<&AppSchema>,
    services: Data<&Services>,
    req: &Request,
    gql: GraphQLRequest,
) -> GraphQLResponse {
    let auth = match bearer_token(req) {
        None => AuthState::Anonymous,
        Some(token) => match services.auth.authenticate(token).await {
            Ok(caller) => AuthState::Authenticated(caller),
            Err(e @ (AppError::Unauthenticated(_) | AppError::Forbidden(_))) => {
                AuthState::Rejected { forbidden: matches!(e, AppError::Forbidden(_)), message: e.to_string() }
            }
            // The token could not be checked (the database is down): that says nothing about
            // the token, and a client told UNAUTHENTICATED would sign its user out. The
            // request runs neither as that user nor as anyone else.
            Err(e) => return refused(&e),
        },
    };
    let ip = req.remote_addr().as_socket_addr().map(|a| a.ip());
    let mut response = schema.execute(gql.0.data(auth).data(ClientInfo { ip })).await;
    if response.errors.iter().any(|e| has_code(e, ErrorCode::Unavailable)) {
        crate::metrics::request_unavailable("graphql");
    }
    // Parse, validation and argument-coercion errors come from async-graphql without a code:
    // they are all the client's input. Every error of ours already carries one.
    for error in &mut response.errors {
        let has_code = error.extensions.as_ref().is_some_and(|ext| ext.get("code").is_some());
        if !has_code {
            error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::BadUserInput.as_str());
        }
    }
    response.into()
}

/// A response with only `error` in it, for a request that cannot be run at all.
fn refused(error: &AppError) -> GraphQLResponse {
    if error.code() == ErrorCode::Unavailable {
        crate::metrics::request_unavailable("graphql");
    }
    let error = error.extend().into_server_error(Pos::default());
    async_graphql::Response::from_errors(vec![error]).into()
}

fn has_code(error: &ServerError, code: ErrorCode) -> bool {
    error.extensions.as_ref().and_then(|ext| ext.get("code")).is_some_and(|v| *v == Value::from(code.as_str()))
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(req: &Request) -> Option<&str> {
    let value = req.header("authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}
