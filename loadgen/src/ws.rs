//! graphql-transport-ws clients, as browsers open them.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/graphql/ws` on `base` (http://host:port), from `source` when given (to spread
/// connections over several loopback addresses past the ephemeral port limit), and waits for
/// `connection_ack`.
pub async fn connect(base: &str, token: &str, source: Option<IpAddr>) -> anyhow::Result<Socket> {
    let addr: SocketAddr =
        base.trim_start_matches("http://").trim_end_matches('/').parse().context("server address")?;
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    let mut req = format!("ws://{addr}/graphql/ws").into_client_request()?;
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream)).await?;
    ws.send(Message::text(json!({"type": "connection_init", "payload": {"token": token}}).to_string())).await?;
    while let Some(msg) = ws.next().await {
        if let Message::Text(text) = msg? {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match v["type"].as_str() {
                Some("connection_ack") => return Ok(ws),
                Some("ping") => ws.send(Message::text(json!({"type": "pong"}).to_string())).await?,
                _ => {}
            }
        }
    }
    anyhow::bail!("closed before connection_ack")
}

pub async fn subscribe_messages(ws: &mut Socket, id: &str, conversation: &str) -> anyhow::Result<()> {
    let query = "subscription($c: UUID!) { messageAdded(conversationId: $c) { seq body } }";
    let msg = json!({"type": "subscribe", "id": id, "payload": {"query": query, "variables": {"c": conversation}}});
    ws.send(Message::text(msg.to_string())).await?;
    Ok(())
}
