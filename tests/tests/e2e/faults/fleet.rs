//! The subscriber side: `tests/js/fleet.mjs` (many graphql-ws clients in one Node process)
//! as a child, and what it saw, event by event.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One subscriber: one WebSocket with a `messageAdded` subscription per conversation.
#[derive(Clone, Debug)]
pub struct SubscriberSpec {
    pub id: String,
    pub token: String,
    /// Where it connects first, then where it moves when a connection drops, in turn.
    pub urls: Vec<String>,
    /// (conversation, seq it starts after).
    pub subs: Vec<(String, i64)>,
    pub start_delay_ms: u64,
    /// One `events` subscription (with a resume point per conversation) instead of one
    /// `messageAdded` per conversation.
    pub events: bool,
}

#[derive(Clone, Debug)]
pub enum Event {
    Connected { at: i64 },
    Closed { at: i64, code: i64, reason: String },
    Subscribed,
    Message { at: i64, conv: String, seq: i64 },
    Error { error: String },
}

/// Everything the fleet printed, per subscriber id, in the order it happened.
#[derive(Default)]
pub struct Seen {
    pub events: HashMap<String, Vec<Event>>,
}

pub struct Fleet {
    child: Child,
    stdin: Option<ChildStdin>,
    seen: Arc<Mutex<Seen>>,
    pub specs: Vec<SubscriberSpec>,
}

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

impl Fleet {
    pub fn start(dir: &Path, specs: Vec<SubscriberSpec>) -> Fleet {
        let config = json!({
            "subscribers": specs.iter().map(|s| json!({
                "id": s.id,
                "token": s.token,
                "urls": s.urls,
                "subs": s.subs.iter().map(|(c, after)| json!({"c": c, "after": after})).collect::<Vec<_>>(),
                "startDelayMs": s.start_delay_ms,
                "mode": if s.events { "events" } else { "messageAdded" },
            })).collect::<Vec<_>>(),
        });
        let path = dir.join(format!("fleet-{}.json", crate::process::free_port()));
        std::fs::write(&path, config.to_string()).expect("fleet config");
        let mut child = Command::new("node")
            .arg(js_dir().join("fleet.mjs"))
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
                let Some(event) = parse(&v) else { continue };
                let id = v["s"].as_str().unwrap_or_default().to_owned();
                if let Ok(mut seen) = sink.lock() {
                    seen.events.entry(id).or_default().push(event);
                }
            }
        });
        Fleet { child, stdin, seen, specs }
    }

    /// When subscriber `id` last had a connection acknowledged (its subscribe frames follow).
    pub fn connected_at(&self, id: &str) -> Option<i64> {
        self.with(|seen| {
            seen.events
                .get(id)?
                .iter()
                .rev()
                .find_map(|e| if let Event::Connected { at } = e { Some(*at) } else { None })
        })
    }

    /// Runs `f` over what has been seen so far.
    pub fn with<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        let seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&seen)
    }

    /// Waits until every subscriber has connected and sent its subscriptions.
    pub async fn wait_subscribed(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let ready = self.with(|seen| {
                self.specs
                    .iter()
                    .filter(|spec| {
                        let events = seen.events.get(&spec.id).map(Vec::as_slice).unwrap_or_default();
                        events.iter().any(|e| matches!(e, Event::Connected { .. }))
                            && events.iter().filter(|e| matches!(e, Event::Subscribed)).count() >= spec.subs.len()
                    })
                    .count()
            });
            if ready == self.specs.len() {
                return;
            }
            assert!(Instant::now() < deadline, "only {ready} of {} subscribers connected", self.specs.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `done` holds over what was seen, or the time is up; true when it held.
    pub async fn wait_until(&self, within: Duration, done: impl Fn(&Seen) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.with(&done) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Closes the fleet's stdin (it exits) and hands back what it saw.
    pub fn finish(mut self) -> (Vec<SubscriberSpec>, Seen) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !matches!(self.child.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The reader thread has what the child flushed before it exited.
        std::thread::sleep(Duration::from_millis(200));
        let seen = std::mem::take(&mut *self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        (std::mem::take(&mut self.specs), seen)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse(v: &Value) -> Option<Event> {
    let at = v["t"].as_i64()?;
    Some(match v["k"].as_str()? {
        "conn" => Event::Connected { at },
        "close" => Event::Closed {
            at,
            code: v["code"].as_i64().unwrap_or_default(),
            reason: v["reason"].as_str().unwrap_or_default().to_owned(),
        },
        "sub" => Event::Subscribed,
        "msg" => Event::Message { at, conv: v["c"].as_str()?.to_owned(), seq: v["seq"].as_i64()? },
        "err" => Event::Error { error: v["e"].as_str().unwrap_or_default().to_owned() },
        _ => return None,
    })
}
