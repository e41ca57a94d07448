//! GraphQL over WebSocket at `/graphql/ws` (and as an upgrade of GET `/graphql`), speaking
//! `graphql-transport-ws` and the legacy `graphql-ws` (subscriptions-transport-ws).
//!
//! Written here rather than taken from async-graphql-poem because a chat service needs what
//! that one lacks: close codes 4401/4403 for bad or disabled credentials, a connection-init
//! timeout (4408), server keep-alive pings with a silence limit, presence tied to the
//! connection, and a bounded outgoing queue per connection: a client that cannot keep up
//! is disconnected (close 1013, counted) instead of buffering without bound or slowing
//! anyone else, and resumes by seq.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use poem::web::Data;
use poem::web::websocket::{Message, WebSocket, WebSocketStream};
use poem::{IntoResponse, Request, Response, handler};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_stream::StreamMap;
use uuid::Uuid;

use super::shared::{Detach, DetachedStream, Inject, RenderCache, Rendered, Shape, single_root_field};
use super::{AppSchema, AuthState, ClientInfo};
use crate::error::AppError;
use crate::metrics as m;
use crate::service::live::{Ending, Kill};
use crate::service::{Caller, Services};

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";
/// How long a connection's outgoing queue may stay full before its client is dropped.
const SLOW_CONSUMER_GRACE: Duration = Duration::from_secs(2);

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

