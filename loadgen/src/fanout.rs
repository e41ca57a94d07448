//! fanout (and cross-node): S subscribers, one connection each, in conversations of G;
//! senders post at a total rate R through `sendMessage` (REST). Each body starts with its send
//! time, so every subscriber measures send → receive latency. With `--send-url` the senders
//! post to another node: the cross-node scenario.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt, stream};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::api::Api;
use crate::procfs::Probe;
use crate::report::{Report, latency_json, latency_line, ms, now_micros, progress};
use crate::ws;

#[derive(clap::Args, Debug, Clone)]
pub struct FanoutArgs {
    /// Subscribers, one WebSocket each.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Conversation size (the sender plus G-1 subscribers).
    #[arg(long, default_value_t = 100)]
    pub group: usize,
    /// Messages to send in all.
    #[arg(long, default_value_t = 2000)]
    pub messages: usize,
    /// Messages per second across all senders.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Node the senders post to (cross-node); default: `--url`.
    #[arg(long)]
    pub send_url: Option<String>,
    /// Connections opened at once while connecting.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
}

pub async fn run(url: &str, server_pid: Option<u32>, args: &FanoutArgs, run_id: u64) -> anyhow::Result<Report> {
    let api = Api::new();
    let send_url = args.send_url.clone().unwrap_or_else(|| url.to_owned());
    let group = args.group.max(2);
    let rooms_n = args.subscribers.div_ceil(group - 1).max(1);

    // Users and conversations through the public API.
    let bar = progress(args.subscribers as u64 + rooms_n as u64, "users");
    let mut rooms = Vec::new();
    let mut subscribers = Vec::new();
    for r in 0..rooms_n {
        let (_, owner) = api.register(url, &format!("lg{run_id}s{r}")).await?;
        bar.inc(1);
        let members = (group - 1).min(args.subscribers - subscribers.len());
        let mut ids = Vec::new();
        for m in 0..members {
            let (id, token) = api.register(url, &format!("lg{run_id}r{r}m{m}")).await?;
            ids.push(id);
            subscribers.push((r, token));
            bar.inc(1);
        }
        let conv = api.group(url, &owner, &ids, &format!("room {r}")).await?;
        rooms.push((conv, owner, members as u64));
    }
    bar.finish_and_clear();

    // Subscribers, paced.
    let bar = progress(subscribers.len() as u64, "connections");
    let connect_started = Instant::now();
    let sockets: Vec<anyhow::Result<ws::Socket>> = stream::iter(subscribers.iter().map(|(room, token)| {
        let conv = rooms[*room].0.clone();
        let bar = bar.clone();
        async move {
            let mut socket = ws::connect(url, token, None).await?;
            ws::subscribe_messages(&mut socket, "1", &conv).await?;
            bar.inc(1);
            Ok(socket)
        }
    }))
    .buffer_unordered(args.connect_concurrency.max(1))
    .collect()
    .await;
    bar.finish_and_clear();
    let connect_time = connect_started.elapsed();
    let received = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut readers = Vec::new();
    for socket in sockets {
        let mut socket = socket?;
        let (received, mut stop) = (received.clone(), stop_rx.clone());
        readers.push(tokio::spawn(async move {
            let mut h = crate::report::latency_histogram();
            loop {
                let msg = tokio::select! {
                    _ = stop.changed() => break,
                    msg = socket.next() => msg,
                };
                let Some(Ok(msg)) = msg else { break };
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                if v["type"] == "ping" {
                    let _ = socket.send(Message::text(json!({"type": "pong"}).to_string())).await;
                    continue;
                }
                if let Some(body) = v["payload"]["data"]["messageAdded"]["body"].as_str()
                    && let Some(sent) = body.split_whitespace().next().and_then(|t| t.parse::<u64>().ok())
                {
                    h.record(now_micros().saturating_sub(sent).max(1)).ok();
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
            h
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Senders: one task per conversation, each at its share of the rate.
    let probe = Probe::start(server_pid);
    let started = Instant::now();
    let interval = Duration::from_secs_f64(rooms.len() as f64 / args.rate.max(0.1));
    let bar = progress(args.messages as u64, "messages");
    let mut senders = Vec::new();
    for (i, (conv, token, _)) in rooms.iter().enumerate() {
        let (api, send_url, conv, token, bar) =
            (api.clone(), send_url.clone(), conv.clone(), token.clone(), bar.clone());
        // Room i sends its share: messages / rooms, the first `messages % rooms` one more.
        let count = args.messages / rooms.len() + usize::from(i < args.messages % rooms.len());
        // Stagger the rooms over one interval so sends are spread evenly.
        let offset = interval.mul_f64(i as f64 / rooms.len() as f64);
        senders.push(tokio::spawn(async move {
            let mut h = crate::report::latency_histogram();
            for k in 0..count {
                tokio::time::sleep_until((started + offset + interval * k as u32).into()).await;
                let t0 = Instant::now();
                api.send(&send_url, &token, &conv, format!("{} m{k}", now_micros())).await?;
                h.record(t0.elapsed().as_micros().max(1) as u64).ok();
                bar.inc(1);
            }
            Ok::<_, anyhow::Error>((count, h))
        }));
    }
    let mut send_latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut sent = 0;
    let mut expected = 0u64;
    for (task, (_, _, members)) in senders.into_iter().zip(&rooms) {
        let (count, h) = task.await??;
        sent += count;
        expected += count as u64 * members;
        send_latency.add(h).ok();
    }
    bar.finish_and_clear();
    let send_elapsed = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(15);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let window = started.elapsed();
    let cpu = probe.cpu();
    let rss = probe.rss_now_kib();
    let _ = stop_tx.send(true);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for reader in readers {
        if let Ok(h) = reader.await {
            latency.add(h).ok();
        }
    }
    let got = received.load(Ordering::Relaxed);
    let deliveries_per_sec = got as f64 / window.as_secs_f64();
    let mut report = Report::new(if args.send_url.is_some() { "cross-node" } else { "fanout" });
    report
        .line(
            "subscribers",
            format!(
                "{} in {} conversations of {group} (connected in {connect_time:.2?})",
                args.subscribers,
                rooms.len()
            ),
        )
        .line("messages", format!("{sent} at {:.0}/s over {:.1}s", args.rate, send_elapsed.as_secs_f64()))
        .line("delivered", format!("{got} / {expected}"))
        .line("deliveries/s", format!("{deliveries_per_sec:.0}"))
        .line("latency ms", latency_line(&latency))
        .line(
            "send ms",
            format!(
                "p50 {:.2}  p99 {:.2}",
                ms(send_latency.value_at_quantile(0.5)),
                ms(send_latency.value_at_quantile(0.99))
            ),
        );
    let cpu_per_delivery_us = cpu.filter(|_| got > 0).map(|c| c * 1e6 / got as f64);
    if let (Some(c), Some(per)) = (cpu, cpu_per_delivery_us) {
        report.line(
            "server CPU",
            format!("{c:.2} s = {per:.2} µs per delivery ({:.0} % of one core)", c / window.as_secs_f64() * 100.0),
        );
    }
    if let Some(kib) = rss {
        report.line("server RSS", format!("{:.1} MiB", kib as f64 / 1024.0));
    }
    report.json = json!({
        "scenario": report.scenario, "subscribers": args.subscribers, "group": group, "messages": sent,
        "rate": args.rate, "delivered": got, "expected": expected, "deliveries_per_sec": deliveries_per_sec,
        "latency_ms": latency_json(&latency),
        "send_ms": {"p50": ms(send_latency.value_at_quantile(0.5)), "p99": ms(send_latency.value_at_quantile(0.99))},
        "server_cpu_s": cpu, "server_cpu_us_per_delivery": cpu_per_delivery_us,
        "server_rss_mib": rss.map(|k| k as f64 / 1024.0), "connect_s": connect_time.as_secs_f64(),
    });
    report.ok = got >= expected;
    Ok(report)
}
