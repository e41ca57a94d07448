//! Group commit of sends on Postgres. A message without files is stored by one statement;
//! under load, the sends that arrive while one statement is committing go together in the
//! next: one round trip and one commit for all of them, each still getting its own `seq` in
//! its conversation (in arrival order) and its own answer. Nothing waits to form a batch: a
//! lone send is stored at once.
//!
//! One committer per process; a batch locks its conversations in id order, so batches from
//! several nodes cannot deadlock each other. A batch that fails (a reused
//! `clientMessageId`, say) is retried one send at a time, so each send gets its own outcome.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Clock, Context};
use crate::background::Background;
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::is_unique_violation;
use crate::storage::message::{self, NewMessage};

/// Most sends in one statement.
const MAX_BATCH: usize = 64;
/// Sends waiting for the committer; beyond that, senders wait their turn.
const QUEUE: usize = 4096;

struct Queued {
    send: NewMessage,
    reply: oneshot::Sender<AppResult<message::Model>>,
}

/// The committer's queue; its task starts with the first send and ends when the app stops
/// (or the services are dropped).
pub(crate) struct SendBatcher {
    queue: OnceLock<mpsc::Sender<Queued>>,
    background: Background,
}

impl SendBatcher {
    pub(crate) fn new(background: Background) -> SendBatcher {
        SendBatcher { queue: OnceLock::new(), background }
    }

    /// Stores `send` under the send rule ([`message::insert_next`]); no row when the sender
    /// is not a participant (or there is no such conversation): `NOT_FOUND`.
    pub(crate) async fn store(&self, ctx: &Context, send: NewMessage) -> AppResult<message::Model> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            // The task holds the pool, not the services. Once the app is stopping it does not
            // start: the queue is closed, and sends are answered `UNAVAILABLE`.
            self.background.spawn("send_batcher", run(ctx.db.clone(), ctx.clock, rx, self.background.token()));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let unavailable = || AppError::Unavailable("the message store is shutting down".into());
        queue.send(Queued { send, reply }).await.map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }
}

async fn run(db: DatabaseConnection, clock: Clock, mut queue: mpsc::Receiver<Queued>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Sends already queued are stored before it stops: their senders wait for the answer.
    while let Some(first) = tokio::select! {
        biased;
        first = queue.recv() => first,
        () = stop.cancelled() => None,
    } {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        m::send_batch(batch.len());
        // A lone send, or a batch that failed as a whole, is stored send by send.
        let at = clock.now();
        let mut stored = if batch.len() > 1 { store_many(&db, &batch, at).await } else { None };
        for q in batch.drain(..) {
            let outcome = match &mut stored {
                Some(stored) => stored.remove(&q.send.id).ok_or_else(|| AppError::not_found("conversation")),
                None => store_one(&db, &q.send, at).await,
            };
            let _ = q.reply.send(outcome);
        }
    }
}

/// Several sends in one statement, by id; `None` when the statement failed as a whole.
async fn store_many(
    db: &DatabaseConnection,
    batch: &[Queued],
    at: DateTime<Utc>,
) -> Option<HashMap<uuid::Uuid, message::Model>> {
    let sends: Vec<NewMessage> = batch.iter().map(|q| q.send.clone()).collect();
    let stored = message::insert_next(db, &sends, at).await.ok()?;
    Some(stored.into_iter().map(|m| (m.id, m)).collect())
}

/// One send under the send rule (in the caller's transaction, if any): `NOT_FOUND` when the
/// sender is not in the conversation, `CONFLICT` when its client message id was used.
pub(super) async fn store_one<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    send: &NewMessage,
    at: DateTime<Utc>,
) -> AppResult<message::Model> {
    match message::insert_next(db, std::slice::from_ref(send), at).await {
        Ok(mut stored) => stored.pop().ok_or_else(|| AppError::not_found("conversation")),
        Err(e) if is_unique_violation(&e) => Err(AppError::Conflict("duplicate message".into())),
        Err(e) => Err(e.into()),
    }
}
