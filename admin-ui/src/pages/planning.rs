//! Capacity and cost: the planning pages. Both take the same inputs (users, share online
//! at the peak, messages per user per minute) in a GET form, so a link reproduces a view;
//! with the console script the results recompute as inputs change.

use leptos::prelude::*;

use crate::capacity::{NodeCapacity, Phase, Plan, Workload};
use crate::charts::gauge;
use crate::chrome::{Chrome, Section, Status, badge, console_page, fmt_count, fmt_money, fmt_rate, fragment};
use crate::cost::{UnitPrices, monthly_cost};

pub const CAPACITY_LIVE_PATH: &str = "/admin/capacity/results";
pub const COST_LIVE_PATH: &str = "/admin/cost/results";

/// What the admin asks about.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanningInputs {
    /// Users today (defaults to the registered count).
    pub users: u64,
    pub projected_users: u64,
    /// Share online at the daily peak, in percent.
    pub online_pct: f64,
    pub messages_per_user_per_min: f64,
}

impl PlanningInputs {
    pub fn workload(&self, users: u64) -> Workload {
        Workload {
            users,
            online_share: (self.online_pct / 100.0).clamp(0.0, 1.0),
            messages_per_user_per_min: self.messages_per_user_per_min.max(0.0),
        }
    }
}

/// The deployment as it runs now.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    pub registered_users: u64,
    pub nodes_reporting: u64,
    pub redis: bool,
    pub connections_now: f64,
    pub messages_per_sec_now: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Planning {
    pub inputs: PlanningInputs,
    pub deployment: Deployment,
    pub capacity: NodeCapacity,
    /// Where the per-node capacity comes from (config file, defaults).
    pub capacity_source: String,
    pub prices: UnitPrices,
    pub prices_source: String,
}

fn number_input(name: &'static str, label: &'static str, value: String, step: &'static str) -> impl IntoView {
    view! { <label>{label} " " <input type="number" name=name value=value min="0" step=step/></label> }
}

fn workload_inputs(i: &PlanningInputs) -> impl IntoView + use<> {
    view! {
        {number_input("users", "Users now", i.users.to_string(), "1")}
        {number_input("projected", "Projected users", i.projected_users.to_string(), "1")}
        {number_input("online_pct", "Online at the peak (%)", i.online_pct.to_string(), "any")}
        {number_input("msgs_per_min", "Messages per online user per minute", i.messages_per_user_per_min.to_string(), "any")}
    }
}

fn capacity_results(p: &Planning) -> impl IntoView + use<> {
    let d = &p.deployment;
    let nodes = d.nodes_reporting.max(1);
    let conn_share = d.connections_now / (nodes * p.capacity.connections.max(1)) as f64;
    let msg_share = d.messages_per_sec_now / (nodes as f64 * p.capacity.messages_per_sec.max(1.0));
    let now_plan = Plan::for_workload(&p.inputs.workload(p.inputs.users), &p.capacity);
    let projected = p.inputs.workload(p.inputs.projected_users);
    let projected_plan = Plan::for_workload(&projected, &p.capacity);
    let phase = Phase::for_users(d.registered_users.max(p.inputs.users));
    let topology = if d.redis {
        format!("{nodes} node(s) sharing Redis")
    } else {
        format!("{nodes} node, in-process fan-out (no Redis)")
    };
    let plan_row = |label: &'static str, key: &'static str, w: Workload, plan: Plan| {
        view! {
            <tr data-plan=key>
                <th scope="row">{label}</th>
                <td class="num">{fmt_count(w.users as f64)}</td>
                <td class="num">{fmt_count(w.peak_connections() as f64)}</td>
                <td class="num">{fmt_rate(w.peak_messages_per_sec())}</td>
                <td class="num" data-nodes=key><b>{plan.nodes}</b></td>
                <td>{format!("{:.0} % / {:.0} %", plan.connection_utilisation * 100.0, plan.message_utilisation * 100.0)}</td>
                <td>{plan.phase.label()}</td>
            </tr>
        }
    };
    view! {
        <div class="grid2">
            <div class="card">
                <h2>"Now"</h2>
                <p>"Connections: " <b data-figure="connections">{fmt_count(d.connections_now)}</b> " of "
                    {fmt_count((nodes * p.capacity.connections) as f64)} " " {badge(Status::utilisation(conn_share))}</p>
                {gauge("Connection capacity in use", conn_share)}
                <p>"Headroom: " {fmt_count(((nodes * p.capacity.connections) as f64 - d.connections_now).max(0.0))} " connections"</p>
                <p>"Messages/s: " <b>{fmt_rate(d.messages_per_sec_now)}</b> " of " {fmt_rate(nodes as f64 * p.capacity.messages_per_sec)}
                    " " {badge(Status::utilisation(msg_share))}</p>
                {gauge("Message capacity in use", msg_share)}
                <p>"Headroom: " {fmt_rate((nodes as f64 * p.capacity.messages_per_sec - d.messages_per_sec_now).max(0.0))}</p>
            </div>
            <div class="card" data-phase=phase.number().to_string()>
                <h2>"Scaling phase"</h2>
                <p><b>{phase.label()}</b></p>
                <p>{format!("{} registered users; {topology}.", fmt_count(d.registered_users as f64))}</p>
                <p>"Next step: " {phase.next_step()}</p>
            </div>
        </div>
        <div class="card">
            <h2>"Nodes needed"</h2>
            <p class="muted">{format!(
                "Each node at most {:.0} % busy at the peak; past a single server, one spare node and at least three.",
                crate::capacity::TARGET_UTILISATION * 100.0
            )}</p>
            <table>
                <thead><tr><th></th><th>"Users"</th><th>"Peak connections"</th><th>"Peak messages/s"</th><th>"Nodes"</th>
                    <th>"Use (conn / msg)"</th><th>"Phase"</th></tr></thead>
                <tbody>
                    {plan_row("Now", "current", p.inputs.workload(p.inputs.users), now_plan)}
                    {plan_row("Projected", "projected", projected, projected_plan)}
                </tbody>
            </table>
        </div>
    }
}

