//! Turns the nodes' stats snapshots into what the console shows: per-node figures, the
//! cluster's (sums, and percentiles from merged buckets), and the last hour for sparklines.

use syncchat_admin_ui::{Figures, NodeRow};

use crate::stats::{Buckets, Snapshot, merge_buckets, quantile};

/// Current rates and percentiles cover this much of the latest history.
pub const CURRENT_WINDOW_SECS: i64 = 30;
/// Sparkline resolution: the hour in 30-second steps.
pub const HISTORY_POINTS: i64 = 120;
const HISTORY_STEP_SECS: i64 = 30;

/// Counts and buckets added up over some snapshots (one node's interval, or a cluster's).
#[derive(Default)]
struct Acc {
    seconds: f64,
    connections: f64,
    subscriptions: f64,
    online_users: f64,
    messages: f64,
    deliveries: f64,
    requests: f64,
    server_errors: f64,
    delivery: Buckets,
    api: Buckets,
    db: Buckets,
    db_ok: Option<bool>,
    db_ping_ms: Option<f64>,
    redis_ok: Option<bool>,
    redis_ms: Option<f64>,
    healed: f64,
}

impl Acc {
    /// Adds a node's gauges (once per node): they add up across nodes.
    fn add_gauges(&mut self, s: &Snapshot) {
        self.connections += s.connections;
        self.subscriptions += s.subscriptions;
        // Online users are counted cluster-wide by every node (Redis) or by the only node.
        self.online_users = self.online_users.max(s.online_users);
    }

    /// Adds one interval's counts and buckets; health is the worst seen.
    fn add_counts(&mut self, s: &Snapshot) {
        self.messages += s.messages;
        self.deliveries += s.deliveries;
        self.healed += s.healed;
        self.requests += s.requests;
        self.server_errors += s.server_errors;
        merge_buckets(&mut self.delivery, &s.delivery);
        merge_buckets(&mut self.api, &s.api);
        merge_buckets(&mut self.db, &s.db);
        self.db_ok = Some(self.db_ok.unwrap_or(true) && s.db_ok);
        self.db_ping_ms = Some(self.db_ping_ms.unwrap_or(0.0).max(s.db_ping_ms));
        if let Some(ok) = s.redis_ok {
            self.redis_ok = Some(self.redis_ok.unwrap_or(true) && ok);
        }
        if let Some(ms) = s.redis_ms {
            self.redis_ms = Some(self.redis_ms.unwrap_or(0.0).max(ms));
        }
    }

    fn figures(&self) -> Figures {
        let per_sec = |n: f64| if self.seconds > 0.0 { n / self.seconds } else { 0.0 };
        let ms = |b: &Buckets, q: f64| quantile(b, q).map(|s| s * 1000.0);
        Figures {
            connections: self.connections,
            subscriptions: self.subscriptions,
            online_users: self.online_users,
            messages_per_sec: per_sec(self.messages),
            deliveries_per_sec: per_sec(self.deliveries),
            delivery_p50_ms: ms(&self.delivery, 0.5),
            delivery_p95_ms: ms(&self.delivery, 0.95),
            delivery_p99_ms: ms(&self.delivery, 0.99),
            api_p95_ms: ms(&self.api, 0.95),
            error_rate: (self.requests > 0.0).then(|| self.server_errors / self.requests),
            db_p95_ms: ms(&self.db, 0.95),
            db_ok: self.db_ok,
            db_ping_ms: self.db_ping_ms,
            redis_ok: self.redis_ok,
            redis_ms: self.redis_ms,
            healed_messages: self.healed,
        }
    }
}

/// What the overview shows, from every node's history (newest first per node).
pub struct Aggregated {
    pub cluster: Figures,
    pub nodes: Vec<NodeRow>,
    /// Oldest first, one point per 30 s; `None` where no node reported.
    pub history: Vec<Option<Figures>>,
}

