//! What the service layer returns. Both façades expose these shapes as they are (GraphQL
//! objects and OpenAPI schemas are derived on the same structs), so the two surfaces cannot
//! drift apart in field names or meaning.

use chrono::{DateTime, Utc};
use syncchat_realtime::MessageSnapshot;
use uuid::Uuid;

use crate::storage::{conversation, message, user};

/// A user as others see them.
#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct UserRef {
    pub id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    /// An app's bot user (it acts for an integration, with the app's API keys).
    pub is_bot: bool,
}

/// A user with the fields only they (and admins) may see.
#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "User")]
#[oai(rename_all = "camelCase")]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    /// Only present for the signed-in user themself.
    pub email: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// Only present for the signed-in user themself (and admins); others ask `presence`,
    /// which answers for people who share a conversation.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Only present for the signed-in user themself (`me`).
    pub settings: Option<SettingsView>,
}

/// Who sees how far I have read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum ReadReceipts {
    /// Everyone in the conversation (the default).
    Public,
    /// Only me: others do not see my read marker or its changes (Matrix's `m.read.private`);
    /// my own unread counts work as before.
    Private,
}

/// What becomes of messages from people I blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum BlockedMessages {
    /// They come with `senderBlocked: true` in history, so my client can hide them (the
    /// default).
    Flag,
    /// They are left out: of my history, search, mentions and live events.
    Hide,
}

/// My settings.
#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "UserSettings")]
#[oai(rename_all = "camelCase")]
pub struct SettingsView {
    pub read_receipts: ReadReceipts,
    pub blocked_messages: BlockedMessages,
}

/// Changes to my settings; a field left out stays as it is.
#[derive(Clone, Debug, async_graphql::InputObject, poem_openapi::Object)]
#[graphql(name = "UserSettingsInput")]
#[oai(rename_all = "camelCase")]
pub struct SettingsInput {
    pub read_receipts: Option<ReadReceipts>,
    pub blocked_messages: Option<BlockedMessages>,
}

/// How far one participant has read (a read receipt).
#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "ReadReceipt")]
#[oai(rename_all = "camelCase")]
pub struct ReadReceiptView {
    pub user: UserRef,
    /// Every message up to this seq has been read by `user`.
    pub last_read_seq: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
    /// An app's bot user.
    Bot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum ConversationKind {
    Direct,
    Group,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum ParticipantRole {
    Owner,
    Member,
}

#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "Attachment")]
#[oai(rename_all = "camelCase")]
pub struct AttachmentView {
    pub id: Uuid,
    /// The uploader's file name (path parts removed).
    pub name: String,
    /// Detected from the bytes, not taken from the client.
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// Images only.
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// Hex sha256 of the bytes; also the download's ETag.
    pub sha256: String,
    /// `GET` with the bearer token: the bytes (ranges, ETag, 304).
    pub url: String,
    /// A 320 px preview for images, once made (shortly after upload).
    pub thumbnail_url: Option<String>,
}

impl AttachmentView {
    pub fn from_model(a: &crate::storage::attachment::Model) -> Self {
        AttachmentView {
            id: a.id,
            name: a.file_name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            width: a.width,
            height: a.height,
            sha256: a.sha256.clone(),
            url: format!("/api/v1/files/{}", a.id),
            thumbnail_url: a.thumbnail_key.as_ref().map(|_| format!("/api/v1/files/{}/thumbnail", a.id)),
        }
    }
}

impl From<&AttachmentView> for syncchat_realtime::AttachmentSnapshot {
    fn from(a: &AttachmentView) -> Self {
        syncchat_realtime::AttachmentSnapshot {
            id: a.id,
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            width: a.width,
            height: a.height,
            sha256: a.sha256.clone(),
            has_thumbnail: a.thumbnail_url.is_some(),
        }
    }
}

impl From<syncchat_realtime::AttachmentSnapshot> for AttachmentView {
    fn from(a: syncchat_realtime::AttachmentSnapshot) -> Self {
        AttachmentView {
            url: format!("/api/v1/files/{}", a.id),
            thumbnail_url: a.has_thumbnail.then(|| format!("/api/v1/files/{}/thumbnail", a.id)),
            id: a.id,
            name: a.name,
            content_type: a.content_type,
            size: a.size,
            width: a.width,
            height: a.height,
            sha256: a.sha256,
        }
    }
}

// Subscriptions render a message once for all their subscribers (a `SharedView`, see
// `graphql/subscription/mod.rs`): no field of it may depend on who reads it.
#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "Message")]
#[oai(rename_all = "camelCase")]
pub struct MessageView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    /// Position in the conversation: strictly increasing, assigned at commit.
    pub seq: i64,
    pub sender: UserRef,
    /// `null` once the message is deleted.
    pub body: Option<String>,
    pub client_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub attachments: Vec<AttachmentView>,
    /// The sender is someone you blocked: hide it if you like. Set where history is read for
    /// you; a live event's message has `false` (compare with `blockedUsers`).
    pub sender_blocked: bool,
    /// Per emoji, in the order first used. Filled where the message is read (history,
    /// `addReaction`); a live event's message carries none: `ReactionsUpdatedEvent` does.
    pub reactions: Vec<ReactionView>,
    /// Who the body mentions, where: render them from these positions (UTF-16 code units,
    /// `end` exclusive) rather than parsing the text again.
    pub mentions: Vec<MentionView>,
}

/// Whom a mention names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum MentionKind {
    /// `@username`: one person in the conversation (`user`).
    User,
    /// `@here`: everyone in the conversation who was online.
    Here,
    /// `@all`: everyone in the conversation.
    All,
}

