//! connections: N idle, authenticated subscriptions on one node; memory per connection and
//! the time to connect them all. Connections come from several loopback source addresses
//! (127.0.0.2, 127.0.0.3, ...) to pass the ephemeral port limit of one address.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use serde_json::json;

use crate::api::Api;
use crate::procfs::Probe;
use crate::report::{Report, progress};
use crate::ws;

#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionsArgs {
    /// Connections (each with one `messageAdded` subscription).
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Connections per user (several devices each); users = connections / this.
    #[arg(long, default_value_t = 50)]
    pub per_user: usize,
    /// Loopback source addresses to spread connections over.
    #[arg(long, default_value_t = 4)]
    pub sources: u8,
    /// Connections opened at once.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Seconds to hold the connections idle before measuring.
    #[arg(long, default_value_t = 3)]
    pub settle_secs: u64,
    /// `messageAdded` subscriptions per connection (0: signed in only, to tell the cost of a
    /// connection from the cost of a subscription).
    #[arg(long, default_value_t = 1)]
    pub subscriptions: usize,
}

pub async fn run(url: &str, server_pid: Option<u32>, args: &ConnectionsArgs, run_id: u64) -> anyhow::Result<Report> {
    let api = Api::new();
    let users = args.connections.div_ceil(args.per_user.max(1)).max(1);
    let bar = progress(users as u64, "users");
    let mut accounts = Vec::new();
    for u in 0..users {
        let (_, token) = api.register(url, &format!("lg{run_id}c{u}")).await?;
        let conv = api
            .post(&format!("{url}/api/v1/conversations"), Some(&token), json!({"participantIds": [], "title": "notes"}))
            .await?;
        accounts.push((token, conv["id"].as_str().unwrap_or_default().to_owned()));
        bar.inc(1);
    }
    bar.finish_and_clear();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let probe = Probe::start(server_pid);

    let bar = progress(args.connections as u64, "connections");
    let started = Instant::now();
    let sources = args.sources.max(1);
    let subscriptions = args.subscriptions;
    let results: Vec<anyhow::Result<ws::Socket>> = stream::iter((0..args.connections).map(|i| {
        let (token, conv) = accounts[i % users].clone();
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % sources as usize) as u8));
        let bar = bar.clone();
        async move {
            let mut socket = ws::connect(url, &token, Some(source)).await?;
            for n in 0..subscriptions {
                ws::subscribe_messages(&mut socket, &n.to_string(), &conv).await?;
            }
            bar.inc(1);
            Ok(socket)
        }
    }))
    .buffer_unordered(args.connect_concurrency.max(1))
    .collect()
    .await;
    let connect_time = started.elapsed();
    bar.finish_and_clear();
    let mut sockets = Vec::new();
    let mut failures = 0;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(s) => sockets.push(s),
            Err(e) => {
                failures += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    // Idle connections answer the server's pings in the background.
    let holders: Vec<_> = sockets
        .into_iter()
        .map(|mut s| tokio::spawn(async move { while let Some(Ok(_)) = s.next().await {} }))
        .collect();
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let (before, after) = (probe.rss_before_kib(), probe.rss_now_kib());
    let open = holders.len();
    for h in &holders {
        h.abort();
    }
    let per_conn_kib = match (before, after) {
        (Some(b), Some(a)) if open > 0 => Some(a.saturating_sub(b) as f64 / open as f64),
        _ => None,
    };
    let mut report = Report::new("connections");
    report
        .line(
            "connections",
            format!(
                "{open} open, {failures} failed, {users} users, {sources} source addresses, {subscriptions} subscriptions each"
            ),
        )
        .line(
            "connect time",
            format!("{:.2}s ({:.0}/s)", connect_time.as_secs_f64(), open as f64 / connect_time.as_secs_f64()),
        );
    if let (Some(b), Some(a), Some(per)) = (before, after, per_conn_kib) {
        report.line(
            "server RSS",
            format!("{:.1} → {:.1} MiB = {per:.2} KiB per connection", b as f64 / 1024.0, a as f64 / 1024.0),
        );
    }
    if let Some(e) = &first_error {
        report.line("first error", e.clone());
    }
    report.json = json!({
        "scenario": "connections", "connections": open, "failed": failures, "users": users,
        "subscriptions_per_connection": subscriptions, "connect_s": connect_time.as_secs_f64(), "server_rss_before_mib": before.map(|k| k as f64 / 1024.0),
        "server_rss_after_mib": after.map(|k| k as f64 / 1024.0), "kib_per_connection": per_conn_kib,
    });
    report.ok = failures == 0;
    Ok(report)
}
