//! A reconnect storm: `storm_clients` graphql-ws clients on node a lose it at once (SIGKILL)
//! and all come back through b and c at the same moment, while steady subscribers on c keep
//! receiving: they must lose nothing, and their delivery latency during the storm is reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use super::fleet::{Event, Fleet, SubscriberSpec};
use super::report::{self, FaultTimes, percentiles};
use super::traffic::{SharedSends, now_ms};
use super::{People, Rig, Scale, can_run, settle, steady_sender};

const STEADY: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_reconnect_storm_starves_nobody() {
    if can_run().is_none() {
        return;
    }
    let _one = super::ONE_AT_A_TIME.lock().await;
    let scale = Scale::get();
    let mut rig = Rig::start(&[]).await;
    // 15 connections an account: with the dead node's connections still counted until the
    // presence TTL, twice that stays under the per-account cap
    // (`SYNCCHAT_WS_MAX_CONNECTIONS_PER_USER`, 32), so the cap is not what refuses the storm.
    let accounts = scale.storm_clients.div_ceil(15).max(8);
    let people = People::create(&rig, accounts, 2, 0).await;
    let n = scale.storm_clients;
    let mut specs: Vec<SubscriberSpec> = (0..STEADY)
        .map(|i| SubscriberSpec {
            id: format!("steady{i}"),
            token: people.users[i % accounts].1.clone(),
            urls: rig.ws_from(2),
            subs: people.busy.iter().map(|c| (c.clone(), 0)).collect(),
            start_delay_ms: 0,
            events: false,
        })
        .collect();
    // Joining node a gradually, so the storm is the reconnect, not the first connect.
    let spread_ms = if scale.full { 10_000 } else { 3_000 };
    specs.extend((0..n).map(|i| SubscriberSpec {
        id: format!("storm{i}"),
        token: people.users[i % accounts].1.clone(),
        urls: rig.ws_from(0),
        subs: vec![(people.busy[i % 2].clone(), 0)],
        start_delay_ms: u64::try_from(i * spread_ms / n.max(1)).unwrap_or_default(),
        events: false,
    }));
    let fleet = Fleet::start(rig.dir.path(), specs);
    fleet.wait_subscribed(Duration::from_secs(180)).await;

    let sends = SharedSends::default();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = people
        .busy
        .iter()
        .enumerate()
        .map(|(i, conv)| {
            steady_sender(
                &rig,
                people.senders[1 + i].clone(),
                conv.clone(),
                1 + i,
                scale.interval,
                stop.clone(),
                sends.clone(),
            )
        })
        .collect();
    tokio::time::sleep(scale.before).await;

    let killed = now_ms();
    rig.kill_node(0);
    let storm_ids: Vec<String> = (0..n).map(|i| format!("storm{i}")).collect();
    let back = fleet
        .wait_until(Duration::from_secs(120), |seen| {
            storm_ids.iter().all(|id| {
                seen.events
                    .get(id)
                    .is_some_and(|ev| ev.iter().any(|e| matches!(e, Event::Connected { at } if *at > killed)))
            })
        })
        .await;
    let healed = now_ms();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let (history, used, complete) = settle(&rig, &fleet, &sends, &people.senders[0], &people.busy, scale.settle).await;
    let (specs, seen) = fleet.finish();
    let sends = sends.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();

    // The steady subscribers' latency for messages sent while the storm came back.
    let attempt: std::collections::HashMap<(&str, i64), i64> =
        sends.acks.iter().map(|a| ((a.conv.as_str(), a.seq), a.attempt_start)).collect();
    let mut during = Vec::new();
    for i in 0..STEADY {
        for e in seen.events.get(&format!("steady{i}")).map(Vec::as_slice).unwrap_or_default() {
            if let Event::Message { at, conv, seq } = e
                && let Some(start) = attempt.get(&(conv.as_str(), *seq))
                && (killed..=healed).contains(start)
            {
                during.push(at - start);
            }
        }
    }
    let refused = seen.events.values().flatten().filter(|e| matches!(e, Event::Closed { code: 1013, .. })).count();
    let what = format!("{n} graphql-ws clients on node a; SIGKILL a, they all reconnect to b and c");
    let mut report = report::build(&report::Input {
        scenario: "reconnect-storm",
        scale,
        what: &what,
        specs: &specs,
        seen: &seen,
        sends: &sends,
        history: &history,
        fault: Some(FaultTimes { start: killed, end: killed }),
        settle: (scale.settle, used, complete),
        extra: json!({
            "stormClients": n,
            "allReconnectedMs": healed - killed,
            "allReconnected": back,
            "refused1013": refused,
            "steadyLatencyDuringStormMs": percentiles(during),
        }),
    });
    report.require(back, "not every storm client reconnected within 120 s".into());
    report.publish();
    report.assert_ok(&rig.logs());
}
