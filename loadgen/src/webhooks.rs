//! webhooks: C senders, each in a conversation with an app's bot, send M messages as fast as
//! they can while the app's endpoint (a sink in this process) receives every
//! `message.created`: messages/s with the outbox on the send path, webhook deliveries/s the
//! node sustains, and delivery latency (the event's commit time to its arrival at the sink).
//!
//! The sink is a minimal HTTP/1.1 responder written here (read the head, read
//! `content-length` bytes, answer 200, keep the connection): the generator needs no server
//! framework for one fixed answer, and a framework's own cost would blur the figure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::api::Api;
use crate::procfs::Probe;
use crate::report::{Report, latency_line, now_micros};

#[derive(clap::Args, Debug, Clone)]
pub struct WebhookArgs {
    /// An API key (`sck_…`) of the app, with `webhooks:manage`.
    #[arg(long)]
    pub key: String,
    /// The app's bot user: each sender's conversation includes it.
    #[arg(long)]
    pub bot_user_id: String,
    /// Concurrent senders (one conversation each).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Messages each sender sends.
    #[arg(long, default_value_t = 500)]
    pub messages: usize,
    /// Port of the sink on 127.0.0.1 (0: any free one).
    #[arg(long, default_value_t = 0)]
    pub sink_port: u16,
    /// Seconds to wait for the last delivery after the last send.
    #[arg(long, default_value_t = 120)]
    pub drain_secs: u64,
}

/// What the sink saw.
struct Sink {
    received: AtomicU64,
    first_us: AtomicU64,
    last_us: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

pub async fn run(url: &str, server_pid: Option<u32>, args: &WebhookArgs, run_id: u64) -> anyhow::Result<Report> {
    let sink = Arc::new(Sink {
        received: AtomicU64::new(0),
        first_us: AtomicU64::new(0),
        last_us: AtomicU64::new(0),
        latency: Mutex::new(crate::report::latency_histogram()),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.sink_port)).await?;
    let port = listener.local_addr()?.port();
    let accept = sink.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, accept.clone()));
        }
    });

    let api = Api::new();
    let endpoint = api
        .post(
            &format!("{url}/api/v1/webhooks"),
            Some(&args.key),
            json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["message.created"]}),
        )
        .await
        .context("registering the endpoint (the server needs SYNCCHAT_WEBHOOK_ALLOWED_HOSTS=127.0.0.1)")?;
    let endpoint_id = endpoint["id"].as_str().context("endpoint id")?.to_owned();
    let mut senders = Vec::new();
    for c in 0..args.concurrency.max(1) {
        let (_, token) = api.register(url, &format!("lg{run_id}h{c}")).await?;
        let conv = api
            .post(
                &format!("{url}/api/v1/conversations"),
                Some(&token),
                json!({"participantIds": [args.bot_user_id], "title": "webhooks"}),
            )
            .await?;
        senders.push((token, conv["id"].as_str().context("conversation")?.to_owned()));
    }
    let probe = Probe::start(server_pid);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (token, conv) in senders {
        let (api, url, n) = (api.clone(), url.to_owned(), args.messages);
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                api.send(&url, &token, &conv, format!("webhook bench {i}")).await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let sending = started.elapsed().as_secs_f64();
    let expected = (args.concurrency.max(1) * args.messages) as u64;
    let deadline = Instant::now() + Duration::from_secs(args.drain_secs);
    while sink.received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = started.elapsed().as_secs_f64();
    let cpu = probe.cpu();
    let received = sink.received.load(Ordering::Relaxed);
    let span_us = sink.last_us.load(Ordering::Relaxed).saturating_sub(sink.first_us.load(Ordering::Relaxed));
    let latency = sink.latency.lock().await.clone();
    let deliveries_per_sec = received as f64 / total.max(1e-9);
    let mut report = Report::new("webhooks");
    report
        .line("senders", format!("{} × {} messages", args.concurrency, args.messages))
        .line("messages/s (outbox on the send path)", format!("{:.0}", expected as f64 / sending.max(1e-9)))
        .line(
            "webhook deliveries/s",
            format!(
                "{deliveries_per_sec:.0} over the run ({received} of {expected}; first to last {:.1} s)",
                span_us as f64 / 1e6
            ),
        )
        .line("commit → sink ms", latency_line(&latency));
    if let Some(c) = cpu {
        report.line(
            "server CPU",
            format!("{c:.2} s = {:.0} µs per message and its delivery", c * 1e6 / expected.max(1) as f64),
        );
    }
    report.json = json!({
        "scenario": "webhooks",
        "endpoint": endpoint_id,
        "messages": expected,
        "received": received,
        "messages_per_sec": expected as f64 / sending.max(1e-9),
        "deliveries_per_sec": deliveries_per_sec,
        "latency_us": crate::report::latency_json(&latency),
        "server_cpu_s": cpu,
    });
    report.ok = received >= expected;
    if !report.ok {
        bail!("only {received} of {expected} deliveries arrived within {} s", args.drain_secs);
    }
    Ok(report)
}

/// One keep-alive connection of the sink.
async fn serve(mut socket: tokio::net::TcpStream, sink: Arc<Sink>) {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        // The head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Value = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or(Value::Null);
        buf.drain(..head_end + length);
        record(&sink, &body).await;
        if socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.is_err() {
            return;
        }
    }
}

async fn record(sink: &Sink, body: &Value) {
    let now = now_micros();
    sink.received.fetch_add(1, Ordering::Relaxed);
    let _ = sink.first_us.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    sink.last_us.fetch_max(now, Ordering::Relaxed);
    if let Some(at) = body["timestamp"].as_str().and_then(rfc3339_micros) {
        sink.latency.lock().await.record(now.saturating_sub(at).max(1)).ok();
    }
}

/// `2026-12-02T21:31:10.338796Z` as Unix microseconds (the server writes UTC with `Z`).
fn rfc3339_micros(s: &str) -> Option<u64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let micros: i64 = format!("{frac:0<6}")[..6].parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 12) } else { (y, m) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m - 3) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + micros).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_servers_timestamps() {
        assert_eq!(super::rfc3339_micros("1970-01-01T00:00:01.000002Z"), Some(1_000_002));
        assert_eq!(super::rfc3339_micros("2026-12-02T21:31:10.338796Z"), Some(1_796_247_070_338_796));
        assert_eq!(super::rfc3339_micros("garbage"), None);
    }
}
