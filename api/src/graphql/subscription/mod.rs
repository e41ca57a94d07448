//! Subscription root, merged from one object per area. Each resolver authorizes, then hands
//! back the service's live stream, each item keyed for shared rendering (`graphql::shared`).

mod conversations;
mod presence;

use uuid::Uuid;

use super::shared::{ItemKey, SharedView};
use crate::service::views::{LiveEvent, MessageView, PresenceView, TypingEvent};

/// A message is its content, its sender and its files, the same for every participant:
/// nothing about the reader (whether they read it, reacted to it or sent it) goes on it.
impl SharedView for MessageView {}

/// Each event tells what happened to the message, conversation or user it names, the same
/// for everyone who receives it (a message event carries the shared [`MessageView`]).
impl SharedView for LiveEvent {}

/// Who is typing where, the same for every participant of the conversation.
impl SharedView for TypingEvent {}

/// A user's online status, the same for everyone allowed to see it (who may see it is
/// decided before the item, by the subscription).
impl SharedView for PresenceView {}

/// A message renders the same for everyone until it is edited or deleted, or a file of it
/// gets its thumbnail.
fn message_key(msg: &MessageView, tag: u8) -> ItemKey {
    let files: Vec<(Uuid, bool)> = msg.attachments.iter().map(|a| (a.id, a.thumbnail_url.is_some())).collect();
    ItemKey::of(msg.id, tag, (msg.edited_at, msg.deleted_at, files))
}

/// Typing, read markers, membership and presence hold nothing that depends on the reader:
/// their whole content is their version.
fn typing_key(event: &TypingEvent) -> ItemKey {
    ItemKey::of(event.conversation_id, 6, event)
}

fn presence_key(status: &PresenceView) -> ItemKey {
    ItemKey::of(status.user_id, 7, status)
}

/// Every event renders the same for everyone who asked for the same fields.
fn event_key(event: &LiveEvent) -> ItemKey {
    match event {
        LiveEvent::MessageAdded(e) => message_key(&e.message, 1),
        LiveEvent::MessageEdited(e) => message_key(&e.message, 2),
        LiveEvent::MessageDeleted(e) => message_key(&e.message, 3),
        LiveEvent::Read(e) => ItemKey::of(e.conversation_id, 4, e),
        LiveEvent::ConversationChanged(e) => ItemKey::of(e.conversation_id, 5, e),
        LiveEvent::Typing(e) => typing_key(e),
        LiveEvent::Presence(e) => presence_key(e),
        LiveEvent::ReactionsUpdated(e) => ItemKey::of(e.message_id, 8, e),
        LiveEvent::PinsChanged(e) => ItemKey::of(e.message_id, 9, e),
    }
}

