//! What apps receive: the event types and their bodies, `{"id", "type", "timestamp",
//! "data"}`, the same in a webhook delivery and in the pull feed. `data` is stored with the
//! event as of the change; `conversationId` and `seq` (where the change has one) come from
//! the event's columns, so every body of one event is the same bytes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::service::Caller;
use crate::storage::{message, webhook_event};

pub const MESSAGE_CREATED: &str = "message.created";
pub const MESSAGE_EDITED: &str = "message.edited";
pub const MESSAGE_DELETED: &str = "message.deleted";
pub const CONVERSATION_CREATED: &str = "conversation.created";
pub const CONVERSATION_UPDATED: &str = "conversation.updated";
pub const PARTICIPANT_ADDED: &str = "participant.added";
pub const PARTICIPANT_REMOVED: &str = "participant.removed";
pub const READ_UPDATED: &str = "read.updated";
pub const APP_ADDED: &str = "app.added_to_conversation";

/// Every event type an endpoint can subscribe to.
pub const EVENT_TYPES: [&str; 9] = [
    MESSAGE_CREATED,
    MESSAGE_EDITED,
    MESSAGE_DELETED,
    CONVERSATION_CREATED,
    CONVERSATION_UPDATED,
    PARTICIPANT_ADDED,
    PARTICIPANT_REMOVED,
    READ_UPDATED,
    APP_ADDED,
];

/// An event type as the REST API takes it: the names above, as an enum, so that a generated
/// client cannot subscribe to one that does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, poem_openapi::Enum)]
pub enum EventType {
    #[oai(rename = "message.created")]
    MessageCreated,
    #[oai(rename = "message.edited")]
    MessageEdited,
    #[oai(rename = "message.deleted")]
    MessageDeleted,
    #[oai(rename = "conversation.created")]
    ConversationCreated,
    #[oai(rename = "conversation.updated")]
    ConversationUpdated,
    #[oai(rename = "participant.added")]
    ParticipantAdded,
    #[oai(rename = "participant.removed")]
    ParticipantRemoved,
    #[oai(rename = "read.updated")]
    ReadUpdated,
    #[oai(rename = "app.added_to_conversation")]
    AppAdded,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MessageCreated => MESSAGE_CREATED,
            EventType::MessageEdited => MESSAGE_EDITED,
            EventType::MessageDeleted => MESSAGE_DELETED,
            EventType::ConversationCreated => CONVERSATION_CREATED,
            EventType::ConversationUpdated => CONVERSATION_UPDATED,
            EventType::ParticipantAdded => PARTICIPANT_ADDED,
            EventType::ParticipantRemoved => PARTICIPANT_REMOVED,
            EventType::ReadUpdated => READ_UPDATED,
            EventType::AppAdded => APP_ADDED,
        }
    }
}

/// Who did it, as apps see them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Actor<'a> {
    id: Uuid,
    username: &'a str,
    display_name: Option<&'a str>,
    is_bot: bool,
}

