//! Redis transports for several nodes: event fan-out over pub/sub (one channel per topic,
//! subscribed only while this node has a local subscriber for it) and presence in TTL'd keys.
//!
//! Why pub/sub rather than streams: delivery is already made complete by `seq` (resume and
//! gap-fill read committed messages from the database), so the bus only needs to be fast
//! and cheap per channel; pub/sub gives that with no per-message storage or trimming, and
//! a node subscribes to exactly the channels it needs. Messages lost while a node's pub/sub
//! connection was down are brought back by the healer, from storage, as soon as the node has
//! resubscribed (see `EventBus::request_heal`); ephemeral events (typing) may be lost, which is
//! acceptable for them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Event, EventBus, Fanout, PresenceStore, Topic};

pub const REDIS_DURATION: &str = "syncchat_redis_command_duration_seconds";
pub const REDIS_ERRORS: &str = "syncchat_redis_errors_total";
/// Events waiting for Redis on this node.
pub const BUS_QUEUE: &str = "syncchat_bus_publish_queue";
/// Shared with the service layer's counter of dropped events (declared there).
const DROPPED: &str = "syncchat_dropped_events_total";

pub(crate) fn observe<T>(command: &'static str, started: Instant, result: &redis::RedisResult<T>) {
    metrics::histogram!(REDIS_DURATION, "command" => command).record(started.elapsed().as_secs_f64());
    if let Err(e) = result {
        metrics::counter!(REDIS_ERRORS, "command" => command).increment(1);
        tracing::warn!(redis.command = command, error = %e, "redis command failed");
    }
}

enum Interest {
    Watch(Topic),
    Unwatch(Topic),
}

/// Events waiting to be published to Redis. While Redis is down they wait here (at most
/// [`PUBLISH_RETRY_FOR`]); beyond this many the newest are dropped and counted. Messages among
/// them are not lost for good: the other nodes catch up from storage when Redis is back.
const PUBLISH_QUEUE: usize = 65_536;
/// Most events sent to Redis in one pipeline.
const PUBLISH_BATCH: usize = 512;
/// How long a batch that Redis refuses is retried before it is dropped (and counted).
const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(10);
/// A Redis command that takes longer than this counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the subscriber connection is pinged. A pub/sub stream does not always end when
/// Redis goes away, so this (plus the timeout) bounds how long a node takes to notice, and to
/// start catching its subscribers up from storage instead (the fault suite's Redis kill
/// measured ~5 s of extra delivery latency with 5 s here).
const PING_EVERY: Duration = Duration::from_secs(1);
/// Channels per SUBSCRIBE when resubscribing after a reconnect.
const SUBSCRIBE_CHUNK: usize = 256;

/// Fan-out through Redis pub/sub.
pub struct RedisFanout {
    namespace: String,
    /// This process's mark on what it publishes, so it skips its own events coming back
    /// (its subscribers had them directly).
    origin: String,
    outgoing: mpsc::Sender<Arc<Event>>,
    outgoing_rx: std::sync::Mutex<Option<mpsc::Receiver<Arc<Event>>>>,
    publisher: ConnectionManager,
    interest: mpsc::UnboundedSender<Interest>,
    interest_rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Interest>>>,
    client: redis::Client,
}

impl RedisFanout {
    /// `namespace` prefixes every channel, so several clusters can share one Redis.
    pub async fn connect(url: &str, namespace: &str) -> redis::RedisResult<Arc<RedisFanout>> {
        let client = redis::Client::open(url)?;
        let publisher = client.get_connection_manager_with_config(manager_config()).await?;
        let (interest, rx) = mpsc::unbounded_channel();
        let (outgoing, outgoing_rx) = mpsc::channel(PUBLISH_QUEUE);
        Ok(Arc::new(RedisFanout {
            namespace: namespace.to_owned(),
            origin: Uuid::now_v7().simple().to_string(),
            outgoing,
            outgoing_rx: std::sync::Mutex::new(Some(outgoing_rx)),
            publisher,
            interest,
            interest_rx: std::sync::Mutex::new(Some(rx)),
            client,
        }))
    }

