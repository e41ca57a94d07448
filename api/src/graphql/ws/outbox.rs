//! A connection's outgoing frames: a bounded queue in front of the socket, and the rule that
//! tells a slow consumer (a queue that stays full) from a burst it reads through.

use std::collections::VecDeque;
use std::task::Poll;
use std::time::Duration;

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use poem::web::websocket::{Message, WebSocketStream};
use tokio::time::Instant;

use super::close::Close;

pub(super) type Sink = SplitSink<WebSocketStream, Message>;

/// How long a connection's outgoing queue may stay full before its client is dropped.
const SLOW_CONSUMER_GRACE: Duration = Duration::from_secs(2);
/// How long a client gets to take its close frame (or the rest of its frames) at the end.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The same for a slow consumer, whose close frame waits behind a full socket.
const SLOW_CLOSE_GRACE: Duration = Duration::from_secs(30);

pub(super) struct Outbox {
    sink: Sink,
    pending: VecDeque<Message>,
    capacity: usize,
    /// Since when the queue has been full.
    full_since: Option<Instant>,
    /// Frames handed to the socket but not yet flushed out of it.
    unflushed: bool,
}

impl Outbox {
    pub(super) fn new(sink: Sink, capacity: usize) -> Self {
        Outbox { sink, pending: VecDeque::new(), capacity, full_since: None, unflushed: false }
    }

    pub(super) fn has_room(&self) -> bool {
        self.pending.len() < self.capacity
    }

    /// Frames queued, or handed to the socket and not flushed yet (it was full).
    pub(super) fn has_unwritten(&self) -> bool {
        !self.pending.is_empty() || self.unflushed
    }

    /// When the client counts as a slow consumer, if the queue is full: a queue that stays
    /// full for [`SLOW_CONSUMER_GRACE`] is a client that cannot keep up (a burst, such as a
    /// replay, that the client reads through is fine).
    pub(super) fn slow_deadline(&self) -> Option<Instant> {
        self.full_since.map(|t| t + SLOW_CONSUMER_GRACE)
    }

    pub(super) fn push(&mut self, msg: Message) {
        self.pending.push_back(msg);
        if !self.has_room() && self.full_since.is_none() {
            self.full_since = Some(Instant::now());
        }
    }

    /// Writes what is queued as fast as the socket takes it. Safe to cancel: a frame leaves
    /// the queue only once the socket has accepted it.
    pub(super) async fn drain(&mut self) -> Result<(), ()> {
        std::future::poll_fn(|cx| {
            while !self.pending.is_empty() {
                match self.sink.poll_ready_unpin(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(())),
                    Poll::Pending => return Poll::Pending,
                }
                let Some(msg) = self.pending.pop_front() else { break };
                if self.sink.start_send_unpin(msg).is_err() {
                    return Poll::Ready(Err(()));
                }
                self.unflushed = true;
                if self.has_room() {
                    self.full_since = None;
                }
            }
            let flushed = self.sink.poll_flush_unpin(cx).map(|r| r.map_err(|_| ()));
            if flushed.is_ready() {
                self.unflushed = false;
            }
            flushed
        })
        .await
    }

    /// Sends a close frame ahead of anything still queued (the queue may be full: a slow
    /// consumer), then closes; a client that does not take it in time is cut off. Once the
    /// connection is registered, a 1013 close may wait behind a full socket (a slow
    /// consumer's always does), so it gets the longer grace.
    pub(super) async fn close(mut self, close: Close, registered: bool) {
        let slow = registered && close.code() == Close::SlowConsumer.code();
        let grace = if slow { SLOW_CLOSE_GRACE } else { CLOSE_GRACE };
        self.pending.clear();
        let _ = tokio::time::timeout(grace, self.sink.send(Message::close_with(close.code(), close.reason()))).await;
        let _ = tokio::time::timeout(CLOSE_GRACE, self.sink.close()).await;
    }

    /// Writes what is left (the client is leaving), then closes.
    pub(super) async fn finish(mut self) {
        let _ = tokio::time::timeout(CLOSE_GRACE, self.drain()).await;
        let _ = tokio::time::timeout(CLOSE_GRACE, self.sink.close()).await;
    }
}
