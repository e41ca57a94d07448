//! The healer: what the bus between nodes lost, brought back from storage by each node on its
//! own. Redis pub/sub delivers nothing to a node while its subscriber connection is down, and
//! nothing of a node whose publishing fails; committed messages are never lost for that,
//! because every node compares, for each conversation its subscribers watch, the highest seq
//! it handed out with the committed `last_seq`, and dispatches what is missing. The same pass
//! closes local connections of sessions that ended (and accounts disabled) while their orders
//! on the control topic could not arrive.
//!
//! It runs when the bus reconnects (at once), every `interval` while the bus is up (a safety
//! net for a node whose publishing failed unseen), and every second while it is down and for
//! 15 s after (so delivery between nodes degrades to one-second polling of storage, and never
//! stops, also while the other nodes' publishers are still reconnecting).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use syncchat_realtime::{Event, EventKind, History, Topic};
use uuid::Uuid;

use super::Live;
use crate::error::AppResult;
use crate::metrics as m;
use crate::storage::{session, user};

/// Conversations (or sessions) read per query.
const CHUNK: usize = 500;
/// Most messages dispatched per conversation and pass; a subscriber further behind fills the
/// rest of its gap from storage itself when it sees the jump.
const PAGE: i64 = 200;
/// How often the healer runs while the bus is down (and for [`AFTER_OUTAGE`] after).
const WHILE_DOWN: Duration = Duration::from_secs(1);
/// How long the healer keeps polling every second once the bus is back.
const AFTER_OUTAGE: Duration = Duration::from_secs(15);

impl Live {
    /// Starts the healer (only useful with a bus between nodes) under `background`.
    pub fn spawn_healer(self: &Arc<Self>, background: &crate::background::Background, interval: Duration) {
        if !self.ctx.bus.is_distributed() {
            return;
        }
        let service = Arc::clone(self);
        let stop = background.token();
        background.spawn("healer", async move {
            // Polls fast while the bus is down and for a while after it is back: the other
            // nodes' publishers may still be reconnecting, and what they publish meanwhile is lost.
            let mut fast_until = tokio::time::Instant::now();
            loop {
                if !service.ctx.bus.is_connected() {
                    fast_until = tokio::time::Instant::now() + AFTER_OUTAGE;
                }
                let wait = if tokio::time::Instant::now() < fast_until { WHILE_DOWN } else { interval };
                let trigger = tokio::select! {
                    () = stop.cancelled() => return,
                    () = service.ctx.bus.heal_requested() => "",
                    () = tokio::time::sleep(wait) => "periodic",
                };
                let trigger = match (trigger, service.ctx.bus.is_connected()) {
                    (_, false) => "bus_down",
                    ("", true) => "reconnect",
                    _ => "periodic",
                };
                service.heal(trigger).await;
            }
        });
    }

    /// One pass: messages, then sessions. Failures (storage down too) are logged; the next
    /// pass tries again.
    pub async fn heal(&self, trigger: &'static str) {
        let started = Instant::now();
        let messages = match self.heal_messages().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "the healer could not read messages");
                0
            }
        };
        let closed = match self.heal_sessions().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "the healer could not check sessions");
                0
            }
        };
        m::bus_heal(trigger, messages, started.elapsed());
        if messages > 0 || closed > 0 {
            tracing::info!(trigger, messages, closed, "healed what the bus between nodes lost");
        }
    }

    /// Dispatches, for every locally watched conversation, the committed messages past the
    /// highest seq handed out here. Returns how many.
    async fn heal_messages(&self) -> AppResult<u64> {
        let watched = self.ctx.bus.watched_conversations();
        let mut healed = 0;
        for chunk in watched.chunks(CHUNK) {
            let seen: HashMap<Uuid, Option<i64>> = chunk.iter().copied().collect();
            let ids: Vec<Uuid> = seen.keys().copied().collect();
            for (id, last_seq) in self.last_seqs(&ids).await? {
                let after = match seen.get(&id).copied().flatten() {
                    Some(s) if s >= last_seq => continue,
                    Some(s) => s.max(last_seq - PAGE),
                    // Nothing handed out here yet: the latest message is enough; a subscriber
                    // that is further behind fills its gap when it sees it.
                    None if last_seq > 0 => last_seq - 1,
                    None => continue,
                };
                let missing = self
                    .messages
                    .messages_between(id, after, None, PAGE as u64)
                    .await
                    .map_err(|e| crate::error::AppError::Internal(anyhow::anyhow!(e)))?;
                for message in missing {
                    healed += 1;
                    let committed_at = message.created_at;
                    let kind = EventKind::MessageAdded { message };
                    self.ctx.bus.dispatch(Arc::new(Event { topic: Topic::Conversation(id), committed_at, kind }));
                }
            }
        }
        Ok(healed)
    }

    /// Closes local connections whose session ended or whose account was disabled. Returns
    /// how many sessions it closed.
    async fn heal_sessions(&self) -> AppResult<usize> {
        let live = self.connections.sessions();
        let mut closed = 0;
        for chunk in live.chunks(CHUNK) {
            let sessions: Vec<Uuid> = chunk.iter().map(|(_, s)| *s).collect();
            for session_id in session::revoked_among(&self.ctx.db, sessions).await? {
                self.auth.sessions().forget_session(session_id);
                closed += usize::from(self.connections.close_session(session_id) > 0);
            }
            let mut users: Vec<Uuid> = chunk.iter().map(|(u, _)| *u).collect();
            users.dedup();
            for user_id in user::disabled_among(&self.ctx.db, users).await? {
                self.auth.sessions().forget_user(user_id);
                closed += usize::from(self.connections.close_user(user_id) > 0);
            }
        }
        Ok(closed)
    }
}
