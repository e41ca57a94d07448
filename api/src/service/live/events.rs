//! Which bus events reach one `events` subscriber, and which conversations it follows as its
//! memberships change; and where a subscription starts in each conversation. Plain state and
//! decisions, no I/O: the subscription's stream subscribes to topics and reads storage as
//! these ask it to.

use std::collections::HashSet;

use syncchat_realtime::{Event, EventKind, MessageSnapshot, SeqCursor, Topic};
use uuid::Uuid;

use super::{Live, ResumePoint};
use crate::error::AppResult;
use crate::service::views::LiveEvent;

/// The conversations one subscriber follows, and what becomes of each event it is sent.
#[derive(Debug)]
pub(crate) struct EventsFilter {
    me: Uuid,
    following: HashSet<Uuid>,
    /// Users whose typing the subscriber does not get (they blocked the subscriber).
    typing_hidden: HashSet<Uuid>,
    /// Senders whose messages the subscriber hides (blocked, with `blockedMessages: HIDE`).
    hidden: HashSet<Uuid>,
    /// One conversation's subscription: joining another one does not start following it.
    fixed: bool,
}

/// What the subscription does for one event, in order.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "a step lives only while its event is handled; boxing costs more")]
pub(crate) enum Step<'e> {
    /// Send this to the subscriber.
    Deliver(LiveEvent),
    /// A new message of a followed conversation: through the seq cursor (which may fill a
    /// gap from storage first), then to the subscriber.
    Admit(&'e MessageSnapshot),
    /// The subscriber joined this conversation: follow its topic from what is committed now.
    Follow(Uuid),
    /// The subscriber left this conversation: stop following its topic.
    Unfollow(Uuid),
}

impl EventsFilter {
    /// A subscriber `me` who is in `conversations`.
    pub(crate) fn new(me: Uuid, conversations: impl IntoIterator<Item = Uuid>) -> EventsFilter {
        EventsFilter {
            me,
            following: conversations.into_iter().collect(),
            typing_hidden: HashSet::new(),
            hidden: HashSet::new(),
            fixed: false,
        }
    }

    /// Follows only the conversations it started with.
    pub(crate) fn fixed(mut self) -> EventsFilter {
        self.fixed = true;
        self
    }

    /// Drops the typing of `users` (those who blocked the subscriber).
    pub(crate) fn hiding_typing_of(mut self, users: HashSet<Uuid>) -> EventsFilter {
        self.typing_hidden = users;
        self
    }

    /// Drops the messages (new, edited, deleted) and typing of `users` (whom the subscriber
    /// blocked and hides). New ones still pass the seq cursor, so it sees no gap: the stream
    /// skips them after it ([`EventsFilter::hides`]).
    pub(crate) fn hiding_messages_of(mut self, users: HashSet<Uuid>) -> EventsFilter {
        self.hidden = users;
        self
    }

    /// Whether messages of `sender` are not for this subscriber.
    pub(crate) fn hides(&self, sender: Uuid) -> bool {
        self.hidden.contains(&sender)
    }

    /// The conversations followed now.
    pub(crate) fn following(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.following.iter().copied()
    }

    pub(crate) fn follows(&self, conversation: Uuid) -> bool {
        self.following.contains(&conversation)
    }

    /// What `event` means for this subscriber. Events of conversations it does not follow are
    /// dropped; a membership change of its own starts or stops following the conversation,
    /// and reaches it once (from its user topic, not again from the conversation's).
    pub(crate) fn on_event<'e>(&mut self, event: &'e Event) -> Vec<Step<'e>> {
        match &event.kind {
            EventKind::MessageAdded { message } if self.follows(message.conversation_id) => {
                vec![Step::Admit(message)]
            }
            EventKind::MessageAdded { .. } => Vec::new(),
            EventKind::Typing { user_id, .. } if self.typing_hidden.contains(user_id) || self.hides(*user_id) => {
                Vec::new()
            }
            EventKind::MessageEdited { message } | EventKind::MessageDeleted { message }
                if self.hides(message.sender_id) =>
            {
                Vec::new()
            }
            EventKind::ConversationChanged { conversation_id, .. } if self.fixed && !self.follows(*conversation_id) => {
                Vec::new()
            }
            EventKind::ConversationChanged { conversation_id, added, removed, .. } => {
                let id = *conversation_id;
                let (joined, left) = (added.contains(&self.me), removed.contains(&self.me));
                let mut steps = Vec::new();
                if joined && self.following.insert(id) {
                    steps.push(Step::Follow(id));
                }
                if left {
                    self.following.remove(&id);
                    steps.push(Step::Unfollow(id));
                }
                // The same change arrives on the conversation and on the user topic.
                if (matches!(event.topic, Topic::User(_)) || !(joined || left))
                    && let Some(live) = LiveEvent::from_kind(&event.kind, event.committed_at)
                {
                    steps.push(Step::Deliver(live));
                }
                steps
            }
            kind if kind.conversation_id().is_some_and(|c| !self.follows(c)) => Vec::new(),
            kind => LiveEvent::from_kind(kind, event.committed_at).map(Step::Deliver).into_iter().collect(),
        }
    }
}

