//! The event bus: local fan-out by topic, plus a pluggable [`Fanout`] that carries events
//! between nodes (in-process: none needed; Redis: pub/sub channels per topic).
//!
//! Each topic with local subscribers has one bounded broadcast channel. A subscriber that
//! falls more than `capacity` events behind loses the oldest and is told how many
//! (`Err(n)`); it never slows the publisher or anyone else.
//!
//! Local subscribers are fed directly, never through the transport, so a node's own
//! messages reach its own subscribers whatever Redis does. What other nodes published while
//! the transport was down is not lost either: the bus records per conversation topic the
//! highest seq it handed out, and asks the healer (in the service layer, which can read
//! storage) to catch topics up whenever the transport comes back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::{Event, EventKind, Topic};

/// 1 while the transport between nodes delivers, 0 while it is down (always 1 in process).
pub const BUS_CONNECTED: &str = "syncchat_bus_connected";

/// Events a topic's subscriber may fall behind before it loses its place: a client whose
/// outgoing queue is full, or a subscription replaying a long gap while a busy conversation
/// goes on. It is told so and resumes by seq. A broadcast channel allocates all its slots
/// up front (about 40 bytes each) and a node has a topic per active conversation, most of
/// them two people, so a larger window is paid by every topic: 256 slots is 10 KiB a topic
/// (1,024 was 40 KiB).
pub const CAPACITY: usize = 256;

/// Carries events between nodes. The bus has already handed an event to this node's own
/// subscribers when it calls [`Fanout::publish`]; the fan-out takes it to the other nodes, whose
/// transport hands it to [`EventBus::dispatch`] there. Publishing never waits on the network:
/// a send is acknowledged once it commits, whatever the transport is doing.
pub trait Fanout: Send + Sync + 'static {
    /// Queues a committed event for the other nodes.
    fn publish(&self, event: Arc<Event>);
    /// The first local subscriber of `topic` arrived: start receiving it. `true` when the topic
    /// is live at once; otherwise the transport calls [`EventBus::confirm`] once it is.
    fn watch(&self, topic: Topic) -> bool;
    /// The last local subscriber of `topic` left: stop receiving it.
    fn unwatch(&self, topic: Topic);
    fn name(&self) -> &'static str;
    /// Whether events can be lost between nodes at all (there are other nodes).
    fn is_distributed(&self) -> bool {
        true
    }
}

/// Single node: there is no other node to carry anything to.
pub struct InProcess;

impl Fanout for InProcess {
    fn publish(&self, _event: Arc<Event>) {}
    fn watch(&self, _topic: Topic) -> bool {
        true
    }
    fn unwatch(&self, _topic: Topic) {}
    fn name(&self) -> &'static str {
        "in-process"
    }
    fn is_distributed(&self) -> bool {
        false
    }
}

#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    topics: Mutex<HashMap<Topic, TopicEntry>>,
    fanout: Arc<dyn Fanout>,
    capacity: usize,
    /// Whether the transport between nodes is up (always, in process).
    connected: AtomicBool,
    /// Wakes subscribers waiting for their topic to be confirmed.
    confirmed: Notify,
    /// Asks the healer to bring local subscribers up to date from storage.
    heal: Notify,
}

/// One topic with local subscribers.
struct TopicEntry {
    sender: broadcast::Sender<Arc<Event>>,
    /// The transport is delivering this topic's events from other nodes.
    confirmed: bool,
    /// Highest seq of a message handed to this topic's subscribers on this node (conversation
    /// topics): what the healer compares with the committed `last_seq`.
    seen: Option<i64>,
}

impl EventBus {
    pub fn new(fanout: Arc<dyn Fanout>, capacity: usize) -> Self {
        EventBus {
            inner: Arc::new(Inner {
                topics: Mutex::new(HashMap::new()),
                fanout,
                capacity: capacity.max(1),
                connected: AtomicBool::new(true),
                confirmed: Notify::new(),
                heal: Notify::new(),
            }),
        }
    }

    pub fn in_process() -> Self {
        Self::new(Arc::new(InProcess), CAPACITY)
    }