/// `current_since`: nodes that reported after this (unix seconds) count as live.
pub fn aggregate(nodes: &[(String, i64, Vec<Snapshot>)], now: i64, current_since: i64) -> Aggregated {
    let mut cluster = Acc::default();
    let mut rows = Vec::new();
    for (node, updated_at, history) in nodes {
        let Some(latest) = history.first() else { continue };
        if *updated_at < current_since {
            continue;
        }
        // Current figures: gauges as last reported, rates and percentiles over the last
        // `CURRENT_WINDOW_SECS` (at least one interval), steadier than one interval alone.
        let mut own = Acc::default();
        own.add_gauges(latest);
        cluster.add_gauges(latest);
        for s in history.iter().take_while(|s| s.at > latest.at - CURRENT_WINDOW_SECS || std::ptr::eq(*s, latest)) {
            own.seconds += s.interval_secs;
            own.add_counts(s);
            cluster.add_counts(s);
        }
        // Nodes sample side by side over the same window: their rates add up.
        cluster.seconds = cluster.seconds.max(own.seconds);
        rows.push(NodeRow { node: node.clone(), seconds_ago: (now - updated_at).max(0), figures: own.figures() });
    }

    let start = now - HISTORY_POINTS * HISTORY_STEP_SECS;
    let mut steps: Vec<Acc> = (0..HISTORY_POINTS).map(|_| Acc::default()).collect();
    let mut seen = vec![false; HISTORY_POINTS as usize];
    for (_, _, history) in nodes {
        // Per node and step: counts add up, gauges take the node's latest value in the step.
        let mut latest_gauges: Vec<Option<&Snapshot>> = vec![None; HISTORY_POINTS as usize];
        for s in history {
            let Ok(step) = usize::try_from((s.at - start) / HISTORY_STEP_SECS) else { continue };
            let Some(acc) = steps.get_mut(step) else { continue };
            seen[step] = true;
            acc.add_counts(s);
            // Newest first: the first one seen in a step is the node's latest there.
            if latest_gauges[step].is_none() {
                latest_gauges[step] = Some(s);
            }
        }
        for (step, s) in latest_gauges.into_iter().enumerate() {
            if let Some(s) = s {
                steps[step].connections += s.connections;
                steps[step].subscriptions += s.subscriptions;
                steps[step].online_users = steps[step].online_users.max(s.online_users);
            }
        }
    }
    let history = steps
        .into_iter()
        .zip(seen)
        .map(|(mut acc, seen)| {
            seen.then(|| {
                acc.seconds = HISTORY_STEP_SECS as f64;
                acc.figures()
            })
        })
        .collect();
    Aggregated { cluster: cluster.figures(), nodes: rows, history }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(node: &str, at: i64, messages: f64, fast: f64, slow: f64) -> Snapshot {
        Snapshot {
            node: node.into(),
            at,
            interval_secs: 5.0,
            connections: 10.0,
            messages,
            deliveries: fast + slow,
            delivery: vec![(0.01, fast), (0.1, fast + slow), (f64::INFINITY, fast + slow)],
            db_ok: true,
            ..Snapshot::default()
        }
    }

    #[test]
    fn the_cluster_adds_nodes_up_and_merges_their_buckets() {
        let nodes = vec![
            ("a".to_owned(), 1000, vec![snap("a", 1000, 50.0, 100.0, 0.0)]),
            ("b".to_owned(), 998, vec![snap("b", 998, 25.0, 0.0, 100.0)]),
            ("gone".to_owned(), 500, vec![snap("gone", 500, 1000.0, 0.0, 0.0)]),
        ];
        let agg = aggregate(&nodes, 1001, 990);
        assert_eq!(agg.nodes.len(), 2, "a node silent for long is not current");
        assert_eq!(agg.cluster.connections, 20.0);
        assert_eq!(agg.cluster.messages_per_sec, 15.0);
        // Half the deliveries under 10 ms, half between 10 and 100 ms: p99 is near 100 ms,
        // which averaging the nodes' own p99s (10 ms and 99 ms) would not give.
        let p99 = agg.cluster.delivery_p99_ms.expect("p99");
        assert!(p99 > 95.0 && p99 <= 100.0, "{p99}");
        assert_eq!(agg.nodes[0].figures.messages_per_sec, 10.0);
        // Two intervals in the window: the rate is over both, gauges are the latest.
        let two = vec![("a".to_owned(), 1000, vec![snap("a", 1000, 50.0, 1.0, 0.0), snap("a", 995, 0.0, 1.0, 0.0)])];
        let agg = aggregate(&two, 1001, 990);
        assert_eq!((agg.cluster.messages_per_sec, agg.cluster.connections), (5.0, 10.0));
        assert_eq!(agg.history.len(), HISTORY_POINTS as usize);
        assert!(agg.history.last().and_then(Option::as_ref).is_some(), "the newest step has data");
        assert!(agg.history[0].is_none(), "nothing an hour ago");
    }
}