/// A mentioned user.
#[derive(Clone, Debug, PartialEq, Eq, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "MentionedUser")]
#[oai(rename_all = "camelCase")]
pub struct MentionedUserView {
    pub id: Uuid,
    pub username: String,
}

/// One mention in a message body.
#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "Mention")]
#[oai(rename_all = "camelCase")]
pub struct MentionView {
    pub kind: MentionKind,
    /// Whom `@username` named (`null` for `@here` and `@all`).
    pub user: Option<MentionedUserView>,
    /// Where the `@` is, in UTF-16 code units from the start of the body.
    pub start: i32,
    /// Just past the name, in UTF-16 code units (`body.slice(start, end)` is `@name`).
    pub end: i32,
}

impl From<syncchat_realtime::MentionSnapshot> for MentionView {
    fn from(m: syncchat_realtime::MentionSnapshot) -> Self {
        use syncchat_realtime::MentionKind as K;
        MentionView {
            kind: match m.kind {
                K::User => MentionKind::User,
                K::Here => MentionKind::Here,
                K::All => MentionKind::All,
            },
            user: m.user.map(|u| MentionedUserView { id: u.id, username: u.username }),
            start: i32::try_from(m.start).unwrap_or(i32::MAX),
            end: i32::try_from(m.end).unwrap_or(i32::MAX),
        }
    }
}

impl From<&MentionView> for syncchat_realtime::MentionSnapshot {
    fn from(m: &MentionView) -> Self {
        use syncchat_realtime::MentionKind as K;
        syncchat_realtime::MentionSnapshot {
            kind: match m.kind {
                MentionKind::User => K::User,
                MentionKind::Here => K::Here,
                MentionKind::All => K::All,
            },
            user: m.user.as_ref().map(|u| syncchat_realtime::Reactor { id: u.id, username: u.username.clone() }),
            start: u32::try_from(m.start).unwrap_or(0),
            end: u32::try_from(m.end).unwrap_or(0),
        }
    }
}

/// The mentions stored with a message (`messages.mentions`, JSON), none for a deleted one.
pub fn stored_mentions(m: &message::Model) -> Vec<MentionView> {
    let Some(json) = m.mentions.as_deref().filter(|_| m.deleted_at.is_none()) else { return Vec::new() };
    match serde_json::from_str::<Vec<syncchat_realtime::MentionSnapshot>>(json) {
        Ok(mentions) => mentions.into_iter().map(Into::into).collect(),
        Err(error) => {
            tracing::warn!(message.id = %m.id, %error, "unreadable stored mentions, shown as none");
            Vec::new()
        }
    }
}

/// Someone who reacted.
#[derive(Clone, Debug, Hash, PartialEq, Eq, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "Reactor")]
#[oai(rename_all = "camelCase")]
pub struct ReactorView {
    pub id: Uuid,
    pub username: String,
}