    pub fn fanout_name(&self) -> &'static str {
        self.inner.fanout.name()
    }

    /// Whether events can be lost between nodes at all (a transport is in use).
    pub fn is_distributed(&self) -> bool {
        self.inner.fanout.is_distributed()
    }

    /// Publishes an event that has committed: this node's subscribers get it at once, the
    /// other nodes through the fan-out (queued; never awaited).
    pub async fn publish(&self, event: Event) {
        let event = Arc::new(event);
        self.dispatch(event.clone());
        self.inner.fanout.publish(event);
    }

    /// Hands an event to this node's subscribers of its topic (the fan-out calls it for
    /// events of other nodes; the healer for messages read back from storage).
    pub fn dispatch(&self, event: Arc<Event>) {
        let sender = {
            let mut topics = self.lock();
            let Some(entry) = topics.get_mut(&event.topic) else { return };
            if let EventKind::MessageAdded { message } = &event.kind {
                entry.seen = Some(entry.seen.map_or(message.seq, |s| s.max(message.seq)));
            }
            entry.sender.clone()
        };
        let _ = sender.send(event);
    }

    /// Every event on `topic` from now on. Events of other nodes flow once the topic is
    /// confirmed: see [`EventBus::ready`].
    pub fn subscribe(&self, topic: Topic) -> Subscription {
        let mut topics = self.lock();
        let receiver = match topics.get(&topic) {
            Some(entry) => entry.sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(self.inner.capacity);
                let confirmed = self.inner.fanout.watch(topic);
                topics.insert(topic, TopicEntry { sender, confirmed, seen: None });
                receiver
            }
        };
        Subscription { receiver: Some(receiver), topic, bus: self.clone() }
    }

    /// Waits (up to `within`) until events of `topic` from other nodes reach this node, so that
    /// whatever a subscriber reads from storage next cannot miss a message published before.
    /// `false` when it is not so (the transport is down, or slow): the healer then catches the
    /// topic up from storage once the transport is back.
    pub async fn ready(&self, topic: Topic, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.inner.confirmed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.lock().get(&topic) {
                Some(entry) if entry.confirmed => return true,
                None => return false,
                Some(_) => {}
            }
            if !self.is_connected() || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// The transport delivers `topics` now (called by the fan-out).
    pub fn confirm(&self, confirmed: &[Topic]) {
        {
            let mut topics = self.lock();
            for topic in confirmed {
                if let Some(entry) = topics.get_mut(topic) {
                    entry.confirmed = true;
                }
            }
        }
        self.inner.confirmed.notify_waiters();
    }

    /// The transport went down (`false`: nothing is confirmed any more) or came back.
    pub fn set_connected(&self, connected: bool) {
        self.inner.connected.store(connected, Ordering::SeqCst);
        metrics::gauge!(BUS_CONNECTED).set(if connected { 1.0 } else { 0.0 });
        if !connected {
            for entry in self.lock().values_mut() {
                entry.confirmed = false;
            }
            // The healer polls storage while the transport is down: wake it now rather than
            // at the end of its usual, longer wait.
            self.inner.heal.notify_one();
        }
        self.inner.confirmed.notify_waiters();
    }

    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::SeqCst)
    }

    /// Asks the healer to catch every local topic up from storage (the transport just came
    /// back, so events of other nodes may have been lost meanwhile).
    pub fn request_heal(&self) {
        self.inner.heal.notify_one();
    }

    /// Resolves at the next [`EventBus::request_heal`] (one waiter: the healer).
    pub async fn heal_requested(&self) {
        self.inner.heal.notified().await;
    }

    /// Conversations with local subscribers, each with the highest seq handed to them here.
    pub fn watched_conversations(&self) -> Vec<(Uuid, Option<i64>)> {
        self.lock()
            .iter()
            .filter_map(|(topic, entry)| match topic {
                Topic::Conversation(id) => Some((*id, entry.seen)),
                _ => None,
            })
            .collect()
    }

    /// Topics with local subscribers (for transports that resubscribe after a reconnect).
    pub fn watched_topics(&self) -> Vec<Topic> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Topic, TopicEntry>> {
        self.inner.topics.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A live subscription to one topic; dropping it may stop the node receiving the topic.
pub struct Subscription {
    receiver: Option<broadcast::Receiver<Arc<Event>>>,
    topic: Topic,
    bus: EventBus,
}

impl Subscription {
    /// The next event; `Err(n)` when `n` events were lost because this subscriber lagged.
    /// `None` only if the bus is gone.
    pub async fn recv(&mut self) -> Option<Result<Arc<Event>, u64>> {
        let receiver = self.receiver.as_mut()?;
        match receiver.recv().await {
            Ok(event) => Some(Ok(event)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Err(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    pub fn topic(&self) -> Topic {
        self.topic
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut topics = self.bus.lock();
        drop(self.receiver.take());
        if topics.get(&self.topic).is_some_and(|e| e.sender.receiver_count() == 0) {
            topics.remove(&self.topic);
            self.bus.inner.fanout.unwatch(self.topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventKind;
    use uuid::Uuid;

    fn presence(user: Uuid) -> Event {
        Event {
            topic: Topic::User(user),
            committed_at: chrono::Utc::now(),
            kind: EventKind::Presence { user_id: user, online: true, last_seen_at: None },
        }
    }

    #[tokio::test]
    async fn subscribers_get_only_their_topics() {
        let bus = EventBus::in_process();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut sub_a = bus.subscribe(Topic::User(a));
        bus.publish(presence(b)).await;
        bus.publish(presence(a)).await;
        let got = sub_a.recv().await.and_then(Result::ok).map(|e| e.topic);
        assert_eq!(got, Some(Topic::User(a)));
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_how_many_it_missed() {
        let bus = EventBus::new(Arc::new(InProcess), 2);
        let user = Uuid::now_v7();
        let mut sub = bus.subscribe(Topic::User(user));
        for _ in 0..5 {
            bus.publish(presence(user)).await;
        }
        assert!(matches!(sub.recv().await, Some(Err(3))));
        assert!(matches!(sub.recv().await, Some(Ok(_))));
    }

    fn message(conversation: Uuid, seq: i64) -> Event {
        Event {
            topic: Topic::Conversation(conversation),
            committed_at: chrono::Utc::now(),
            kind: EventKind::MessageAdded { message: crate::resume::tests::msg(conversation, seq) },
        }
    }

    /// A transport that confirms topics only when told, and records what it was asked to carry.
    #[derive(Default)]
    struct Manual {
        published: Mutex<Vec<Topic>>,
    }

    impl Fanout for Manual {
        fn publish(&self, event: Arc<Event>) {
            self.published.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(event.topic);
        }
        fn watch(&self, _topic: Topic) -> bool {
            false
        }
        fn unwatch(&self, _topic: Topic) {}
        fn name(&self) -> &'static str {
            "manual"
        }
    }

    #[tokio::test]
    async fn local_subscribers_are_fed_without_the_transport() {
        let fanout = Arc::new(Manual::default());
        let bus = EventBus::new(fanout.clone(), CAPACITY);
        let conversation = Uuid::now_v7();
        let mut sub = bus.subscribe(Topic::Conversation(conversation));
        bus.publish(message(conversation, 1)).await;
        let got = sub.recv().await.and_then(Result::ok).map(|e| e.topic);
        assert_eq!(got, Some(Topic::Conversation(conversation)));
        let published = fanout.published.lock().map(|p| p.clone()).unwrap_or_default();
        assert_eq!(published, vec![Topic::Conversation(conversation)], "and the other nodes get it too");
        assert_eq!(bus.watched_conversations(), vec![(conversation, Some(1))], "the seq handed out is known");
    }

    #[tokio::test]
    async fn a_subscription_is_ready_only_once_its_topic_is_confirmed() {
        let bus = EventBus::new(Arc::new(Manual::default()), CAPACITY);
        let topic = Topic::Conversation(Uuid::now_v7());
        let _sub = bus.subscribe(topic);
        assert!(!bus.ready(topic, Duration::from_millis(50)).await, "not confirmed yet");
        let waiter = {
            let bus = bus.clone();
            tokio::spawn(async move { bus.ready(topic, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        bus.confirm(&[topic]);
        assert!(matches!(waiter.await, Ok(true)), "confirmation wakes the waiter");
        // The transport goes down: nothing is confirmed, and nobody waits for it.
        bus.set_connected(false);
        let started = std::time::Instant::now();
        assert!(!bus.ready(topic, Duration::from_secs(5)).await);
        assert!(started.elapsed() < Duration::from_secs(1));
        let local = EventBus::in_process();
        let _s = local.subscribe(topic);
        assert!(local.ready(topic, Duration::ZERO).await, "in process, a topic is live at once");
    }

    #[tokio::test]
    async fn topics_are_dropped_with_their_last_subscriber() {
        let bus = EventBus::in_process();
        let topic = Topic::User(Uuid::now_v7());
        let first = bus.subscribe(topic);
        let second = bus.subscribe(topic);
        drop(first);
        assert_eq!(bus.watched_topics(), vec![topic]);
        drop(second);
        assert!(bus.watched_topics().is_empty());
    }
}
