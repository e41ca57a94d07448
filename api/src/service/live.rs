//! Live delivery: the streams behind GraphQL subscriptions, typing, presence and the
//! connection lifecycle. Every stream authorizes at subscribe time and follows membership
//! changes, so a user only receives events of conversations they are in when they happen.
//!
//! Message order and completeness per conversation come from [`SeqCursor`]: resume replays
//! from storage after the given seq, live events already replayed are dropped, and a seq
//! jump is filled from storage. A subscriber that lags behind the bus loses its place and
//! gets an error telling it to resume (counted in `syncchat_dropped_events_total`).

mod events;

use super::scopes::Scope;
use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use syncchat_realtime::{Event, EventKind, PresenceStore, SeqCursor, Subscription, Topic};
use tokio_stream::StreamMap;
use tracing::instrument;
use uuid::Uuid;

use self::events::{EventsFilter, Step, leaves, start_at};
use super::limits::{LimitSettings, RateLimit};
use super::views::{
    ConversationChangedEvent, LiveEvent, MessageAddedEvent, MessageDeletedEvent, MessageEditedEvent, MessageView,
    PinsChangedEvent, PresenceView, ReactionCountView, ReactionsUpdatedEvent, ReactorView, ReadEvent, TypingEvent,
};
use super::{Accounts, Caller, Context, Conversations, Messages};
use crate::config::PresenceVisibility;
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::{conversation, participant, user};

/// How long a "typing" lasts without a refresh.
pub const TYPING_TTL: Duration = Duration::from_secs(5);
/// Most users one presence query or subscription may name.
pub const MAX_PRESENCE_USERS: usize = 200;
/// How long a new subscription waits for its topics to be live across nodes before it reads
/// its starting point. Well under a millisecond while Redis is up; the bound matters only
/// while it is not, and then the healer brings the subscription up to date once it is back.
const READY_WAIT: Duration = Duration::from_secs(2);

pub type LiveStream<T> = Pin<Box<dyn Stream<Item = Result<T, AppError>> + Send>>;

/// A resume point: the last seq the client has of a conversation.
#[derive(Clone, Copy, Debug)]
pub struct ResumePoint {
    pub conversation_id: Uuid,
    pub seq: i64,
}

type TopicStream = Pin<Box<dyn Stream<Item = Result<Arc<Event>, u64>> + Send>>;

fn topic_stream(sub: Subscription) -> TopicStream {
    Box::pin(futures_util::stream::unfold(sub, |mut sub| async move { sub.recv().await.map(|item| (item, sub)) }))
}

fn lagged(missed: u64) -> AppError {
    m::dropped_events("lagged", missed);
    AppError::Unavailable(format!(
        "this subscription fell {missed} events behind and was dropped: subscribe again with your last seq to resume"
    ))
}

/// Live delivery: subscriptions, presence, typing, this node's connection registry, and the
/// healer (`heal.rs`).
pub struct Live {
    // The healer (`heal.rs`) works with these too.
    pub(super) ctx: Context,
    presence: Arc<dyn PresenceStore>,
    pub(super) auth: Arc<Accounts>,
    conversations: Arc<Conversations>,
    pub(super) messages: Arc<Messages>,
    pub(super) connections: Connections,
    typing_limit: RateLimit<Uuid>,
    presence_visibility: PresenceVisibility,
}

impl Live {
    pub fn new(
        ctx: Context,
        presence: Arc<dyn PresenceStore>,
        auth: Arc<Accounts>,
        conversations: Arc<Conversations>,
        messages: Arc<Messages>,
        limits: &LimitSettings,
    ) -> Live {
        let typing_limit = RateLimit::per_second("set_typing", limits.typing_per_sec, limits.typing_per_sec * 3);
        Live {
            ctx,
            presence,
            auth,
            conversations,
            messages,
            connections: Connections::default(),
            typing_limit,
            presence_visibility: limits.presence_visibility,
        }
    }

    /// Who is online: in this process, or across the cluster through Redis.
    pub fn presence_store(&self) -> &Arc<dyn PresenceStore> {
        &self.presence
    }