#[derive(async_graphql::MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(conversations::ConversationSubscription, presence::PresenceSubscription);

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
    use chrono::Utc;
    use futures_util::StreamExt;

    use super::*;
    use crate::graphql::shared::{Inject, RenderCache, Rendered};
    use crate::graphql::{AuthState, ClientInfo, SchemaLimits, build_schema};
    use crate::service::Caller;
    use crate::service::views::{
        AttachmentView, ConversationChangedEvent, MentionKind, MentionView, MentionedUserView, MessageAddedEvent,
        MessageDeletedEvent, MessageEditedEvent, PinsChangedEvent, ReactionCountView, ReactionView,
        ReactionsUpdatedEvent, ReactorView, ReadEvent, UserRef,
    };

    fn message() -> MessageView {
        let id = Uuid::now_v7();
        MessageView {
            id,
            conversation_id: Uuid::now_v7(),
            seq: 7,
            sender: UserRef {
                id: Uuid::now_v7(),
                username: "sam".into(),
                display_name: Some("Sam".into()),
                is_bot: false,
            },
            body: Some("hello".into()),
            client_message_id: Some("c-1".into()),
            created_at: Utc::now(),
            edited_at: Some(Utc::now()),
            deleted_at: None,
            attachments: vec![AttachmentView {
                id,
                name: "a.png".into(),
                content_type: "image/png".into(),
                size: 3,
                width: Some(1),
                height: Some(1),
                sha256: "00".into(),
                url: format!("/api/v1/files/{id}"),
                thumbnail_url: Some(format!("/api/v1/files/{id}/thumbnail")),
            }],
            sender_blocked: false,
            reactions: vec![ReactionView {
                emoji: "👍".into(),
                count: 2,
                reacted_by_me: false,
                users: vec![ReactorView { id, username: "sam".into() }],
            }],
            mentions: vec![MentionView {
                kind: MentionKind::User,
                user: Some(MentionedUserView { id, username: "sam".into() }),
                start: 0,
                end: 4,
            }],
        }
    }

    fn typing() -> TypingEvent {
        let at = Some(Utc::now());
        TypingEvent {
            conversation_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            username: "sam".into(),
            typing: true,
            expires_at: at,
        }
    }

    fn presence() -> PresenceView {
        PresenceView { user_id: Uuid::now_v7(), online: true, last_seen_at: Some(Utc::now()) }
    }

    /// An item's key, and how to hand it to a render.
    type Item = (ItemKey, Box<dyn Fn(ItemKey) -> Inject>);

    /// One item of each kind a shared subscription field delivers, keyed as its resolver keys it.
    fn items(field: &str) -> Vec<Item> {
        fn each<T: SharedView + Clone + Send + 'static>(values: Vec<T>, key: fn(&T) -> ItemKey) -> Vec<Item> {
            let inject =
                |value: T| -> Box<dyn Fn(ItemKey) -> Inject> { Box::new(move |k| Inject::item(k, value.clone())) };
            values.into_iter().map(|v| (key(&v), inject(v))).collect()
        }
        let (c, u) = (Uuid::now_v7(), Uuid::now_v7());
        match field {
            "events" | "conversationEvents" => each(
                vec![
                    LiveEvent::MessageAdded(MessageAddedEvent { message: message() }),
                    LiveEvent::MessageEdited(MessageEditedEvent { message: message() }),
                    LiveEvent::MessageDeleted(MessageDeletedEvent { message: message() }),
                    LiveEvent::Read(ReadEvent { conversation_id: c, user_id: u, last_read_seq: 3 }),
                    LiveEvent::ConversationChanged(ConversationChangedEvent {
                        conversation_id: c,
                        participant_ids: vec![u],
                        added: vec![u],
                        removed: Vec::new(),
                    }),
                    LiveEvent::Typing(typing()),
                    LiveEvent::Presence(presence()),
                    LiveEvent::PinsChanged(PinsChangedEvent {
                        conversation_id: c,
                        message_id: u,
                        seq: 3,
                        user_id: u,
                        username: "sam".into(),
                        pinned: true,
                    }),
                    LiveEvent::ReactionsUpdated(ReactionsUpdatedEvent {
                        conversation_id: c,
                        message_id: u,
                        seq: 3,
                        user_id: u,
                        username: "sam".into(),
                        emoji: "👍".into(),
                        added: true,
                        reactions: vec![ReactionCountView {
                            emoji: "👍".into(),
                            count: 1,
                            users: vec![ReactorView { id: u, username: "sam".into() }],
                        }],
                    }),
                ],
                event_key,
            ),
            "messageAdded" => each(vec![message()], |m| message_key(m, 0)),
            "typing" => each(vec![typing()], typing_key),
            "presence" => each(vec![presence()], presence_key),
            other => panic!("no test items for the subscription field {other}: add some"),
        }
    }

    fn named(ty: &Type) -> &str {
        match &ty.base {
            BaseType::Named(name) => name.as_str(),
            BaseType::List(inner) => named(inner),
        }
    }

    /// A selection of every field of `type_name`, all the way down.
    fn everything(types: &HashMap<String, TypeKind>, type_name: &str, depth: usize) -> String {
        assert!(depth < 8, "{type_name} nests too deep for this test");
        match types.get(type_name) {
            Some(TypeKind::Object(object)) => {
                let fields: Vec<String> = object
                    .fields
                    .iter()
                    .map(|f| format!("{} {}", f.node.name.node, everything(types, named(&f.node.ty.node), depth + 1)))
                    .collect();
                format!("{{ __typename {} }}", fields.join(" "))
            }
            Some(TypeKind::Union(union)) => {
                let members: Vec<String> = union
                    .members
                    .iter()
                    .map(|m| format!("... on {} {}", m.node, everything(types, m.node.as_str(), depth + 1)))
                    .collect();
                format!("{{ __typename {} }}", members.join(" "))
            }
            _ => String::new(),
        }
    }

    fn reader(name: &str, ip: [u8; 4]) -> (Caller, ClientInfo) {
        let id = Uuid::now_v7();
        let caller = Caller {
            user_id: id,
            username: name.into(),
            display_name: None,
            session_id: id,
            is_admin: name == "ann",
            app: None,
        };
        (caller, ClientInfo { ip: Some(std::net::IpAddr::from(ip)) })
    }

    /// Every field of every shared subscription item, rendered through the cache for two
    /// different readers: no field may ask who is reading (the shared path refuses it) or
    /// come out different for them. A field like "did I react" on `Message` fails here.
    #[tokio::test]
    async fn every_shared_item_renders_the_same_for_every_reader() {
        let schema = build_schema(None, SchemaLimits { max_depth: 64, max_complexity: 100_000 });
        let doc = async_graphql::parser::parse_schema(schema.sdl()).expect("the SDL parses");
        let types: HashMap<String, TypeKind> = doc
            .definitions
            .into_iter()
            .filter_map(|d| match d {
                TypeSystemDefinition::Type(t) => Some((t.node.name.node.to_string(), t.node.kind)),
                _ => None,
            })
            .collect();
        let Some(TypeKind::Object(root)) = types.get("Subscription") else { panic!("no Subscription type") };
        let nil = Uuid::nil();
        for field in &root.fields {
            let name = field.node.name.node.as_str();
            let args = match name {
                "messageAdded" | "typing" | "conversationEvents" => format!(r#"(conversationId: "{nil}")"#),
                "presence" => r#"(userIds: [])"#.to_owned(),
                _ => String::new(),
            };
            let query =
                format!("subscription {{ {name}{args} {} }}", everything(&types, named(&field.node.ty.node), 0));
            for (key, inject) in items(name) {
                let mut seen = Vec::new();
                for (caller, client) in [reader("ann", [10, 0, 0, 1]), reader("bob", [10, 0, 0, 2])] {
                    // A shape of its own per reader: each renders the item instead of finding it cached.
                    let shape = RenderCache::global().shape(&[&Uuid::now_v7().to_string()]);
                    let rendered = Rendered::default();
                    let request = async_graphql::Request::new(query.clone())
                        .data(AuthState::Authenticated(caller))
                        .data(client)
                        .data(shape)
                        .data(rendered.clone())
                        .data(inject(key));
                    let response = schema.execute_stream(request).next().await.expect("one response");
                    assert!(response.errors.is_empty(), "{name}: {:?}", response.errors);
                    seen.push(rendered.take().expect("rendered through the cache"));
                }
                assert_eq!(seen[0], seen[1], "{name} renders differently for two readers");
            }
        }
    }
}
