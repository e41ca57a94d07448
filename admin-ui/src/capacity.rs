//! The capacity model: how many nodes a workload needs and which scaling phase of the guide
//! the deployment is in.
//!
//! Per-node capacity defaults to the scaling guide's per-node targets (10,000 connections,
//! 1,000 messages/s) until the load generator's saturation figures replace them; either way
//! it comes from configuration. Nodes are sized to run at 70 % of capacity at peak, and a
//! deployment past the single-server phase keeps one spare node (N+1) and at least three.

/// What one node can carry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeCapacity {
    pub connections: u64,
    pub messages_per_sec: f64,
}

impl Default for NodeCapacity {
    fn default() -> Self {
        NodeCapacity { connections: 10_000, messages_per_sec: 1_000.0 }
    }
}

/// A user base at its daily peak.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Workload {
    pub users: u64,
    /// Share of users online at the peak, 0-1.
    pub online_share: f64,
    /// Messages each online user sends per minute at the peak.
    pub messages_per_user_per_min: f64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload { users: 10_000, online_share: 0.1, messages_per_user_per_min: 1.0 }
    }
}

impl Workload {
    pub fn peak_connections(&self) -> u64 {
        (self.users as f64 * self.online_share.clamp(0.0, 1.0)).ceil() as u64
    }

    pub fn peak_messages_per_sec(&self) -> f64 {
        self.peak_connections() as f64 * self.messages_per_user_per_min.max(0.0) / 60.0
    }
}

/// The scaling phases of the guide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Up to ~1K users: one server, embedded or single database.
    SingleServer = 1,
    /// Up to ~10K users: several nodes behind a load balancer, Redis for fan-out and presence.
    ScaledOut = 2,
    /// Up to ~100K users: services split (real-time, API, files), read replicas, caches.
    SplitServices = 3,
    /// Beyond: several regions.
    MultiRegion = 4,
}

impl Phase {
    pub fn for_users(users: u64) -> Phase {
        match users {
            0..=1_000 => Phase::SingleServer,
            1_001..=10_000 => Phase::ScaledOut,
            10_001..=100_000 => Phase::SplitServices,
            _ => Phase::MultiRegion,
        }
    }

    pub fn number(self) -> u8 {
        self as u8
    }

    pub fn label(self) -> &'static str {
        match self {
            Phase::SingleServer => "Phase 1: single server (up to ~1K users)",
            Phase::ScaledOut => "Phase 2: several nodes + Redis (up to ~10K users)",
            Phase::SplitServices => "Phase 3: split services (up to ~100K users)",
            Phase::MultiRegion => "Phase 4: multi-region (beyond ~100K users)",
        }
    }

    /// The guide's recommended next step from this phase.
    pub fn next_step(self) -> &'static str {
        match self {
            Phase::SingleServer => {
                "Move storage to Postgres and add Redis (REDIS_URL) so a second node can join behind a load balancer."
            }
            Phase::ScaledOut => {
                "Add nodes as connections grow; next, split the real-time gateway from the API, add Postgres read replicas and caches."
            }
            Phase::SplitServices => {
                "Shard fan-out (Redis Cluster sharded pub/sub), partition messages, and prepare a second region."
            }
            Phase::MultiRegion => "Run regions active-active with regional fan-out and a global directory of users.",
        }
    }
}

/// Target utilisation at the peak: the rest is headroom for bursts and a failed node.
pub const TARGET_UTILISATION: f64 = 0.7;

/// How a workload maps onto nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    pub nodes: u64,
    pub phase: Phase,
    /// Share of the fleet's connection capacity in use at the peak.
    pub connection_utilisation: f64,
    /// Share of the fleet's message capacity in use at the peak.
    pub message_utilisation: f64,
}

impl Plan {
    pub fn for_workload(workload: &Workload, capacity: &NodeCapacity) -> Plan {
        let phase = Phase::for_users(workload.users);
        let by_connections =
            workload.peak_connections() as f64 / (capacity.connections.max(1) as f64 * TARGET_UTILISATION);
        let by_messages = workload.peak_messages_per_sec() / (capacity.messages_per_sec.max(1.0) * TARGET_UTILISATION);
        let by_load = by_connections.max(by_messages).ceil().max(1.0) as u64;
        let nodes = match phase {
            Phase::SingleServer => by_load,
            _ => (by_load + 1).max(3),
        };
        Plan {
            nodes,
            phase,
            connection_utilisation: workload.peak_connections() as f64 / (nodes * capacity.connections.max(1)) as f64,
            message_utilisation: workload.peak_messages_per_sec() / (nodes as f64 * capacity.messages_per_sec.max(1.0)),
        }
    }

    /// A multi-node deployment needs Redis for fan-out and presence.
    pub fn needs_redis(&self) -> bool {
        self.nodes > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(users: u64) -> Plan {
        Plan::for_workload(&Workload { users, ..Workload::default() }, &NodeCapacity::default())
    }

    #[test]
    fn phases_change_at_the_guide_boundaries() {
        assert_eq!(Phase::for_users(1_000), Phase::SingleServer);
        assert_eq!(Phase::for_users(1_001), Phase::ScaledOut);
        assert_eq!(Phase::for_users(10_000), Phase::ScaledOut);
        assert_eq!(Phase::for_users(10_001), Phase::SplitServices);
        assert_eq!(Phase::for_users(100_000), Phase::SplitServices);
        assert_eq!(Phase::for_users(100_001), Phase::MultiRegion);
    }

    #[test]
    fn node_counts_at_the_phase_boundaries() {
        assert_eq!(plan(1_000).nodes, 1, "one server up to ~1K users");
        assert_eq!(plan(1_001).nodes, 3, "a scaled-out deployment runs at least three nodes");
        assert_eq!(plan(10_000).nodes, 3, "the guide's 10K-user table: 3 servers");
        // 100K users: 10,000 peak connections (2 nodes at 70 %), 167 msg/s: 2 + 1 spare.
        assert_eq!(plan(100_000).nodes, 3);
        // 1M users: 100,000 connections need 15 nodes at 70 %, plus a spare.
        assert_eq!(plan(1_000_000).nodes, 16);
    }

    #[test]
    fn a_chatty_workload_is_sized_by_messages() {
        let chatty = Workload { users: 5_000, online_share: 0.5, messages_per_user_per_min: 30.0 };
        // 2,500 online × 30/min = 1,250 msg/s → 2 nodes at 70 % of 1,000/s, + 1 spare.
        let plan = Plan::for_workload(&chatty, &NodeCapacity::default());
        assert_eq!(plan.nodes, 3);
        assert!(plan.message_utilisation > plan.connection_utilisation);
        assert!(plan.needs_redis());
    }
}
