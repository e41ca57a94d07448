//! A small GraphQL-over-WebSocket client for tests, speaking either protocol.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::TestApp;

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub legacy: bool,
}

/// How a read ended.
#[derive(Debug, PartialEq)]
pub enum Received {
    Message(Value),
    Closed(u16, String),
    TimedOut,
}

impl WsClient {
    pub async fn connect(app: &TestApp, path: &str, protocol: &str, header_token: Option<&str>) -> WsClient {
        let url = format!("{}{}", app.base.replacen("http://", "ws://", 1), path);
        let mut req = url.into_client_request().expect("request");
        req.headers_mut().insert("sec-websocket-protocol", protocol.parse().expect("header"));
        if let Some(token) = header_token {
            req.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
        }
        let (socket, resp) = tokio_tungstenite::connect_async(req).await.expect("websocket connects");
        assert_eq!(
            resp.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
            Some(protocol),
            "the server picks the offered subprotocol"
        );
        WsClient { socket, legacy: protocol == "graphql-ws" }
    }

    /// Like [`WsClient::signed_in`], over a socket with a tiny receive buffer: a client on a
    /// slow link, whose backlog piles up on the server.
    pub async fn signed_in_slow(app: &TestApp, token: &str) -> WsClient {
        let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().expect("addr");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        let stream = socket.connect(addr).await.expect("connect");
        let mut req = format!("ws://{addr}/graphql/ws").into_client_request().expect("request");
        req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
        let (socket, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream)).await.expect("handshake");
        let mut client = WsClient { socket, legacy: false };
        client.init(json!({"token": token})).await;
        match client.recv().await {
            Received::Message(m) if m["type"] == "connection_ack" => client,
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }

    /// Connects on `/graphql/ws` with `graphql-transport-ws` and completes the handshake.
    pub async fn signed_in(app: &TestApp, token: &str) -> WsClient {
        let mut client = Self::connect(app, "/graphql/ws", "graphql-transport-ws", None).await;
        client.init(json!({"token": token})).await;
        match client.recv().await {
            Received::Message(m) if m["type"] == "connection_ack" => client,
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }

    pub async fn init(&mut self, payload: Value) {
        self.send(json!({"type": "connection_init", "payload": payload})).await;
    }

    pub async fn send(&mut self, msg: Value) {
        self.socket.send(Message::text(msg.to_string())).await.expect("send");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({"type": kind, "id": id, "payload": {"query": query, "variables": variables}})).await;
    }

    pub async fn recv(&mut self) -> Received {
        self.recv_within(Duration::from_secs(10)).await
    }

    /// The next protocol message, skipping keep-alives and pings.
    pub async fn recv_within(&mut self, wait: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next()).await;
            match next {
                Err(_) => return Received::TimedOut,
                Ok(None) => return Received::Closed(1006, "eof".into()),
                Ok(Some(Err(e))) => return Received::Closed(1006, e.to_string()),
                Ok(Some(Ok(Message::Text(text)))) => {
                    let value: Value = serde_json::from_str(&text).expect("json frame");
                    if matches!(value["type"].as_str(), Some("ping" | "pong" | "ka")) {
                        continue;
                    }
                    return Received::Message(value);
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let (code, reason) =
                        frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                    return Received::Closed(code, reason);
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The `data` of the next `next`/`data` message for operation `id`.
    pub async fn next_data(&mut self, id: &str) -> Value {
        match self.recv().await {
            Received::Message(m) if m["id"] == id && (m["type"] == "next" || m["type"] == "data") => {
                assert!(m["payload"]["errors"].is_null(), "unexpected errors: {m}");
                m["payload"]["data"].clone()
            }
            other => panic!("expected data for {id}, got {other:?}"),
        }
    }

    /// Asserts nothing arrives for `wait`.
    pub async fn assert_silent(&mut self, wait: Duration) {
        let got = self.recv_within(wait).await;
        assert_eq!(got, Received::TimedOut, "expected silence");
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