/// One emoji's reactions to a message, as the reader sees them.
#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "Reaction", complex)]
#[oai(rename_all = "camelCase")]
pub struct ReactionView {
    pub emoji: String,
    pub count: i64,
    /// Whether the reader reacted with it.
    pub reacted_by_me: bool,
    /// The first who reacted, oldest first (at most 3).
    #[graphql(skip)]
    pub users: Vec<ReactorView>,
}

#[async_graphql::ComplexObject]
impl ReactionView {
    /// The first who reacted, oldest first (at most 3).
    async fn users(&self, #[graphql(default = 3)] first: i32) -> Vec<ReactorView> {
        self.users.iter().take(usize::try_from(first).unwrap_or(0)).cloned().collect()
    }
}

/// One emoji's reactions in a live event: the same for every reader.
#[derive(Clone, Debug, Hash, async_graphql::SimpleObject)]
pub struct ReactionCountView {
    pub emoji: String,
    pub count: i64,
    /// The first who reacted, oldest first (at most 3).
    pub users: Vec<ReactorView>,
}

/// A pinned message of a conversation.
#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "PinnedMessage")]
#[oai(rename_all = "camelCase")]
pub struct PinView {
    pub message: MessageView,
    pub pinned_by: UserRef,
    pub pinned_at: DateTime<Utc>,
}

/// A message was pinned (or unpinned) in one of your conversations.
#[derive(Clone, Debug, Hash, async_graphql::SimpleObject)]
pub struct PinsChangedEvent {
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub seq: i64,
    pub user_id: Uuid,
    pub username: String,
    /// `false`: unpinned.
    pub pinned: bool,
}

/// Someone added or removed a reaction; `reactions` is the message's summary after it (each
/// reader knows whether they are `userId`).
#[derive(Clone, Debug, Hash, async_graphql::SimpleObject)]
pub struct ReactionsUpdatedEvent {
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub seq: i64,
    pub user_id: Uuid,
    pub username: String,
    pub emoji: String,
    /// `false`: the reaction was removed.
    pub added: bool,
    pub reactions: Vec<ReactionCountView>,
}

#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "Participant")]
#[oai(rename_all = "camelCase")]
pub struct ParticipantView {
    pub user: UserRef,
    pub role: ParticipantRole,
    pub joined_at: DateTime<Utc>,
    /// `null` for someone who keeps read receipts private (you always see your own).
    pub last_read_seq: Option<i64>,
}

#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "Conversation", complex)]
#[oai(rename_all = "camelCase")]
pub struct ConversationView {
    pub id: Uuid,
    pub kind: ConversationKind,
    pub title: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    /// Last activity: creation, a message, a membership change.
    pub updated_at: DateTime<Utc>,
    /// The newest message's `seq` (0 when there is none).
    pub last_seq: i64,
    pub participants: Vec<ParticipantView>,
    pub last_message: Option<MessageView>,
    /// Messages from others after the caller's read marker, not counting deleted ones.
    pub unread_count: i64,
    /// Of those, the messages that mention the caller (by name, `@here` or `@all`), like
    /// Matrix's `highlight_count`: `markRead` resets it with the unread count.
    pub mention_count: i64,
    /// The caller's read marker.
    pub last_read_seq: i64,
    /// Read receipts: how far each participant has read, furthest first; those who keep
    /// theirs private are left out (the caller is always in). "Seen by" for a message is
    /// everyone here with `lastReadSeq` at or past its seq.
    pub read_by: Vec<ReadReceiptView>,
}

/// The caller's read marker after `markRead`.
#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct ReadState {
    pub conversation_id: Uuid,
    pub last_read_seq: i64,
    pub unread_count: i64,
    /// Unread messages that mention the caller.
    pub mention_count: i64,
}

/// Tokens handed out by register, login and refresh.
#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct AuthPayload {
    /// Short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Single-use token for `refreshToken`; rotated on every refresh.
    pub refresh_token: String,
    pub user: UserView,
}

/// One page of a list, newest-first or by `seq` depending on the list.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `after` (or `before` for message history) to get the next page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

impl UserRef {
    /// Stands in for an account that no longer exists.
    pub fn unknown(id: Uuid) -> Self {
        UserRef { id, username: "unknown".into(), display_name: None, is_bot: false }
    }
}

impl From<user::Model> for UserRef {
    fn from(u: user::Model) -> Self {
        UserRef { is_bot: u.role == user::ROLE_BOT, id: u.id, username: u.username, display_name: u.display_name }
    }
}