/// Why the server ends a connection: a close code and its reason (at most 123 bytes).
struct Close(u16, &'static str);

impl Close {
    const SESSION_ENDED: Close = Close(4401, "Unauthorized: session ended");
    const ACCOUNT_DISABLED: Close = Close(4403, "Forbidden: account disabled");
    const SLOW_CONSUMER: Close = Close(1013, "Slow consumer: reconnect and resume from your last seq");
    const ADMISSION: Close =
        Close(1013, "Try again later: this node is admitting new connections slowly; retry in 1 s");
    const TOO_MANY_CONNECTIONS: Close = Close(4429, "Too many connections for this user: close another one first");

    /// The close for a service error that ends the connection (used by the handshake and by
    /// every later authorization check, so both agree).
    fn for_error(e: &AppError) -> Close {
        match e {
            AppError::Forbidden(_) => Close(4403, "Forbidden"),
            AppError::Unauthenticated(_) => Close(4401, "Unauthorized"),
            AppError::Unavailable(_) => Close(1013, "Try again later: storage is unavailable"),
            _ => Close(1011, "Internal error"),
        }
    }

    fn for_ending(why: Ending) -> Close {
        match why {
            Ending::SessionEnded => Close::SESSION_ENDED,
            Ending::AccountDisabled => Close::ACCOUNT_DISABLED,
        }
    }
}

type Incoming = futures_util::stream::SplitStream<WebSocketStream>;
/// A running operation: the frames it sends, ending with its `complete` (or `error`).
type Operation = Pin<Box<dyn Stream<Item = Frame> + Send>>;

/// What an operation yields.
enum Frame {
    /// A frame for the client; `last` is its `complete` or `error`, after which its id is free.
    Send { text: String, last: bool },
    /// The operation goes on as this (smaller) stream.
    Then(Operation),
    /// The connection must close (its session ended since it opened).
    Close(Close),
}

impl Connection {
    /// One task per connection: it reads the client, runs the operations and writes their
    /// frames, so an event reaches the socket without a hop through another task.
    fn run(self, socket: WebSocketStream) -> impl Future<Output = ()> + Send {
        // Split before the task's future is made, so it does not keep room for the whole
        // socket for as long as the connection lives.
        let (sink, incoming) = socket.split();
        self.run_split(sink, incoming)
    }

    async fn run_split(self, sink: futures_util::stream::SplitSink<WebSocketStream, Message>, mut incoming: Incoming) {
        let mut out = Outbox::new(sink, self.settings.queue.max(8));
        if let Some(admission) = &self.settings.admission {
            let admitted = admission.admit();
            m::ws_admission(admitted);
            if !admitted {
                let Close(code, reason) = Close::ADMISSION;
                m::ws_closed("admission");
                tracing::debug!(admission.per_sec = admission.per_sec, "refused a new connection: admission limit");
                Box::pin(out.close(code, reason, CLOSE_GRACE)).await;
                return;
            }
        }

        let caller = match Box::pin(self.handshake(&mut incoming, &mut out)).await {
            Ok(caller) => caller,
            Err(Close(code, reason)) => {
                m::ws_closed(reason_label(code, reason));
                Box::pin(out.close(code, reason, CLOSE_GRACE)).await;
                return;
            }
        };
        // Registered before the ack: once a client is told it is connected, it counts as
        // online everywhere and signing out or disabling the account reaches it.
        let connection_id = Uuid::now_v7();
        let opened = Box::pin(self.services.live.connection_opened(
            &caller,
            connection_id,
            self.settings.max_connections_per_user,
        ))
        .await;
        let close = match opened {
            Err(AppError::RateLimited { .. }) => Some(Close::TOO_MANY_CONNECTIONS),
            Err(e) => Some(Close::for_error(&e)),
            Ok(kill) => {
                // A session ended or an account disabled between the check above and the
                // registration would have missed its close order: look again now that the
                // order would reach this connection.
                match Box::pin(self.services.auth.session_caller(caller.user_id, caller.session_id)).await {
                    Err(e) => Some(Close::for_error(&e)),
                    Ok(_) => {
                        out.push(Message::text(json!({"type": "connection_ack"}).to_string()));
                        self.serve(caller.clone(), &mut incoming, &mut out, &kill).await
                    }
                }
            }
        };
        Box::pin(self.services.live.connection_closed(caller.user_id, connection_id)).await;
        match close {
            Some(Close(code, reason)) => {
                m::ws_closed(reason_label(code, reason));
                // A slow consumer's close frame waits behind what already fills its socket:
                // give a client that reads again late the time to get to it.
                let grace = if code == Close::SLOW_CONSUMER.0 { SLOW_CLOSE_GRACE } else { CLOSE_GRACE };
                Box::pin(out.close(code, reason, grace)).await;
            }
            None => Box::pin(out.finish()).await,
        }
    }

    /// Waits for `connection_init` and authenticates it (the caller sends the ack).
    async fn handshake(&self, incoming: &mut Incoming, out: &mut Outbox) -> Result<Caller, Close> {
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
                    out.push(Message::text(json!({"type": "pong"}).to_string()));
                    let _ = tokio::time::timeout_at(deadline, out.drain()).await;
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
            return self.services.auth.authenticate(&token).await.map_err(|e| Close::for_error(&e));
        }
    }

    /// Runs operations until the client leaves or must be disconnected.
    async fn serve(&self, caller: Caller, incoming: &mut Incoming, out: &mut Outbox, kill: &Kill) -> Option<Close> {
        let mut operations: StreamMap<String, Operation> = StreamMap::new();
        let mut keepalive = tokio::time::interval(self.settings.keepalive);
        keepalive.tick().await;
        let mut last_heard = Instant::now();
        loop {
            // A queue that stays full for SLOW_CONSUMER_GRACE is a client that cannot keep up
            // (a burst, such as a replay, the client reads through is fine).
            let slow_deadline = out.full_since.map(|t| t + SLOW_CONSUMER_GRACE);
            tokio::select! {
                biased;
                why = kill.fired() => {
                    return Some(Close::for_ending(why));
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
                    return Some(Close::SLOW_CONSUMER);
                }
                _ = keepalive.tick() => {
                    if last_heard.elapsed() > self.settings.keepalive * 3 {
                        return Some(Close(4408, "Keep-alive timeout"));
                    }
                    let ping = match self.protocol {
                        Protocol::Transport => json!({"type": "ping"}),
                        Protocol::Legacy => json!({"type": "ka"}),
                    };
                    if out.has_room() {
                        out.push(Message::text(ping.to_string()));
                    }
                }
            }
        }
    }

    /// Handles one client message; `Err` closes the connection.
    fn on_message(
        &self,
        text: &str,
        caller: &Caller,
        out: &mut Outbox,
        operations: &mut StreamMap<String, Operation>,
    ) -> Result<(), Option<Close>> {
        let parsed: Value = serde_json::from_str(text).map_err(|_| Some(Close(4400, "Invalid message")))?;
        let id = parsed["id"].as_str().map(str::to_owned);
        match (self.protocol, parsed["type"].as_str()) {
            (Protocol::Transport, Some("subscribe")) | (Protocol::Legacy, Some("start")) => {
                let id = id.ok_or(Some(Close(4400, "Invalid message: subscribe needs an id")))?;
                if operations.contains_key(&id) {
                    return Err(Some(Close(4409, "Subscriber for this id already exists")));
                }
                if operations.len() >= self.settings.max_operations {
                    // The connection stays; this operation is refused and the client told why.
                    if out.has_room() {
                        let limit = self.settings.max_operations;
                        let error = json!([{
                            "message": format!("at most {limit} operations may run on one connection: complete one first"),
                            "extensions": {"code": "RATE_LIMITED"},
                        }]);
                        let payload = match self.protocol {
                            Protocol::Transport => error,
                            Protocol::Legacy => error[0].clone(),
                        };
                        out.push(Message::text(json!({"type": "error", "id": id, "payload": payload}).to_string()));
                    }
                    m::rate_limited("ws_operations");
                    return Ok(());
                }
                let payload = &parsed["payload"];
                let mut request: async_graphql::Request = serde_json::from_value(payload.clone())
                    .map_err(|_| Some(Close(4400, "Invalid message: bad subscribe payload")))?;
                // Subscribers with the same document, operation and variables share rendered items.
                let shape = RenderCache::global().shape(&[
                    payload["query"].as_str().unwrap_or_default(),
                    payload["operationName"].as_str().unwrap_or_default(),
                    &payload["variables"].to_string(),
                ]);
                // A document that does not parse is left to the executor, which says why.
                let operation_name = request.operation_name.clone();
                let root =
                    request.parsed_query().ok().and_then(|doc| single_root_field(doc, operation_name.as_deref()));
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
                let rendered = Rendered::default();
                let scope = Scope { caller: caller.clone(), ip: self.ip, shape, rendered };
                let mut request = scope.attach(request);
                if let Some(detached) = &detached {
                    request = request.data(detached.detach.clone());
                }
                operations.insert(id.clone(), self.operation(id, request, scope, detached));
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
                    out.push(Message::text(json!({"type": "pong"}).to_string()));
                }
                Ok(())
            }
            (Protocol::Transport, Some("pong")) => Ok(()),
            (_, Some("connection_init")) => Err(Some(Close(4429, "Too many initialisation requests"))),
            (Protocol::Legacy, Some("connection_terminate")) => Err(None),
            _ => Err(Some(Close(4400, "Invalid message: unknown type"))),
        }
    }

    /// The frames of one operation, polled by the connection's task.
    fn operation(
        &self,
        id: String,
        request: async_graphql::Request,
        scope: Scope,
        detached: Option<Detached>,
    ) -> Operation {
        let schema = self.schema.clone();
        let services = self.services.clone();
        let protocol = self.protocol;
        Box::pin(async_stream::stream! {
            // Every operation acts for a session that is still live, not just one that was
            // when the connection opened.
            if let Err(e) = services.live.connection_still_allowed(&scope.caller).await {
                yield Frame::Close(Close::for_error(&e));
                return;
            }
            let gauge = SubscriptionGauge::new();
            let frames = FrameWriter::new(protocol, &id);
            let started = std::time::Instant::now();
            let mut responses = schema.execute_stream(request);
            let mut first = true;
            while let Some(response) = responses.next().await {
                // An operation refused before it produced anything is an `error`, which also
                // ends it; later errors travel inside `next`.
                if first && let Some(text) = refusal(protocol, &id, &response) {
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
                yield Frame::Then(Box::pin(DetachedOperation {
                    id,
                    protocol,
                    delivered: false,
                    items,
                    rendering: None,
                    schema,
                    frames,
                    scope,
                    template: detached.template,
                    done: false,
                    _gauge: gauge,
                }));
                return;
            }
            yield Frame::Send { text: complete_frame(&id), last: true };
        })
    }
}

