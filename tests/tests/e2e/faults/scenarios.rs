//! The infrastructure faults under steady traffic: a node kill -9, Redis killed and restarted
//! empty, Postgres restarted fast, crashed, and stopped for a while. Subscribers are spread
//! over the three nodes, each subscribed to every conversation; busy conversations get a
//! message every `interval`, quiet ones exactly one each, spread over the seconds after the
//! fault (the moment the audit saw messages vanish around a Redis outage).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use super::fleet::{Fleet, SubscriberSpec};
use super::report::{self, FaultTimes};
use super::traffic::{SharedSends, now_ms};
use super::{NODES, People, Rig, Scale, can_run, settle, steady_sender};

#[derive(Clone, Copy, Debug)]
enum Fault {
    NodeKill,
    RedisKill,
    PgFastRestart,
    PgCrash,
    PgStop,
}

impl Fault {
    fn describe(self, scale: &Scale) -> String {
        match self {
            Fault::NodeKill => "SIGKILL node a (subscribers and senders on it), restart it 3 s later".into(),
            Fault::RedisKill => "SIGKILL redis-server, restart it empty on the same port 5 s later".into(),
            Fault::PgFastRestart => "pg_ctl restart -m fast".into(),
            Fault::PgCrash => "SIGKILL the postmaster, start again (crash recovery)".into(),
            Fault::PgStop => format!("pg_ctl stop -m fast, start again {} s later", scale.pg_stop.as_secs()),
        }
    }

    /// Applies the fault; when it began and when the hurt part was back.
    async fn apply(self, rig: &mut Rig, scale: &Scale) -> FaultTimes {
        let start = now_ms();
        let end = match self {
            Fault::NodeKill => {
                rig.kill_node(0);
                let killed = now_ms();
                tokio::time::sleep(Duration::from_secs(3)).await;
                rig.restart_node(0).await;
                killed
            }
            Fault::RedisKill => {
                rig.redis.kill();
                tokio::time::sleep(Duration::from_secs(5)).await;
                rig.redis.restart_empty();
                now_ms()
            }
            Fault::PgFastRestart => {
                let pg = &rig.pg;
                tokio::task::block_in_place(|| pg.fast_restart());
                now_ms()
            }
            Fault::PgCrash => {
                let pg = &rig.pg;
                tokio::task::block_in_place(|| {
                    pg.crash();
                    pg.start_again();
                });
                now_ms()
            }
            Fault::PgStop => {
                let pg = &rig.pg;
                tokio::task::block_in_place(|| pg.stop());
                tokio::time::sleep(scale.pg_stop).await;
                let pg = &rig.pg;
                tokio::task::block_in_place(|| pg.start_again());
                now_ms()
            }
        };
        FaultTimes { start, end }
    }
}

async fn run(scenario: &str, fault: Fault) {
    if can_run().is_none() {
        return;
    }
    let _one = super::ONE_AT_A_TIME.lock().await;
    let scale = Scale::get();
    let mut rig = Rig::start(&[]).await;
    let people = People::create(&rig, scale.users, scale.busy, scale.quiet).await;
    let convs = people.all();
    let specs: Vec<SubscriberSpec> = (0..scale.subscribers)
        .map(|i| SubscriberSpec {
            id: format!("s{i}"),
            token: people.users[i % people.users.len()].1.clone(),
            urls: rig.ws_from(i % NODES.len()),
            subs: convs.iter().map(|c| (c.clone(), 0)).collect(),
            start_delay_ms: u64::try_from(i * 20).unwrap_or_default(),
            // A third of them take the `events` subscription instead of `messageAdded`s.
            events: i % 3 == 2,
        })
        .collect();
    let fleet = Fleet::start(rig.dir.path(), specs);
    fleet.wait_subscribed(Duration::from_secs(60)).await;

    let sends = SharedSends::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (i, conv) in people.busy.iter().enumerate() {
        let token = people.senders[i % NODES.len()].clone();
        tasks.push(steady_sender(
            &rig,
            token,
            conv.clone(),
            i % NODES.len(),
            scale.interval,
            stop.clone(),
            sends.clone(),
        ));
    }
    tokio::time::sleep(scale.before).await;

    // Quiet conversations: one message each, at the fault and every 2 s after it, each from
    // a different node (the node a kill hits among them).
    let fault_at = now_ms();
    for (k, conv) in people.quiet.iter().enumerate() {
        let (client, bases, sends) = (rig.client.clone(), rig.bases(), sends.clone());
        let token = people.senders[k % NODES.len()].clone();
        let conv = conv.clone();
        let delay = Duration::from_secs(2 * u64::try_from(k).unwrap_or_default());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            client.send(&bases, k % NODES.len(), &token, &conv, &format!("{conv}-quiet"), k % 2 == 1, &sends).await;
        }));
    }
    let times = fault.apply(&mut rig, &scale).await;
    eprintln!(
        "{scenario}: fault applied in {} ms (began {} ms after the quiet sends)",
        times.end - times.start,
        times.start - fault_at
    );
    tokio::time::sleep(scale.after).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let (history, used, complete) = settle(&rig, &fleet, &sends, &people.senders[0], &convs, scale.settle).await;
    let settle_time = (scale.settle, used, complete);
    let (specs, seen) = fleet.finish();
    let sends = sends.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
    let what = fault.describe(&scale);
    let mut report = report::build(&report::Input {
        scenario,
        scale,
        what: &what,
        specs: &specs,
        seen: &seen,
        sends: &sends,
        history: &history,
        fault: Some(times),
        settle: settle_time,
        extra: json!({"busyConversations": people.busy.len(), "quietConversations": people.quiet.len()}),
    });
    if matches!(fault, Fault::PgStop) {
        // With the database known down a send is refused at once as retryable, never
        // INTERNAL, UNAUTHENTICATED or a hang (REST 503 with Retry-After, GraphQL UNAVAILABLE).
        let wrong: Vec<&String> = sends.failures.keys().filter(|k| !k.ends_with(" UNAVAILABLE")).collect();
        report
            .require(wrong.is_empty(), format!("sends during the outage failed otherwise than UNAVAILABLE: {wrong:?}"));
    }
    report.publish();
    if std::env::var("SYNCCHAT_FAULTS_LOG").is_ok() {
        eprintln!("{}", rig.logs());
    }
    report.assert_ok(&rig.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_node_kill_loses_nothing() {
    run("node-kill", Fault::NodeKill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_redis_kill_and_empty_restart_loses_nothing() {
    run("redis-kill", Fault::RedisKill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_postgres_fast_restart_loses_nothing() {
    run("postgres-fast-restart", Fault::PgFastRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_postgres_crash_loses_nothing_acked() {
    run("postgres-crash", Fault::PgCrash).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_postgres_stop_answers_unavailable_and_loses_nothing() {
    run("postgres-stop", Fault::PgStop).await;
}
