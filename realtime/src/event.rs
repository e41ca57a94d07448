//! Events published after commit, in the shape every transport (in-process, Redis) carries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who an event is for: the participants of a conversation, or the watchers of a user.
/// Each topic is one fan-out channel; a node listens only to topics its subscribers need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Topic {
    /// Everything that happens in a conversation, for its participants.
    Conversation(Uuid),
    /// Events addressed to one user (they were added to or removed from a conversation).
    User(Uuid),
    /// A user's online status, for anyone watching it.
    Presence(Uuid),
    /// Cluster-wide orders every node follows (close a disabled account's connections).
    Control,
}

impl Topic {
    /// The channel name used by transports that need one (Redis), within a cluster's
    /// namespace.
    pub fn channel(&self, namespace: &str) -> String {
        match self {
            Topic::Conversation(id) => format!("{namespace}:c:{}", id.simple()),
            Topic::User(id) => format!("{namespace}:u:{}", id.simple()),
            Topic::Presence(id) => format!("{namespace}:p:{}", id.simple()),
            Topic::Control => format!("{namespace}:control"),
        }
    }
}

/// One change, published once it has committed (typing and presence are not stored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub topic: Topic,
    /// When the change committed; delivery latency is measured from here.
    pub committed_at: DateTime<Utc>,
    pub kind: EventKind,
}

/// One emoji's reactions to a message: how many, and the first few who reacted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionCount {
    pub emoji: String,
    pub count: i64,
    pub users: Vec<Reactor>,
}

/// Someone who reacted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reactor {
    pub id: Uuid,
    pub username: String,
}

/// A message as subscribers receive it: everything needed to render it, so delivery never
/// reads the database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSnapshot {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub seq: i64,
    pub sender_id: Uuid,
    pub sender_username: String,
    pub sender_display_name: Option<String>,
    /// The sender is an app's bot user.
    #[serde(default)]
    pub sender_is_bot: bool,
    /// `None` once deleted.
    pub body: Option<String>,
    pub client_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Files attached to the message (metadata only; bytes are fetched by id).
    #[serde(default)]
    pub attachments: Vec<AttachmentSnapshot>,
    /// Who the body mentions, where (also the stored form: `messages.mentions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<MentionSnapshot>,
}

/// Whom a mention names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MentionKind {
    User,
    Here,
    All,
}

/// One mention in a message body: UTF-16 offsets, start inclusive, end exclusive; `user` for
/// a `@username` that named someone in the conversation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MentionSnapshot {
    pub kind: MentionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Reactor>,
    pub start: u32,
    pub end: u32,
}

/// A file attached to a message, as subscribers render it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentSnapshot {
    pub id: Uuid,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub sha256: String,
    pub has_thumbnail: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    MessageAdded {
        message: MessageSnapshot,
    },
    MessageEdited {
        message: MessageSnapshot,
    },
    MessageDeleted {
        message: MessageSnapshot,
    },
    #[serde(rename_all = "camelCase")]
    Read {
        conversation_id: Uuid,
        user_id: Uuid,
        last_read_seq: i64,
    },
    /// Membership changed: `participant_ids` is the membership after the change.
    #[serde(rename_all = "camelCase")]
    ConversationChanged {
        conversation_id: Uuid,
        participant_ids: Vec<Uuid>,
        added: Vec<Uuid>,
        removed: Vec<Uuid>,
    },
    #[serde(rename_all = "camelCase")]
    Typing {
        conversation_id: Uuid,
        user_id: Uuid,
        username: String,
        typing: bool,
    },
    #[serde(rename_all = "camelCase")]
    Presence {
        user_id: Uuid,
        online: bool,
        last_seen_at: Option<DateTime<Utc>>,
    },
    /// `user_id` added (or removed) `emoji` on a message; `reactions` is the message's summary
    /// after the change.
    #[serde(rename_all = "camelCase")]
    ReactionsUpdated {
        conversation_id: Uuid,
        message_id: Uuid,
        seq: i64,
        user_id: Uuid,
        username: String,
        emoji: String,
        added: bool,
        reactions: Vec<ReactionCount>,
    },
    /// `user_id` pinned (or unpinned) a message of the conversation.
    #[serde(rename_all = "camelCase")]
    PinsChanged {
        conversation_id: Uuid,
        message_id: Uuid,
        seq: i64,
        user_id: Uuid,
        username: String,
        pinned: bool,
    },
    /// An admin disabled the account: every node closes its live connections.
    #[serde(rename_all = "camelCase")]
    AccountDisabled {
        user_id: Uuid,
    },
    /// A session ended (sign-out, a reused refresh token): every node forgets it at once.
    #[serde(rename_all = "camelCase")]
    SessionRevoked {
        session_id: Uuid,
    },
}

impl EventKind {
    /// A bounded label value for metrics.
    pub fn as_label(&self) -> &'static str {
        match self {
            EventKind::MessageAdded { .. } => "message_added",
            EventKind::MessageEdited { .. } => "message_edited",
            EventKind::MessageDeleted { .. } => "message_deleted",
            EventKind::Read { .. } => "read",
            EventKind::ConversationChanged { .. } => "conversation_changed",
            EventKind::Typing { .. } => "typing",
            EventKind::Presence { .. } => "presence",
            EventKind::ReactionsUpdated { .. } => "reactions_updated",
            EventKind::PinsChanged { .. } => "pins_changed",
            EventKind::AccountDisabled { .. } => "account_disabled",
            EventKind::SessionRevoked { .. } => "session_revoked",
        }
    }

    /// The conversation this event belongs to, if any.
    pub fn conversation_id(&self) -> Option<Uuid> {
        match self {
            EventKind::MessageAdded { message }
            | EventKind::MessageEdited { message }
            | EventKind::MessageDeleted { message } => Some(message.conversation_id),
            EventKind::Read { conversation_id, .. }
            | EventKind::ConversationChanged { conversation_id, .. }
            | EventKind::Typing { conversation_id, .. }
            | EventKind::ReactionsUpdated { conversation_id, .. }
            | EventKind::PinsChanged { conversation_id, .. } => Some(*conversation_id),
            EventKind::Presence { .. } | EventKind::AccountDisabled { .. } | EventKind::SessionRevoked { .. } => None,
        }
    }
}
