//! The event bus: one trait, an in-process implementation for a single node.

use std::pin::Pin;

use futures_util::Stream;
use tokio::sync::broadcast;

use crate::Event;

/// A stream of events as seen by one subscriber. `Err(n)` means the subscriber fell behind
/// and `n` events were dropped for it: it must resume from storage.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event, u64>> + Send>>;

/// Publishes committed events to every node's subscribers.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes an event that has committed. Never blocks on slow subscribers.
    async fn publish(&self, event: Event);
    /// Every event published from now on.
    fn subscribe(&self) -> EventStream;
    /// A short name for logs and `/readyz`.
    fn name(&self) -> &'static str;
}

/// A single-node bus over a bounded broadcast channel: a subscriber that lags more than the
/// capacity loses the oldest events and is told how many, so it can resume from storage.
pub struct InProcessBus {
    sender: broadcast::Sender<Event>,
}

impl InProcessBus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

#[async_trait::async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: Event) {
        // No receiver is not an error: nobody is listening on this node right now.
        let _ = self.sender.send(event);
    }

    fn subscribe(&self) -> EventStream {
        let receiver = self.sender.subscribe();
        Box::pin(futures_util::stream::unfold(
            receiver,
            |mut rx| async move {
                match rx.recv().await {
                    Ok(event) => Some((Ok(event), rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => Some((Err(n), rx)),
                    Err(broadcast::error::RecvError::Closed) => None,
                }
            },
        ))
    }

    fn name(&self) -> &'static str {
        "in-process"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventKind;
    use futures_util::StreamExt;
    use uuid::Uuid;

    fn event(seq: i64) -> Event {
        Event {
            conversation_id: Uuid::nil(),
            seq,
            committed_at: chrono::Utc::now(),
            kind: EventKind::MessageAdded {
                message_id: Uuid::now_v7(),
                sender_id: Uuid::nil(),
            },
        }
    }

    #[tokio::test]
    async fn subscriber_receives_events_in_publish_order() {
        let bus = InProcessBus::new(16);
        let mut stream = bus.subscribe();
        for seq in 1..=3 {
            bus.publish(event(seq)).await;
        }
        for seq in 1..=3 {
            let got = stream.next().await.and_then(Result::ok).map(|e| e.seq);
            assert_eq!(got, Some(seq));
        }
    }

    #[tokio::test]
    async fn lagging_subscriber_is_told_how_many_it_missed() {
        let bus = InProcessBus::new(2);
        let mut stream = bus.subscribe();
        for seq in 1..=5 {
            bus.publish(event(seq)).await;
        }
        assert_eq!(stream.next().await, Some(Err(3)));
        assert_eq!(
            stream.next().await.and_then(Result::ok).map(|e| e.seq),
            Some(4)
        );
    }
}
