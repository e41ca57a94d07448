//! The JSON frames the server sends. A data frame of an item that came through the render
//! cache is spliced together from the JSON it already is; anything else is serialized here.

use std::sync::Arc;

use serde_json::{Value, json};

use super::protocol::Protocol;

pub(super) fn connection_ack() -> String {
    json!({"type": "connection_ack"}).to_string()
}

pub(super) fn pong() -> String {
    json!({"type": "pong"}).to_string()
}

/// The server's keep-alive: a `ping` (the client answers `pong`), or the legacy `ka`.
pub(super) fn keepalive(protocol: Protocol) -> String {
    let ping = match protocol {
        Protocol::Transport => json!({"type": "ping"}),
        Protocol::Legacy => json!({"type": "ka"}),
    };
    ping.to_string()
}

fn complete(id: &str) -> String {
    json!({"type": "complete", "id": id}).to_string()
}

/// The `error` frame that ends operation `id`: the legacy protocol carries one error.
pub(super) fn error(protocol: Protocol, id: &str, errors: Value) -> String {
    let payload = match protocol {
        Protocol::Transport => errors,
        Protocol::Legacy => errors.get(0).cloned().unwrap_or(Value::Null),
    };
    json!({"type": "error", "id": id, "payload": payload}).to_string()
}

/// The `error` frame of an operation refused because `limit` operations run already (the
/// connection stays).
pub(super) fn too_many_operations(protocol: Protocol, id: &str, limit: usize) -> String {
    let errors = json!([{
        "message": format!("at most {limit} operations may run on one connection: complete one first"),
        "extensions": {"code": "RATE_LIMITED"},
    }]);
    error(protocol, id, errors)
}

/// Builds the frames of one operation.
pub(super) struct FrameWriter {
    id: String,
    protocol: Protocol,
    /// `{"type":"next","id":"…","payload":{"data":{` for this operation.
    head: String,
}

impl FrameWriter {
    pub(super) fn new(protocol: Protocol, id: String) -> Self {
        let quoted = serde_json::to_string(&id).unwrap_or_else(|_| "null".to_owned());
        let head = format!(r#"{{"type":"{}","id":{quoted},"payload":{{"data":{{"#, protocol.data_type());
        FrameWriter { id, protocol, head }
    }

    /// The `complete` frame that ends the operation.
    pub(super) fn complete(&self) -> String {
        complete(&self.id)
    }

    /// The `error` frame for a response that is only errors: an operation refused before it
    /// produced anything ends with it (later errors travel inside `next`).
    pub(super) fn refusal(&self, response: &async_graphql::Response) -> Option<String> {
        if response.errors.is_empty() || response.data != async_graphql::Value::Null {
            return None;
        }
        let errors = serde_json::to_value(&response.errors).unwrap_or(Value::Null);
        Some(error(self.protocol, &self.id, errors))
    }

    /// A frame of one item already rendered as JSON, under `field`.
    pub(super) fn item(&self, field: &str, item: &str) -> String {
        let field = serde_json::to_string(field).unwrap_or_default();
        let mut frame = String::with_capacity(self.head.len() + field.len() + item.len() + 4);
        frame.push_str(&self.head);
        frame.push_str(&field);
        frame.push(':');
        frame.push_str(item);
        frame.push_str("}}}");
        frame
    }

    /// The frame of an executor's response; `item` is the JSON of its root field when that
    /// went through the render cache.
    pub(super) fn data(&self, response: async_graphql::Response, item: Option<Arc<str>>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_item_is_spliced_into_a_valid_frame() {
        let frames = FrameWriter::new(Protocol::Transport, "1".into());
        let frame: Value = serde_json::from_str(&frames.item("m", r#"{"seq":3}"#)).unwrap_or_default();
        assert_eq!(frame, json!({"type": "next", "id": "1", "payload": {"data": {"m": {"seq": 3}}}}));
        let legacy = FrameWriter::new(Protocol::Legacy, "a\"b".into());
        let frame: Value = serde_json::from_str(&legacy.item("m", "1")).unwrap_or_default();
        assert_eq!(frame, json!({"type": "data", "id": "a\"b", "payload": {"data": {"m": 1}}}));
    }

    #[test]
    fn the_legacy_protocol_carries_one_error() {
        let errors = json!([{"message": "a"}, {"message": "b"}]);
        let transport: Value =
            serde_json::from_str(&error(Protocol::Transport, "1", errors.clone())).unwrap_or_default();
        assert_eq!(transport["payload"], errors);
        let legacy: Value = serde_json::from_str(&error(Protocol::Legacy, "1", errors)).unwrap_or_default();
        assert_eq!(legacy["payload"], json!({"message": "a"}));
    }
}