    /// This node's live connections.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    pub(crate) fn shrink_limits(&self) {
        self.typing_limit.shrink();
    }

    /// New messages of one conversation, resuming after `after_seq` when given.
    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %conversation_id))]
    pub async fn subscribe_messages(
        self: &Arc<Self>,
        caller: &Caller,
        conversation_id: Uuid,
        after_seq: Option<i64>,
    ) -> AppResult<LiveStream<MessageView>> {
        caller.require(Scope::MessagesRead)?;
        self.live_participation(caller, conversation_id).await?;
        // Subscribe before replaying, so nothing committed in between is missed.
        let mut live = topic_stream(self.ctx.bus.subscribe(Topic::Conversation(conversation_id)));
        let service = Arc::clone(self);
        let me = caller.user_id;
        let resume: Vec<ResumePoint> = after_seq.map(|seq| ResumePoint { conversation_id, seq }).into_iter().collect();
        Ok(Box::pin(async_stream::stream! {
            // Live across nodes before reading the starting point (see `EventBus::ready`).
            service.ctx.bus.ready(Topic::Conversation(conversation_id), READY_WAIT).await;
            let mut cursor = SeqCursor::default();
            // Boxed: keeps the stream's state small while it waits for events (per-subscription
            // memory; issue #14 item 7 turns these into a lint).
            let replay = match Box::pin(start_at(&service, &mut cursor, [conversation_id], resume)).await {
                Ok(replay) => replay,
                Err(e) => { yield Err(e); return; }
            };
            for conversation in replay {
                // Boxed: as above.
                match Box::pin(cursor.replay(conversation, &*service.messages)).await {
                    Ok(replayed) => for msg in replayed { yield Ok(MessageView::from(msg)); },
                    Err(e) => { yield Err(AppError::Internal(anyhow::anyhow!(e))); return; }
                }
            }
            while let Some(item) = live.next().await {
                let event = match item {
                    Ok(event) => event,
                    Err(missed) => { yield Err(lagged(missed)); return; }
                };
                if let EventKind::MessageAdded { message } = &event.kind {
                    match cursor.admit(message.clone(), &*service.messages).await {
                        Ok(batch) => for msg in batch {
                            m::delivered(event.committed_at);
                            yield Ok(MessageView::from(msg));
                        },
                        Err(e) => { yield Err(AppError::Internal(anyhow::anyhow!(e))); return; }
                    }
                } else if leaves(me, &event.kind) {
                    return;
                }
            }
        }))
    }

    /// Everything for the signed-in user: messages (added, edited, deleted), typing, read
    /// markers and membership changes of their conversations, and presence of the people
    /// they have direct conversations with. `after` resumes conversations by seq.
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn subscribe_events(
        self: &Arc<Self>,
        caller: &Caller,
        after: Vec<ResumePoint>,
    ) -> AppResult<LiveStream<LiveEvent>> {
        self.events_of(caller, None, after).await
    }

    /// The same events for one conversation only (no presence, no other conversation), from
    /// `after_seq` when given; it ends when the caller leaves the conversation.
    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %conversation_id))]
    pub async fn subscribe_conversation_events(
        self: &Arc<Self>,
        caller: &Caller,
        conversation_id: Uuid,
        after_seq: Option<i64>,
    ) -> AppResult<LiveStream<LiveEvent>> {
        let after = after_seq.map(|seq| ResumePoint { conversation_id, seq }).into_iter().collect();
        self.events_of(caller, Some(conversation_id), after).await
    }

    async fn events_of(
        self: &Arc<Self>,
        caller: &Caller,
        only: Option<Uuid>,
        after: Vec<ResumePoint>,
    ) -> AppResult<LiveStream<LiveEvent>> {
        caller.require(Scope::MessagesRead)?;
        let me = caller.user_id;
        let memberships = match only {
            Some(conversation_id) => {
                self.live_participation(caller, conversation_id).await?;
                vec![conversation_id]
            }
            None => participant::conversation_ids_of(&self.ctx.db, me).await?,
        };
        let users = self.conversations.users();
        let mut filter = EventsFilter::new(me, memberships)
            .hiding_typing_of(users.blockers_of(me).await?)
            .hiding_messages_of(users.hidden_senders(me).await?);
        if only.is_some() {
            filter = filter.fixed();
        }
        let contacts =
            if only.is_some() { Vec::new() } else { self.direct_contacts(me, filter.following().collect()).await? };

        let mut topics: StreamMap<Topic, TopicStream> = StreamMap::new();
        topics.insert(Topic::User(me), topic_stream(self.ctx.bus.subscribe(Topic::User(me))));
        for c in filter.following() {
            topics.insert(Topic::Conversation(c), topic_stream(self.ctx.bus.subscribe(Topic::Conversation(c))));
        }
        for contact in contacts {
            topics.insert(Topic::Presence(contact), topic_stream(self.ctx.bus.subscribe(Topic::Presence(contact))));
        }
        let service = Arc::clone(self);
        Ok(Box::pin(async_stream::stream! {
            let watched: Vec<Topic> = topics.keys().copied().collect();
            for topic in watched {
                service.ctx.bus.ready(topic, READY_WAIT).await;
            }
            let mut cursor = SeqCursor::default();
            let conversations: Vec<Uuid> = filter.following().collect();
            // Boxed: keeps the stream's state small while it waits for events (per-subscription
            // memory; issue #14 item 7 turns these into a lint).
            let replay = match Box::pin(start_at(&service, &mut cursor, conversations, after)).await {
                Ok(replay) => replay,
                Err(e) => { yield Err(e); return; }
            };
            for conversation in replay {
                // Boxed: as above.
                match Box::pin(cursor.replay(conversation, &*service.messages)).await {
                    Ok(replayed) => for msg in replayed.into_iter().filter(|m| !filter.hides(m.sender_id)) {
                        yield Ok(LiveEvent::MessageAdded(MessageAddedEvent { message: msg.into() }));
                    },
                    Err(e) => { yield Err(AppError::Internal(anyhow::anyhow!(e))); return; }
                }
            }
            while let Some((_, item)) = topics.next().await {
                let event = match item {
                    Ok(event) => event,
                    Err(missed) => { yield Err(lagged(missed)); return; }
                };
                for step in filter.on_event(&event) {
                    match step {
                        Step::Admit(message) => match cursor.admit(message.clone(), &*service.messages).await {
                            Ok(batch) => for msg in batch {
                                if filter.hides(msg.sender_id) {
                                    continue;
                                }
                                m::delivered(event.committed_at);
                                yield Ok(LiveEvent::MessageAdded(MessageAddedEvent { message: msg.into() }));
                            },
                            Err(e) => { yield Err(AppError::Internal(anyhow::anyhow!(e))); return; }
                        },
                        Step::Follow(id) => {
                            topics.insert(Topic::Conversation(id), topic_stream(service.ctx.bus.subscribe(Topic::Conversation(id))));
                            service.ctx.bus.ready(Topic::Conversation(id), READY_WAIT).await;
                            // Boxed: as above.
                            if let Err(e) = Box::pin(start_at(&service, &mut cursor, [id], Vec::new())).await {
                                yield Err(e);
                                return;
                            }
                        }
                        Step::Unfollow(id) => {
                            topics.remove(&Topic::Conversation(id));
                            if only == Some(id) {
                                return;
                            }
                        }
                        Step::Deliver(live) => yield Ok(live),
                    }
                }
            }
        }))
    }

    /// Who is typing in a conversation; a `typing: false` follows by itself when someone
    /// stops refreshing for [`TYPING_TTL`].
    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %conversation_id))]
    pub async fn subscribe_typing(&self, caller: &Caller, conversation_id: Uuid) -> AppResult<LiveStream<TypingEvent>> {
        caller.require(Scope::MessagesRead)?;
        self.live_participation(caller, conversation_id).await?;
        let mut live = topic_stream(self.ctx.bus.subscribe(Topic::Conversation(conversation_id)));
        let me = caller.user_id;
        // Whoever blocked the caller types unseen by them (as of the subscription's start).
        let blockers = self.conversations.users().blockers_of(me).await?;
        Ok(Box::pin(async_stream::stream! {
            let mut typing: HashMap<Uuid, (TypingEvent, tokio::time::Instant)> = HashMap::new();
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    item = live.next() => {
                        let Some(item) = item else { return };
                        let event = match item { Ok(e) => e, Err(missed) => { yield Err(lagged(missed)); return; } };
                        match &event.kind {
                            EventKind::Typing { user_id, .. } if *user_id == me || blockers.contains(user_id) => {}
                            EventKind::Typing { conversation_id, user_id, username, typing: is_typing } => {
                                let ev = TypingEvent::new(*conversation_id, *user_id, username, *is_typing, event.committed_at);
                                if *is_typing {
                                    typing.insert(*user_id, (ev.clone(), tokio::time::Instant::now() + TYPING_TTL));
                                } else {
                                    typing.remove(user_id);
                                }
                                yield Ok(ev);
                            }
                            kind if leaves(me, kind) => return,
                            _ => {}
                        }
                    }
                    _ = tick.tick() => {
                        let now = tokio::time::Instant::now();
                        let expired: Vec<Uuid> = typing.iter().filter(|(_, (_, at))| *at <= now).map(|(u, _)| *u).collect();
                        for user in expired {
                            if let Some((mut ev, _)) = typing.remove(&user) {
                                ev.typing = false;
                                ev.expires_at = None;
                                yield Ok(ev);
                            }
                        }
                    }
                }
            }
        }))
    }

    /// The last committed seq of each conversation.
    pub(crate) async fn last_seqs(&self, ids: &[Uuid]) -> AppResult<Vec<(Uuid, i64)>> {
        Ok(conversation::last_seqs(&self.ctx.db, ids).await?)
    }

    /// Online status now, then every change, for up to [`MAX_PRESENCE_USERS`] users (those the
    /// caller may see: see [`Live::presence`]).
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn subscribe_presence(
        &self,
        caller: &Caller,
        user_ids: Vec<Uuid>,
    ) -> AppResult<LiveStream<PresenceView>> {
        caller.require(Scope::UsersRead)?;
        let ids = presence_ids(user_ids)?;
        let mut topics: StreamMap<Topic, TopicStream> = StreamMap::new();
        for id in &ids {
            topics.insert(Topic::Presence(*id), topic_stream(self.ctx.bus.subscribe(Topic::Presence(*id))));
        }
        // Subscribed first, so no change between the read and the subscription is missed.
        // Users the caller may not see stay subscribed but silent: the stream behaves as it
        // does for an id that does not exist.
        let initial = self.presence_of(caller, ids).await?;
        let visible: HashSet<Uuid> = initial.iter().map(|p| p.user_id).collect();
        Ok(Box::pin(async_stream::stream! {
            for p in initial { yield Ok(p); }
            while let Some((_, item)) = topics.next().await {
                match item {
                    Ok(event) => if let EventKind::Presence { user_id, online, last_seen_at } = &event.kind
                        && visible.contains(user_id)
                    {
                        yield Ok(PresenceView { user_id: *user_id, online: *online, last_seen_at: *last_seen_at });
                    },
                    Err(missed) => { yield Err(lagged(missed)); return; }
                }
            }
        }))
    }

    /// Whether each user is online, and when they were last seen: for the caller themself
    /// and, with `SYNCCHAT_PRESENCE_VISIBILITY=shared` (the default), the people they share a
    /// conversation with. Anyone else is left out of the answer, as an unknown id is.
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn presence(&self, caller: &Caller, user_ids: Vec<Uuid>) -> AppResult<Vec<PresenceView>> {
        caller.require(Scope::UsersRead)?;
        self.presence_of(caller, presence_ids(user_ids)?).await
    }

    async fn presence_of(&self, caller: &Caller, ids: Vec<Uuid>) -> AppResult<Vec<PresenceView>> {
        let shared_only = self.presence_visibility == PresenceVisibility::Shared;
        let visible = user::presence_visible(&self.ctx.db, ids.clone(), caller.user_id, shared_only).await?;
        // Whoever blocked the caller is not seen by them.
        let blockers = self.conversations.users().blockers_of(caller.user_id).await?;
        let visible: Vec<user::Model> = visible.into_iter().filter(|u| !blockers.contains(&u.id)).collect();
        let seen: HashMap<Uuid, Option<DateTime<Utc>>> = visible.into_iter().map(|u| (u.id, u.last_seen_at)).collect();
        let ids: Vec<Uuid> = ids.into_iter().filter(|id| seen.contains_key(id)).collect();
        let online = self.presence.online(&ids).await;
        Ok(ids
            .into_iter()
            .zip(online)
            .map(|(id, online)| PresenceView { user_id: id, online, last_seen_at: seen.get(&id).copied().flatten() })
            .collect())
    }

    /// Tells the other participants the caller is (or stopped) typing.
    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %conversation_id))]
    pub async fn set_typing(&self, caller: &Caller, conversation_id: Uuid, typing: bool) -> AppResult<bool> {
        caller.require(Scope::MessagesWrite)?;
        self.conversations.require_member(caller, conversation_id).await?;
        self.typing_limit.check(&caller.user_id)?;
        let kind =
            EventKind::Typing { conversation_id, user_id: caller.user_id, username: caller.username.clone(), typing };
        self.ctx.publish(Topic::Conversation(conversation_id), kind).await;
        Ok(true)
    }

    /// A live connection of `caller` opened: registered (so signing out, a revoked session or
    /// a disabled account closes it) and counted in presence, publishing "online" when it is
    /// their first. Refused with `RATE_LIMITED` when the user has `max_per_user` live
    /// connections on this node already, and as [`Accounts::authenticate`] refuses when the
    /// session ended or the account was disabled since the caller was authenticated; either
    /// way the caller must still call [`Live::connection_closed`].
    #[instrument(skip_all, fields(user.id = %caller.user_id, connection.id = %connection))]
    pub async fn connection_opened(
        &self,
        caller: &Caller,
        connection: Uuid,
        max_per_user: usize,
    ) -> AppResult<Arc<Kill>> {
        let user_id = caller.user_id;
        let (kill, here) = self.connections.register(user_id, caller.session_id, connection);
        m::ws_connection(1.0);
        // Presence must not hold a handshake up: Redis may be down (the node writes its
        // connections again when it is back).
        let count =
            tokio::time::timeout(PRESENCE_WAIT, self.presence.connect(user_id, connection)).await.ok().flatten();
        if count == Some(1) {
            let kind = EventKind::Presence { user_id, online: true, last_seen_at: None };
            self.ctx.publish(Topic::Presence(user_id), kind).await;
        }
        self.auth.touch_last_seen(user_id).await;
        if let Ok(n) = tokio::time::timeout(PRESENCE_WAIT, self.presence.online_count()).await {
            m::online_users(n);
        }
        // Counted on this node: a crashed node's connections stay in presence for a while,
        // and must not lock their users out of reconnecting elsewhere.
        if here > max_per_user {
            return Err(AppError::RateLimited { retry_after: Duration::from_secs(30) });
        }
        // A session ended or an account disabled between the caller's authentication and the
        // registration would have missed its close order: look again (in storage, not the
        // session cache) now that the order would reach this connection.
        self.auth.session_caller(user_id, caller.session_id).await?;
        Ok(kill)
    }

    /// A live connection closed; when it was the last one, the user is offline and their
    /// `last_seen_at` is stored.
    #[instrument(skip_all, fields(user.id = %user_id, connection.id = %connection))]
    pub async fn connection_closed(&self, user_id: Uuid, connection: Uuid) {
        self.connections.unregister(user_id, connection);
        m::ws_connection(-1.0);
        let offline = tokio::time::timeout(PRESENCE_WAIT, self.presence.disconnect(user_id, connection)).await;
        if offline == Ok(true) {
            self.user_went_offline(user_id).await;
        }
        if let Ok(n) = tokio::time::timeout(PRESENCE_WAIT, self.presence.online_count()).await {
            m::online_users(n);
        }
    }

    /// Whether an open connection may still act for its caller: the session is live and the
    /// account enabled (a checked session is trusted for a few seconds, as for requests).
    pub async fn connection_still_allowed(&self, caller: &Caller) -> AppResult<()> {
        self.auth.live_session(caller.user_id, caller.session_id).await.map(|_| ())
    }

    /// Stores `last_seen_at` and tells watchers the user is offline.
    #[instrument(skip_all, fields(user.id = %user_id))]
    pub async fn user_went_offline(&self, user_id: Uuid) {
        let at = self.auth.touch_last_seen(user_id).await;
        let kind = EventKind::Presence { user_id, online: false, last_seen_at: Some(at) };
        self.ctx.publish(Topic::Presence(user_id), kind).await;
    }

    /// Participation for a subscription: a non-participant is `FORBIDDEN` here (the
    /// subscription is refused before any event), and still learns nothing more.
    async fn live_participation(&self, caller: &Caller, conversation_id: Uuid) -> AppResult<()> {
        self.conversations.require_member(caller, conversation_id).await.map_err(|e| match e {
            AppError::NotFound(_) => AppError::Forbidden("not a participant of this conversation".into()),
            other => other,
        })
    }

    /// The other participants of the user's direct conversations, among `mine`.
    async fn direct_contacts(&self, me: Uuid, mine: Vec<Uuid>) -> AppResult<Vec<Uuid>> {
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let direct = conversation::direct_among(&self.ctx.db, mine).await?;
        if direct.is_empty() {
            return Ok(Vec::new());
        }
        Ok(participant::others_in(&self.ctx.db, direct, me).await?)
    }
}

