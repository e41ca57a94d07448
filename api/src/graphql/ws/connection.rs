//! The connection's task: admission, the `connection_init` handshake, registration with the
//! service layer, then reading the client, running its operations and writing their frames
//! until the client leaves or must be disconnected.

use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use poem::web::websocket::{Message, WebSocketStream};
use serde_json::Value;
use tokio::time::Instant;
use tokio_stream::StreamMap;
use uuid::Uuid;

use super::close::Close;
use super::frames;
use super::operation::{Frame, Operation, Prepared};
use super::outbox::{Outbox, Sink};
use super::protocol::Protocol;
use super::{Admission, WsSettings};
use crate::graphql::AppSchema;
use crate::metrics as m;
use crate::service::live::Kill;
use crate::service::{Caller, Services};

type Incoming = SplitStream<WebSocketStream>;

pub(super) struct Connection {
    pub(super) schema: AppSchema,
    pub(super) services: Services,
    pub(super) settings: WsSettings,
    pub(super) protocol: Protocol,
    pub(super) header_token: Option<String>,
    pub(super) ip: Option<std::net::IpAddr>,
}

impl Connection {
    /// One task per connection: it reads the client, runs the operations and writes their
    /// frames, so an event reaches the socket without a hop through another task.
    pub(super) fn run(self, socket: WebSocketStream) -> impl Future<Output = ()> + Send {
        // Split before the task's future is made, so it does not keep room for the whole
        // socket for as long as the connection lives.
        let (sink, incoming) = socket.split();
        self.run_split(sink, incoming)
    }

    // The futures awaited here are boxed so that the connection's own future, which lives
    // as long as the connection, does not keep room for the largest of them (per-connection
    // memory; issue #14 item 7 turns these into a `large_futures` lint).
    async fn run_split(self, sink: Sink, mut incoming: Incoming) {
        let mut out = Outbox::new(sink, self.settings.queue.max(8));
        if let Some(admission) = &self.settings.admission
            && !admitted(admission)
        {
            // Boxed: see above.
            Box::pin(end(out, Close::Admission, false)).await;
            return;
        }

        // Boxed: see above (the handshake's future holds the token check's).
        let caller = match Box::pin(self.handshake(&mut incoming, &mut out)).await {
            Ok(caller) => caller,
            Err(close) => {
                // Boxed: see above.
                Box::pin(end(out, close, false)).await;
                return;
            }
        };
        // Registered before the ack: once a client is told it is connected, it counts as
        // online everywhere and signing out or disabling the account reaches it.
        let connection_id = Uuid::now_v7();
        let max_per_user = self.settings.max_connections_per_user;
        // Boxed: see above (presence and the session look-up).
        let close = match Box::pin(self.services.live.connection_opened(&caller, connection_id, max_per_user)).await {
            Err(e) => Some(Close::for_error(&e)),
            Ok(kill) => {
                out.push(Message::text(frames::connection_ack()));
                self.serve(caller.clone(), &mut incoming, &mut out, &kill).await
            }
        };
        // Boxed: see above (presence).
        Box::pin(self.services.live.connection_closed(caller.user_id, connection_id)).await;
        match close {
            // Boxed: see above.
            Some(close) => Box::pin(end(out, close, true)).await,
            // Boxed: see above.
            None => Box::pin(out.finish()).await,
        }
    }

