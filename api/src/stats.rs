//! Live figures for the admin console: every few seconds each node reads its own
//! `/metrics` rendering, turns counters and histograms into rates and percentiles over the
//! interval, checks the database and Redis, and leaves the snapshot in the
//! [`SnapshotStore`] (Redis with several nodes, so any node's console shows the cluster).
//!
//! Reading the Prometheus rendering keeps one source of truth: the console shows the same
//! numbers a Prometheus scrape would, computed the same way (`rate`, `histogram_quantile`).
//! Histogram buckets travel in the snapshot so cluster percentiles are computed from
//! merged buckets, not averaged percentiles.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use syncchat_realtime::{NodeSnapshots, SnapshotStore};

use crate::metrics as m;

/// Cumulative histogram buckets: (upper bound, count), ascending, ending with +Inf.
pub type Buckets = Vec<(f64, f64)>;

/// One node's figures over one sampling interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub node: String,
    /// Unix seconds when taken.
    pub at: i64,
    pub interval_secs: f64,
    pub connections: f64,
    pub subscriptions: f64,
    pub online_users: f64,
    /// Counts over the interval.
    pub messages: f64,
    pub deliveries: f64,
    pub requests: f64,
    pub server_errors: f64,
    #[serde(with = "json_buckets")]
    pub delivery: Buckets,
    #[serde(with = "json_buckets")]
    pub api: Buckets,
    #[serde(with = "json_buckets")]
    pub db: Buckets,
    pub db_ok: bool,
    pub db_ping_ms: f64,
    /// `None` without Redis.
    pub redis_ok: Option<bool>,
    pub redis_ms: Option<f64>,
    /// Messages the bus between nodes lost and the healer brought back from storage, over
    /// the interval.
    #[serde(default)]
    pub healed: f64,
}

/// JSON has no infinity: the +Inf bucket's bound travels as `null`.
mod json_buckets {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(buckets: &super::Buckets, s: S) -> Result<S::Ok, S::Error> {
        let finite: Vec<(Option<f64>, f64)> =
            buckets.iter().map(|(le, v)| (le.is_finite().then_some(*le), *v)).collect();
        finite.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<super::Buckets, D::Error> {
        let raw: Vec<(Option<f64>, f64)> = Vec::deserialize(d)?;
        Ok(raw.into_iter().map(|(le, v)| (le.unwrap_or(f64::INFINITY), v)).collect())
    }
}

/// Counter and histogram totals read from one rendering.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub connections: f64,
    pub subscriptions: f64,
    pub online_users: f64,
    pub messages: f64,
    pub deliveries: f64,
    pub requests: f64,
    pub server_errors: f64,
    pub healed: f64,
    pub delivery: Buckets,
    pub api: Buckets,
    pub db: Buckets,
}

/// Reads the figures the console needs from Prometheus text exposition.
pub fn parse_totals(text: &str) -> Totals {
    let mut t = Totals::default();
    let mut delivery = BTreeMap::new();
    let mut api = BTreeMap::new();
    let mut db = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.trim().parse::<f64>() else { continue };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let label = |key: &str| label_value(labels, key);
        match name {
            m::WS_CONNECTIONS => t.connections += value,
            m::SUBSCRIPTIONS => t.subscriptions += value,
            m::ONLINE_USERS => t.online_users = t.online_users.max(value),
            m::MESSAGES if label("kind").as_deref() == Some("sent") => t.messages += value,
            m::DELIVERIES => t.deliveries += value,
            m::BUS_HEALED_MESSAGES => t.healed += value,
            m::HTTP_REQUESTS => {
                t.requests += value;
                if label("status_class").as_deref() == Some("5xx") {
                    t.server_errors += value;
                }
            }
            _ => {
                let target = match name.strip_suffix("_bucket") {
                    Some(m::DELIVERY_LATENCY) => &mut delivery,
                    Some(m::HTTP_DURATION) => &mut api,
                    Some(m::DB_QUERY_DURATION) => &mut db,
                    _ => continue,
                };
                let le = match label("le").as_deref() {
                    Some("+Inf") => f64::INFINITY,
                    Some(v) => match v.parse::<f64>() {
                        Ok(v) => v,
                        Err(_) => continue,
                    },
                    None => continue,
                };
                *target.entry(OrderedBound(le)).or_insert(0.0) += value;
            }
        }
    }
    let flatten = |map: BTreeMap<OrderedBound, f64>| map.into_iter().map(|(k, v)| (k.0, v)).collect();
    t.delivery = flatten(delivery);
    t.api = flatten(api);
    t.db = flatten(db);
    t
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct OrderedBound(f64);
impl Eq for OrderedBound {}
impl PartialOrd for OrderedBound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderedBound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