fn presence_ids(user_ids: Vec<Uuid>) -> AppResult<Vec<Uuid>> {
    let mut seen = HashSet::new();
    let ids: Vec<Uuid> = user_ids.into_iter().filter(|id| seen.insert(*id)).collect();
    if ids.is_empty() || ids.len() > MAX_PRESENCE_USERS {
        return Err(AppError::bad_input("userIds", format!("give 1 to {MAX_PRESENCE_USERS} user ids")));
    }
    Ok(ids)
}

impl LiveEvent {
    /// The subscriber's view of an event; `None` for cluster-internal ones.
    fn from_kind(kind: &EventKind, at: DateTime<Utc>) -> Option<LiveEvent> {
        Some(match kind {
            EventKind::MessageAdded { message } => {
                LiveEvent::MessageAdded(MessageAddedEvent { message: message.clone().into() })
            }
            EventKind::MessageEdited { message } => {
                LiveEvent::MessageEdited(MessageEditedEvent { message: message.clone().into() })
            }
            EventKind::MessageDeleted { message } => {
                LiveEvent::MessageDeleted(MessageDeletedEvent { message: message.clone().into() })
            }
            EventKind::Read { conversation_id, user_id, last_read_seq } => LiveEvent::Read(ReadEvent {
                conversation_id: *conversation_id,
                user_id: *user_id,
                last_read_seq: *last_read_seq,
            }),
            EventKind::ConversationChanged { conversation_id, participant_ids, added, removed } => {
                LiveEvent::ConversationChanged(ConversationChangedEvent {
                    conversation_id: *conversation_id,
                    participant_ids: participant_ids.clone(),
                    added: added.clone(),
                    removed: removed.clone(),
                })
            }
            EventKind::Typing { conversation_id, user_id, username, typing } => {
                LiveEvent::Typing(TypingEvent::new(*conversation_id, *user_id, username, *typing, at))
            }
            EventKind::Presence { user_id, online, last_seen_at } => {
                LiveEvent::Presence(PresenceView { user_id: *user_id, online: *online, last_seen_at: *last_seen_at })
            }
            EventKind::ReactionsUpdated {
                conversation_id,
                message_id,
                seq,
                user_id,
                username,
                emoji,
                added,
                reactions,
            } => LiveEvent::ReactionsUpdated(ReactionsUpdatedEvent {
                conversation_id: *conversation_id,
                message_id: *message_id,
                seq: *seq,
                user_id: *user_id,
                username: username.clone(),
                emoji: emoji.clone(),
                added: *added,
                reactions: reactions
                    .iter()
                    .map(|r| ReactionCountView {
                        emoji: r.emoji.clone(),
                        count: r.count,
                        users: r.users.iter().map(|u| ReactorView { id: u.id, username: u.username.clone() }).collect(),
                    })
                    .collect(),
            }),
            EventKind::PinsChanged { conversation_id, message_id, seq, user_id, username, pinned } => {
                LiveEvent::PinsChanged(PinsChangedEvent {
                    conversation_id: *conversation_id,
                    message_id: *message_id,
                    seq: *seq,
                    user_id: *user_id,
                    username: username.clone(),
                    pinned: *pinned,
                })
            }
            EventKind::AccountDisabled { .. } | EventKind::SessionRevoked { .. } => return None,
        })
    }
}

