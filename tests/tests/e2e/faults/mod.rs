//! The fault suite: three `syncchat` nodes on one private Postgres and one private Redis, many
//! graphql-ws subscribers and retrying senders, and real faults by PID (node kill -9, Redis
//! kill and empty restart, Postgres fast restart / crash / stop, a reconnect storm, a slow
//! consumer, subscribe-while-sending races). Every scenario checks that nothing committed is
//! lost, doubled or reordered for any subscriber, and that every acked send is in history;
//! it writes its figures to `target/faults/<scenario>.json` (quoted in RELIABILITY.md).
//!
//! `SYNCCHAT_FAULTS=full` (see `scripts/faults`) runs the big version; the default is the
//! short one CI runs. Without Postgres binaries, redis-server or `tests/js/node_modules` the
//! scenarios skip, unless `SYNCCHAT_TEST_REQUIRE_ALL=1`, where they fail.

mod fleet;
mod infra;
mod races;
mod report;
mod scenarios;
mod slow_consumer;
mod storm;
mod traffic;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::process::{Server, free_port};
use fleet::{Event, Fleet, Seen, SubscriberSpec};
use infra::{Postgres, Redis};
use traffic::{Client, SharedSends};

const SECRET: &str = "fault-suite-secret-fault-suite-secret-0123";
const HUGE: &str = "100000000";

/// Scenarios share two cores with each other and the rest of the suite: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How big a run is: the short one (CI) or the full one (`SYNCCHAT_FAULTS=full`).
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub full: bool,
    /// graphql-ws subscribers in the node/Redis/Postgres scenarios.
    pub subscribers: usize,
    pub users: usize,
    /// Conversations with steady traffic, and quiet ones that get one message after the fault.
    pub busy: usize,
    pub quiet: usize,
    /// Time between two sends of one busy conversation.
    pub interval: Duration,
    /// Traffic before the fault, and after it ends.
    pub before: Duration,
    pub after: Duration,
    pub pg_stop: Duration,
    pub storm_clients: usize,
    pub race_trials: usize,
    pub race_round: usize,
    /// The longest a subscriber may take after the last send to have everything.
    pub settle: Duration,
}

impl Scale {
    pub fn get() -> Scale {
        let full = std::env::var("SYNCCHAT_FAULTS").is_ok_and(|v| v == "full");
        if full {
            Scale {
                full,
                subscribers: 150,
                users: 10,
                busy: 4,
                quiet: 6,
                interval: Duration::from_millis(100),
                before: Duration::from_secs(5),
                after: Duration::from_secs(10),
                pg_stop: Duration::from_secs(15),
                storm_clients: 1000,
                race_trials: 500,
                race_round: 100,
                settle: Duration::from_secs(15),
            }
        } else {
            Scale {
                full,
                subscribers: 24,
                users: 4,
                busy: 3,
                quiet: 5,
                interval: Duration::from_millis(200),
                before: Duration::from_secs(2),
                after: Duration::from_secs(5),
                pg_stop: Duration::from_secs(5),
                storm_clients: 200,
                race_trials: 200,
                race_round: 100,
                settle: Duration::from_secs(15),
            }
        }
    }

    pub fn name(&self) -> &'static str {
        if self.full { "full" } else { "short" }
    }
}

/// `None` (after saying why) when the machine lacks what the suite needs.
pub fn can_run() -> Option<()> {
    let Some(why) = infra::missing_tools() else { return Some(()) };
    syncchat_test_support::skip_or_fail("the fault scenarios", &why);
    None
}

/// Three nodes on a private Postgres and Redis.
pub struct Rig {
    pub pg: Postgres,
    pub redis: Redis,
    nodes: Vec<Option<Server>>,
    ports: Vec<u16>,
    env: Vec<(String, String)>,
    pub dir: tempfile::TempDir,
    pub client: Client,
}

pub const NODES: [&str; 3] = ["a", "b", "c"];

