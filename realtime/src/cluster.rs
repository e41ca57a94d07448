//! Redis transports for several nodes: event fan-out over pub/sub (one channel per topic,
//! subscribed only while this node has a local subscriber for it) and presence in TTL'd keys.
//!
//! Why pub/sub rather than streams: delivery is already made complete by `seq` (resume and
//! gap-fill read committed messages from the database), so the bus only needs to be fast
//! and cheap per channel; pub/sub gives that with no per-message storage or trimming, and
//! a node subscribes to exactly the channels it needs. A lost pub/sub message (a Redis
//! reconnect) shows up as a seq jump at the next message and is filled from storage;
//! ephemeral events (typing) may be lost, which is acceptable for them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{Event, EventBus, Fanout, PresenceStore, Topic};

pub const REDIS_DURATION: &str = "syncchat_redis_command_duration_seconds";
pub const REDIS_ERRORS: &str = "syncchat_redis_errors_total";

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

/// Fan-out through Redis pub/sub.
pub struct RedisFanout {
    namespace: String,
    publisher: ConnectionManager,
    interest: mpsc::UnboundedSender<Interest>,
    interest_rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Interest>>>,
    client: redis::Client,
}

impl RedisFanout {
    /// `namespace` prefixes every channel, so several clusters can share one Redis.
    pub async fn connect(url: &str, namespace: &str) -> redis::RedisResult<Arc<RedisFanout>> {
        let client = redis::Client::open(url)?;
        let publisher = client.get_connection_manager().await?;
        let (interest, rx) = mpsc::unbounded_channel();
        Ok(Arc::new(RedisFanout {
            namespace: namespace.to_owned(),
            publisher,
            interest,
            interest_rx: std::sync::Mutex::new(Some(rx)),
            client,
        }))
    }

    /// Starts receiving: subscribes to the bus's topics as they come and go, hands every
    /// message to `bus.dispatch`, and after a lost connection reconnects and resubscribes.
    pub fn start(self: &Arc<Self>, bus: EventBus) {
        let Some(mut interest) = self.interest_rx.lock().ok().and_then(|mut rx| rx.take()) else { return };
        let client = self.client.clone();
        let ns = self.namespace.clone();
        tokio::spawn(async move {
            loop {
                let pubsub = match client.get_async_pubsub().await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "redis pub/sub connection failed; retrying");
                        metrics::counter!(REDIS_ERRORS, "command" => "connect").increment(1);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let (mut sink, mut stream) = pubsub.split();
                // (Re)subscribe to everything local subscribers need right now.
                for topic in bus.watched_topics() {
                    let started = Instant::now();
                    let r = sink.subscribe(topic.channel(&ns)).await;
                    observe("subscribe", started, &r);
                }
                loop {
                    tokio::select! {
                        cmd = interest.recv() => {
                            let Some(cmd) = cmd else { return };
                            let started = Instant::now();
                            let (name, r) = match cmd {
                                Interest::Watch(t) => ("subscribe", sink.subscribe(t.channel(&ns)).await),
                                Interest::Unwatch(t) => ("unsubscribe", sink.unsubscribe(t.channel(&ns)).await),
                            };
                            observe(name, started, &r);
                            if r.is_err() { break; }
                        }
                        msg = stream.next() => {
                            let Some(msg) = msg else { break };
                            let payload: Vec<u8> = msg.get_payload_bytes().to_vec();
                            match serde_json::from_slice::<Event>(&payload) {
                                Ok(event) => bus.dispatch(Arc::new(event)),
                                Err(e) => tracing::warn!(error = %e, "undecodable event on redis"),
                            }
                        }
                    }
                }
                tracing::warn!("redis pub/sub connection lost; reconnecting");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
}

#[async_trait::async_trait]
impl Fanout for RedisFanout {
    async fn publish(&self, _bus: &EventBus, event: Arc<Event>) {
        let Ok(payload) = serde_json::to_vec(event.as_ref()) else { return };
        let mut conn = self.publisher.clone();
        let started = Instant::now();
        let r: redis::RedisResult<i64> = conn.publish(event.topic.channel(&self.namespace), payload).await;
        observe("publish", started, &r);
    }

    fn watch(&self, topic: Topic) {
        let _ = self.interest.send(Interest::Watch(topic));
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
pub struct RedisPresence {
    conn: ConnectionManager,
    namespace: String,
    node: String,
    ttl: Duration,
}

impl RedisPresence {
    pub async fn connect(
        url: &str,
        namespace: &str,
        node: String,
        ttl: Duration,
    ) -> redis::RedisResult<Arc<RedisPresence>> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager().await?;
        let presence = Arc::new(RedisPresence { conn, namespace: namespace.to_owned(), node, ttl });
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

    /// Marks this node alive for another TTL.
    pub async fn heartbeat(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let r: redis::RedisResult<()> = conn.set_ex(self.node_key(&self.node), 1, self.ttl.as_secs().max(1)).await;
        observe("heartbeat", started, &r);
        r
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
    async fn connect(&self, user: Uuid, connection: Uuid) -> bool {
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let r: redis::RedisResult<()> = redis::pipe()
            .sadd(self.user_key(user), format!("{}/{}", self.node, connection.simple()))
            .ignore()
            .sadd(self.online_key(), user.simple().to_string())
            .ignore()
            .query_async(&mut conn)
            .await;
        observe("presence_connect", started, &r);
        matches!(self.live_entries(user).await, Ok(1))
    }

    async fn disconnect(&self, user: Uuid, connection: Uuid) -> bool {
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let r: redis::RedisResult<i64> =
            conn.srem(self.user_key(user), format!("{}/{}", self.node, connection.simple())).await;
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
        let _ = self.heartbeat().await;
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