pub fn render_capacity_page(chrome: &Chrome, p: &Planning) -> String {
    let results = capacity_results(p);
    console_page(
        chrome,
        Section::Capacity,
        None,
        view! {
            <h1>"Capacity"</h1>
            <p>"Per node: " <b data-figure="node-connections">{fmt_count(p.capacity.connections as f64)}</b> " connections and "
                <b data-figure="node-messages">{fmt_rate(p.capacity.messages_per_sec)}</b> " messages " <span class="muted">{format!("({})", p.capacity_source)}</span></p>
            <form method="get" action="/admin/capacity" class="card" data-fragment=CAPACITY_LIVE_PATH data-target="results">
                {workload_inputs(&p.inputs)}
                <button type="submit">"Recompute"</button>
            </form>
            <section id="results">{results}</section>
        },
    )
}

pub fn render_capacity_results(p: &Planning) -> String {
    fragment(capacity_results(p))
}

const PRICE_FIELDS: [(&str, &str); 6] = [
    ("server", "Server (each)"),
    ("database", "Database"),
    ("redis", "Redis"),
    ("load_balancer", "Load balancer"),
    ("cdn", "CDN"),
    ("monitoring", "Monitoring"),
];

fn price_of(prices: &UnitPrices, field: &str) -> f64 {
    match field {
        "server" => prices.server,
        "database" => prices.database,
        "redis" => prices.redis,
        "load_balancer" => prices.load_balancer,
        "cdn" => prices.cdn,
        _ => prices.monitoring,
    }
}

