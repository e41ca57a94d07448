//! Subscribe-while-sending races: each trial is a fresh conversation whose first subscriber on
//! a node subscribes while messages to it are being committed on another node, which is when
//! the audit saw a node miss one (replay read before its Redis SUBSCRIBE was in effect).
//! Trials run in rounds of `race_round` at once; every message must reach its subscriber.
//! (A steady stream would hide the loss: the next message makes the server fill the gap.)

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::fleet::{Event, Fleet, Seen, SubscriberSpec};
use super::report;
use super::traffic::{Sends, SharedSends};
use super::{NODES, People, Rig, Scale, can_run, settle};

/// Spread of the send after the subscriber's connection ack, in ms: the replay read and the
/// Redis SUBSCRIBE happen within it.
const OFFSETS_MS: usize = 60;
/// Fresh conversations per subscriber socket.
const PER_SOCKET: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_subscribe_while_sending_races_lose_nothing() {
    if can_run().is_none() {
        return;
    }
    let _one = super::ONE_AT_A_TIME.lock().await;
    let scale = Scale::get();
    let rig = Rig::start(&[]).await;
    let people = People::create(&rig, 3, 0, 0).await;
    // `messageAdded` sockets read as the readers; `events` sockets as an account that is only in
    // their conversations (an `events` subscription takes every conversation of its user).
    let (events_id, events_token) = rig.client.register(&rig.base(0), "evreader").await;
    let senders: Vec<String> = people.sender_ids.iter().skip(1).cloned().collect();
    let readers: Vec<String> = people.users.iter().map(|(id, _)| id.clone()).chain(senders.iter().cloned()).collect();
    let events_reader: Vec<String> = std::iter::once(events_id).chain(senders).collect();
    let is_events = |socket: usize| socket % 2 == 1;
    let mut convs = Vec::new();
    for t in 0..scale.race_trials {
        // Trial t is in socket (t % race_round) / PER_SOCKET of its round.
        let others = if is_events((t % scale.race_round.max(1)) / PER_SOCKET) { &events_reader } else { &readers };
        convs
            .push(rig.client.group(&rig.base(t % NODES.len()), &people.senders[0], others, &format!("race {t}")).await);
    }

    let (mut all_specs, mut all_seen, mut all_sends) = (Vec::new(), Seen::default(), Sends::default());
    let mut all_history = HashMap::new();
    let mut settle_used = Duration::ZERO;
    let mut settle_complete = true;
    for (round, chunk) in convs.chunks(scale.race_round.max(1)).enumerate() {
        // All of a round's sockets on one node at once, each with several fresh
        // conversations: the node's Redis SUBSCRIBEs queue up behind each other, as on a busy
        // node, while the replays run.
        let node = round % NODES.len();
        let sockets: Vec<&[String]> = chunk.chunks(PER_SOCKET).collect();
        let specs: Vec<SubscriberSpec> = sockets
            .iter()
            .enumerate()
            .map(|(i, convs)| SubscriberSpec {
                id: format!("r{round}s{i}"),
                token: if is_events(i) { events_token.clone() } else { people.users[i % people.users.len()].1.clone() },
                urls: rig.ws_from(node),
                subs: convs.iter().map(|c| (c.clone(), 0)).collect(),
                start_delay_ms: 0,
                events: is_events(i),
            })
            .collect();
        let sends = SharedSends::default();
        let fleet = Arc::new(Fleet::start(rig.dir.path(), specs));
        // One message per conversation, committed on another node a few ms after its
        // subscriber's connection is acknowledged (when its subscribe frames go out): only a
        // last message can be lost for good (a later one would make the server fill the gap).
        let tasks: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(k, conv)| {
                let sender = (node + 1 + k % 2) % NODES.len();
                let (fleet, client, bases, sends) = (fleet.clone(), rig.client.clone(), rig.bases(), sends.clone());
                let (token, conv, id) =
                    (people.senders[sender].clone(), conv.clone(), format!("r{round}s{}", k / PER_SOCKET));
                let offset = Duration::from_millis(u64::try_from((k * 7 + round * 3) % OFFSETS_MS).unwrap_or_default());
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while fleet.connected_at(&id).is_none() && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    tokio::time::sleep(offset).await;
                    client.send(&bases, sender, &token, &conv, &format!("{id}-{k}-only"), k % 2 == 1, &sends).await;
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        fleet.wait_subscribed(Duration::from_secs(60)).await;
        let (history, used, complete) = settle(&rig, &fleet, &sends, &people.senders[0], chunk, scale.settle).await;
        settle_used = settle_used.max(used);
        settle_complete &= complete;
        let fleet = Arc::try_unwrap(fleet).ok().expect("the senders are done with the fleet");
        let (specs, seen) = fleet.finish();
        all_specs.extend(specs);
        all_seen.events.extend(seen.events);
        all_history.extend(history);
        if let Ok(mut s) = sends.lock() {
            all_sends.acks.append(&mut s.acks);
            all_sends.gave_up.append(&mut s.gave_up);
            for (k, v) in std::mem::take(&mut s.failures) {
                *all_sends.failures.entry(k).or_default() += v;
            }
        }
    }
    // A trial is a conversation; it lost when its subscriber misses any stored message.
    let lost_in = |events: bool| -> usize {
        all_specs
            .iter()
            .filter(|spec| spec.events == events)
            .map(|spec| {
                let got: HashSet<(&str, i64)> = all_seen
                    .events
                    .get(&spec.id)
                    .map(|ev| {
                        ev.iter()
                            .filter_map(|e| {
                                if let Event::Message { conv, seq, .. } = e {
                                    Some((conv.as_str(), *seq))
                                } else {
                                    None
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                spec.subs
                    .iter()
                    .filter(|(c, _)| {
                        all_history.get(c).is_some_and(|h| h.iter().any(|(s, _)| !got.contains(&(c.as_str(), *s))))
                    })
                    .count()
            })
            .sum()
    };
    let (lost_added, lost_events) = (lost_in(false), lost_in(true));
    let what = format!(
        "{} trials (conversations), {} at once on one node, {PER_SOCKET} per socket (every other socket an `events` subscription): the node's first subscriber subscribes while another node commits the conversation's only message 0-{OFFSETS_MS} ms after the connection ack",
        scale.race_trials, scale.race_round
    );
    let report = report::build(&report::Input {
        scenario: "subscribe-races",
        scale,
        what: &what,
        specs: &all_specs,
        seen: &all_seen,
        sends: &all_sends,
        history: &all_history,
        fault: None,
        settle: (scale.settle, settle_used, settle_complete),
        extra: json!({
            "trials": scale.race_trials,
            "trialsWithLoss": lost_added + lost_events,
            "trialsWithLossMessageAdded": lost_added,
            "trialsWithLossEvents": lost_events,
        }),
    });
    report.publish();
    report.assert_ok(&rig.logs());
}
