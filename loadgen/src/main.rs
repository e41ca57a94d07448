//! `syncchat-loadgen`: drives SyncChat like real frontends do, through the public API only:
//! registers users, creates conversations, opens graphql-transport-ws subscriptions, sends
//! messages over HTTP, and measures send → receive latency with HDR histograms. Each message
//! carries its send time, so latency is measured end to end across nodes. Prints a table
//! and one JSON line per run. Loopback only; every run is bounded in count and time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod uploads;

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Parser, Debug)]
#[command(about = "SyncChat load generator (loopback only)")]
struct Args {
    /// Node the subscribers connect to.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Node the senders post to (another node for a cross-node run); default: `--url`.
    #[arg(long)]
    send_url: Option<String>,
    /// Subscribers, one WebSocket each.
    #[arg(long, default_value_t = 50)]
    subscribers: usize,
    /// Subscribers per conversation (group size, including the sender).
    #[arg(long, default_value_t = 50)]
    group: usize,
    /// Messages to send in all.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// Messages per second, across all senders.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Name of the scenario in the JSON line; `uploads` runs the upload scenario instead.
    #[arg(long, default_value = "latency")]
    scenario: String,
    /// uploads: concurrent uploading clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// uploads: MiB each client uploads.
    #[arg(long, default_value_t = 100)]
    upload_mib: usize,
    /// The server's pid, to sample its resident memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

struct Api {
    http: reqwest::Client,
}

impl Api {
    async fn post(&self, url: &str, token: Option<&str>, body: Value) -> anyhow::Result<Value> {
        let mut req = self.http.post(url).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{url}: {status} {body}");
        }
        Ok(body)
    }

    async fn register(&self, base: &str, name: &str) -> anyhow::Result<(String, String)> {
        let body = json!({"username": name, "email": format!("{name}@loadgen.test"), "password": "loadgen-password-1"});
        let user = self.post(&format!("{base}/api/v1/auth/register"), None, body).await?;
        Ok((
            user["user"]["id"].as_str().context("id")?.to_owned(),
            user["accessToken"].as_str().context("token")?.to_owned(),
        ))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let send_url = args.send_url.clone().unwrap_or_else(|| args.url.clone());
    let api = Api { http: reqwest::Client::new() };
    let run = now_micros() % 1_000_000_000;
    if args.scenario == "uploads" {
        return uploads::run(&api, &args.url, args.clients, args.upload_mib, args.server_pid, run).await;
    }
    let group = args.group.max(2);
    let conversations = args.subscribers.div_ceil(group - 1).max(1);

    // Users: one sender per conversation, `group - 1` subscribers each.
    eprintln!("setting up {conversations} conversations, {} subscribers", args.subscribers);
    let mut rooms = Vec::new();
    let mut subscribers = Vec::new();
    for c in 0..conversations {
        let (_, sender_token) = api.register(&args.url, &format!("lg{run}s{c}")).await?;
        let members = (group - 1).min(args.subscribers - subscribers.len());
        let mut ids = Vec::new();
        for m in 0..members {
            let (id, token) = api.register(&args.url, &format!("lg{run}c{c}m{m}")).await?;
            ids.push(id);
            subscribers.push((c, token));
        }
        let mut conv_id = String::new();
        for (i, chunk) in ids.chunks(100).enumerate() {
            if i == 0 {
                let conv = api
                    .post(
                        &format!("{}/api/v1/conversations", args.url),
                        Some(&sender_token),
                        json!({"participantIds": chunk, "title": format!("room {c}")}),
                    )
                    .await?;
                conv_id = conv["id"].as_str().context("conversation id")?.to_owned();
            } else {
                api.post(
                    &format!("{}/api/v1/conversations/{conv_id}/participants", args.url),
                    Some(&sender_token),
                    json!({"userIds": chunk}),
                )
                .await?;
            }
        }
        rooms.push((conv_id, sender_token, members as u64));
    }

    // Subscribers.
    let received = Arc::new(AtomicU64::new(0));
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let ws_base = args.url.replacen("http://", "ws://", 1);
    let mut tasks = Vec::new();
    let connect_started = Instant::now();
    for (room, token) in &subscribers {
        let conv = rooms[*room].0.clone();
        let mut req = format!("{ws_base}/graphql/ws").into_client_request()?;
        req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        let (mut socket, _) = tokio_tungstenite::connect_async(req).await?;
        socket.send(Message::text(json!({"type": "connection_init", "payload": {"token": token}}).to_string())).await?;
        let query = "subscription($c: UUID!) { messageAdded(conversationId: $c) { seq body } }";
        socket
            .send(Message::text(
                json!({"type": "subscribe", "id": "1", "payload": {"query": query, "variables": {"c": conv}}})
                    .to_string(),
            ))
            .await?;
        let (received, histogram) = (received.clone(), histogram.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(msg)) = socket.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                if v["type"] == "ping" {
                    let _ = socket.send(Message::text(json!({"type": "pong"}).to_string())).await;
                    continue;
                }
                if let Some(body) = v["payload"]["data"]["messageAdded"]["body"].as_str()
                    && let Some(sent) = body.split_whitespace().next().and_then(|t| t.parse::<u64>().ok())
                {
                    let latency = now_micros().saturating_sub(sent).max(1);
                    histogram.lock().await.record(latency).ok();
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let connect_time = connect_started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Senders, paced.
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.1));
    let started = Instant::now();
    let mut send_latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for i in 0..args.messages {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (conv, token, _) = &rooms[i % rooms.len()];
        let t0 = Instant::now();
        api.post(
            &format!("{send_url}/api/v1/conversations/{conv}/messages"),
            Some(token),
            json!({"body": format!("{} m{i}", now_micros())}),
        )
        .await?;
        send_latency.record(t0.elapsed().as_micros() as u64).ok();
    }
    let send_elapsed = started.elapsed();
    let expected: u64 = (0..args.messages).map(|i| rooms[i % rooms.len()].2).sum();
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in tasks {
        t.abort();
    }
    let h = histogram.lock().await;
    let got = received.load(Ordering::Relaxed);
    let ms = |us: u64| us as f64 / 1000.0;
    println!("scenario         {}", args.scenario);
    println!(
        "subscribers      {} in {} conversations (connected in {:.2?})",
        args.subscribers,
        rooms.len(),
        connect_time
    );
    println!("messages         {} at {:.0}/s ({:.1}s)", args.messages, args.rate, send_elapsed.as_secs_f64());
    println!("delivered        {got} / {expected}");
    println!("deliveries/s     {:.0}", got as f64 / send_elapsed.as_secs_f64());
    println!(
        "latency ms       p50 {:.2}  p99 {:.2}  max {:.2}",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max())
    );
    println!(
        "send ms          p50 {:.2}  p99 {:.2}",
        ms(send_latency.value_at_quantile(0.5)),
        ms(send_latency.value_at_quantile(0.99))
    );
    println!(
        "{}",
        json!({
            "scenario": args.scenario, "subscribers": args.subscribers, "group": group, "messages": args.messages,
            "rate": args.rate, "delivered": got, "expected": expected,
            "deliveries_per_sec": got as f64 / send_elapsed.as_secs_f64(),
            "latency_ms": {"p50": ms(h.value_at_quantile(0.5)), "p99": ms(h.value_at_quantile(0.99)), "max": ms(h.max())},
            "send_ms": {"p50": ms(send_latency.value_at_quantile(0.5)), "p99": ms(send_latency.value_at_quantile(0.99))},
            "cross_node": args.send_url.is_some(),
        })
    );
    if got < expected {
        bail!("only {got} of {expected} deliveries arrived");
    }
    Ok(())
}