fn cost_results(p: &Planning) -> impl IntoView + use<> {
    let bill = |key: &'static str, label: &'static str, users: u64| {
        let plan = Plan::for_workload(&p.inputs.workload(users), &p.capacity);
        let cost = monthly_cost(&plan, users, &p.prices);
        let lines = cost
            .lines
            .iter()
            .map(|l| view! { <tr><td>{l.item}</td><td class="num">{l.quantity}</td><td class="num">{fmt_money(l.monthly)}</td></tr> })
            .collect_view();
        view! {
            <div class="card" data-bill=key>
                <h2>{format!("{label}: {} users", fmt_count(users as f64))}</h2>
                <table>
                    <thead><tr><th>"Item"</th><th>"Qty"</th><th>"Monthly"</th></tr></thead>
                    <tbody>{lines}</tbody>
                    <tfoot><tr><th>"Total"</th><th></th><th class="num" data-total=key>{fmt_money(cost.total)}</th></tr></tfoot>
                </table>
                <p>"Per 1,000 users: " <b data-per-thousand=key>{fmt_money((cost.per_thousand_users * 100.0).round() / 100.0)}</b></p>
            </div>
        }
    };
    // The guide's phases at their boundaries, priced with the same prices.
    let phase_rows = [
        (Phase::SingleServer, 100, 1_000),
        (Phase::ScaledOut, 1_001, 10_000),
        (Phase::SplitServices, 10_001, 100_000),
        (Phase::MultiRegion, 100_001, 1_000_000),
    ]
    .into_iter()
    .map(|(phase, low, high)| {
        let price = |users: u64| {
            monthly_cost(&Plan::for_workload(&p.inputs.workload(users), &p.capacity), users, &p.prices).total
        };
        view! {
            <tr>
                <td>{phase.label()}</td>
                <td class="num">{format!("{} – {}", fmt_count(low as f64), fmt_count(high as f64))}</td>
                <td class="num">{format!("{} – {}", fmt_money(price(low)), fmt_money(price(high)))}</td>
            </tr>
        }
    })
    .collect_view();
    view! {
        <div class="grid2">
            {bill("current", "Now", p.inputs.users)}
            {bill("projected", "Projected", p.inputs.projected_users)}
        </div>
        <div class="card">
            <h2>"The guide's phases, priced"</h2>
            <table>
                <thead><tr><th>"Phase"</th><th>"Users"</th><th>"Monthly"</th></tr></thead>
                <tbody>{phase_rows}</tbody>
            </table>
            <p class="muted">"The defaults reproduce the guide's 10K-user table: 3 servers $150, database $60, Redis $30, load balancer $20, CDN $20, monitoring $20 = $300."</p>
        </div>
    }
}

pub fn render_cost_page(chrome: &Chrome, p: &Planning) -> String {
    let prices = PRICE_FIELDS
        .iter()
        .map(|(name, label)| number_input(name, label, price_of(&p.prices, name).to_string(), "any"))
        .collect_view();
    let results = cost_results(p);
    console_page(
        chrome,
        Section::Cost,
        None,
        view! {
            <h1>"Cost"</h1>
            <form method="get" action="/admin/cost" class="card grid2" data-fragment=COST_LIVE_PATH data-target="results">
                <fieldset><legend>"Workload"</legend>{workload_inputs(&p.inputs)}</fieldset>
                <fieldset><legend>"Monthly unit prices ($)"</legend>{prices}
                    <p class="muted">{format!("Starting prices: {}.", p.prices_source)}</p></fieldset>
                <p><button type="submit">"Recompute"</button></p>
            </form>
            <section id="results">{results}</section>
        },
    )
}

pub fn render_cost_results(p: &Planning) -> String {
    fragment(cost_results(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planning(users: u64, projected: u64) -> Planning {
        Planning {
            inputs: PlanningInputs {
                users,
                projected_users: projected,
                online_pct: 10.0,
                messages_per_user_per_min: 1.0,
            },
            deployment: Deployment {
                registered_users: users,
                nodes_reporting: 1,
                redis: false,
                connections_now: 8_000.0,
                messages_per_sec_now: 10.0,
            },
            capacity: NodeCapacity::default(),
            capacity_source: "defaults".into(),
            prices: UnitPrices::default(),
            prices_source: "config/console.toml".into(),
        }
    }

    fn chrome() -> Chrome {
        Chrome { version: "1".into(), node_id: "n".into(), admin: "a".into(), csrf: "c".into() }
    }

    #[test]
    fn the_cost_page_prices_the_guides_table() {
        let html = render_cost_page(&chrome(), &planning(800, 10_000));
        assert!(html.contains("data-total=\"projected\" class=\"num\">$300<"), "{html}");
        assert!(html.contains("data-total=\"current\" class=\"num\">$150<"), "one server for 800 users");
        assert!(html.contains("name=\"server\" value=\"50\""));
    }

    #[test]
    fn the_capacity_page_shows_nodes_phase_and_utilisation() {
        let html = render_capacity_page(&chrome(), &planning(5_000, 1_000_000));
        assert!(html.contains("data-nodes=\"projected\" class=\"num\"><b>16</b>"), "{html}");
        assert!(html.contains("data-phase=\"2\""));
        // 8,000 of 10,000 connections: amber.
        assert!(html.contains("data-status=\"warn\""));
    }
}
