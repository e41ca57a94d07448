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

use sea_orm::{DatabaseConnection, DbBackend, FromQueryResult, Statement};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{Clock, Context};
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::{is_unique_violation, message};

/// Most sends in one statement.
const MAX_BATCH: usize = 64;
/// Sends waiting for the committer; beyond that, senders wait their turn.
const QUEUE: usize = 4096;

/// A send waiting to be stored.
pub(crate) struct Pending {
    pub conversation_id: Uuid,
    pub sender: Uuid,
    pub body: String,
    pub client_message_id: Option<String>,
}

struct Queued {
    id: Uuid,
    send: Pending,
    reply: oneshot::Sender<AppResult<message::Model>>,
}

/// The committer's queue; its task starts with the first send and ends with the services.
#[derive(Default)]
pub(crate) struct SendBatcher {
    queue: OnceLock<mpsc::Sender<Queued>>,
}

impl SendBatcher {
    /// Stores `send`; no row when the sender is not a participant (or there is no such
    /// conversation): `NOT_FOUND`.
    pub(crate) async fn store(&self, ctx: &Context, send: Pending) -> AppResult<message::Model> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            // The task holds the pool, not the services: it ends when they are dropped.
            tokio::spawn(run(ctx.db.clone(), ctx.clock, rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let unavailable = || AppError::Unavailable("the message store is shutting down".into());
        queue.send(Queued { id: Uuid::now_v7(), send, reply }).await.map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }
}

async fn run(db: DatabaseConnection, clock: Clock, mut queue: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        m::send_batch(batch.len());
        // A lone send, or a batch that failed as a whole, is stored send by send.
        let mut stored = if batch.len() > 1 { store_many(&db, clock, &batch).await.ok() } else { None };
        for q in batch.drain(..) {
            let outcome = match &mut stored {
                Some(stored) => stored.remove(&q.id).ok_or_else(|| AppError::not_found("conversation")),
                None => store_one(&db, clock, q.id, &q.send).await,
            };
            let _ = q.reply.send(outcome);
        }
    }
}

const RETURNING: &str =
    "RETURNING id, conversation_id, seq, sender_id, body, client_message_id, created_at, edited_at, deleted_at";

/// One send in one statement (one round trip, atomic): the seq is taken only if the sender
/// is a participant, the message inserted with it, the sender's read marker moved past it.
async fn store_one(db: &DatabaseConnection, clock: Clock, id: Uuid, send: &Pending) -> AppResult<message::Model> {
    let sql = format!(
        "WITH conv AS ( \
            UPDATE conversations SET last_seq = last_seq + 1, updated_at = $1 \
            WHERE id = $2 AND EXISTS (SELECT 1 FROM participants WHERE conversation_id = $2 AND user_id = $3) \
            RETURNING last_seq), \
         msg AS ( \
            INSERT INTO messages (id, conversation_id, seq, sender_id, body, client_message_id, created_at) \
            SELECT $4, $2, last_seq, $3, $5, $6, $1 FROM conv {RETURNING}), \
         marker AS ( \
            UPDATE participants SET last_read_seq = (SELECT seq FROM msg) \
            WHERE conversation_id = $2 AND user_id = $3 AND last_read_seq < (SELECT seq FROM msg)) \
         SELECT * FROM msg"
    );
    let values: [sea_orm::Value; 6] = [
        clock.now().into(),
        send.conversation_id.into(),
        send.sender.into(),
        id.into(),
        send.body.clone().into(),
        send.client_message_id.clone().into(),
    ];
    match message::Model::find_by_statement(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
        .one(db)
        .await
    {
        Ok(Some(stored)) => Ok(stored),
        Ok(None) => Err(AppError::not_found("conversation")),
        Err(e) if is_unique_violation(&e) => Err(AppError::Conflict("duplicate message".into())),
        Err(e) => Err(e.into()),
    }
}

/// Several sends in one statement. Per conversation the seqs follow the sends' order in the
/// batch; sends from outsiders are left out (no row for them).
async fn store_many(
    db: &DatabaseConnection,
    clock: Clock,
    batch: &[Queued],
) -> AppResult<HashMap<Uuid, message::Model>> {
    let mut values: Vec<sea_orm::Value> = vec![clock.now().into()];
    let mut rows = Vec::with_capacity(batch.len());
    for (ord, q) in batch.iter().enumerate() {
        let p = values.len() + 1;
        rows.push(format!(
            "(${}::uuid, ${}::uuid, ${}::uuid, ${}::text, ${}::text, {ord})",
            p,
            p + 1,
            p + 2,
            p + 3,
            p + 4
        ));
        values.extend([
            q.id.into(),
            q.send.conversation_id.into(),
            q.send.sender.into(),
            q.send.body.clone().into(),
            q.send.client_message_id.clone().into(),
        ]);
    }
    let sql = format!(
        "WITH input (id, conversation_id, sender_id, body, client_message_id, ord) AS (VALUES {}), \
         allowed AS (SELECT i.* FROM input i WHERE EXISTS ( \
            SELECT 1 FROM participants p WHERE p.conversation_id = i.conversation_id AND p.user_id = i.sender_id)), \
         counts AS (SELECT conversation_id, count(*) AS n FROM allowed GROUP BY conversation_id), \
         locked AS (SELECT id FROM conversations WHERE id IN (SELECT conversation_id FROM counts) \
            ORDER BY id FOR UPDATE), \
         conv AS (UPDATE conversations c SET last_seq = c.last_seq + counts.n, updated_at = $1 \
            FROM counts WHERE c.id = counts.conversation_id AND c.id IN (SELECT id FROM locked) \
            RETURNING c.id, c.last_seq), \
         numbered AS (SELECT a.id, a.conversation_id, a.sender_id, a.body, a.client_message_id, \
            conv.last_seq - (count(*) OVER (PARTITION BY a.conversation_id ORDER BY a.ord DESC)) + 1 AS seq \
            FROM allowed a JOIN conv ON conv.id = a.conversation_id), \
         msg AS (INSERT INTO messages (id, conversation_id, seq, sender_id, body, client_message_id, created_at) \
            SELECT id, conversation_id, seq, sender_id, body, client_message_id, $1 FROM numbered {RETURNING}), \
         marker AS (UPDATE participants p SET last_read_seq = m.top \
            FROM (SELECT conversation_id, sender_id, max(seq) AS top FROM msg GROUP BY conversation_id, sender_id) m \
            WHERE p.conversation_id = m.conversation_id AND p.user_id = m.sender_id AND p.last_read_seq < m.top) \
         SELECT * FROM msg",
        rows.join(", ")
    );
    let stored = message::Model::find_by_statement(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
        .all(db)
        .await?;
    Ok(stored.into_iter().map(|m| (m.id, m)).collect())
}
