//! A slow consumer: a raw WebSocket client on node a subscribes and then stops reading while
//! a conversation is flooded with big messages. The server must drop it (its queue stays
//! full) without slowing the graphql-ws subscribers on the same node, and when it reads again
//! it must find the close frame 1013 that tells it to resume.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::fleet::{Fleet, SubscriberSpec};
use super::report;
use super::traffic::{SharedSends, now_ms};
use super::{People, Rig, Scale, can_run, settle, steady_sender};

/// Subscriptions the slow client holds on the flooded conversation: each message is written
/// to its socket this many times, so the kernel buffers fill in a few seconds.
const COPIES: usize = 8;

/// The node's count of connections it closed as slow consumers.
async fn slow_closes(client: &reqwest::Client, base: &str) -> f64 {
    let Ok(resp) = client.get(format!("{base}/metrics")).send().await else { return 0.0 };
    let text = resp.text().await.unwrap_or_default();
    syncchat_test_support::metric_sum(&text, "syncchat_websocket_closed_total", &["reason=\"slow_consumer\""])
}

/// How long after being dropped the slow client of the second test starts reading again:
/// longer than the server's 5 s grace for writing a close frame into a full socket.
const LATE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_slow_consumer_is_dropped_and_slows_nobody() {
    run("slow-consumer", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_slow_consumer_reading_late_still_finds_1013() {
    run("slow-consumer-late", Some(LATE)).await;
}

/// `late`: how long after the drop the slow client reads again (`None`: as soon as the
/// others have everything).
async fn run(scenario: &str, late: Option<Duration>) {
    if can_run().is_none() {
        return;
    }
    let _one = super::ONE_AT_A_TIME.lock().await;
    let scale = Scale::get();
    let mut rig = Rig::start(&[("SYNCCHAT_WS_QUEUE", "64")]).await;
    rig.client = rig.client.clone().with_padding(3900);
    let people = People::create(&rig, 2, 1, 0).await;
    let conv = people.busy[0].clone();
    let specs: Vec<SubscriberSpec> = (0..10)
        .map(|i| SubscriberSpec {
            id: format!("fast{i}"),
            token: people.users[i % 2].1.clone(),
            urls: rig.ws_from(0),
            subs: vec![(conv.clone(), 0)],
            start_delay_ms: 0,
            events: false,
        })
        .collect();
    let fleet = Fleet::start(rig.dir.path(), specs);
    fleet.wait_subscribed(Duration::from_secs(60)).await;

    // The slow client: a small receive buffer, subscribed, then never read until the end.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(8192).expect("SO_RCVBUF");
    let port = rig.base(0).rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).expect("port");
    let stream = socket.connect(([127, 0, 0, 1], port).into()).await.expect("connect");
    let mut request = rig.ws(0).into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream).await.expect("websocket");
    let init = json!({"type": "connection_init", "payload": {"token": people.users[0].1}});
    ws.send(Message::text(init.to_string())).await.expect("init");
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("ack in time");
        if let Some(Ok(Message::Text(t))) = frame
            && t.as_str().contains("connection_ack")
        {
            break;
        }
    }
    for k in 0..COPIES {
        let sub = json!({"id": format!("slow{k}"), "type": "subscribe", "payload": {
            "query": "subscription($c: UUID!) { messageAdded(conversationId: $c) { seq body } }",
            "variables": {"c": conv},
        }});
        ws.send(Message::text(sub.to_string())).await.expect("subscribe");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The flood, from nodes b and c, until node a has dropped the slow client.
    let sends = SharedSends::default();
    let stop = Arc::new(AtomicBool::new(false));
    let flood_started = now_ms();
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            steady_sender(
                &rig,
                people.senders[1 + i % 2].clone(),
                conv.clone(),
                1 + i % 2,
                Duration::from_millis(5),
                stop.clone(),
                sends.clone(),
            )
        })
        .collect();
    let http = reqwest::Client::new();
    let limit = Instant::now() + Duration::from_secs(if scale.full { 120 } else { 60 });
    let (mut dropped_after, mut dropped_at) = (None, Instant::now());
    while Instant::now() < limit {
        if slow_closes(&http, &rig.base(0)).await > 0.0 {
            dropped_at = Instant::now();
            dropped_after = Some(now_ms() - flood_started);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A little more traffic after the drop: the others must still get it live.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let (history, used, complete) =
        settle(&rig, &fleet, &sends, &people.senders[0], std::slice::from_ref(&conv), scale.settle).await;

    if let Some(late) = late {
        tokio::time::sleep(late.saturating_sub(dropped_at.elapsed())).await;
    }
    let read_again_after = dropped_at.elapsed();
    // Reading again: what was in the buffers, then how the connection ended.
    let (mut frames, mut close) = (0usize, None);
    let read_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < read_until {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                close = Some(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
                break;
            }
            Ok(Some(Ok(_))) => frames += 1,
            Ok(Some(Err(_)) | None) => {
                close = Some(1006);
                break;
            }
            Err(_) => break,
        }
    }
    let (specs, seen) = fleet.finish();
    let sends = sends.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
    let mut report = report::build(&report::Input {
        scenario,
        scale,
        what: "a raw client on node a stops reading while its conversation is flooded (4 KB messages, SYNCCHAT_WS_QUEUE=64)",
        specs: &specs,
        seen: &seen,
        sends: &sends,
        history: &history,
        fault: None,
        settle: (scale.settle, used, complete),
        extra: json!({
            "slowDroppedAfterMs": dropped_after,
            "slowReadAgainAfterDropMs": read_again_after.as_millis(),
            "slowFramesReadLate": frames,
            "slowCloseCode": close,
            "floodMessages": sends.acks.len(),
        }),
    });
    report.require(dropped_after.is_some(), "node a never dropped the slow consumer".into());
    report.require(
        close == Some(1013),
        format!("reading again {read_again_after:?} after the drop, the slow consumer found close {close:?}, not 1013 (after {frames} frames)"),
    );
    report.publish();
    report.assert_ok(&rig.logs());
}