/// The `error` frame for a response that is only errors: an operation refused before it
/// produced anything ends with it (later errors travel inside `next`).
fn refusal(protocol: Protocol, id: &str, response: &async_graphql::Response) -> Option<String> {
    if response.errors.is_empty() || response.data != async_graphql::Value::Null {
        return None;
    }
    let errors = serde_json::to_value(&response.errors).unwrap_or(Value::Null);
    let payload = match protocol {
        Protocol::Transport => errors,
        Protocol::Legacy => errors.get(0).cloned().unwrap_or(Value::Null),
    };
    Some(json!({"type": "error", "id": id, "payload": payload}).to_string())
}

fn complete_frame(id: &str) -> String {
    json!({"type": "complete", "id": id}).to_string()
}

/// A detached subscription (see [`super::shared`]): each item comes from the render cache
/// when a subscriber of the same shape rendered it already, otherwise from one run of the
/// client's document with the item injected. It holds little more than the item stream.
struct DetachedOperation {
    id: String,
    protocol: Protocol,
    /// Whether a frame of this operation has gone out yet.
    delivered: bool,
    items: DetachedStream,
    /// The run rendering the current item, on a cache miss.
    rendering: Option<futures_util::stream::BoxStream<'static, async_graphql::Response>>,
    schema: AppSchema,
    frames: FrameWriter,
    scope: Scope,
    template: Arc<Template>,
    done: bool,
    _gauge: SubscriptionGauge,
}

