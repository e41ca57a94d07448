//! Who is online: a user is online while they have at least one live connection on any node.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

#[async_trait::async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Records a new connection; the user's live connections now (1: they just came online),
    /// or `None` when the store could not tell (it is unreachable: the connection is recorded
    /// again once it is back).
    async fn connect(&self, user: Uuid, connection: Uuid) -> Option<usize>;
    /// Records a closed connection; `true` when the user just went offline.
    async fn disconnect(&self, user: Uuid, connection: Uuid) -> bool;
    async fn online(&self, users: &[Uuid]) -> Vec<bool>;
    /// How many users are online (on this node for in-process, cluster-wide for Redis).
    async fn online_count(&self) -> usize;
    /// Forgets connections of nodes that stopped heartbeating; returns the users who went
    /// offline because of it. Called periodically by every node.
    async fn sweep(&self) -> Vec<Uuid> {
        Vec::new()
    }
    /// Whether the backing store answers (for `/readyz`).
    async fn ping(&self) -> Result<(), String> {
        Ok(())
    }
    fn name(&self) -> &'static str;
}

/// Presence for a single node.
#[derive(Default)]
pub struct InProcessPresence {
    connections: Mutex<HashMap<Uuid, Vec<Uuid>>>,
}

impl InProcessPresence {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Vec<Uuid>>> {
        self.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl PresenceStore for InProcessPresence {
    async fn connect(&self, user: Uuid, connection: Uuid) -> Option<usize> {
        let mut map = self.lock();
        let conns = map.entry(user).or_default();
        conns.push(connection);
        Some(conns.len())
    }

    async fn disconnect(&self, user: Uuid, connection: Uuid) -> bool {
        let mut map = self.lock();
        let Some(conns) = map.get_mut(&user) else {
            return false;
        };
        conns.retain(|c| *c != connection);
        if conns.is_empty() {
            map.remove(&user);
            true
        } else {
            false
        }
    }

    async fn online(&self, users: &[Uuid]) -> Vec<bool> {
        let map = self.lock();
        users.iter().map(|u| map.contains_key(u)).collect()
    }

    async fn online_count(&self) -> usize {
        self.lock().len()
    }

    fn name(&self) -> &'static str {
        "in-process"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn online_until_the_last_connection_closes() {
        let presence = InProcessPresence::default();
        let (user, phone, laptop) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(presence.connect(user, phone).await, Some(1));
        assert_eq!(presence.connect(user, laptop).await, Some(2));
        assert!(!presence.disconnect(user, phone).await);
        assert_eq!(presence.online(&[user]).await, vec![true]);
        assert!(presence.disconnect(user, laptop).await);
        assert_eq!(presence.online(&[user]).await, vec![false]);
    }
}
