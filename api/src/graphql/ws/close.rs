//! The close policy: every reason the server ends a WebSocket connection, with its close
//! code, the reason text the client reads (at most 123 bytes), the `reason` label of
//! `syncchat_websocket_closed_total`, and what the client should do next. Each is defined
//! once, in [`Close`]'s methods (Centrifugo's `Disconnect` is the model); tests and the
//! Grafana dashboards rely on them, so change one only on purpose.
//!
//! Codes 1000-1015 are the WebSocket standard's; 4400-4499 are graphql-ws's habit of
//! mirroring HTTP statuses (bad request, unauthorized, forbidden, timeout, conflict, too many
//! requests). A client leaving by itself is not counted.
//!
//! | Close | Code | Reason | Label | Reconnect |
//! |---|---|---|---|---|
//! | `ClientGone` | 1000 | closed | other | after 1 s, backing off |
//! | `Internal` | 1011 | Internal error | internal | after 5 s, backing off |
//! | `Unavailable` | 1013 | Try again later: storage is unavailable | unavailable | after 2 s, backing off |
//! | `SlowConsumer` | 1013 | Slow consumer: reconnect and resume from your last seq | slow_consumer | after 1 s, backing off |
//! | `Admission` | 1013 | Try again later: this node is admitting new connections slowly; retry in 1 s | admission | after 1 s, backing off |
//! | `Malformed` | 4400 | Invalid message | bad_message | no |
//! | `SubscribeWithoutId` | 4400 | Invalid message: subscribe needs an id | bad_message | no |
//! | `BadSubscribePayload` | 4400 | Invalid message: bad subscribe payload | bad_message | no |
//! | `UnknownMessageType` | 4400 | Invalid message: unknown type | bad_message | no |
//! | `Unauthorized` | 4401 | Unauthorized | unauthorized | with new credentials |
//! | `NoToken` | 4401 | Unauthorized: no token in connection_init or Authorization header | unauthorized | with new credentials |
//! | `InitFirst` | 4401 | Unauthorized: send connection_init first | unauthorized | no |
//! | `SessionEnded` | 4401 | Unauthorized: session ended | unauthorized | with new credentials |
//! | `Forbidden` | 4403 | Forbidden | forbidden | no |
//! | `AccountDisabled` | 4403 | Forbidden: account disabled | forbidden | no |
//! | `InitTimeout` | 4408 | Connection initialisation timeout | timeout | after 1 s, backing off |
//! | `KeepAliveTimeout` | 4408 | Keep-alive timeout | timeout | after 1 s, backing off |
//! | `DuplicateId` | 4409 | Subscriber for this id already exists | duplicate_id | no |
//! | `TooManyConnections` | 4429 | Too many connections for this user: close another one first | too_many_connections | after 30 s, backing off |
//! | `TooManyInits` | 4429 | Too many initialisation requests | too_many_inits | no |
//!
//! "Backing off" means the wait doubles on each repeat (with jitter); a client that
//! reconnects resumes its conversations by seq, so it misses nothing.

use std::fmt;
use std::time::Duration;

use crate::error::AppError;
use crate::service::live::Ending;

/// Why the server ends a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Close {
    /// The client went away (or closed) before finishing the handshake.
    ClientGone,
    /// Something failed on the server's side.
    Internal,
    /// Storage could not be reached.
    Unavailable,
    /// The client's outgoing queue stayed full: it cannot keep up.
    SlowConsumer,
    /// This node admits new connections at a bounded rate and this one came over it.
    Admission,
    /// A client message that is not JSON.
    Malformed,
    /// A `subscribe` (`start`) without an id.
    SubscribeWithoutId,
    /// A `subscribe` (`start`) whose payload is not a GraphQL request.
    BadSubscribePayload,
    /// A message type the protocol does not have.
    UnknownMessageType,
    /// The token was refused.
    Unauthorized,
    /// `connection_init` came with no token and the upgrade had no `Authorization` header.
    NoToken,
    /// Something other than `connection_init` (or a ping) came first.
    InitFirst,
    /// The connection's session ended (signed out, revoked) while it was open.
    SessionEnded,
    /// The caller may not connect (the account is disabled).
    Forbidden,
    /// An admin disabled the account while the connection was open.
    AccountDisabled,
    /// No `connection_init` within the init timeout.
    InitTimeout,
    /// Nothing heard from the client for three keep-alive intervals.
    KeepAliveTimeout,
    /// A `subscribe` with the id of an operation still running.
    DuplicateId,
    /// The user has as many live connections on this node as allowed.
    TooManyConnections,
    /// A second `connection_init`.
    TooManyInits,
}