impl TypingEvent {
    fn new(conversation_id: Uuid, user_id: Uuid, username: &str, typing: bool, at: DateTime<Utc>) -> TypingEvent {
        TypingEvent {
            conversation_id,
            user_id,
            username: username.to_owned(),
            typing,
            expires_at: typing.then(|| at + chrono::Duration::from_std(TYPING_TTL).unwrap_or_default()),
        }
    }
}

/// How long presence bookkeeping may hold a connection's opening or closing.
const PRESENCE_WAIT: Duration = Duration::from_secs(1);

/// Why a live connection is being closed from outside its own task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Its session ended (signed out, a reused refresh token revoked it).
    SessionEnded,
    /// An admin disabled the account.
    AccountDisabled,
}

/// The switch that closes one live connection, and why.
#[derive(Default)]
pub struct Kill {
    notify: tokio::sync::Notify,
    why: std::sync::Mutex<Option<Ending>>,
}

impl Kill {
    fn fire(&self, why: Ending) {
        let mut slot = self.why.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A disabled account outranks an ended session.
        if *slot != Some(Ending::AccountDisabled) {
            *slot = Some(why);
        }
        // A stored permit: the connection closes even if it is not waiting right now.
        self.notify.notify_one();
    }

    /// Resolves once the connection must close.
    pub async fn fired(&self) -> Ending {
        self.notify.notified().await;
        self.why.lock().unwrap_or_else(std::sync::PoisonError::into_inner).unwrap_or(Ending::SessionEnded)
    }
}

