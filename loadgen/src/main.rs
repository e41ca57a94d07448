//! `syncchat-loadgen`: drives SyncChat like real frontends do, through the public API only
//! (REST and graphql-transport-ws): it registers its own users, creates conversations, opens
//! subscriptions at a paced rate, and measures with HDR histograms. Each run prints a table
//! and one JSON line (appended to `--json-out` too), and is bounded in count and time.
//! Loopback only. With `--server-pid` it reads the server's CPU time and memory from /proc.
//!
//! Scenarios: `fanout` (and cross-node with `--send-url`), `connections`, `write`,
//! `history`, `search`, `uploads`, `webhooks`. See BENCHMARKS.md and `scripts/bench`.

mod api;
mod connections;
mod fanout;
mod history;
mod procfs;
mod report;
mod search;
mod uploads;
mod webhooks;
mod write;
mod ws;

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(about = "SyncChat load generator (loopback only)")]
struct Cli {
    /// The node clients connect to.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The server's process id, to read its CPU time and resident memory from /proc.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Also append the run's JSON line to this file.
    #[arg(long, global = true)]
    json_out: Option<PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Subscribers in conversations of G, senders at a fixed rate: deliveries/s, latency,
    /// server CPU per delivery. With --send-url: the cross-node scenario.
    Fanout(fanout::FanoutArgs),
    /// N idle authenticated subscriptions: memory per connection, time to connect.
    Connections(connections::ConnectionsArgs),
    /// C senders as fast as they can: messages/s and latency, against pgbench.
    Write(write::WriteArgs),
    /// C readers of 50-message pages: pages/s and latency.
    History(history::HistoryArgs),
    /// N messages seeded, then C searchers: searches/s and latency per kind of query.
    Search(search::SearchArgs),
    /// C clients uploading large files at once: MiB/s and server memory.
    Uploads(uploads::UploadArgs),
    /// C senders in conversations with an app's bot, its webhook endpoint a sink here:
    /// messages/s with the outbox, webhook deliveries/s, commit-to-sink latency.
    Webhooks(webhooks::WebhookArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Thousands of sockets need more than the default 1,024 descriptors.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("could not raise the open file limit: {e}");
    }
    let run_id = report::now_micros() % 1_000_000_000;
    let url = cli.url.trim_end_matches('/').to_owned();
    let report = match &cli.scenario {
        Scenario::Fanout(a) => fanout::run(&url, cli.server_pid, a, run_id).await?,
        Scenario::Connections(a) => connections::run(&url, cli.server_pid, a, run_id).await?,
        Scenario::Write(a) => write::run(&url, cli.server_pid, a, run_id).await?,
        Scenario::History(a) => history::run(&url, a, run_id).await?,
        Scenario::Search(a) => search::run(&url, a, run_id).await?,
        Scenario::Uploads(a) => uploads::run(&url, cli.server_pid, a, run_id).await?,
        Scenario::Webhooks(a) => webhooks::run(&url, cli.server_pid, a, run_id).await?,
    };
    report.print();
    if let Some(path) = &cli.json_out {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(file, "{}", report.json)?;
    }
    anyhow::ensure!(report.ok, "the run did not complete (see the table)");
    Ok(())
}
