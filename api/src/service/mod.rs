//! The service layer: every business rule of SyncChat. GraphQL resolvers and REST handlers
//! call these functions and only translate their inputs and outputs.
//!
//! Authorization policy: a conversation is visible only to its participants. For anyone else
//! it does not exist (`NOT_FOUND`), so ids cannot be probed. `FORBIDDEN` is reserved for
//! callers who can see the thing but may not do this to it (edit someone else's message).

pub mod admin;
pub(crate) mod auth;
mod batch;
pub(crate) mod conversations;
pub mod files;
mod heal;
mod limits;
pub mod live;
pub(crate) mod messages;
mod tokens;
mod users;
pub mod views;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use syncchat_realtime::{Event, EventBus, EventKind, PresenceStore, Topic};
use uuid::Uuid;

pub use auth::{LoginInput, RegisterInput};
pub use conversations::CreateConversationInput;
pub use files::{FileSettings, Files, UploadTicket};
pub use limits::{LimitSettings, Limits};
pub use messages::{HistoryQuery, SendMessageInput};
pub use tokens::TokenSettings;

use crate::metrics as m;

/// The signed-in user behind a request, established from a valid access token.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub session_id: Uuid,
    pub is_admin: bool,
}

impl Caller {
    pub(crate) fn from_user(found: crate::storage::user::Model, session_id: Uuid) -> Caller {
        Caller {
            user_id: found.id,
            is_admin: found.role == crate::storage::user::ROLE_ADMIN,
            username: found.username,
            display_name: found.display_name,
            session_id,
        }
    }

    /// The caller as others see them.
    pub(crate) fn user_ref(&self) -> views::UserRef {
        views::UserRef { id: self.user_id, username: self.username.clone(), display_name: self.display_name.clone() }
    }
}

/// Cheap to clone; shared by every request.
#[derive(Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    bus: EventBus,
    presence: Arc<dyn PresenceStore>,
    tokens: tokens::TokenIssuer,
    limits: Limits,
    connections: live::Connections,
    sessions: auth::SessionCache,
    sends: batch::SendBatcher,
    files: files::Files,
}

impl Services {
    pub fn new(
        db: DatabaseConnection,
        bus: EventBus,
        presence: Arc<dyn PresenceStore>,
        tokens: TokenSettings,
        limits: LimitSettings,
        files: files::Files,
    ) -> Self {
        Services {
            inner: Arc::new(Inner {
                db,
                bus,
                presence,
                tokens: tokens::TokenIssuer::new(tokens),
                limits: Limits::new(limits),
                connections: live::Connections::default(),
                sessions: auth::SessionCache::default(),
                sends: batch::SendBatcher::default(),
                files,
            }),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    pub fn presence_store(&self) -> &Arc<dyn PresenceStore> {
        &self.inner.presence
    }

    pub fn connections(&self) -> &live::Connections {
        &self.inner.connections
    }

    pub(crate) fn sessions(&self) -> &auth::SessionCache {
        &self.inner.sessions
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Publishes an event that has committed (or, for typing and presence, just happened).
    pub(crate) async fn publish(&self, topic: Topic, kind: EventKind) {
        m::event_published(kind.as_label());
        self.inner.bus.publish(Event { topic, committed_at: chrono::Utc::now(), kind }).await;
    }
}

/// `now()` truncated to microseconds: what Postgres keeps, so a timestamp read back equals
/// the one written on both backends (cursors compare them).
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}

impl Services {
    /// Drops rate-limiter state for keys that are idle again.
    pub fn shrink_limits(&self) {
        self.inner.limits.shrink();
    }
}