struct Registered {
    session: Uuid,
    kill: Arc<Kill>,
}

/// This node's live connections by user, each with its session and the switch that closes
/// it: how signing out or a disabled account disconnects everywhere (every node gets the
/// order on the control topic, or finds it in storage when that was lost, and closes its own).
#[derive(Default)]
pub struct Connections {
    by_user: std::sync::Mutex<HashMap<Uuid, HashMap<Uuid, Registered>>>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, HashMap<Uuid, Registered>>> {
        self.by_user.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a connection; its switch, and how many connections the user has here now.
    fn register(&self, user: Uuid, session: Uuid, connection: Uuid) -> (Arc<Kill>, usize) {
        let kill = Arc::new(Kill::default());
        let mut by_user = self.lock();
        let conns = by_user.entry(user).or_default();
        conns.insert(connection, Registered { session, kill: kill.clone() });
        (kill, conns.len())
    }

    fn unregister(&self, user: Uuid, connection: Uuid) {
        let mut by_user = self.lock();
        if let Some(conns) = by_user.get_mut(&user) {
            conns.remove(&connection);
            if conns.is_empty() {
                by_user.remove(&user);
            }
        }
    }

    /// Closes every connection `user` has on this node; returns how many.
    pub fn close_user(&self, user: Uuid) -> usize {
        let by_user = self.lock();
        let Some(conns) = by_user.get(&user) else { return 0 };
        for registered in conns.values() {
            registered.kill.fire(Ending::AccountDisabled);
        }
        conns.len()
    }

    /// Closes every connection of `session` on this node; returns how many.
    pub fn close_session(&self, session: Uuid) -> usize {
        let by_user = self.lock();
        let mut closed = 0;
        for registered in by_user.values().flat_map(HashMap::values).filter(|r| r.session == session) {
            registered.kill.fire(Ending::SessionEnded);
            closed += 1;
        }
        closed
    }

    /// The (user, session) of every live connection on this node, once each.
    pub(crate) fn sessions(&self) -> Vec<(Uuid, Uuid)> {
        let by_user = self.lock();
        let mut out: Vec<(Uuid, Uuid)> =
            by_user.iter().flat_map(|(u, conns)| conns.values().map(move |r| (*u, r.session))).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl Live {
    /// Follows the cluster's control topic: closes this node's connections of accounts an
    /// admin disabled (on any node, close 4403) and of ended sessions (4401), and forgets
    /// them in the session cache. Runs under `background` until the app stops.
    pub fn spawn_control_listener(self: &Arc<Self>, background: &crate::background::Background) {
        let service = Arc::clone(self);
        let mut control = self.ctx.bus.subscribe(Topic::Control);
        let stop = background.token();
        background.spawn("control_listener", async move {
            while let Some(event) = tokio::select! {
                () = stop.cancelled() => None,
                event = control.recv() => event,
            } {
                let Ok(event) = event else { continue };
                match event.kind {
                    EventKind::AccountDisabled { user_id } => {
                        service.auth.sessions().forget_user(user_id);
                        let closed = service.connections.close_user(user_id);
                        tracing::info!(user.id = %user_id, closed, "closed a disabled account's connections");
                    }
                    EventKind::SessionRevoked { session_id } => {
                        service.auth.sessions().forget_session(session_id);
                        let closed = service.connections.close_session(session_id);
                        if closed > 0 {
                            tracing::info!(session.id = %session_id, closed, "closed an ended session's connections");
                        }
                    }
                    _ => {}
                }
            }
        });
    }
}