    /// The two halves, named, for the caller to run (and own): the publisher (queued events
    /// to Redis, in order, pipelined) and the receiver (subscribes to the bus's topics as they
    /// come and go, hands every message of another node to `bus.dispatch`, and after a lost
    /// connection reconnects, resubscribes and asks the bus to heal). Both end when `stop` is
    /// cancelled, the publisher once it has sent what was already queued. Each half is handed
    /// out once.
    pub fn loops(
        self: &Arc<Self>,
        bus: EventBus,
        stop: CancellationToken,
    ) -> Vec<(&'static str, BoxFuture<'static, ()>)> {
        let mut loops = Vec::new();
        if let Some(rx) = self.outgoing_rx.lock().ok().and_then(|mut rx| rx.take()) {
            loops.push(("redis_publisher", publish_loop(self.clone(), rx, stop.clone()).boxed()));
        }
        if let Some(interest) = self.interest_rx.lock().ok().and_then(|mut rx| rx.take()) {
            let receive = receive_loop(self.clone(), bus, interest);
            // The receiver only reads: it may stop at any of its waits.
            let receive = async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = receive => {}
                }
            };
            loops.push(("redis_receiver", receive.boxed()));
        }
        loops
    }

    /// The event as published: its JSON with this process's origin as the first field (other
    /// versions ignore a field they do not know).
    fn payload(&self, event: &Event) -> Option<Vec<u8>> {
        let json = serde_json::to_vec(event).ok()?;
        let mut payload = Vec::with_capacity(json.len() + 48);
        payload.extend_from_slice(b"{\"origin\":\"");
        payload.extend_from_slice(self.origin.as_bytes());
        payload.extend_from_slice(b"\",");
        payload.extend_from_slice(json.get(1..)?);
        Some(payload)
    }

    fn is_own(&self, payload: &[u8]) -> bool {
        payload.get(..11) == Some(b"{\"origin\":\"".as_slice())
            && payload.get(11..11 + self.origin.len()) == Some(self.origin.as_bytes())
    }
}

async fn publish_loop(fanout: Arc<RedisFanout>, mut rx: mpsc::Receiver<Arc<Event>>, stop: CancellationToken) {
    let mut conn = fanout.publisher.clone();
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        // Queued events first: what was published before the stop still goes out.
        let received = tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, PUBLISH_BATCH) => n,
            () = stop.cancelled() => 0,
        };
        if received == 0 {
            return;
        }
        metrics::gauge!(BUS_QUEUE).set(rx.len() as f64);
        let mut pipe = redis::pipe();
        for event in batch.drain(..) {
            if let Some(payload) = fanout.payload(&event) {
                pipe.publish(event.topic.channel(&fanout.namespace), payload).ignore();
            }
        }
        let first_try = Instant::now();
        loop {
            let started = Instant::now();
            let r = match tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<()>(&mut conn)).await {
                Ok(r) => r,
                Err(_) => Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out"))),
            };
            observe("publish", started, &r);
            if r.is_ok() {
                break;
            }
            if first_try.elapsed() > PUBLISH_RETRY_FOR {
                let lost = pipe.len() as u64;
                metrics::counter!(DROPPED, "reason" => "bus_unavailable").increment(lost);
                tracing::warn!(
                    events = lost,
                    "redis refused events for too long; dropped (messages heal from storage)"
                );
                break;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }
}