impl UserView {
    pub fn from_model(u: user::Model, include_private: bool) -> Self {
        UserView {
            id: u.id,
            role: match u.role.as_str() {
                user::ROLE_ADMIN => Role::Admin,
                user::ROLE_BOT => Role::Bot,
                _ => Role::User,
            },
            email: include_private.then_some(u.email),
            username: u.username,
            display_name: u.display_name,
            created_at: u.created_at,
            last_seen_at: u.last_seen_at.filter(|_| include_private),
            settings: None,
        }
    }
}

impl MessageView {
    pub fn from_model(m: message::Model, sender: UserRef) -> Self {
        let mentions = stored_mentions(&m);
        MessageView {
            id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            sender,
            body: m.deleted_at.is_none().then_some(m.body),
            client_message_id: m.client_message_id,
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted_at: m.deleted_at,
            attachments: Vec::new(),
            sender_blocked: false,
            reactions: Vec::new(),
            mentions,
        }
    }
}

pub fn conversation_kind(c: &conversation::Model) -> ConversationKind {
    if c.kind == conversation::KIND_DIRECT { ConversationKind::Direct } else { ConversationKind::Group }
}

impl From<&MessageView> for MessageSnapshot {
    fn from(m: &MessageView) -> Self {
        MessageSnapshot {
            id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            sender_id: m.sender.id,
            sender_username: m.sender.username.clone(),
            sender_display_name: m.sender.display_name.clone(),
            sender_is_bot: m.sender.is_bot,
            body: m.body.clone(),
            client_message_id: m.client_message_id.clone(),
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted_at: m.deleted_at,
            attachments: m.attachments.iter().map(Into::into).collect(),
            mentions: m.mentions.iter().map(Into::into).collect(),
        }
    }
}

impl From<MessageSnapshot> for MessageView {
    fn from(m: MessageSnapshot) -> Self {
        MessageView {
            id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            sender: UserRef {
                id: m.sender_id,
                username: m.sender_username,
                display_name: m.sender_display_name,
                is_bot: m.sender_is_bot,
            },
            body: m.body,
            client_message_id: m.client_message_id,
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted_at: m.deleted_at,
            attachments: m.attachments.into_iter().map(Into::into).collect(),
            sender_blocked: false,
            reactions: Vec::new(),
            mentions: m.mentions.into_iter().map(Into::into).collect(),
        }
    }
}

/// A new message in one of your conversations.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct MessageAddedEvent {
    pub message: MessageView,
}

/// A message was edited.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct MessageEditedEvent {
    pub message: MessageView,
}

/// A message was deleted (its body is gone).
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct MessageDeletedEvent {
    pub message: MessageView,
}

/// A participant moved their read marker.
#[derive(Clone, Debug, Hash, async_graphql::SimpleObject)]
pub struct ReadEvent {
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub last_read_seq: i64,
}

/// Membership changed; `participantIds` is the membership after the change.
#[derive(Clone, Debug, Hash, async_graphql::SimpleObject)]
pub struct ConversationChangedEvent {
    pub conversation_id: Uuid,
    pub participant_ids: Vec<Uuid>,
    pub added: Vec<Uuid>,
    pub removed: Vec<Uuid>,
}

/// Someone started or stopped typing. A `typing: true` lasts until `expiresAt` unless
/// refreshed.
#[derive(Clone, Debug, Hash, async_graphql::SimpleObject)]
pub struct TypingEvent {
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub typing: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A user's online status.
#[derive(Clone, Debug, Hash, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "Presence")]
#[oai(rename_all = "camelCase")]
pub struct PresenceView {
    pub user_id: Uuid,
    /// At least one live connection on any node.
    pub online: bool,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// Everything `events` delivers.
#[derive(Clone, Debug, async_graphql::Union)]
#[graphql(name = "ChatEvent")]
pub enum LiveEvent {
    MessageAdded(MessageAddedEvent),
    MessageEdited(MessageEditedEvent),
    MessageDeleted(MessageDeletedEvent),
    Read(ReadEvent),
    ConversationChanged(ConversationChangedEvent),
    Typing(TypingEvent),
    Presence(PresenceView),
    ReactionsUpdated(ReactionsUpdatedEvent),
    PinsChanged(PinsChangedEvent),
}
