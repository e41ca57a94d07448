//! history: C clients read 50-message pages of a long conversation at random points, as
//! people scrolling back do; requests/s and latency.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{StreamExt, stream};
use hdrhistogram::Histogram;
use serde_json::json;

use crate::api::Api;
use crate::report::{Report, latency_json, latency_line, progress};

#[derive(clap::Args, Debug, Clone)]
pub struct HistoryArgs {
    /// Concurrent readers.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds to read for.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Messages in the conversation read.
    #[arg(long, default_value_t = 5000)]
    pub messages: usize,
    /// Pages per second across all readers (0: each reader reads again as soon as it has a
    /// page, a closed loop that saturates the machine). Paced reads are timed from when they
    /// were due, so a read held up by an earlier one counts its wait.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
}

pub async fn run(url: &str, args: &HistoryArgs, run_id: u64) -> anyhow::Result<Report> {
    let api = Api::new();
    let (_, token) = api.register(url, &format!("lg{run_id}h")).await?;
    let conv = api
        .post(&format!("{url}/api/v1/conversations"), Some(&token), json!({"participantIds": [], "title": "history"}))
        .await?;
    let conv = conv["id"].as_str().context("conversation")?.to_owned();
    let bar = progress(args.messages as u64, "messages");
    let sent: Vec<anyhow::Result<serde_json::Value>> = stream::iter((0..args.messages).map(|i| {
        let (api, token, conv, bar) = (api.clone(), token.clone(), conv.clone(), bar.clone());
        async move {
            let r = api.send(url, &token, &conv, format!("message {i} with a typical length of text")).await;
            bar.inc(1);
            r
        }
    }))
    .buffer_unordered(8)
    .collect()
    .await;
    bar.finish_and_clear();
    for r in sent {
        r?;
    }
    let top = args.messages as u64 + 1;
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration.max(1));
    let readers = args.concurrency.max(1);
    // Each reader's reads are due every `readers / rate` seconds, the readers staggered.
    let interval = (args.rate > 0.0).then(|| Duration::from_secs_f64(readers as f64 / args.rate));
    let mut tasks = Vec::new();
    for c in 0..readers {
        let (api, token, conv, url) = (api.clone(), token.clone(), conv.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut h = crate::report::latency_histogram();
            let mut k: u64 = c as u64 * 7919;
            let mut due = interval.map(|i| started + i.mul_f64(c as f64 / readers as f64));
            while Instant::now() < until {
                // A spread of scroll positions, different per reader.
                k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let before = 51 + (k >> 33) % top.saturating_sub(50).max(1);
                let t0 = match (due, interval) {
                    (Some(at), Some(every)) => {
                        tokio::time::sleep_until(at.into()).await;
                        due = Some(at + every);
                        at
                    }
                    _ => Instant::now(),
                };
                let page = api
                    .get(&format!("{url}/api/v1/conversations/{conv}/messages?before={before}&limit=50"), &token)
                    .await?;
                h.record(t0.elapsed().as_micros().max(1) as u64).ok();
                anyhow::ensure!(page["items"].as_array().is_some_and(|items| items.len() == 50), "short page");
            }
            Ok::<_, anyhow::Error>(h)
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in tasks {
        latency.add(t.await??).ok();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = latency.len() as f64 / elapsed;
    let mut report = Report::new("history");
    report
        .line(
            "readers",
            format!(
                "{} for {elapsed:.1}s over {} messages, {}",
                args.concurrency,
                args.messages,
                if args.rate > 0.0 { format!("paced at {} pages/s", args.rate) } else { "closed loop".to_owned() }
            ),
        )
        .line("pages/s", format!("{rate:.0}"))
        .line("latency ms", latency_line(&latency));
    report.json = json!({
        "scenario": "history", "concurrency": args.concurrency, "rate": args.rate, "seconds": elapsed, "pages": latency.len(),
        "pages_per_sec": rate, "latency_ms": latency_json(&latency),
    });
    Ok(report)
}