impl Rig {
    pub async fn start(extra: &[(&str, &str)]) -> Rig {
        let pg = Postgres::start();
        let redis = Redis::start();
        let cluster = format!("faults{}", free_port());
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", pg.url()),
            ("REDIS_URL", redis.url()),
            ("SYNCCHAT_JWT_SECRET", SECRET.into()),
            ("SYNCCHAT_CLUSTER", cluster),
            // `SYNCCHAT_FAULTS_LOG` sets the nodes' log filter, to look into a scenario.
            ("SYNCCHAT_LOG", std::env::var("SYNCCHAT_FAULTS_LOG").unwrap_or_else(|_| "warn".into())),
            ("SYNCCHAT_RATE_AUTH_PER_IP_PER_MIN", HUGE.into()),
            ("SYNCCHAT_RATE_AUTH_PER_ACCOUNT_PER_MIN", HUGE.into()),
            ("SYNCCHAT_RATE_SEND_PER_SEC", HUGE.into()),
            ("SYNCCHAT_RATE_SEND_BURST", HUGE.into()),
            ("SYNCCHAT_RATE_CONVERSATIONS_PER_MIN", HUGE.into()),
            ("SYNCCHAT_PRESENCE_TTL_SECS", "10".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut rig = Rig {
            pg,
            redis,
            nodes: Vec::new(),
            ports: Vec::new(),
            env,
            dir: tempfile::tempdir().expect("tempdir"),
            client: Client::new(),
        };
        for i in 0..NODES.len() {
            let port = free_port();
            rig.ports.push(port);
            // One after the other: the first one runs the migrations.
            let node = rig.spawn(i).await;
            rig.nodes.push(Some(node));
        }
        rig
    }

    async fn spawn(&self, i: usize) -> Server {
        let dir = self.dir.path().join(NODES[i]);
        std::fs::create_dir_all(&dir).expect("node dir");
        let mut env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.push(("SYNCCHAT_NODE_ID", NODES[i]));
        Server::start_on(&dir, self.ports[i], &env).await
    }

    pub fn base(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    pub fn bases(&self) -> Vec<String> {
        (0..NODES.len()).map(|i| self.base(i)).collect()
    }

    pub fn ws(&self, i: usize) -> String {
        format!("ws://127.0.0.1:{}/graphql/ws", self.ports[i])
    }

    /// Node `i`'s URL first, then the others in turn: where a client moves when it drops.
    pub fn ws_from(&self, i: usize) -> Vec<String> {
        (0..NODES.len()).map(|k| self.ws((i + k) % NODES.len())).collect()
    }

    /// SIGKILL by PID.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.kill();
        }
    }

    /// Starts a killed node again on its port.
    pub async fn restart_node(&mut self, i: usize) {
        let node = self.spawn(i).await;
        self.nodes[i] = Some(node);
    }