impl Stream for DetachedOperation {
    type Item = Frame;

    fn poll_next(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Option<Frame>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(rendering) = &mut this.rendering {
                let response = std::task::ready!(rendering.poll_next_unpin(cx));
                this.rendering = None;
                let Some(response) = response else { continue };
                // As when the executor runs it: an error before anything else is `error`.
                if !this.delivered
                    && let Some(text) = refusal(this.protocol, &this.id, &response)
                {
                    this.done = true;
                    return Poll::Ready(Some(Frame::Send { text, last: true }));
                }
                this.delivered = true;
                let text = this.frames.data(response, this.scope.rendered.take());
                return Poll::Ready(Some(Frame::Send { text, last: false }));
            }
            let Some(item) = std::task::ready!(this.items.poll_next_unpin(cx)) else {
                this.done = true;
                return Poll::Ready(Some(Frame::Send { text: complete_frame(&this.id), last: true }));
            };
            let key = &this.template.response_key;
            let cached = item.key.and_then(|item| RenderCache::global().lookup(item, this.scope.shape, key));
            if let Some(json) = cached {
                m::render_cache("hit");
                this.delivered = true;
                return Poll::Ready(Some(Frame::Send { text: this.frames.item(key, &json), last: false }));
            }
            let request = this.scope.attach(this.template.request()).data(Inject::new(item));
            this.rendering = Some(this.schema.execute_stream(request));
        }
    }
}

/// What every run of an operation's document carries.
struct Scope {
    caller: Caller,
    ip: Option<std::net::IpAddr>,
    shape: Shape,
    rendered: Rendered,
}

impl Scope {
    fn attach(&self, request: async_graphql::Request) -> async_graphql::Request {
        request
            .data(AuthState::Authenticated(self.caller.clone()))
            .data(ClientInfo { ip: self.ip })
            .data(self.shape)
            .data(self.rendered.clone())
    }
}

/// A subscription that may run outside the executor (see [`super::shared`]).
struct Detached {
    template: Arc<Template>,
    /// The root field's name, for the metrics.
    field: String,
    detach: Detach,
}

/// The client's document, operation name and variables, to render a detached item with, and
/// the response key its items go under. Subscriptions of one shape share one.
#[derive(PartialEq)]
struct Template {
    query: String,
    operation_name: Option<String>,
    variables: async_graphql::Variables,
    response_key: String,
}

type Templates = std::collections::HashMap<u64, std::sync::Weak<Template>>;

/// Templates in use, by shape.
static TEMPLATES: std::sync::LazyLock<std::sync::Mutex<Templates>> = std::sync::LazyLock::new(Default::default);

impl Template {
    /// The template of this shape in use already, if it is this one; else this one.
    fn shared(shape: Shape, template: Template) -> Arc<Template> {
        let mut templates = TEMPLATES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(existing) = templates.get(&shape.0).and_then(std::sync::Weak::upgrade)
            && *existing == template
        {
            return existing;
        }
        // Forget the shapes nobody uses any more, now and then.
        if templates.len() >= 1024 && templates.len().is_power_of_two() {
            templates.retain(|_, t| t.strong_count() > 0);
        }
        let template = Arc::new(template);
        templates.insert(shape.0, Arc::downgrade(&template));
        template
    }

    fn request(&self) -> async_graphql::Request {
        let mut request = async_graphql::Request::new(self.query.clone()).variables(self.variables.clone());
        if let Some(name) = &self.operation_name {
            request = request.operation_name(name.clone());
        }
        request
    }
}