/// Whether `kind` removes `me` from its conversation (a one-conversation subscription ends).
pub(crate) fn leaves(me: Uuid, kind: &EventKind) -> bool {
    matches!(kind, EventKind::ConversationChanged { removed, .. } if removed.contains(&me))
}

/// Where a subscription starts in each of its conversations: after the client's resume
/// point where it gave one (what follows it is replayed from storage), else after what is
/// committed now.
#[derive(Debug)]
pub(crate) struct Start {
    /// One point per conversation (the last one given counts), in the client's order.
    resume: Vec<ResumePoint>,
    /// The conversations without a resume point.
    live_only: Vec<Uuid>,
}

impl Start {
    /// The start of `conversations`; resume points of other conversations are ignored.
    pub(crate) fn new(conversations: impl IntoIterator<Item = Uuid>, resume: Vec<ResumePoint>) -> Start {
        let conversations: Vec<Uuid> = conversations.into_iter().collect();
        let mut points: Vec<ResumePoint> = Vec::new();
        for point in resume.into_iter().filter(|p| conversations.contains(&p.conversation_id)) {
            match points.iter_mut().find(|p| p.conversation_id == point.conversation_id) {
                Some(earlier) => earlier.seq = point.seq,
                None => points.push(point),
            }
        }
        let live_only = conversations.into_iter().filter(|c| !points.iter().any(|p| p.conversation_id == *c)).collect();
        Start { resume: points, live_only }
    }

    /// The conversations whose last committed seq must be read to start them.
    pub(crate) fn live_only(&self) -> &[Uuid] {
        &self.live_only
    }

    /// Starts `cursor` in every conversation, given the last seq `committed` of the live-only
    /// ones; returns the conversations to replay, in the client's order.
    pub(crate) fn begin(self, cursor: &mut SeqCursor, committed: Vec<(Uuid, i64)>) -> Vec<Uuid> {
        for (conversation, seq) in committed {
            cursor.start_at(conversation, seq);
        }
        self.resume
            .into_iter()
            .map(|p| {
                cursor.start_at(p.conversation_id, p.seq);
                p.conversation_id
            })
            .collect()
    }
}

