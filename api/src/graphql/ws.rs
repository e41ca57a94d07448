//! GraphQL over WebSocket at `/graphql/ws` (and as an upgrade of GET `/graphql`), speaking
//! `graphql-transport-ws` and the legacy `graphql-ws` (subscriptions-transport-ws).
//!
//! Written here rather than taken from async-graphql-poem because a chat service needs what
//! that one lacks: close codes 4401/4403 for bad or disabled credentials, a connection-init
//! timeout (4408), server keep-alive pings with a silence limit, presence tied to the
//! connection, and a bounded outgoing queue per connection: a client that cannot keep up
//! is disconnected (close 1013, counted) instead of buffering without bound or slowing
//! anyone else, and resumes by seq.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use poem::web::Data;
use poem::web::websocket::{Message, WebSocket, WebSocketStream};
use poem::{IntoResponse, Request, Response, handler};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use uuid::Uuid;

use super::shared::{RenderCache, Rendered};
use super::{AppSchema, AuthState, ClientInfo};
use crate::error::AppError;
use crate::metrics as m;
use crate::service::{Caller, Services};

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";
/// How long a connection's outgoing queue may stay full before its client is dropped.
const SLOW_CONSUMER_GRACE: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct WsSettings {
    pub init_timeout: Duration,
    pub keepalive: Duration,
    pub queue: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    /// `graphql-transport-ws` (the graphql-ws library).
    Transport,
    /// Legacy `graphql-ws` (subscriptions-transport-ws).
    Legacy,
}

impl Protocol {
    fn from_header(value: Option<&str>) -> Option<Protocol> {
        let offered: Vec<&str> = value?.split(',').map(str::trim).collect();
        if offered.contains(&TRANSPORT_WS) {
            Some(Protocol::Transport)
        } else if offered.contains(&LEGACY_WS) {
            Some(Protocol::Legacy)
        } else {
            None
        }
    }

