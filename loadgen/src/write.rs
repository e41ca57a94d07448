//! write: C senders, each in its own conversation, send as fast as they can for D seconds;
//! messages/s committed and send latency. With `--pgbench-url`, pgbench then runs C clients
//! of single-row inserts of the same width on the same Postgres for the same time, so the
//! result is a ratio to what the database itself does.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::json;

use crate::api::Api;
use crate::procfs::Probe;
use crate::report::{Report, latency_line, ms};

#[derive(clap::Args, Debug, Clone)]
pub struct WriteArgs {
    /// Concurrent senders.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds to send for.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Body length in bytes.
    #[arg(long, default_value_t = 40)]
    pub body_bytes: usize,
    /// The Postgres the server uses: also run pgbench there for the ratio.
    #[arg(long)]
    pub pgbench_url: Option<String>,
}

pub async fn run(url: &str, server_pid: Option<u32>, args: &WriteArgs, run_id: u64) -> anyhow::Result<Report> {
    let api = Api::new();
    let mut senders = Vec::new();
    for c in 0..args.concurrency.max(1) {
        let (_, token) = api.register(url, &format!("lg{run_id}w{c}")).await?;
        let conv = api
            .post(&format!("{url}/api/v1/conversations"), Some(&token), json!({"participantIds": [], "title": "w"}))
            .await?;
        senders.push((token, conv["id"].as_str().context("conversation")?.to_owned()));
    }
    let body = "x".repeat(args.body_bytes.max(1));
    let probe = Probe::start(server_pid);
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration.max(1));
    let mut tasks = Vec::new();
    for (token, conv) in senders {
        let (api, url, body) = (api.clone(), url.to_owned(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = crate::report::latency_histogram();
            while Instant::now() < until {
                let t0 = Instant::now();
                api.send(&url, &token, &conv, body.clone()).await?;
                h.record(t0.elapsed().as_micros().max(1) as u64).ok();
            }
            Ok::<_, anyhow::Error>(h)
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in tasks {
        latency.add(t.await??).ok();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sent = latency.len();
    let rate = sent as f64 / elapsed;
    let cpu = probe.cpu();
    let pgbench = match &args.pgbench_url {
        Some(pg) => Some(pgbench(pg, args.concurrency.max(1), args.duration.max(1), args.body_bytes.max(1))?),
        None => None,
    };
    let mut report = Report::new("write");
    report
        .line("senders", format!("{} for {elapsed:.1}s", args.concurrency))
        .line("messages/s", format!("{rate:.0} ({sent} committed)"))
        .line("send ms", latency_line(&latency));
    if let Some(c) = cpu {
        report.line("server CPU", format!("{c:.2} s = {:.0} µs per message", c * 1e6 / sent.max(1) as f64));
    }
    if let Some(tps) = pgbench {
        report.line("pgbench", format!("{tps:.0} single-row inserts/s: SyncChat is {:.2}× of it", rate / tps));
    }
    report.json = json!({
        "scenario": "write", "concurrency": args.concurrency, "seconds": elapsed, "messages": sent,
        "messages_per_sec": rate, "send_ms": {"p50": ms(latency.value_at_quantile(0.5)), "p99": ms(latency.value_at_quantile(0.99))},
        "server_cpu_s": cpu, "pgbench_tps": pgbench, "ratio_to_pgbench": pgbench.map(|t| rate / t),
    });
    Ok(report)
}

/// pgbench with `clients` clients, each transaction one insert of a message-shaped row.
fn pgbench(url: &str, clients: usize, seconds: u64, body_bytes: usize) -> anyhow::Result<f64> {
    let dir = std::env::temp_dir().join(format!("syncchat-pgbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("insert.sql");
    std::fs::write(
        &script,
        format!(
            "\\set seq random(1, 2000000000)\nINSERT INTO loadgen_pgbench (id, conversation_id, seq, sender_id, body, created_at) \
             VALUES (gen_random_uuid(), '00000000-0000-7000-8000-000000000001', :seq, '00000000-0000-7000-8000-000000000002', \
             repeat('x', {body_bytes}), now());\n"
        ),
    )?;
    let setup = "CREATE TABLE IF NOT EXISTS loadgen_pgbench (id uuid PRIMARY KEY, conversation_id uuid NOT NULL, seq bigint NOT NULL, \
                 sender_id uuid NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL); TRUNCATE loadgen_pgbench;";
    let ok = Command::new("psql").args([url, "-qc", setup]).status().context("running psql")?;
    if !ok.success() {
        bail!("psql could not prepare the pgbench table");
    }
    let out = Command::new("pgbench")
        .args(["-n", "-c", &clients.to_string(), "-j", "1", "-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(url)
        .output()
        .context("running pgbench (Debian package postgresql-contrib or postgresql-client)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("pgbench printed no tps: {text}{}", String::from_utf8_lossy(&out.stderr)))?;
    let _ = Command::new("psql").args([url, "-qc", "DROP TABLE IF EXISTS loadgen_pgbench"]).status();
    Ok(tps)
}