async fn receive_loop(fanout: Arc<RedisFanout>, bus: EventBus, mut interest: mpsc::UnboundedReceiver<Interest>) {
    let ns = fanout.namespace.clone();
    let mut first = true;
    loop {
        let pubsub = match tokio::time::timeout(COMMAND_TIMEOUT, fanout.client.get_async_pubsub()).await {
            Ok(Ok(p)) => p,
            failed => {
                if let Ok(Err(e)) = failed {
                    tracing::warn!(error = %e, "redis pub/sub connection failed; retrying");
                }
                metrics::counter!(REDIS_ERRORS, "command" => "connect").increment(1);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        // (Re)subscribe to everything local subscribers need right now, then say so: from
        // here on nothing published is missed, and what was published before is healed.
        let topics = bus.watched_topics();
        let mut subscribed = true;
        for chunk in topics.chunks(SUBSCRIBE_CHUNK) {
            let channels: Vec<String> = chunk.iter().map(|t| t.channel(&ns)).collect();
            let started = Instant::now();
            let r = timed(sink.subscribe(channels)).await;
            observe("subscribe", started, &r);
            if r.is_err() {
                subscribed = false;
                break;
            }
        }
        if !subscribed {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        bus.set_connected(true);
        bus.confirm(&topics);
        // Whatever was published before the topics were subscribed (a reconnect, or a first
        // connection that came late) is caught up from storage.
        if !topics.is_empty() {
            if !first {
                tracing::info!(topics = topics.len(), "redis pub/sub connection restored; catching up from storage");
            }
            bus.request_heal();
        }
        first = false;
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                cmd = interest.recv() => {
                    let Some(cmd) = cmd else { return };
                    let started = Instant::now();
                    let (name, topic, r) = match cmd {
                        Interest::Watch(t) => ("subscribe", Some(t), timed(sink.subscribe(t.channel(&ns))).await),
                        Interest::Unwatch(t) => ("unsubscribe", None, timed(sink.unsubscribe(t.channel(&ns))).await),
                    };
                    observe(name, started, &r);
                    if r.is_err() { break; }
                    if let Some(topic) = topic { bus.confirm(&[topic]); }
                }
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    let payload = msg.get_payload_bytes();
                    if fanout.is_own(payload) { continue; }
                    match serde_json::from_slice::<Event>(payload) {
                        Ok(event) => bus.dispatch(Arc::new(event)),
                        Err(e) => tracing::warn!(error = %e, "undecodable event on redis"),
                    }
                }
                _ = ping.tick() => {
                    let started = Instant::now();
                    let r: redis::RedisResult<redis::Value> = timed(sink.ping()).await;
                    observe("ping", started, &r);
                    if r.is_err() { break; }
                }
            }
        }
        bus.set_connected(false);
        tracing::warn!("redis pub/sub connection lost; reconnecting");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Connections that give up on a slow command after [`COMMAND_TIMEOUT`] and, once Redis is
/// back, reconnect within half a second (the default backoff waited seconds, and events
/// published meanwhile reach the other nodes only through their healer).
fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

/// A Redis call bounded by [`COMMAND_TIMEOUT`].
async fn timed<T>(call: impl Future<Output = redis::RedisResult<T>>) -> redis::RedisResult<T> {
    match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
        Ok(r) => r,
        Err(_) => Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out"))),
    }
}

impl Fanout for RedisFanout {
    fn publish(&self, event: Arc<Event>) {
        if let Err(e) = self.outgoing.try_send(event) {
            let reason = match e {
                mpsc::error::TrySendError::Full(_) => "bus_queue_full",
                mpsc::error::TrySendError::Closed(_) => "bus_unavailable",
            };
            metrics::counter!(DROPPED, "reason" => reason).increment(1);
        }
    }

    fn watch(&self, topic: Topic) -> bool {
        let _ = self.interest.send(Interest::Watch(topic));
        false
    }

    fn unwatch(&self, topic: Topic) {
        let _ = self.interest.send(Interest::Unwatch(topic));
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

/// Presence shared by every node: per user a set of `<node>/<connection>` entries, the
/// cluster's "online users" set, and a heartbeat key per node with a TTL. Entries of a node
/// whose heartbeat expired (a crash) stop counting, and [`PresenceStore::sweep`] removes
/// them, reporting who went offline.
///
/// Each node also keeps its own connections in memory: when Redis lost them (it restarted
/// empty, or a write failed while it was down), the next heartbeat notices (the heartbeat key
/// was gone, or a write had failed) and writes them all again, so users connected through a
/// Redis outage show online again within a heartbeat.
pub struct RedisPresence {
    conn: ConnectionManager,
    namespace: String,
    node: String,
    ttl: Duration,
    local: std::sync::Mutex<HashMap<Uuid, HashSet<Uuid>>>,
    /// A write of this node's entries failed since they were last all written.
    dirty: AtomicBool,
}

impl RedisPresence {
    pub async fn connect(
        url: &str,
        namespace: &str,
        node: String,
        ttl: Duration,
    ) -> redis::RedisResult<Arc<RedisPresence>> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager_with_config(manager_config()).await?;
        let presence = Arc::new(RedisPresence {
            conn,
            namespace: namespace.to_owned(),
            node,
            ttl,
            local: std::sync::Mutex::default(),
            dirty: AtomicBool::new(false),
        });
        presence.heartbeat().await?;
        Ok(presence)
    }

    /// The cluster's "online users" set.
    fn online_key(&self) -> String {
        format!("{}:online", self.namespace)
    }

    fn user_key(&self, user: Uuid) -> String {
        format!("{}:presence:{}", self.namespace, user.simple())
    }

    fn node_key(&self, node: &str) -> String {
        format!("{}:node:{node}", self.namespace)
    }

    fn entry(&self, connection: Uuid) -> String {
        format!("{}/{}", self.node, connection.simple())
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, HashSet<Uuid>>> {
        self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks this node alive for another TTL; `Ok(false)` when its mark had gone (expired, or
    /// Redis restarted empty), so its entries may be gone too.
    pub async fn heartbeat(&self) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let r: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(self.node_key(&self.node))
            .arg(1)
            .arg("EX")
            .arg(self.ttl.as_secs().max(1))
            .arg("GET")
            .query_async(&mut conn)
            .await;
        observe("heartbeat", started, &r);
        r.map(|previous| previous.is_some())
    }

    /// Writes every connection of this node again (after Redis lost them).
    async fn reregister(&self) -> redis::RedisResult<usize> {
        let entries: Vec<(Uuid, Uuid)> =
            self.local().iter().flat_map(|(u, conns)| conns.iter().map(move |c| (*u, *c))).collect();
        let mut pipe = redis::pipe();
        for (user, connection) in &entries {
            pipe.sadd(self.user_key(*user), self.entry(*connection)).ignore();
            pipe.sadd(self.online_key(), user.simple().to_string()).ignore();
        }
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let r: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
        observe("presence_reregister", started, &r);
        r.map(|()| entries.len())
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Entries of `user` whose node is alive; dead ones are removed.
    async fn live_entries(&self, user: Uuid) -> redis::RedisResult<usize> {
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let entries: redis::RedisResult<Vec<String>> = conn.smembers(self.user_key(user)).await;
        observe("smembers", started, &entries);
        let mut live = 0;
        for entry in entries? {
            let node = entry.split('/').next().unwrap_or_default();
            let alive: bool = conn.exists(self.node_key(node)).await?;
            if alive {
                live += 1;
            } else {
                let _: i64 = conn.srem(self.user_key(user), &entry).await?;
            }
        }
        Ok(live)
    }
}

#[async_trait::async_trait]
impl PresenceStore for RedisPresence {
    async fn connect(&self, user: Uuid, connection: Uuid) -> Option<usize> {
        self.local().entry(user).or_default().insert(connection);
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let r: redis::RedisResult<()> = redis::pipe()
            .sadd(self.user_key(user), self.entry(connection))
            .ignore()
            .sadd(self.online_key(), user.simple().to_string())
            .ignore()
            .query_async(&mut conn)
            .await;
        observe("presence_connect", started, &r);
        if r.is_err() {
            self.dirty.store(true, Ordering::SeqCst);
            return None;
        }
        self.live_entries(user).await.ok()
    }

    async fn disconnect(&self, user: Uuid, connection: Uuid) -> bool {
        {
            let mut local = self.local();
            if let Some(conns) = local.get_mut(&user) {
                conns.remove(&connection);
                if conns.is_empty() {
                    local.remove(&user);
                }
            }
        }
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let r: redis::RedisResult<i64> = conn.srem(self.user_key(user), self.entry(connection)).await;
        observe("presence_disconnect", started, &r);
        if !matches!(self.live_entries(user).await, Ok(0)) {
            return false;
        }
        // Exactly one node wins the removal from the online set and reports it.
        let removed: redis::RedisResult<i64> = conn.srem(self.online_key(), user.simple().to_string()).await;
        matches!(removed, Ok(1))
    }

    async fn online(&self, users: &[Uuid]) -> Vec<bool> {
        let mut out = Vec::with_capacity(users.len());
        for user in users {
            out.push(matches!(self.live_entries(*user).await, Ok(n) if n > 0));
        }
        out
    }

    async fn online_count(&self) -> usize {
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let r: redis::RedisResult<usize> = conn.scard(self.online_key()).await;
        observe("scard", started, &r);
        r.unwrap_or(0)
    }

    async fn sweep(&self) -> Vec<Uuid> {
        let had_mark = self.heartbeat().await;
        if matches!(had_mark, Ok(false)) || (had_mark.is_ok() && self.dirty.swap(false, Ordering::SeqCst)) {
            match self.reregister().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(connections = n, "presence: wrote this node's connections to redis again"),
                Err(_) => self.dirty.store(true, Ordering::SeqCst),
            }
        }
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let users: redis::RedisResult<Vec<String>> = conn.smembers(self.online_key()).await;
        observe("smembers", started, &users);
        let mut offline = Vec::new();
        for raw in users.unwrap_or_default() {
            let Ok(user) = Uuid::try_parse(&raw) else { continue };
            if matches!(self.live_entries(user).await, Ok(0)) {
                let removed: redis::RedisResult<i64> = conn.srem(self.online_key(), &raw).await;
                if matches!(removed, Ok(1)) {
                    offline.push(user);
                }
            }
        }
        offline
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let r: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        observe("ping", started, &r);
        r.map(|_| ()).map_err(|e| e.to_string())
    }
}