    /// Waits for `connection_init` and authenticates it (the caller sends the ack).
    async fn handshake(&self, incoming: &mut Incoming, out: &mut Outbox) -> Result<Caller, Close> {
        let deadline = Instant::now() + self.settings.init_timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, incoming.next()).await.map_err(|_| Close::InitTimeout)?;
            let text = match msg {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(Close::ClientGone),
                Some(Ok(_)) => continue,
            };
            let parsed: Value = serde_json::from_str(&text).map_err(|_| Close::Malformed)?;
            match parsed["type"].as_str() {
                Some("connection_init") => {}
                Some("ping") if self.protocol == Protocol::Transport => {
                    out.push(Message::text(frames::pong()));
                    let _ = tokio::time::timeout_at(deadline, out.drain()).await;
                    continue;
                }
                _ => return Err(Close::InitFirst),
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
                return Err(Close::NoToken);
            };
            return self.services.auth.authenticate(&token).await.map_err(|e| Close::for_error(&e));
        }
    }

    /// Runs operations until the client leaves (`None`) or must be disconnected.
    async fn serve(&self, caller: Caller, incoming: &mut Incoming, out: &mut Outbox, kill: &Kill) -> Option<Close> {
        let mut operations: StreamMap<String, Operation> = StreamMap::new();
        let mut keepalive = tokio::time::interval(self.settings.keepalive);
        keepalive.tick().await;
        let mut last_heard = Instant::now();
        loop {
            let slow_deadline = out.slow_deadline();
            tokio::select! {
                biased;
                why = kill.fired() => {
                    return Some(Close::from(why));
                }
                written = out.drain(), if out.has_unwritten() => {
                    if written.is_err() {
                        return None;
                    }
                }
                msg = incoming.next() => {
                    last_heard = Instant::now();
                    let text = match msg {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                        Some(Ok(_)) => continue,
                    };
                    if let Err(close) = self.on_message(&text, &caller, out, &mut operations) {
                        return close;
                    }
                }
                Some((id, frame)) = operations.next(), if out.has_room() && !operations.is_empty() => match frame {
                    Frame::Send { text, last } => {
                        if last {
                            // The client may reuse the id as soon as it reads this frame.
                            operations.remove(&id);
                        }
                        out.push(Message::text(text));
                    }
                    Frame::Then(next) => {
                        operations.insert(id, next);
                    }
                    Frame::Close(close) => return Some(close),
                },
                () = tokio::time::sleep_until(slow_deadline.unwrap_or_else(Instant::now)), if slow_deadline.is_some() => {
                    m::dropped_events("slow_consumer", 1);
                    return Some(Close::SlowConsumer);
                }
                _ = keepalive.tick() => {
                    if last_heard.elapsed() > self.settings.keepalive * 3 {
                        return Some(Close::KeepAliveTimeout);
                    }
                    if out.has_room() {
                        out.push(Message::text(frames::keepalive(self.protocol)));
                    }
                }
            }
        }
    }

    /// Handles one client message; `Err` closes the connection (`None`: the client leaves).
    fn on_message(
        &self,
        text: &str,
        caller: &Caller,
        out: &mut Outbox,
        operations: &mut StreamMap<String, Operation>,
    ) -> Result<(), Option<Close>> {
        let parsed: Value = serde_json::from_str(text).map_err(|_| Some(Close::Malformed))?;
        let id = parsed["id"].as_str().map(str::to_owned);
        match (self.protocol, parsed["type"].as_str()) {
            (Protocol::Transport, Some("subscribe")) | (Protocol::Legacy, Some("start")) => {
                let id = id.ok_or(Some(Close::SubscribeWithoutId))?;
                if operations.contains_key(&id) {
                    return Err(Some(Close::DuplicateId));
                }
                if operations.len() >= self.settings.max_operations {
                    // The connection stays; this operation is refused and the client told why.
                    if out.has_room() {
                        let refused = frames::too_many_operations(self.protocol, &id, self.settings.max_operations);
                        out.push(Message::text(refused));
                    }
                    m::rate_limited("ws_operations");
                    return Ok(());
                }
                let prepared = Prepared::new(&parsed["payload"], caller, self.ip).map_err(Some)?;
                let operation = prepared.run(id.clone(), self.schema.clone(), self.services.clone(), self.protocol);
                operations.insert(id, operation);
                Ok(())
            }
            (Protocol::Transport, Some("complete")) | (Protocol::Legacy, Some("stop")) => {
                if let Some(id) = id {
                    operations.remove(&id);
                }
                Ok(())
            }
            (Protocol::Transport, Some("ping")) => {
                if out.has_room() {
                    out.push(Message::text(frames::pong()));
                }
                Ok(())
            }
            (Protocol::Transport, Some("pong")) => Ok(()),
            (_, Some("connection_init")) => Err(Some(Close::TooManyInits)),
            (Protocol::Legacy, Some("connection_terminate")) => Err(None),
            _ => Err(Some(Close::UnknownMessageType)),
        }
    }
}

/// Whether the node's admission limit lets this connection in (counted either way).
fn admitted(admission: &Admission) -> bool {
    let admitted = admission.admit();
    m::ws_admission(admitted);
    if !admitted {
        tracing::debug!(admission.per_sec = admission.per_sec, "refused a new connection: admission limit");
    }
    admitted
}

/// Closes the connection for `close`: counted by its label, then the close frame.
async fn end(out: Outbox, close: Close, registered: bool) {
    m::ws_closed(close.label());
    tracing::debug!(
        close.code = close.code(),
        close.label = close.label(),
        close.reconnect = %close.reconnect(),
        "closing a WebSocket connection"
    );
    out.close(close, registered).await;
}