fn actor(caller: &Caller) -> Actor<'_> {
    Actor {
        id: caller.user_id,
        username: &caller.username,
        display_name: caller.display_name.as_deref(),
        is_bot: caller.app.is_some(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageData<'a> {
    id: Uuid,
    sender_id: Uuid,
    /// The sender, when they made the change (always for `message.created`).
    #[serde(skip_serializing_if = "Option::is_none")]
    sender: Option<Actor<'a>>,
    /// Who made the change, when not the sender (a moderator).
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_by: Option<Actor<'a>>,
    body: &'a str,
    client_message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    edited_at: Option<String>,
    deleted_at: Option<String>,
    attachment_ids: &'a [Uuid],
    /// The people the body mentions (by name, `@here` or `@all`), so a bot sees it was called.
    #[serde(skip_serializing_if = "<[Uuid]>::is_empty")]
    mentioned_user_ids: &'a [Uuid],
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn to_text(data: &impl Serialize) -> String {
    serde_json::to_string(data).unwrap_or_else(|_| "{}".into())
}

/// `message.created` data for a message about to be stored (its `seq` and `createdAt` are
/// the event's).
pub(crate) fn new_message(
    caller: &Caller,
    id: Uuid,
    body: &str,
    client_message_id: Option<&str>,
    files: &[Uuid],
    mentioned: &[Uuid],
) -> String {
    to_text(&MessageData {
        id,
        sender_id: caller.user_id,
        sender: Some(actor(caller)),
        changed_by: None,
        body,
        client_message_id,
        created_at: None,
        edited_at: None,
        deleted_at: None,
        attachment_ids: files,
        mentioned_user_ids: mentioned,
    })
}

/// `message.edited` / `message.deleted` data: the message after `caller` changed it.
pub(crate) fn changed_message(caller: &Caller, msg: &message::Model) -> String {
    let by_sender = caller.user_id == msg.sender_id;
    to_text(&MessageData {
        id: msg.id,
        sender_id: msg.sender_id,
        sender: by_sender.then(|| actor(caller)),
        changed_by: (!by_sender).then(|| actor(caller)),
        body: &msg.body,
        client_message_id: msg.client_message_id.as_deref(),
        created_at: Some(time(msg.created_at)),
        edited_at: msg.edited_at.map(time),
        deleted_at: msg.deleted_at.map(time),
        attachment_ids: &[],
        mentioned_user_ids: &[],
    })
}

/// `conversation.created` data.
pub(crate) fn conversation_created(caller: &Caller, kind: &str, title: Option<&str>, participants: &[Uuid]) -> String {
    to_text(&json!({ "kind": kind, "title": title, "createdBy": actor(caller), "participantIds": participants }))
}

/// `conversation.updated` data: the title before and after.
pub(crate) fn conversation_updated(caller: &Caller, before: Option<&str>, title: &str) -> String {
    to_text(&json!({ "title": title, "previousTitle": before, "updatedBy": actor(caller) }))
}

/// `participant.added` data.
pub(crate) fn participants_added(caller: &Caller, users: &[Uuid]) -> String {
    to_text(&json!({ "userIds": users, "addedBy": actor(caller) }))
}

/// `participant.removed` data (a participant who left).
pub(crate) fn participant_left(caller: &Caller) -> String {
    to_text(&json!({ "userId": caller.user_id, "removedBy": actor(caller) }))
}

/// `read.updated` data (the event's `seq` is the new read marker).
pub(crate) fn read(caller: &Caller) -> String {
    to_text(&json!({ "user": actor(caller) }))
}

/// `app.added_to_conversation` data (the app is the receiver).
pub(crate) fn app_added(caller: &Caller) -> String {
    to_text(&json!({ "addedBy": actor(caller) }))
}

/// The body apps receive for `event`.
pub fn render(event: &webhook_event::Model) -> Value {
    let mut data = match serde_json::from_str::<Value>(&event.payload) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if let Some(conversation_id) = event.conversation_id {
        data.insert("conversationId".into(), json!(conversation_id));
    }
    if let Some(seq) = event.seq {
        data.insert("seq".into(), json!(seq));
    }
    if event.kind == MESSAGE_CREATED {
        data.entry("createdAt").or_insert_with(|| json!(time(event.created_at)));
    }
    json!({ "id": event.id, "type": event.kind, "timestamp": time(event.created_at), "data": data })
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ToJSON;

    use super::*;

    #[test]
    fn the_rest_enum_names_every_event_type() {
        let all = [
            EventType::MessageCreated,
            EventType::MessageEdited,
            EventType::MessageDeleted,
            EventType::ConversationCreated,
            EventType::ConversationUpdated,
            EventType::ParticipantAdded,
            EventType::ParticipantRemoved,
            EventType::ReadUpdated,
            EventType::AppAdded,
        ];
        assert_eq!(all.map(EventType::as_str), EVENT_TYPES);
        for t in all {
            assert_eq!(t.to_json(), Some(Value::from(t.as_str())), "REST spells {t:?} as it is stored");
        }
    }
}
