//! One operation of a connection (a subscription, or a query or mutation in flight): how a
//! `subscribe` payload becomes a request, and the frames its run sends, until it completes
//! or hands its items over to a [`DetachedOperation`].

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use serde_json::Value;

use super::close::Close;
use super::detached::{Detached, DetachedOperation, Template};
use super::frames::FrameWriter;
use super::protocol::Protocol;
use crate::graphql::shared::{Detach, RenderCache, Rendered, Shape, single_root_field};
use crate::graphql::{AppSchema, AuthState, ClientInfo};
use crate::metrics as m;
use crate::service::{Caller, Services};

/// A running operation: the frames it sends, ending with its `complete` (or `error`).
pub(super) type Operation = Pin<Box<dyn Stream<Item = Frame> + Send>>;

/// What an operation yields.
pub(super) enum Frame {
    /// A frame for the client; `last` is its `complete` or `error`, after which its id is free.
    Send { text: String, last: bool },
    /// The operation goes on as this (smaller) stream.
    Then(Operation),
    /// The connection must close (its session ended since it opened).
    Close(Close),
}

/// What every run of an operation's document carries.
pub(super) struct Scope {
    pub(super) caller: Caller,
    pub(super) ip: Option<std::net::IpAddr>,
    pub(super) shape: Shape,
    pub(super) rendered: Rendered,
}

impl Scope {
    pub(super) fn attach(&self, request: async_graphql::Request) -> async_graphql::Request {
        request
            .data(AuthState::Authenticated(self.caller.clone()))
            .data(ClientInfo { ip: self.ip })
            .data(self.shape)
            .data(self.rendered.clone())
    }
}

/// An operation ready to run, from a `subscribe` (`start`) payload.
pub(super) struct Prepared {
    request: async_graphql::Request,
    scope: Scope,
    detached: Option<Detached>,
}

impl Prepared {
    pub(super) fn new(payload: &Value, caller: &Caller, ip: Option<std::net::IpAddr>) -> Result<Prepared, Close> {
        let mut request: async_graphql::Request =
            serde_json::from_value(payload.clone()).map_err(|_| Close::BadSubscribePayload)?;
        // Subscribers with the same document, operation and variables share rendered items.
        let shape = RenderCache::global().shape(&[
            payload["query"].as_str().unwrap_or_default(),
            payload["operationName"].as_str().unwrap_or_default(),
            &payload["variables"].to_string(),
        ]);
        // A document that does not parse is left to the executor, which says why.
        let operation_name = request.operation_name.clone();
        let root = request.parsed_query().ok().and_then(|doc| single_root_field(doc, operation_name.as_deref()));
        let detached = root.map(|(field, response_key)| Detached {
            template: Template::shared(
                shape,
                Template {
                    query: request.query.clone(),
                    operation_name: request.operation_name.clone(),
                    variables: request.variables.clone(),
                    response_key,
                },
            ),
            field,
            detach: Detach::default(),
        });
        let scope = Scope { caller: caller.clone(), ip, shape, rendered: Rendered::default() };
        let mut request = scope.attach(request);
        if let Some(detached) = &detached {
            request = request.data(detached.detach.clone());
        }
        Ok(Prepared { request, scope, detached })
    }

    /// The frames of the operation, polled by the connection's task.
    pub(super) fn run(self, id: String, schema: AppSchema, services: Services, protocol: Protocol) -> Operation {
        let Prepared { request, scope, detached } = self;
        Box::pin(async_stream::stream! {
            // Every operation acts for a session that is still live, not just one that was
            // when the connection opened.
            if let Err(e) = services.live.connection_still_allowed(&scope.caller).await {
                yield Frame::Close(Close::for_error(&e));
                return;
            }
            let gauge = SubscriptionGauge::new();
            let frames = FrameWriter::new(protocol, id);
            let started = std::time::Instant::now();
            let mut responses = schema.execute_stream(request);
            let mut first = true;
            while let Some(response) = responses.next().await {
                // An operation refused before it produced anything is an `error`, which also
                // ends it; later errors travel inside `next`.
                if first && let Some(text) = frames.refusal(&response) {
                    yield Frame::Send { text, last: true };
                    return;
                }
                first = false;
                yield Frame::Send { text: frames.data(response, scope.rendered.take()), last: false };
            }
            // The executor is done with a subscription whose resolver detached its items: they
            // go on in a stream of their own, and the executor's state is freed.
            drop(responses);
            if let Some(detached) = detached.filter(|_| first)
                && let Some(items) = detached.detach.take()
            {
                m::record_graphql("subscription", detached.field, "ok", started.elapsed());
                yield Frame::Then(Box::pin(DetachedOperation::new(items, detached.template, schema, frames, scope, gauge)));
                return;
            }
            yield Frame::Send { text: frames.complete(), last: true };
        })
    }
}

/// Counts a running subscription in `syncchat_subscriptions` for as long as it lives.
pub(super) struct SubscriptionGauge;

impl SubscriptionGauge {
    fn new() -> Self {
        m::subscription(1.0);
        SubscriptionGauge
    }
}

impl Drop for SubscriptionGauge {
    fn drop(&mut self) {
        m::subscription(-1.0);
    }
}