/// A connection's outgoing frames: a bounded queue in front of the socket.
struct Outbox {
    sink: futures_util::stream::SplitSink<WebSocketStream, Message>,
    pending: VecDeque<Message>,
    capacity: usize,
    /// Since when the queue has been full.
    full_since: Option<Instant>,
    /// Frames handed to the socket but not yet flushed out of it.
    unflushed: bool,
}

/// How long a client gets to take its close frame (or the rest of its frames) at the end.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The same for a slow consumer, whose close frame waits behind a full socket.
const SLOW_CLOSE_GRACE: Duration = Duration::from_secs(30);

impl Outbox {
    fn new(sink: futures_util::stream::SplitSink<WebSocketStream, Message>, capacity: usize) -> Self {
        Outbox { sink, pending: VecDeque::new(), capacity, full_since: None, unflushed: false }
    }

    fn has_room(&self) -> bool {
        self.pending.len() < self.capacity
    }

    /// Frames queued, or handed to the socket and not flushed yet (it was full).
    fn has_unwritten(&self) -> bool {
        !self.pending.is_empty() || self.unflushed
    }

    fn push(&mut self, msg: Message) {
        self.pending.push_back(msg);
        if !self.has_room() && self.full_since.is_none() {
            self.full_since = Some(Instant::now());
        }
    }

    /// Writes what is queued as fast as the socket takes it. Safe to cancel: a frame leaves
    /// the queue only once the socket has accepted it.
    async fn drain(&mut self) -> Result<(), ()> {
        std::future::poll_fn(|cx| {
            while !self.pending.is_empty() {
                match self.sink.poll_ready_unpin(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(())),
                    Poll::Pending => return Poll::Pending,
                }
                let Some(msg) = self.pending.pop_front() else { break };
                if self.sink.start_send_unpin(msg).is_err() {
                    return Poll::Ready(Err(()));
                }
                self.unflushed = true;
                if self.has_room() {
                    self.full_since = None;
                }
            }
            let flushed = self.sink.poll_flush_unpin(cx).map(|r| r.map_err(|_| ()));
            if flushed.is_ready() {
                self.unflushed = false;
            }
            flushed
        })
        .await
    }

    /// Sends a close frame ahead of anything still queued (the queue may be full: a slow
    /// consumer), then closes; a client that does not take it in time is cut off.
    async fn close(mut self, code: u16, reason: &'static str, grace: Duration) {
        self.pending.clear();
        let _ = tokio::time::timeout(grace, self.sink.send(Message::close_with(code, reason))).await;
        let _ = tokio::time::timeout(CLOSE_GRACE, self.sink.close()).await;
    }

    /// Writes what is left (the client is leaving), then closes.
    async fn finish(mut self) {
        let _ = tokio::time::timeout(CLOSE_GRACE, self.drain()).await;
        let _ = tokio::time::timeout(CLOSE_GRACE, self.sink.close()).await;
    }
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

    /// A frame of one item already rendered as JSON, under `field`.
    fn item(&self, field: &str, item: &str) -> String {
        let field = serde_json::to_string(field).unwrap_or_default();
        let mut frame = String::with_capacity(self.head.len() + field.len() + item.len() + 4);
        frame.push_str(&self.head);
        frame.push_str(&field);
        frame.push(':');
        frame.push_str(item);
        frame.push_str("}}}");
        frame
    }

    fn data(&self, response: async_graphql::Response, item: Option<Arc<str>>) -> String {
        let field = match &response.data {
            async_graphql::Value::Object(map) if map.len() == 1 => map.keys().next(),
            _ => None,
        };
        match (item, field) {
            (Some(item), Some(field)) if response.errors.is_empty() && response.extensions.is_empty() => {
                self.item(field.as_str(), &item)
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

fn reason_label(code: u16, reason: &str) -> &'static str {
    match code {
        4400 => "bad_message",
        4401 => "unauthorized",
        4403 => "forbidden",
        4408 => "timeout",
        4409 => "duplicate_id",
        4429 if reason.starts_with("Too many connections") => "too_many_connections",
        4429 => "too_many_inits",
        1013 if reason.starts_with("Slow consumer") => "slow_consumer",
        1013 => "unavailable",
        1011 => "internal",
        _ => "other",
    }
}