/// Starts `cursor` in `conversations` (see [`Start`]); returns the conversations to replay.
/// Called once the subscription's topics are live, so that a message committed meanwhile is
/// either counted in what is read here or delivered live.
pub(crate) async fn start_at(
    live: &Live,
    cursor: &mut SeqCursor,
    conversations: impl IntoIterator<Item = Uuid>,
    resume: Vec<ResumePoint>,
) -> AppResult<Vec<Uuid>> {
    let start = Start::new(conversations, resume);
    let committed = live.last_seqs(start.live_only()).await?;
    Ok(start.begin(cursor, committed))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn event(topic: Topic, kind: EventKind) -> Event {
        Event { topic, committed_at: Utc::now(), kind }
    }

    fn message(conversation: Uuid, seq: i64) -> EventKind {
        EventKind::MessageAdded {
            message: MessageSnapshot {
                id: Uuid::now_v7(),
                conversation_id: conversation,
                seq,
                sender_id: Uuid::now_v7(),
                sender_username: "u".into(),
                sender_display_name: None,
                sender_is_bot: false,
                body: Some(format!("m{seq}")),
                client_message_id: None,
                created_at: Utc::now(),
                edited_at: None,
                deleted_at: None,
                attachments: Vec::new(),
                mentions: Vec::new(),
            },
        }
    }

    fn changed(conversation: Uuid, added: Vec<Uuid>, removed: Vec<Uuid>) -> EventKind {
        EventKind::ConversationChanged { conversation_id: conversation, participant_ids: added.clone(), added, removed }
    }

    fn read(conversation: Uuid) -> EventKind {
        EventKind::Read { conversation_id: conversation, user_id: Uuid::now_v7(), last_read_seq: 1 }
    }

    /// The steps, told in a word each (`LiveEvent` has no `PartialEq`).
    fn told(steps: Vec<Step<'_>>) -> Vec<String> {
        steps
            .into_iter()
            .map(|step| match step {
                Step::Deliver(LiveEvent::MessageAdded(_)) => "deliver message".to_owned(),
                Step::Deliver(LiveEvent::Read(_)) => "deliver read".to_owned(),
                Step::Deliver(LiveEvent::ConversationChanged(_)) => "deliver change".to_owned(),
                Step::Deliver(LiveEvent::Presence(_)) => "deliver presence".to_owned(),
                Step::Deliver(other) => format!("deliver {other:?}"),
                Step::Admit(m) => format!("admit {}", m.seq),
                Step::Follow(_) => "follow".to_owned(),
                Step::Unfollow(_) => "unfollow".to_owned(),
            })
            .collect()
    }

    #[test]
    fn events_of_unfollowed_conversations_are_dropped() {
        let (me, mine, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut filter = EventsFilter::new(me, [mine]);
        assert_eq!(told(filter.on_event(&event(Topic::Conversation(mine), message(mine, 4)))), ["admit 4"]);
        assert_eq!(told(filter.on_event(&event(Topic::Conversation(mine), read(mine)))), ["deliver read"]);
        assert!(filter.on_event(&event(Topic::Conversation(other), message(other, 1))).is_empty());
        assert!(filter.on_event(&event(Topic::Conversation(other), read(other))).is_empty());
        // Not about a conversation: presence of a contact, and cluster orders (never shown).
        let presence = EventKind::Presence { user_id: other, online: true, last_seen_at: None };
        assert_eq!(told(filter.on_event(&event(Topic::Presence(other), presence))), ["deliver presence"]);
        let disabled = EventKind::AccountDisabled { user_id: me };
        assert!(filter.on_event(&event(Topic::Control, disabled)).is_empty());
    }

    #[test]
    fn joining_a_conversation_starts_following_it() {
        let (me, joined) = (Uuid::now_v7(), Uuid::now_v7());
        let mut filter = EventsFilter::new(me, []);
        assert!(filter.on_event(&event(Topic::Conversation(joined), message(joined, 1))).is_empty());
        let added = changed(joined, vec![me], vec![]);
        // Followed from then on, and told once: from the user topic, not the conversation's.
        assert_eq!(told(filter.on_event(&event(Topic::User(me), added.clone()))), ["follow", "deliver change"]);
        assert!(filter.follows(joined));
        assert!(told(filter.on_event(&event(Topic::Conversation(joined), added))).is_empty());
        assert_eq!(told(filter.on_event(&event(Topic::Conversation(joined), message(joined, 2)))), ["admit 2"]);
    }

    #[test]
    fn leaving_a_conversation_stops_following_it() {
        let (me, left) = (Uuid::now_v7(), Uuid::now_v7());
        let mut filter = EventsFilter::new(me, [left]);
        let removed = changed(left, vec![], vec![me]);
        assert_eq!(told(filter.on_event(&event(Topic::Conversation(left), removed.clone()))), ["unfollow"]);
        assert_eq!(told(filter.on_event(&event(Topic::User(me), removed))), ["unfollow", "deliver change"]);
        assert!(!filter.follows(left));
        assert!(filter.on_event(&event(Topic::Conversation(left), message(left, 9))).is_empty());
        assert!(filter.on_event(&event(Topic::Conversation(left), read(left))).is_empty());
    }

    #[test]
    fn others_joining_or_leaving_is_news_not_a_change_of_what_is_followed() {
        let (me, someone, conversation) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut filter = EventsFilter::new(me, [conversation]);
        let added = changed(conversation, vec![someone], vec![]);
        assert_eq!(told(filter.on_event(&event(Topic::Conversation(conversation), added))), ["deliver change"]);
        let removed = changed(conversation, vec![], vec![someone]);
        assert_eq!(told(filter.on_event(&event(Topic::Conversation(conversation), removed))), ["deliver change"]);
        assert!(filter.follows(conversation));
        // Joining a conversation followed already subscribes nothing new.
        let again = changed(conversation, vec![me], vec![]);
        assert_eq!(told(filter.on_event(&event(Topic::User(me), again))), ["deliver change"]);
    }

    #[test]
    fn a_one_conversation_subscription_ends_when_its_user_leaves() {
        let (me, someone, conversation) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        assert!(leaves(me, &changed(conversation, vec![], vec![me])));
        assert!(!leaves(me, &changed(conversation, vec![], vec![someone])));
        assert!(!leaves(me, &changed(conversation, vec![me], vec![])));
        assert!(!leaves(me, &message(conversation, 1)));
    }

    #[test]
    fn resume_points_start_their_conversations_and_the_rest_start_now() {
        let (a, b, c, elsewhere) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let point = |conversation_id, seq| ResumePoint { conversation_id, seq };
        let start = Start::new([a, b, c], vec![point(c, 7), point(elsewhere, 3), point(a, 2)]);
        assert_eq!(start.live_only(), [b], "only b needs its committed seq read");
        let mut cursor = SeqCursor::default();
        let replay = start.begin(&mut cursor, vec![(b, 40)]);
        assert_eq!(replay, [c, a], "replayed in the client's order; another conversation's point is ignored");
        assert_eq!((cursor.last(a), cursor.last(b), cursor.last(c)), (Some(2), Some(40), Some(7)));
        assert_eq!(cursor.last(elsewhere), None);
    }

    #[test]
    fn one_resume_point_per_conversation_counts() {
        let a = Uuid::now_v7();
        let point = |seq| ResumePoint { conversation_id: a, seq };
        let mut cursor = SeqCursor::default();
        let replay = Start::new([a], vec![point(5), point(9)]).begin(&mut cursor, Vec::new());
        assert_eq!(replay, [a], "replayed once, so nothing is delivered twice");
        assert_eq!(cursor.last(a), Some(9), "the last point given counts");
    }

    #[test]
    fn without_resume_points_everything_starts_now() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let start = Start::new([a, b], Vec::new());
        assert_eq!(start.live_only(), [a, b]);
        let mut cursor = SeqCursor::default();
        assert!(start.begin(&mut cursor, vec![(a, 1), (b, 0)]).is_empty());
        assert_eq!((cursor.last(a), cursor.last(b)), (Some(1), Some(0)));
    }
}