    /// The end of every node's log, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .flatten()
            .map(|n| {
                let out = n.output();
                let tail: Vec<&str> = out.lines().rev().take(15).collect();
                format!("--- {}\n{}", n.base, tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Accounts and conversations: senders (one per node), subscriber accounts, and group
/// conversations that everybody is in.
pub struct People {
    pub senders: Vec<String>,
    pub sender_ids: Vec<String>,
    pub users: Vec<(String, String)>,
    pub busy: Vec<String>,
    pub quiet: Vec<String>,
}

impl People {
    pub async fn create(rig: &Rig, users: usize, busy: usize, quiet: usize) -> People {
        let c = &rig.client;
        let mut senders = Vec::new();
        let mut sender_ids = Vec::new();
        for i in 0..NODES.len() {
            let (id, token) = c.register(&rig.base(i), &format!("sender{i}")).await;
            sender_ids.push(id);
            senders.push(token);
        }
        let mut people = Vec::new();
        for i in 0..users {
            people.push(c.register(&rig.base(i % NODES.len()), &format!("reader{i}")).await);
        }
        let mut everyone: Vec<String> = people.iter().map(|(id, _)| id.clone()).collect();
        everyone.extend(sender_ids.iter().skip(1).cloned());
        let mut convs = Vec::new();
        for i in 0..busy + quiet {
            convs.push(c.group(&rig.base(i % NODES.len()), &senders[0], &everyone, &format!("room {i}")).await);
        }
        let quiet = convs.split_off(busy);
        People { senders, sender_ids, users: people, busy: convs, quiet }
    }

    pub fn all(&self) -> Vec<String> {
        self.busy.iter().chain(&self.quiet).cloned().collect()
    }
}

/// Keeps sending to `conv` every `interval` until `stop` is set; node `home` first.
pub fn steady_sender(
    rig: &Rig,
    token: String,
    conv: String,
    home: usize,
    interval: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
    sends: SharedSends,
) -> tokio::task::JoinHandle<()> {
    // clientMessageIds are unique per sender account: one prefix per task keeps two tasks
    // sending as the same account from being taken for retries of each other.
    static TASKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let task = TASKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let client = rig.client.clone();
    let bases = rig.bases();
    tokio::spawn(async move {
        let mut n = 0u32;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            n += 1;
            let id = format!("t{task}-{n}");
            // Every fourth message goes through GraphQL `sendMessage`, the rest through REST.
            client.send(&bases, home, &token, &conv, &id, n.is_multiple_of(4), &sends).await;
            tokio::time::sleep(interval).await;
        }
    })
}

/// What each subscriber should have by the end: stored seqs after its starting point.
fn expected(specs: &[SubscriberSpec], stored: &HashMap<String, Vec<i64>>) -> Vec<(String, String, Vec<i64>)> {
    let mut out = Vec::new();
    for spec in specs {
        for (conv, after) in &spec.subs {
            let want: Vec<i64> =
                stored.get(conv).map(|s| s.iter().copied().filter(|q| q > after).collect()).unwrap_or_default();
            out.push((spec.id.clone(), conv.clone(), want));
        }
    }
    out
}

fn has_all(seen: &Seen, want: &[(String, String, Vec<i64>)]) -> bool {
    want.iter().all(|(id, conv, seqs)| {
        let got: std::collections::HashSet<i64> = seen
            .events
            .get(id)
            .map(|events| {
                events
                    .iter()
                    .filter_map(|e| match e {
                        Event::Message { conv: c, seq, .. } if c == conv => Some(*seq),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        seqs.iter().all(|s| got.contains(s))
    })
}

/// After the last send: waits (at most `limit`) until every subscriber has every acked
/// message, then every stored one (a send that timed out may still have been committed).
/// Returns the history per conversation, how long it waited and whether it was complete.
pub async fn settle(
    rig: &Rig,
    fleet: &Fleet,
    sends: &SharedSends,
    reader: &str,
    convs: &[String],
    limit: Duration,
) -> (HashMap<String, Vec<(i64, String)>>, Duration, bool) {
    let started = std::time::Instant::now();
    let acked: HashMap<String, Vec<i64>> = sends
        .lock()
        .map(|s| {
            let mut m: HashMap<String, Vec<i64>> = HashMap::new();
            for a in &s.acks {
                m.entry(a.conv.clone()).or_default().push(a.seq);
            }
            m
        })
        .unwrap_or_default();
    let want = expected(&fleet.specs, &acked);
    fleet.wait_until(limit, |seen| has_all(seen, &want)).await;
    let bases = rig.live_bases();
    loop {
        let mut history = HashMap::new();
        for conv in convs {
            history.insert(conv.clone(), rig.client.history(&bases, reader, conv).await);
        }
        let stored: HashMap<String, Vec<i64>> = history
            .iter()
            .map(|(c, h): (&String, &Vec<(i64, String)>)| (c.clone(), h.iter().map(|(s, _)| *s).collect()))
            .collect();
        let want = expected(&fleet.specs, &stored);
        let complete = fleet.with(|seen| has_all(seen, &want));
        if complete || started.elapsed() >= limit {
            return (history, started.elapsed(), complete);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Rig {
    /// Nodes that are up.
    pub fn live_bases(&self) -> Vec<String> {
        (0..NODES.len()).filter(|i| self.nodes[*i].is_some()).map(|i| self.base(i)).collect()
    }
}

/// `target/faults/`, beside the binary under test.
pub fn out_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let target = exe.parent().and_then(Path::parent).and_then(Path::parent).expect("target dir");
    let dir = target.join("faults");
    std::fs::create_dir_all(&dir).expect("target/faults");
    dir
}