/// What a client should do after a close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reconnect {
    /// Reconnect after at least this long, doubling the wait on each repeat, and resume.
    WithBackoff(Duration),
    /// Only with other credentials: refresh the access token or sign in again.
    WithNewCredentials,
    /// Not at all: the same client would be closed the same way again.
    No,
}

impl Close {
    /// Every close, in the order of the table above.
    #[cfg(test)]
    pub(super) const ALL: [Close; 20] = [
        Close::ClientGone,
        Close::Internal,
        Close::Unavailable,
        Close::SlowConsumer,
        Close::Admission,
        Close::Malformed,
        Close::SubscribeWithoutId,
        Close::BadSubscribePayload,
        Close::UnknownMessageType,
        Close::Unauthorized,
        Close::NoToken,
        Close::InitFirst,
        Close::SessionEnded,
        Close::Forbidden,
        Close::AccountDisabled,
        Close::InitTimeout,
        Close::KeepAliveTimeout,
        Close::DuplicateId,
        Close::TooManyConnections,
        Close::TooManyInits,
    ];

    /// The close for a service error that ends a connection: the handshake's, the
    /// registration's and every later authorization check's, so they all agree. On a
    /// connection's lifecycle `RATE_LIMITED` means the user has too many connections.
    pub(super) fn for_error(e: &AppError) -> Close {
        match e {
            AppError::Forbidden(_) => Close::Forbidden,
            AppError::Unauthenticated(_) => Close::Unauthorized,
            AppError::Unavailable(_) => Close::Unavailable,
            AppError::RateLimited { .. } => Close::TooManyConnections,
            _ => Close::Internal,
        }
    }

    pub(super) fn code(self) -> u16 {
        match self {
            Close::ClientGone => 1000,
            Close::Internal => 1011,
            Close::Unavailable | Close::SlowConsumer | Close::Admission => 1013,
            Close::Malformed | Close::SubscribeWithoutId | Close::BadSubscribePayload | Close::UnknownMessageType => {
                4400
            }
            Close::Unauthorized | Close::NoToken | Close::InitFirst | Close::SessionEnded => 4401,
            Close::Forbidden | Close::AccountDisabled => 4403,
            Close::InitTimeout | Close::KeepAliveTimeout => 4408,
            Close::DuplicateId => 4409,
            Close::TooManyConnections | Close::TooManyInits => 4429,
        }
    }

    /// What the client reads in the close frame.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Close::ClientGone => "closed",
            Close::Internal => "Internal error",
            Close::Unavailable => "Try again later: storage is unavailable",
            Close::SlowConsumer => "Slow consumer: reconnect and resume from your last seq",
            Close::Admission => "Try again later: this node is admitting new connections slowly; retry in 1 s",
            Close::Malformed => "Invalid message",
            Close::SubscribeWithoutId => "Invalid message: subscribe needs an id",
            Close::BadSubscribePayload => "Invalid message: bad subscribe payload",
            Close::UnknownMessageType => "Invalid message: unknown type",
            Close::Unauthorized => "Unauthorized",
            Close::NoToken => "Unauthorized: no token in connection_init or Authorization header",
            Close::InitFirst => "Unauthorized: send connection_init first",
            Close::SessionEnded => "Unauthorized: session ended",
            Close::Forbidden => "Forbidden",
            Close::AccountDisabled => "Forbidden: account disabled",
            Close::InitTimeout => "Connection initialisation timeout",
            Close::KeepAliveTimeout => "Keep-alive timeout",
            Close::DuplicateId => "Subscriber for this id already exists",
            Close::TooManyConnections => "Too many connections for this user: close another one first",
            Close::TooManyInits => "Too many initialisation requests",
        }
    }

    /// The `reason` label of `syncchat_websocket_closed_total` (a bounded set).
    pub(super) fn label(self) -> &'static str {
        match self {
            Close::ClientGone => "other",
            Close::Internal => "internal",
            Close::Unavailable => "unavailable",
            Close::SlowConsumer => "slow_consumer",
            Close::Admission => "admission",
            Close::Malformed | Close::SubscribeWithoutId | Close::BadSubscribePayload | Close::UnknownMessageType => {
                "bad_message"
            }
            Close::Unauthorized | Close::NoToken | Close::InitFirst | Close::SessionEnded => "unauthorized",
            Close::Forbidden | Close::AccountDisabled => "forbidden",
            Close::InitTimeout | Close::KeepAliveTimeout => "timeout",
            Close::DuplicateId => "duplicate_id",
            Close::TooManyConnections => "too_many_connections",
            Close::TooManyInits => "too_many_inits",
        }
    }

    /// What the client should do next.
    pub(super) fn reconnect(self) -> Reconnect {
        let after = |secs| Reconnect::WithBackoff(Duration::from_secs(secs));
        match self {
            Close::ClientGone | Close::SlowConsumer | Close::Admission => after(1),
            Close::InitTimeout | Close::KeepAliveTimeout => after(1),
            Close::Unavailable => after(crate::error::UNAVAILABLE_RETRY_AFTER_SECS),
            Close::Internal => after(5),
            // As long as the user's other connections stay (see `connection_opened`).
            Close::TooManyConnections => after(30),
            Close::Unauthorized | Close::NoToken | Close::SessionEnded => Reconnect::WithNewCredentials,
            Close::Malformed
            | Close::SubscribeWithoutId
            | Close::BadSubscribePayload
            | Close::UnknownMessageType
            | Close::InitFirst
            | Close::Forbidden
            | Close::AccountDisabled
            | Close::DuplicateId
            | Close::TooManyInits => Reconnect::No,
        }
    }
}

