//! Subprotocol negotiation: which of the two GraphQL-over-WebSocket protocols a client
//! speaks, and where the two differ.

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Protocol {
    /// `graphql-transport-ws` (the graphql-ws library).
    Transport,
    /// Legacy `graphql-ws` (subscriptions-transport-ws).
    Legacy,
}

impl Protocol {
    /// The protocol of a `Sec-WebSocket-Protocol` offer, preferring `graphql-transport-ws`.
    pub(super) fn from_header(value: Option<&str>) -> Option<Protocol> {
        let offered: Vec<&str> = value?.split(',').map(str::trim).collect();
        if offered.contains(&TRANSPORT_WS) {
            Some(Protocol::Transport)
        } else if offered.contains(&LEGACY_WS) {
            Some(Protocol::Legacy)
        } else {
            None
        }
    }

    /// The type of a data frame.
    pub(super) fn data_type(self) -> &'static str {
        match self {
            Protocol::Transport => "next",
            Protocol::Legacy => "data",
        }
    }
}