fn label_value(labels: &str, key: &str) -> Option<String> {
    let mut rest = labels;
    while !rest.is_empty() {
        let (k, after) = rest.split_once("=\"")?;
        // Values may hold escaped quotes; find the closing one.
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, next)) = chars.next() {
                        value.push(next);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        if k.trim_start_matches(',').trim() == key {
            return Some(value);
        }
        rest = after.get(end..).unwrap_or("").trim_start_matches(',');
    }
    None
}

/// `later - earlier` per bucket (counters restart from zero only with the process).
fn bucket_delta(later: &Buckets, earlier: &Buckets) -> Buckets {
    later
        .iter()
        .map(|(le, v)| {
            let before = earlier.iter().find(|(l, _)| l == le).map_or(0.0, |(_, b)| *b);
            (*le, (v - before).max(0.0))
        })
        .collect()
}

/// Adds bucket counts with the same bounds (every node uses the same buckets).
pub fn merge_buckets(into: &mut Buckets, other: &Buckets) {
    for (le, v) in other {
        match into.iter_mut().find(|(l, _)| l == le) {
            Some((_, total)) => *total += v,
            None => into.push((*le, *v)),
        }
    }
    into.sort_by(|a, b| a.0.total_cmp(&b.0));
}

/// The `q` quantile of cumulative buckets, interpolated within a bucket as Prometheus'
/// `histogram_quantile` does. `None` when nothing was observed.
pub fn quantile(buckets: &Buckets, q: f64) -> Option<f64> {
    let total = buckets.last().map(|(_, v)| *v)?;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev_bound = 0.0;
    let mut prev_count = 0.0;
    for (le, count) in buckets {
        if *count >= rank {
            if le.is_infinite() {
                return Some(prev_bound);
            }
            let in_bucket = count - prev_count;
            let fraction = if in_bucket > 0.0 { (rank - prev_count) / in_bucket } else { 1.0 };
            return Some(prev_bound + (le - prev_bound) * fraction);
        }
        prev_bound = *le;
        prev_count = *count;
    }
    Some(prev_bound)
}

/// Takes a snapshot every `interval` and stores it.
pub struct Sampler {
    pub node: String,
    pub prometheus: PrometheusHandle,
    pub db: DatabaseConnection,
    pub store: Arc<dyn SnapshotStore>,
    pub interval: Duration,
}

impl Sampler {
    pub fn spawn(self, background: &crate::background::Background) {
        let stop = background.token();
        background.spawn("stats_sampler", async move {
            let mut previous = (Instant::now(), parse_totals(&self.prometheus.render()));
            let mut ticker = tokio::time::interval(self.interval);
            ticker.tick().await;
            while crate::background::next_tick(&mut ticker, &stop).await {
                let now = (Instant::now(), parse_totals(&self.prometheus.render()));
                let ping_started = Instant::now();
                let db_ok = self.db.ping().await.is_ok();
                let db_ping_ms = ping_started.elapsed().as_secs_f64() * 1000.0;
                let redis = self.store.ping().await.map(|(ok, secs)| (ok, secs * 1000.0));
                let snapshot = snapshot_between(&self.node, &previous, &now, db_ok, db_ping_ms, redis);
                previous = now;
                let json = match serde_json::to_string(&snapshot) {
                    Ok(json) => json,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not encode the stats snapshot");
                        continue;
                    }
                };
                if let Err(e) = self.store.put(&self.node, snapshot.at, json).await {
                    tracing::warn!(error = %e, "could not store the stats snapshot");
                }
            }
        });
    }
}