    fn data_type(self) -> &'static str {
        match self {
            Protocol::Transport => "next",
            Protocol::Legacy => "data",
        }
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

/// Buffers sized for chat: clients send small frames (init, subscribe, pong), so a 4 KiB
/// read buffer instead of tungstenite's 128 KiB, and frames are written out as they come
/// instead of gathering 128 KiB first. That is most of an idle connection's memory.
fn socket_config() -> poem::web::websocket::WebSocketConfig {
    poem::web::websocket::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
}

/// The largest message a client may send (a GraphQL document with its variables).
const MAX_CLIENT_MESSAGE: usize = 1024 * 1024;

struct Connection {
    schema: AppSchema,
    services: Services,
    settings: WsSettings,
    protocol: Protocol,
    header_token: Option<String>,
    ip: Option<std::net::IpAddr>,
}

/// Why the server ends a connection.
struct Close(u16, &'static str);

impl Connection {
    async fn run(self, socket: WebSocketStream) {
        let (sink, mut incoming) = socket.split();
        let (out, out_rx) = mpsc::channel::<Message>(self.settings.queue.max(8));
        let (close_tx, close_rx) = mpsc::channel::<Message>(1);
        let writer = tokio::spawn(write_frames(sink, out_rx, close_rx));

        let caller = match self.handshake(&mut incoming, &out).await {
            Ok(caller) => caller,
            Err(Close(code, reason)) => {
                m::ws_closed(reason_label(code));
                // Let the ack-less queue drain first: it holds at most a pong.
                let _ = out.send(Message::close_with(code, reason)).await;
                drop((out, close_tx));
                let _ = writer.await;
                return;
            }
        };
        // Presence is registered before the ack: once a client is told it is connected, it
        // counts as online everywhere.
        let connection_id = Uuid::now_v7();
        let kill = self.services.connection_opened(caller.user_id, connection_id).await;
        // An account disabled between the check above and the registration would have missed
        // its close order: look again now that the order would reach this connection.
        let still_allowed = self.services.session_caller(caller.user_id, caller.session_id).await;
        let close = if let Err(AppError::Forbidden(_) | AppError::Unauthenticated(_)) = still_allowed {
            Some(Close(4403, "Forbidden"))
        } else {
            let _ = out.send(Message::text(json!({"type": "connection_ack"}).to_string())).await;
            self.serve(caller.clone(), &mut incoming, &out, &kill).await
        };
        self.services.connection_closed(caller.user_id, connection_id).await;
        if let Some(Close(code, reason)) = close {
            m::ws_closed(reason_label(code));
            // Ahead of anything still queued: the queue may be full (slow consumer).
            let _ = close_tx.try_send(Message::close_with(code, reason));
        }
        drop((out, close_tx));
        let _ = writer.await;
    }

    /// Waits for `connection_init` and authenticates it (the caller sends the ack).
    async fn handshake(
        &self,
        incoming: &mut futures_util::stream::SplitStream<WebSocketStream>,
        out: &mpsc::Sender<Message>,
    ) -> Result<Caller, Close> {
        let deadline = Instant::now() + self.settings.init_timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, incoming.next())
                .await
                .map_err(|_| Close(4408, "Connection initialisation timeout"))?;
            let text = match msg {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    return Err(Close(1000, "closed"));
                }
                Some(Ok(_)) => continue,
            };
            let parsed: Value = serde_json::from_str(&text).map_err(|_| Close(4400, "Invalid message"))?;
            match parsed["type"].as_str() {
                Some("connection_init") => {}
                Some("ping") if self.protocol == Protocol::Transport => {
                    let _ = out.send(Message::text(json!({"type": "pong"}).to_string())).await;
                    continue;
                }
                _ => return Err(Close(4401, "Unauthorized: send connection_init first")),
            }
            let payload = &parsed["payload"];
            let token = payload["token"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    ["authorization", "Authorization"].iter().find_map(|k| {
                        payload[*k].as_str().map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_owned())
                    })
                })
                .or_else(|| self.header_token.clone());
            let Some(token) = token.filter(|t| !t.is_empty()) else {
                return Err(Close(4401, "Unauthorized: no token in connection_init or Authorization header"));
            };
            return match self.services.authenticate(&token).await {
                Ok(caller) => Ok(caller),
                Err(AppError::Forbidden(_)) => Err(Close(4403, "Forbidden")),
                Err(AppError::Internal(_) | AppError::Unavailable(_)) => Err(Close(1011, "Internal error")),
                Err(_) => Err(Close(4401, "Unauthorized")),
            };
        }
    }

    /// Runs operations until the client leaves or must be disconnected.
    async fn serve(
        &self,
        caller: Caller,
        incoming: &mut futures_util::stream::SplitStream<WebSocketStream>,
        out: &mpsc::Sender<Message>,
        kill: &Notify,
    ) -> Option<Close> {
        let slow = Arc::new(Notify::new());
        let mut operations: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
        let mut keepalive = tokio::time::interval(self.settings.keepalive);
        keepalive.tick().await;
        let mut last_heard = Instant::now();
        let close = loop {
            tokio::select! {
                msg = incoming.next() => {
                    last_heard = Instant::now();
                    let text = match msg {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                        Some(Ok(_)) => continue,
                    };
                    if let Err(close) = self.on_message(&text, &caller, out, &slow, &done_tx, &mut operations) {
                        break close;
                    }
                }
                Some(id) = done_rx.recv() => {
                    operations.remove(&id);
                }
                () = kill.notified() => {
                    break Some(Close(4403, "Forbidden: account disabled"));
                }
                () = slow.notified() => {
                    break Some(Close(1013, "Slow consumer: reconnect and resume from your last seq"));
                }
                _ = keepalive.tick() => {
                    if last_heard.elapsed() > self.settings.keepalive * 3 {
                        break Some(Close(4408, "Keep-alive timeout"));
                    }
                    let ping = match self.protocol {
                        Protocol::Transport => json!({"type": "ping"}),
                        Protocol::Legacy => json!({"type": "ka"}),
                    };
                    let _ = out.try_send(Message::text(ping.to_string()));
                }
            }
        };
        for (_, task) in operations {
            task.abort();
        }
        close
    }

    /// Handles one client message; `Err` closes the connection.
    fn on_message(
        &self,
        text: &str,
        caller: &Caller,
        out: &mpsc::Sender<Message>,
        slow: &Arc<Notify>,
        done: &mpsc::UnboundedSender<String>,
        operations: &mut HashMap<String, tokio::task::JoinHandle<()>>,
    ) -> Result<(), Option<Close>> {
        let parsed: Value = serde_json::from_str(text).map_err(|_| Some(Close(4400, "Invalid message")))?;
        let id = parsed["id"].as_str().map(str::to_owned);
        match (self.protocol, parsed["type"].as_str()) {
            (Protocol::Transport, Some("subscribe")) | (Protocol::Legacy, Some("start")) => {
                let id = id.ok_or(Some(Close(4400, "Invalid message: subscribe needs an id")))?;
                if operations.contains_key(&id) {
                    return Err(Some(Close(4409, "Subscriber for this id already exists")));
                }
                let payload = &parsed["payload"];
                let request: async_graphql::Request = serde_json::from_value(payload.clone())
                    .map_err(|_| Some(Close(4400, "Invalid message: bad subscribe payload")))?;
                // Subscribers with the same document, operation and variables share rendered items.
                let shape = RenderCache::global().shape(&[
                    payload["query"].as_str().unwrap_or_default(),
                    payload["operationName"].as_str().unwrap_or_default(),
                    &payload["variables"].to_string(),
                ]);
                let rendered = Rendered::default();
                let request = request
                    .data(AuthState::Authenticated(caller.clone()))
                    .data(ClientInfo { ip: self.ip })
                    .data(shape)
                    .data(rendered.clone());
                let task = self.spawn_operation(id.clone(), request, rendered, out.clone(), slow.clone(), done.clone());
                operations.insert(id, task);
                Ok(())
            }
            (Protocol::Transport, Some("complete")) | (Protocol::Legacy, Some("stop")) => {
                if let Some(task) = id.and_then(|id| operations.remove(&id)) {
                    task.abort();
                }
                Ok(())
            }
            (Protocol::Transport, Some("ping")) => {
                let _ = out.try_send(Message::text(json!({"type": "pong"}).to_string()));
                Ok(())
            }
            (Protocol::Transport, Some("pong")) => Ok(()),
            (_, Some("connection_init")) => Err(Some(Close(4429, "Too many initialisation requests"))),
            (Protocol::Legacy, Some("connection_terminate")) => Err(None),
            _ => Err(Some(Close(4400, "Invalid message: unknown type"))),
        }
    }

    fn spawn_operation(
        &self,
        id: String,
        request: async_graphql::Request,
        rendered: Rendered,
        out: mpsc::Sender<Message>,
        slow: Arc<Notify>,
        done: mpsc::UnboundedSender<String>,
    ) -> tokio::task::JoinHandle<()> {
        let schema = self.schema.clone();
        let protocol = self.protocol;
        tokio::spawn(async move {
            m::subscription(1.0);
            let _gauge = SubscriptionGauge;
            let mut responses = schema.execute_stream(request);
            let mut first = true;
            let frames = FrameWriter::new(protocol, &id);
            while let Some(response) = responses.next().await {
                // An operation refused before it produced anything is an `error`, which also
                // ends it; later errors travel inside `next`.
                let refused = first && !response.errors.is_empty() && response.data == async_graphql::Value::Null;
                first = false;
                let frame = if refused {
                    let errors = serde_json::to_value(&response.errors).unwrap_or(Value::Null);
                    let payload = match protocol {
                        Protocol::Transport => errors,
                        Protocol::Legacy => errors.get(0).cloned().unwrap_or(Value::Null),
                    };
                    json!({"type": "error", "id": id, "payload": payload}).to_string()
                } else {
                    frames.data(response, rendered.take())
                };
                // A full queue may be a burst (a replay) the client is reading through; one
                // that stays full for SLOW_CONSUMER_GRACE is a client that cannot keep up.
                if out.send_timeout(Message::text(frame), SLOW_CONSUMER_GRACE).await.is_err() {
                    m::dropped_events("slow_consumer", 1);
                    slow.notify_one();
                    return;
                }
                if refused {
                    let _ = done.send(id);
                    return;
                }
            }
            let _ = out.try_send(Message::text(json!({"type": "complete", "id": id}).to_string()));
            let _ = done.send(id);
        })
    }
}