impl From<Ending> for Close {
    /// The close of a connection ended from outside its task (see `service::live::Kill`).
    fn from(why: Ending) -> Close {
        match why {
            Ending::SessionEnded => Close::SessionEnded,
            Ending::AccountDisabled => Close::AccountDisabled,
        }
    }
}

impl fmt::Display for Reconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reconnect::WithBackoff(wait) => write!(f, "after {} s, backing off", wait.as_secs()),
            Reconnect::WithNewCredentials => f.write_str("with new credentials"),
            Reconnect::No => f.write_str("no"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new variant must be added to [`Close::ALL`] (and so to the table) before this compiles.
    fn listed(close: Close) -> bool {
        match close {
            Close::ClientGone
            | Close::Internal
            | Close::Unavailable
            | Close::SlowConsumer
            | Close::Admission
            | Close::Malformed
            | Close::SubscribeWithoutId
            | Close::BadSubscribePayload
            | Close::UnknownMessageType
            | Close::Unauthorized
            | Close::NoToken
            | Close::InitFirst
            | Close::SessionEnded
            | Close::Forbidden
            | Close::AccountDisabled
            | Close::InitTimeout
            | Close::KeepAliveTimeout
            | Close::DuplicateId
            | Close::TooManyConnections
            | Close::TooManyInits => Close::ALL.contains(&close),
        }
    }

    #[test]
    fn the_module_doc_table_is_the_policy() {
        let doc: Vec<&str> = include_str!("close.rs").lines().filter_map(|l| l.strip_prefix("//! | `")).collect();
        let rows: Vec<String> = Close::ALL
            .iter()
            .map(|c| format!("{c:?}` | {} | {} | {} | {} |", c.code(), c.reason(), c.label(), c.reconnect()))
            .collect();
        assert_eq!(doc, rows, "the table in close.rs's module doc and Close's methods differ");
        assert!(Close::ALL.iter().all(|c| listed(*c)));
    }

    #[test]
    fn reasons_fit_a_close_frame() {
        for close in Close::ALL {
            assert!(close.reason().len() <= 123, "{close:?}'s reason is longer than a close frame takes");
        }
    }

    #[test]
    fn a_code_and_its_reason_tell_one_label() {
        // Dashboards that only see (code, reason) can still tell the closes apart.
        for a in Close::ALL {
            for b in Close::ALL {
                if a != b {
                    assert!((a.code(), a.reason()) != (b.code(), b.reason()), "{a:?} and {b:?} look the same");
                }
            }
        }
    }

    #[test]
    fn service_errors_map_to_one_close_each() {
        let cases = [
            (AppError::Unauthenticated("x".into()), Close::Unauthorized),
            (AppError::Forbidden("x".into()), Close::Forbidden),
            (AppError::Unavailable("x".into()), Close::Unavailable),
            (AppError::RateLimited { retry_after: Duration::from_secs(30) }, Close::TooManyConnections),
            (AppError::NotFound("x".into()), Close::Internal),
            (AppError::Internal(anyhow::anyhow!("x")), Close::Internal),
        ];
        for (error, close) in cases {
            assert_eq!(Close::for_error(&error), close, "{error:?}");
        }
        assert_eq!(Close::from(Ending::SessionEnded), Close::SessionEnded);
        assert_eq!(Close::from(Ending::AccountDisabled), Close::AccountDisabled);
    }
}