fn snapshot_between(
    node: &str,
    (t0, before): &(Instant, Totals),
    (t1, after): &(Instant, Totals),
    db_ok: bool,
    db_ping_ms: f64,
    redis: Option<(bool, f64)>,
) -> Snapshot {
    Snapshot {
        node: node.to_owned(),
        at: chrono::Utc::now().timestamp(),
        interval_secs: t1.duration_since(*t0).as_secs_f64().max(0.001),
        connections: after.connections,
        subscriptions: after.subscriptions,
        online_users: after.online_users,
        messages: (after.messages - before.messages).max(0.0),
        deliveries: (after.deliveries - before.deliveries).max(0.0),
        requests: (after.requests - before.requests).max(0.0),
        server_errors: (after.server_errors - before.server_errors).max(0.0),
        delivery: bucket_delta(&after.delivery, &before.delivery),
        api: bucket_delta(&after.api, &before.api),
        db: bucket_delta(&after.db, &before.db),
        db_ok,
        db_ping_ms,
        redis_ok: redis.map(|(ok, _)| ok),
        redis_ms: redis.map(|(_, ms)| ms),
        healed: (after.healed - before.healed).max(0.0),
    }
}

/// The snapshots a console shows: every reporting node's history, decoded.
pub fn decode(nodes: Vec<NodeSnapshots>) -> Vec<(String, i64, Vec<Snapshot>)> {
    nodes
        .into_iter()
        .map(|n| {
            let history = n.snapshots.iter().filter_map(|s| serde_json::from_str::<Snapshot>(s).ok()).collect();
            (n.node, n.updated_at, history)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE syncchat_websocket_connections gauge
syncchat_websocket_connections{node="a"} 3
syncchat_subscriptions{node="a"} 5
syncchat_messages_total{kind="sent",node="a"} 10
syncchat_messages_total{kind="deleted",node="a"} 4
syncchat_http_requests_total{route="/graphql",method="POST",status_class="2xx",node="a"} 90
syncchat_http_requests_total{route="/graphql",method="POST",status_class="5xx",node="a"} 10
syncchat_delivery_latency_seconds_bucket{node="a",le="0.001"} 0
syncchat_delivery_latency_seconds_bucket{node="a",le="0.01"} 80
syncchat_delivery_latency_seconds_bucket{node="a",le="0.1"} 100
syncchat_delivery_latency_seconds_bucket{node="a",le="+Inf"} 100
syncchat_http_request_duration_seconds_bucket{route="/a \"q\"",method="GET",node="a",le="0.1"} 2
syncchat_http_request_duration_seconds_bucket{route="/b",method="GET",node="a",le="0.1"} 3
syncchat_http_request_duration_seconds_bucket{route="/b",method="GET",node="a",le="+Inf"} 4
"#;

    #[test]
    fn reads_gauges_counters_and_merged_buckets() {
        let t = parse_totals(TEXT);
        assert_eq!((t.connections, t.subscriptions, t.messages), (3.0, 5.0, 10.0));
        assert_eq!((t.requests, t.server_errors), (100.0, 10.0));
        assert_eq!(t.api, vec![(0.1, 5.0), (f64::INFINITY, 4.0)]);
        assert_eq!(t.delivery.len(), 4);
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let t = parse_totals(TEXT);
        // 80 of 100 below 10 ms: the median is 5/8 of the way from 1 ms to 10 ms.
        let p50 = quantile(&t.delivery, 0.5).expect("observed");
        assert!((p50 - 0.001 - 0.009 * 50.0 / 80.0).abs() < 1e-9, "{p50}");
        let p99 = quantile(&t.delivery, 0.99).expect("observed");
        assert!(p99 > 0.01 && p99 <= 0.1, "{p99}");
        assert_eq!(quantile(&vec![(0.1, 0.0), (f64::INFINITY, 0.0)], 0.5), None);
    }

    #[test]
    fn intervals_count_only_what_happened_in_them() {
        let before = parse_totals(TEXT);
        let after = parse_totals(&TEXT.replace("kind=\"sent\",node=\"a\"} 10", "kind=\"sent\",node=\"a\"} 25"));
        let t0 = Instant::now();
        let s = snapshot_between("a", &(t0, before), &(t0 + Duration::from_secs(5), after), true, 1.0, None);
        assert_eq!(s.messages, 15.0);
        assert_eq!(s.interval_secs, 5.0);
        assert_eq!(quantile(&s.delivery, 0.5), None, "no new deliveries");
        let json = serde_json::to_string(&s).expect("snapshots travel as JSON");
        assert_eq!(serde_json::from_str::<Snapshot>(&json).expect("and come back"), s);
    }
}