/// Writes queued frames to the socket. A close request jumps the queue; a client that does
/// not take it within a few seconds is cut off.
async fn write_frames(
    mut sink: futures_util::stream::SplitSink<WebSocketStream, Message>,
    mut out: mpsc::Receiver<Message>,
    mut close: mpsc::Receiver<Message>,
) {
    const CLOSE_GRACE: Duration = Duration::from_secs(5);
    loop {
        let msg = tokio::select! {
            biased;
            Some(frame) = close.recv() => {
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(frame)).await;
                return;
            }
            msg = out.recv() => msg,
        };
        let Some(msg) = msg else { break };
        let closing = msg.is_close();
        tokio::select! {
            biased;
            Some(frame) = close.recv() => {
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(frame)).await;
                return;
            }
            sent = sink.send(msg) => if sent.is_err() || closing { break },
        }
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
}

/// Builds an operation's data frames. An item that came through the render cache is
/// spliced in as the JSON it already is; anything else is serialized here.
struct FrameWriter {
    /// `{"type":"next","id":"…","payload":{"data":{` for this operation.
    head: String,
}

impl FrameWriter {
    fn new(protocol: Protocol, id: &str) -> Self {
        let id = serde_json::to_string(id).unwrap_or_else(|_| "null".to_owned());
        FrameWriter { head: format!(r#"{{"type":"{}","id":{id},"payload":{{"data":{{"#, protocol.data_type()) }
    }

    fn data(&self, response: async_graphql::Response, item: Option<Arc<str>>) -> String {
        let field = match &response.data {
            async_graphql::Value::Object(map) if map.len() == 1 => map.keys().next(),
            _ => None,
        };
        match (item, field) {
            (Some(item), Some(field)) if response.errors.is_empty() && response.extensions.is_empty() => {
                let field = serde_json::to_string(field.as_str()).unwrap_or_default();
                let mut frame = String::with_capacity(self.head.len() + field.len() + item.len() + 4);
                frame.push_str(&self.head);
                frame.push_str(&field);
                frame.push(':');
                frame.push_str(&item);
                frame.push_str("}}}");
                frame
            }
            (item, field) => {
                let mut payload = serde_json::to_value(&response).unwrap_or(Value::Null);
                // An item rendered through the cache alongside errors: put it back in place.
                if let (Some(item), Some(field)) = (item, field)
                    && let Ok(value) = serde_json::from_str::<Value>(&item)
                {
                    payload["data"][field.as_str()] = value;
                }
                let mut frame = self.head.clone();
                frame.truncate(frame.len() - r#"{"data":{"#.len());
                frame.push_str(&payload.to_string());
                frame.push('}');
                frame
            }
        }
    }
}

struct SubscriptionGauge;

impl Drop for SubscriptionGauge {
    fn drop(&mut self) {
        m::subscription(-1.0);
    }
}

fn reason_label(code: u16) -> &'static str {
    match code {
        4400 => "bad_message",
        4401 => "unauthorized",
        4403 => "forbidden",
        4408 => "timeout",
        4409 => "duplicate_id",
        4429 => "too_many_inits",
        1013 => "slow_consumer",
        1011 => "internal",
        _ => "other",
    }
}
