//! Where nodes leave their periodic stats snapshots for the admin console: in this process
//! (one node), or in Redis so that any node's console shows the whole cluster.
//!
//! Snapshots are opaque JSON documents here; the server decides what they hold. Each node
//! keeps the last [`HISTORY`] of its own (an hour at one every 5 s), newest first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use crate::cluster::observe;

/// Snapshots kept per node.
pub const HISTORY: usize = 720;

/// One node's recent snapshots, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSnapshots {
    pub node: String,
    /// Unix seconds of the newest snapshot.
    pub updated_at: i64,
    pub snapshots: Vec<String>,
}

/// The shared store of snapshots failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

#[async_trait::async_trait]
pub trait SnapshotStore: Send + Sync + 'static {
    /// Records `node`'s snapshot taken at `at` (unix seconds).
    async fn put(&self, node: &str, at: i64, snapshot: String) -> Result<(), SnapshotError>;
    /// Every node that reported since `since` (unix seconds), with its newest `limit`
    /// snapshots (at most [`HISTORY`]).
    async fn nodes_since(&self, since: i64, limit: usize) -> Result<Vec<NodeSnapshots>, SnapshotError>;
    /// "cluster" when snapshots from every node meet here, "this node" otherwise.
    fn scope(&self) -> &'static str;
    /// Round trip to the shared store: `None` in process, else whether it answered and
    /// how long it took (seconds).
    async fn ping(&self) -> Option<(bool, f64)> {
        None
    }
}

/// One node on its own.
#[derive(Default)]
pub struct InProcessSnapshots {
    nodes: Mutex<HashMap<String, (i64, VecDeque<String>)>>,
}

#[async_trait::async_trait]
impl SnapshotStore for InProcessSnapshots {
    async fn put(&self, node: &str, at: i64, snapshot: String) -> Result<(), SnapshotError> {
        let mut nodes = self.nodes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (updated, history) = nodes.entry(node.to_owned()).or_default();
        *updated = at;
        history.push_front(snapshot);
        history.truncate(HISTORY);
        Ok(())
    }

    async fn nodes_since(&self, since: i64, limit: usize) -> Result<Vec<NodeSnapshots>, SnapshotError> {
        let nodes = self.nodes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<NodeSnapshots> = nodes
            .iter()
            .filter(|(_, (updated, _))| *updated >= since)
            .map(|(node, (updated, history))| NodeSnapshots {
                node: node.clone(),
                updated_at: *updated,
                snapshots: history.iter().take(limit).cloned().collect(),
            })
            .collect();
        out.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(out)
    }

    fn scope(&self) -> &'static str {
        "this node"
    }
}

/// Every node of a cluster, through Redis: a list per node (`<ns>:stats:<node>`, trimmed to
/// [`HISTORY`], expiring an hour after the node's last report) and a sorted set of nodes by
/// last report (`<ns>:stats:nodes`).
pub struct RedisSnapshots {
    conn: ConnectionManager,
    namespace: String,
}

impl RedisSnapshots {
    pub async fn connect(url: &str, namespace: &str) -> redis::RedisResult<RedisSnapshots> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager().await?;
        Ok(RedisSnapshots { conn, namespace: namespace.to_owned() })
    }

    fn nodes_key(&self) -> String {
        format!("{}:stats:nodes", self.namespace)
    }

    fn node_key(&self, node: &str) -> String {
        format!("{}:stats:{node}", self.namespace)
    }
}

#[async_trait::async_trait]
impl SnapshotStore for RedisSnapshots {
    async fn put(&self, node: &str, at: i64, snapshot: String) -> Result<(), SnapshotError> {
        let mut conn = self.conn.clone();
        let key = self.node_key(node);
        let started = Instant::now();
        let r: redis::RedisResult<()> = redis::pipe()
            .lpush(&key, snapshot)
            .ignore()
            .ltrim(&key, 0, HISTORY as isize - 1)
            .ignore()
            .expire(&key, 3600)
            .ignore()
            .zadd(self.nodes_key(), node, at)
            .ignore()
            .zrembyscore(self.nodes_key(), "-inf", at - 3600)
            .ignore()
            .query_async(&mut conn)
            .await;
        observe("stats_put", started, &r);
        Ok(r?)
    }

    async fn nodes_since(&self, since: i64, limit: usize) -> Result<Vec<NodeSnapshots>, SnapshotError> {
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let nodes: redis::RedisResult<Vec<(String, i64)>> =
            conn.zrangebyscore_withscores(self.nodes_key(), since, "+inf").await;
        observe("stats_nodes", started, &nodes);
        let mut out = Vec::new();
        for (node, updated_at) in nodes? {
            let started = Instant::now();
            let snapshots: redis::RedisResult<Vec<String>> =
                conn.lrange(self.node_key(&node), 0, limit.clamp(1, HISTORY) as isize - 1).await;
            observe("stats_history", started, &snapshots);
            out.push(NodeSnapshots { node, updated_at, snapshots: snapshots? });
        }
        out.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(out)
    }

    fn scope(&self) -> &'static str {
        "cluster"
    }

    async fn ping(&self) -> Option<(bool, f64)> {
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let r: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        observe("ping", started, &r);
        Some((r.is_ok(), started.elapsed().as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_keeps_an_hour_newest_first() {
        let store = InProcessSnapshots::default();
        for i in 0..(HISTORY as i64 + 5) {
            store.put("n1", i, format!("{i}")).await.expect("put");
        }
        let nodes = store.nodes_since(0, HISTORY).await.expect("read");
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].snapshots.len(), HISTORY);
        assert_eq!(nodes[0].snapshots[0], format!("{}", HISTORY + 4));
        assert_eq!(store.nodes_since(0, 3).await.expect("read")[0].snapshots.len(), 3, "only the newest");
        assert!(store.nodes_since(HISTORY as i64 + 5, HISTORY).await.expect("read").is_empty(), "nothing newer");
    }
}
