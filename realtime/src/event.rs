//! Events published after commit, in the shape every transport (in-process, Redis) carries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One committed change, addressed to the participants of `conversation_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub conversation_id: Uuid,
    /// The message's `seq` for message events; the conversation's last seq otherwise.
    pub seq: i64,
    /// When the change committed; the delivery latency is measured from here.
    pub committed_at: DateTime<Utc>,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    MessageAdded { message_id: Uuid, sender_id: Uuid },
    MessageEdited { message_id: Uuid },
    MessageDeleted { message_id: Uuid },
    Read { user_id: Uuid, last_read_seq: i64 },
    ConversationChanged { participant_ids: Vec<Uuid> },
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
        }
    }
}
