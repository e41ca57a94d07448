//! The event bus: local fan-out by topic, plus a pluggable [`Fanout`] that carries events
//! between nodes (in-process: none needed; Redis: pub/sub channels per topic).
//!
//! Each topic with local subscribers has one bounded broadcast channel. A subscriber that
//! falls more than `capacity` events behind loses the oldest and is told how many
//! (`Err(n)`); it never slows the publisher or anyone else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::{Event, Topic};

/// Events a topic's subscriber may fall behind before it loses its place: a client whose
/// outgoing queue is full, or a subscription replaying a long gap while a busy conversation
/// goes on. It is told so and resumes by seq. A broadcast channel allocates all its slots
/// up front (about 40 bytes each) and a node has a topic per active conversation, most of
/// them two people, so a larger window is paid by every topic: 256 slots is 10 KiB a topic
/// (1,024 was 40 KiB).
pub const CAPACITY: usize = 256;

/// Carries events between nodes. `publish` must eventually hand every event to
/// [`EventBus::dispatch`] on every node watching its topic, this one included.
#[async_trait::async_trait]
pub trait Fanout: Send + Sync + 'static {
    async fn publish(&self, bus: &EventBus, event: Arc<Event>);
    /// The first local subscriber of `topic` arrived: start receiving it.
    fn watch(&self, topic: Topic);
    /// The last local subscriber of `topic` left: stop receiving it.
    fn unwatch(&self, topic: Topic);
    fn name(&self) -> &'static str;
}

/// Single node: publishing is dispatching.
pub struct InProcess;

#[async_trait::async_trait]
impl Fanout for InProcess {
    async fn publish(&self, bus: &EventBus, event: Arc<Event>) {
        bus.dispatch(event);
    }
    fn watch(&self, _topic: Topic) {}
    fn unwatch(&self, _topic: Topic) {}
    fn name(&self) -> &'static str {
        "in-process"
    }
}

#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    topics: Mutex<HashMap<Topic, broadcast::Sender<Arc<Event>>>>,
    fanout: Arc<dyn Fanout>,
    capacity: usize,
}

impl EventBus {
    pub fn new(fanout: Arc<dyn Fanout>, capacity: usize) -> Self {
        EventBus { inner: Arc::new(Inner { topics: Mutex::new(HashMap::new()), fanout, capacity: capacity.max(1) }) }
    }

    pub fn in_process() -> Self {
        Self::new(Arc::new(InProcess), CAPACITY)
    }

    pub fn fanout_name(&self) -> &'static str {
        self.inner.fanout.name()
    }

    /// Publishes an event that has committed, to every node.
    pub async fn publish(&self, event: Event) {
        self.inner.fanout.publish(self, Arc::new(event)).await;
    }

    /// Hands an event to this node's subscribers of its topic (called by the fanout).
    pub fn dispatch(&self, event: Arc<Event>) {
        let sender = self.lock().get(&event.topic).cloned();
        if let Some(sender) = sender {
            let _ = sender.send(event);
        }
    }

    /// Every event on `topic` from now on.
    pub fn subscribe(&self, topic: Topic) -> Subscription {
        let mut topics = self.lock();
        let receiver = match topics.get(&topic) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(self.inner.capacity);
                topics.insert(topic, sender);
                self.inner.fanout.watch(topic);
                receiver
            }
        };
        Subscription { receiver: Some(receiver), topic, bus: self.clone() }
    }

    /// Topics with local subscribers (for transports that resubscribe after a reconnect).
    pub fn watched_topics(&self) -> Vec<Topic> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Topic, broadcast::Sender<Arc<Event>>>> {
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
        if topics.get(&self.topic).is_some_and(|s| s.receiver_count() == 0) {
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
