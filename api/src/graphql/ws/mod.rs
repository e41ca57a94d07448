//! GraphQL over WebSocket at `/graphql/ws` (and as an upgrade of GET `/graphql`), speaking
//! `graphql-transport-ws` and the legacy `graphql-ws` (subscriptions-transport-ws).
//!
//! Written here rather than taken from async-graphql-poem because a chat service needs what
//! that one lacks: close codes 4401/4403 for bad or disabled credentials, a connection-init
//! timeout (4408), server keep-alive pings with a silence limit, presence tied to the
//! connection, and a bounded outgoing queue per connection: a client that cannot keep up
//! is disconnected (close 1013, counted) instead of buffering without bound or slowing
//! anyone else, and resumes by seq.
//!
//! One job per file: the upgrade and its settings (here), the subprotocols (`protocol`),
//! the connection's task (`connection`), one operation's run (`operation`), detached
//! subscriptions (`detached`), the bounded outgoing queue (`outbox`), the frames sent
//! (`frames`), and the close policy: every close code, reason, metric label and reconnect
//! advice (`close`). Whether a connection may go on is the service layer's answer
//! (`service::live`); the transport only acts on it.

mod close;
mod connection;
mod detached;
mod frames;
mod operation;
mod outbox;
mod protocol;

use std::sync::Arc;
use std::time::Duration;

use poem::web::Data;
use poem::web::websocket::WebSocket;
use poem::{IntoResponse, Request, Response, handler};
pub use protocol::{LEGACY_WS, TRANSPORT_WS};

use self::connection::Connection;
use self::protocol::Protocol;
use super::AppSchema;
use crate::service::Services;

#[derive(Clone)]
pub struct WsSettings {
    pub init_timeout: Duration,
    pub keepalive: Duration,
    pub queue: usize,
    /// Most operations (subscriptions, and queries or mutations in flight) on one connection.
    pub max_operations: usize,
    /// Most live connections of one user on this node.
    pub max_connections_per_user: usize,
    /// New connections this node admits per second (a reconnect storm waits its turn instead
    /// of starving live traffic); `None` = no limit.
    pub admission: Option<Arc<Admission>>,
}

/// The node's admission limit for new connections: a token bucket of `per_sec` with a burst
/// of as many.
pub struct Admission {
    limiter: governor::DefaultDirectRateLimiter,
    per_sec: u32,
}

impl Admission {
    pub fn per_second(per_sec: u32) -> Option<Arc<Admission>> {
        let rate = std::num::NonZeroU32::new(per_sec)?;
        Some(Arc::new(Admission { limiter: governor::RateLimiter::direct(governor::Quota::per_second(rate)), per_sec }))
    }

    fn admit(&self) -> bool {
        self.limiter.check().is_ok()
    }
}

#[handler]
pub async fn upgrade(
    req: &Request,
    ws: WebSocket,
    schema: Data<&AppSchema>,
    services: Data<&Services>,
    settings: Data<&WsSettings>,
) -> Response {
    let Some(protocol) = Protocol::from_header(req.header("sec-websocket-protocol")) else {
        return crate::rest::problem_response(
            poem::http::StatusCode::BAD_REQUEST,
            format!("offer the {TRANSPORT_WS} or {LEGACY_WS} WebSocket subprotocol"),
        );
    };
    let header_token = super::http::bearer_token(req).map(str::to_owned);
    let ip = req.remote_addr().as_socket_addr().map(|a| a.ip());
    let connection = Connection {
        schema: schema.clone(),
        services: services.clone(),
        settings: settings.clone(),
        protocol,
        header_token,
        ip,
    };
    ws.protocols([TRANSPORT_WS, LEGACY_WS])
        .config(socket_config())
        .on_upgrade(move |socket| connection.run(socket))
        .into_response()
}

/// The largest message a client may send (a GraphQL document with its variables).
const MAX_CLIENT_MESSAGE: usize = 1024 * 1024;

/// Buffers sized for chat: clients send small frames (init, subscribe, pong), so a 1 KiB
/// read buffer instead of tungstenite's 128 KiB (it grows for a larger message), and frames
/// are written out as they come instead of gathering 128 KiB first. That is most of an idle
/// connection's memory.
fn socket_config() -> poem::web::websocket::WebSocketConfig {
    poem::web::websocket::WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
}
