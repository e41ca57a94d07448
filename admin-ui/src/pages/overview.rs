//! Overview: live figures for the cluster and each node, against the scaling guide's
//! targets, with a sparkline of the last hour. The figures panel refreshes itself.

use leptos::prelude::*;

use crate::capacity::NodeCapacity;
use crate::charts::sparkline;
use crate::chrome::{Chrome, Section, Status, badge, console_page, fmt_count, fmt_ms, fmt_pct, fmt_rate, fragment};

/// The guide's targets.
pub const DELIVERY_P99_TARGET_MS: f64 = 100.0;
pub const API_P95_TARGET_MS: f64 = 200.0;
pub const DB_P95_TARGET_MS: f64 = 50.0;
pub const ERROR_RATE_TARGET: f64 = 0.01;

/// Where the live panel's fragment is served.
pub const LIVE_PATH: &str = "/admin/live/overview";

/// Figures for one node or for the cluster over the last sampling interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    pub connections: f64,
    pub subscriptions: f64,
    pub online_users: f64,
    pub messages_per_sec: f64,
    pub deliveries_per_sec: f64,
    pub delivery_p50_ms: Option<f64>,
    pub delivery_p95_ms: Option<f64>,
    pub delivery_p99_ms: Option<f64>,
    pub api_p95_ms: Option<f64>,
    /// Share of HTTP requests answered 5xx.
    pub error_rate: Option<f64>,
    pub db_p95_ms: Option<f64>,
    pub db_ok: Option<bool>,
    pub db_ping_ms: Option<f64>,
    /// `None` without Redis.
    pub redis_ok: Option<bool>,
    pub redis_ms: Option<f64>,
    /// Messages the bus between nodes lost and nodes brought back from storage, in the window.
    pub healed_messages: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeRow {
    pub node: String,
    pub seconds_ago: i64,
    pub figures: Figures,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LiveOverview {
    /// True when every node's figures are here (Redis); false: this node alone.
    pub cluster_wide: bool,
    pub capacity: NodeCapacity,
    pub cluster: Figures,
    pub nodes: Vec<NodeRow>,
    /// The last hour, oldest first.
    pub history: Vec<Option<Figures>>,
    pub users: u64,
    pub conversations: u64,
    pub messages: u64,
    pub sample_secs: u64,
    pub generated_at: String,
}

struct Row {
    key: &'static str,
    label: &'static str,
    value: String,
    target: String,
    status: Status,
    series: Vec<Option<f64>>,
}

fn rows(live: &LiveOverview) -> Vec<Row> {
    let c = &live.cluster;
    let nodes = live.nodes.len().max(1) as f64;
    let conn_capacity = nodes * live.capacity.connections as f64;
    let msg_capacity = nodes * live.capacity.messages_per_sec;
    let series =
        |f: fn(&Figures) -> Option<f64>| live.history.iter().map(|h| h.as_ref().and_then(f)).collect::<Vec<_>>();
    vec![
        Row {
            key: "connections",
            label: "Active connections",
            value: fmt_count(c.connections),
            target: format!(
                "{} per node ({} in all)",
                fmt_count(live.capacity.connections as f64),
                fmt_count(conn_capacity)
            ),
            status: Status::utilisation(c.connections / conn_capacity.max(1.0)),
            series: series(|f| Some(f.connections)),
        },
        Row {
            key: "subscriptions",
            label: "Subscriptions",
            value: fmt_count(c.subscriptions),
            target: String::new(),
            status: Status::None,
            series: series(|f| Some(f.subscriptions)),
        },
        Row {
            key: "messages_per_sec",
            label: "Messages/s",
            value: fmt_rate(c.messages_per_sec),
            target: format!("{} per node", fmt_rate(live.capacity.messages_per_sec)),
            status: Status::utilisation(c.messages_per_sec / msg_capacity.max(1.0)),
            series: series(|f| Some(f.messages_per_sec)),
        },
        Row {
            key: "deliveries_per_sec",
            label: "Deliveries/s",
            value: fmt_rate(c.deliveries_per_sec),
            target: String::new(),
            status: Status::None,
            series: series(|f| Some(f.deliveries_per_sec)),
        },
        Row {
            key: "delivery_latency",
            label: "Delivery latency p50 / p95 / p99",
            value: format!(
                "{} / {} / {}",
                fmt_ms(c.delivery_p50_ms),
                fmt_ms(c.delivery_p95_ms),
                fmt_ms(c.delivery_p99_ms)
            ),
            target: format!("p99 < {DELIVERY_P99_TARGET_MS:.0} ms"),
            status: Status::below(c.delivery_p99_ms, DELIVERY_P99_TARGET_MS),
            series: series(|f| f.delivery_p99_ms),
        },
        Row {
            key: "api_latency",
            label: "API latency p95",
            value: fmt_ms(c.api_p95_ms),
            target: format!("< {API_P95_TARGET_MS:.0} ms"),
            status: Status::below(c.api_p95_ms, API_P95_TARGET_MS),
            series: series(|f| f.api_p95_ms),
        },
        Row {
            key: "error_rate",
            label: "Error rate (5xx)",
            value: fmt_pct(c.error_rate),
            target: format!("< {}", fmt_pct(Some(ERROR_RATE_TARGET))),
            status: Status::below(c.error_rate, ERROR_RATE_TARGET),
            series: series(|f| f.error_rate),
        },
        Row {
            key: "database",
            label: "Database query p95 (health)",
            value: format!(
                "{} ({})",
                fmt_ms(c.db_p95_ms),
                match c.db_ok {
                    Some(true) => "up",
                    Some(false) => "DOWN",
                    None => "unknown",
                }
            ),
            target: format!("< {DB_P95_TARGET_MS:.0} ms"),
            status: if c.db_ok == Some(false) { Status::Bad } else { Status::below(c.db_p95_ms, DB_P95_TARGET_MS) },
            series: series(|f| f.db_p95_ms),
        },
        Row {
            key: "redis",
            label: "Redis (health)",
            value: match c.redis_ok {
                None => "not configured (in-process)".into(),
                Some(true) if c.healed_messages > 0.0 => format!(
                    "up, {}; {} messages the bus lost were delivered from storage",
                    fmt_ms(c.redis_ms),
                    fmt_count(c.healed_messages)
                ),
                Some(true) => format!("up, {}", fmt_ms(c.redis_ms)),
                Some(false) => {
                    "DOWN: each node delivers its own messages and catches up from storage every second".into()
                }
            },
            target: "reachable".into(),
            status: Status::healthy(c.redis_ok),
            series: series(|f| f.redis_ms),
        },
        Row {
            key: "online_users",
            label: "Online users",
            value: fmt_count(c.online_users),
            target: String::new(),
            status: Status::None,
            series: series(|f| Some(f.online_users)),
        },
    ]
}

/// The live panel: what `/admin/live/overview` returns and the page embeds.
pub fn live_panel(live: &LiveOverview) -> impl IntoView + use<> {
    let scope = if live.cluster_wide {
        format!("Cluster: {} node(s) reporting through Redis.", live.nodes.len())
    } else {
        "This node only: no Redis is configured, so other nodes' figures cannot be seen here.".to_owned()
    };
    let waiting = live.nodes.is_empty().then(|| {
        view! { <p class="muted">{format!("The first figures arrive within {} s of start-up.", live.sample_secs)}</p> }
    });
    let figure = |label: &'static str, value: u64| {
        view! { <div class="card figure" data-figure=label><span>{label}</span><b>{fmt_count(value as f64)}</b></div> }
    };
    let table_rows = rows(live)
        .into_iter()
        .map(|r| {
            view! {
                <tr data-row=r.key>
                    <th scope="row">{r.label}</th>
                    <td class="num" data-value=r.key>{r.value}</td>
                    <td class="muted">{r.target}</td>
                    <td>{badge(r.status)}</td>
                    <td>{sparkline(r.label, &r.series)}</td>
                </tr>
            }
        })
        .collect_view();
    let node_rows = live
        .nodes
        .iter()
        .map(|n| {
            let f = &n.figures;
            view! {
                <tr data-node=n.node.clone()>
                    <td>{n.node.clone()}</td>
                    <td class="num">{format!("{} s ago", n.seconds_ago)}</td>
                    <td class="num">{fmt_count(f.connections)}</td>
                    <td class="num">{fmt_count(f.subscriptions)}</td>
                    <td class="num">{fmt_rate(f.messages_per_sec)}</td>
                    <td class="num">{fmt_ms(f.delivery_p99_ms)} " " {badge(Status::below(f.delivery_p99_ms, DELIVERY_P99_TARGET_MS))}</td>
                    <td class="num">{fmt_ms(f.api_p95_ms)} " " {badge(Status::below(f.api_p95_ms, API_P95_TARGET_MS))}</td>
                    <td class="num">{fmt_pct(f.error_rate)}</td>
                    <td class="num">{fmt_ms(f.db_p95_ms)} " " {badge(if f.db_ok == Some(false) { Status::Bad } else { Status::below(f.db_p95_ms, DB_P95_TARGET_MS) })}</td>
                    <td>{badge(Status::healthy(f.redis_ok))}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="muted" data-scope=if live.cluster_wide { "cluster" } else { "node" }>{scope} " Updated " {live.generated_at.clone()} "."</p>
        {waiting}
        <div class="figures">
            {figure("Users", live.users)}
            {figure("Conversations", live.conversations)}
            {figure("Messages", live.messages)}
        </div>
        <div class="card">
            <h2>"Against the targets"</h2>
            <table>
                <thead><tr><th>"Figure"</th><th>"Now"</th><th>"Target"</th><th>"Status"</th><th>"Last hour"</th></tr></thead>
                <tbody>{table_rows}</tbody>
            </table>
        </div>
        <div class="card">
            <h2>"Nodes"</h2>
            <table>
                <thead><tr><th>"Node"</th><th>"Reported"</th><th>"Connections"</th><th>"Subscriptions"</th><th>"Messages/s"</th>
                    <th>"Delivery p99"</th><th>"API p95"</th><th>"Errors"</th><th>"DB p95"</th><th>"Redis"</th></tr></thead>
                <tbody>{node_rows}</tbody>
            </table>
        </div>
    }
}

pub fn render_overview_page(chrome: &Chrome, live: &LiveOverview) -> String {
    let panel = live_panel(live);
    console_page(
        chrome,
        Section::Overview,
        Some(10),
        view! {
            <h1>"Overview"</h1>
            <section id="live" data-refresh=LIVE_PATH data-every="3000" aria-live="polite">{panel}</section>
            <p class="muted">"Figures refresh every 3 s. Prometheus metrics: " <a href="/metrics">"/metrics"</a> "."</p>
        },
    )
}

pub fn render_overview_fragment(live: &LiveOverview) -> String {
    fragment(live_panel(live))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn chrome() -> Chrome {
        Chrome { version: "1.0".into(), node_id: "<n1>".into(), admin: "root".into(), csrf: "csrf-x".into() }
    }

    fn live() -> LiveOverview {
        let busy = Figures {
            connections: 12_000.0,
            messages_per_sec: 40.0,
            delivery_p99_ms: Some(150.0),
            api_p95_ms: Some(20.0),
            db_ok: Some(true),
            db_p95_ms: Some(2.0),
            error_rate: Some(0.0),
            ..Figures::default()
        };
        LiveOverview {
            cluster_wide: false,
            capacity: NodeCapacity::default(),
            cluster: busy.clone(),
            nodes: vec![NodeRow { node: "n1".into(), seconds_ago: 2, figures: busy.clone() }],
            history: vec![None, Some(busy.clone()), Some(busy)],
            users: 12,
            conversations: 3,
            messages: 4_567,
            sample_secs: 5,
            generated_at: "12:00:00".into(),
        }
    }

    #[test]
    fn figures_are_judged_against_the_targets() {
        let html = render_overview_page(&chrome(), &live());
        let row = |key: &str| {
            html.split(&format!("data-row=\"{key}\""))
                .nth(1)
                .and_then(|r| r.split("</tr>").next())
                .unwrap_or("")
                .to_owned()
        };
        assert!(row("connections").contains("data-status=\"bad\""), "12,000 connections on one 10,000 node");
        assert!(row("delivery_latency").contains("data-status=\"bad\""), "p99 150 ms > 100 ms");
        assert!(row("api_latency").contains("data-status=\"good\""));
        assert!(row("database").contains("data-status=\"good\""));
        assert!(row("redis").contains("not configured"));
        assert!(html.contains("<b>4,567</b>"));
        assert!(html.contains("This node only"));
        assert!(html.contains("<polyline"));
        assert!(!html.contains("<n1>"), "text is escaped");
        assert!(html.contains("data-refresh=\"/admin/live/overview\""));
    }

    #[test]
    fn the_redis_row_tells_what_an_outage_costs() {
        let mut overview = live();
        overview.cluster.redis_ok = Some(true);
        overview.cluster.redis_ms = Some(0.4);
        overview.cluster.healed_messages = 12.0;
        let html = render_overview_page(&chrome(), &overview);
        assert!(html.contains("12 messages the bus lost were delivered from storage"), "{html}");
        overview.cluster.redis_ok = Some(false);
        let html = render_overview_page(&chrome(), &overview);
        assert!(html.contains("catches up from storage every second"));
    }

    #[test]
    fn the_fragment_is_the_panel_alone() {
        let html = render_overview_fragment(&live());
        assert!(!html.contains("<html"));
        assert!(html.contains("Against the targets"));
    }
}
