//! A scenario's verdict and figures: per subscriber lost / duplicated / reordered, acked
//! sends missing from history, heal times; printed as a table and written as JSON.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use super::Scale;
use super::fleet::{Event, Seen, SubscriberSpec};
use super::traffic::{Ack, Sends};

/// A message counts as "live" when it arrived this soon after the send that stored it began:
/// it came by live delivery, not by a later replay or gap-fill.
pub const LIVE_WITHIN_MS: i64 = 1000;

/// When the fault began and when the hurt part was back (equal for a kill the rest of the
/// cluster absorbs). Heal times are measured from `end`.
#[derive(Clone, Copy, Debug)]
pub struct FaultTimes {
    pub start: i64,
    pub end: i64,
}

pub struct Input<'a> {
    pub scenario: &'a str,
    pub scale: Scale,
    pub what: &'a str,
    pub specs: &'a [SubscriberSpec],
    pub seen: &'a Seen,
    pub sends: &'a Sends,
    pub history: &'a HashMap<String, Vec<(i64, String)>>,
    pub fault: Option<FaultTimes>,
    pub settle: (Duration, Duration, bool),
    pub extra: Value,
}

pub struct Report {
    pub scenario: String,
    pub json: Value,
    pub failures: Vec<String>,
}

/// p50 / p99 / max by nearest rank.
pub fn percentiles(mut v: Vec<i64>) -> Value {
    if v.is_empty() {
        return json!({"n": 0});
    }
    v.sort_unstable();
    let rank = |p: f64| {
        let len = v.len() as f64;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let i = ((p * len).ceil() as usize).clamp(1, v.len()) - 1;
        v[i]
    };
    json!({"n": v.len(), "p50": rank(0.50), "p99": rank(0.99), "max": v[v.len() - 1]})
}

pub fn build(input: &Input<'_>) -> Report {
    let acks: HashMap<(&str, i64), &Ack> = input.sends.acks.iter().map(|a| ((a.conv.as_str(), a.seq), a)).collect();
    let mut failures = Vec::new();

    // Acked sends against what is stored.
    let stored: HashMap<&str, HashMap<i64, &str>> =
        input.history.iter().map(|(c, h)| (c.as_str(), h.iter().map(|(s, id)| (*s, id.as_str())).collect())).collect();
    let mut missing_acked = Vec::new();
    for a in &input.sends.acks {
        let found = stored.get(a.conv.as_str()).and_then(|h| h.get(&a.seq));
        if found != Some(&a.client_id.as_str()) {
            missing_acked.push(format!("{}#{} ({})", short(&a.conv), a.seq, a.client_id));
        }
    }
    let mut stored_twice = 0;
    for h in input.history.values() {
        let mut ids = HashSet::new();
        for (_, id) in h {
            if !id.is_empty() && !ids.insert(id.as_str()) {
                stored_twice += 1;
            }
        }
    }
    let stored_total: usize = input.history.values().map(Vec::len).sum();

    // Per subscriber.
    let (mut lost, mut dup, mut reordered, mut expected, mut received) = (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut latency = Vec::new();
    // The slowest deliveries (latency, subscriber, conversation#seq, when sent), to look into.
    let mut slowest: Vec<(i64, String, String, i64)> = Vec::new();
    let mut worst = Vec::new();
    let (mut heal_reconnect, mut heal_first, mut heal_live) = (Vec::new(), Vec::new(), Vec::new());
    let mut closes: BTreeMap<String, u64> = BTreeMap::new();
    let mut sub_errors = 0usize;
    // A few distinct close reasons and subscription errors, to tell what clients were told.
    let mut told: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for spec in input.specs {
        let events = input.seen.events.get(&spec.id).map(Vec::as_slice).unwrap_or_default();
        let (mut s_lost, mut s_dup, mut s_reordered) = (Vec::new(), 0usize, 0usize);
        for (conv, after) in &spec.subs {
            let mut got = HashSet::new();
            let mut max = *after;
            for e in events {
                let Event::Message { at, conv: c, seq } = e else { continue };
                if c != conv {
                    continue;
                }
                received += 1;
                if !got.insert(*seq) {
                    s_dup += 1;
                    continue;
                }
                if *seq < max {
                    s_reordered += 1;
                }
                max = max.max(*seq);
                if let Some(a) = acks.get(&(conv.as_str(), *seq)) {
                    latency.push(at - a.attempt_start);
                    slowest.push((at - a.attempt_start, spec.id.clone(), format!("{conv}#{seq}"), a.attempt_start));
                }
            }
            let want = stored.get(conv.as_str()).map(|h| h.keys().copied().filter(|s| s > after).collect::<Vec<_>>());
            for seq in want.unwrap_or_default() {
                expected += 1;
                if !got.contains(&seq) {
                    s_lost.push(format!("{}#{seq}", short(conv)));
                }
            }
        }
        for e in events {
            match e {
                Event::Closed { code, reason, .. } => {
                    *closes.entry(code.to_string()).or_default() += 1;
                    if told.len() < 8 {
                        told.insert(format!("close {code} {reason}"));
                    }
                }
                Event::Error { error, .. } => {
                    sub_errors += 1;
                    if told.len() < 8 {
                        told.insert(format!("error {}", error.chars().take(160).collect::<String>()));
                    }
                }
                _ => {}
            }
        }
        if let Some(f) = input.fault {
            heal(events, &acks, f, &mut heal_reconnect, &mut heal_first, &mut heal_live);
        }
        lost += s_lost.len();
        dup += s_dup;
        reordered += s_reordered;
        if !s_lost.is_empty() || s_dup > 0 || s_reordered > 0 {
            s_lost.sort();
            s_lost.dedup();
            worst.push(json!({
                "subscriber": spec.id, "lost": s_lost.len(), "duplicated": s_dup, "reordered": s_reordered,
                "lostSample": s_lost.iter().take(8).collect::<Vec<_>>(),
            }));
        }
    }
    worst.sort_by_key(|w| std::cmp::Reverse(w["lost"].as_u64().unwrap_or_default()));
    let bad_subscribers = worst.len();
    worst.truncate(12);

    if lost > 0 {
        failures.push(format!("{lost} messages lost across {bad_subscribers} subscribers"));
    }
    if dup > 0 {
        failures.push(format!("{dup} messages delivered twice"));
    }
    if reordered > 0 {
        failures.push(format!("{reordered} messages out of seq order"));
    }
    if !missing_acked.is_empty() {
        failures.push(format!(
            "{} acked sends missing from history: {:?}",
            missing_acked.len(),
            &missing_acked[..missing_acked.len().min(5)]
        ));
    }
    if stored_twice > 0 {
        failures.push(format!("{stored_twice} retried sends stored twice"));
    }
    if !input.sends.gave_up.is_empty() {
        failures.push(format!("{} sends never acked", input.sends.gave_up.len()));
    }

    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    slowest.truncate(10);
    let slowest_json: Vec<Value> = slowest
        .iter()
        .map(|(ms, sub, msg, sent)| json!({"ms": ms, "subscriber": sub, "message": msg, "sentMs": sent}))
        .collect();
    let ack_latency: Vec<i64> = input.sends.acks.iter().map(|a| a.acked - a.first_try).collect();
    let retried = input.sends.acks.iter().filter(|a| a.attempts > 1).count();
    let json = json!({
        "scenario": input.scenario,
        "scale": input.scale.name(),
        "what": input.what,
        "nodes": super::NODES.len(),
        "subscribers": input.specs.len(),
        "subscriptions": input.specs.iter().map(|s| s.subs.len()).sum::<usize>(),
        "conversations": input.history.len(),
        "fault": input.fault.map(|f| json!({"startMs": f.start, "endMs": f.end, "durationMs": f.end - f.start})),
        "sends": {
            "acked": input.sends.acks.len(),
            "retried": retried,
            "neverAcked": input.sends.gave_up.len(),
            "failedAttempts": input.sends.failures,
            "ackLatencyMs": percentiles(ack_latency),
        },
        "stored": stored_total,
        "ackedMissingFromHistory": missing_acked.len(),
        "storedTwice": stored_twice,
        "delivery": {
            "expected": expected,
            "received": received,
            "lost": lost,
            "duplicated": dup,
            "reordered": reordered,
            "subscribersWithProblems": bad_subscribers,
            "latencyMs": percentiles(latency),
            "slowest": slowest_json,
        },
        "healMs": {
            "reconnect": percentiles(heal_reconnect),
            "firstMessage": percentiles(heal_first),
            "liveAgain": percentiles(heal_live),
        },
        "closes": closes,
        "subscriptionErrors": sub_errors,
        "clientsWereTold": told,
        "settle": {"limitMs": ms(input.settle.0), "usedMs": ms(input.settle.1), "complete": input.settle.2},
        "worst": worst,
        "extra": input.extra,
        "ok": failures.is_empty(),
        "failures": failures,
    });
    Report { scenario: input.scenario.to_owned(), json, failures }
}

/// Heal times of one subscriber after a fault: reconnected (if it was disconnected), first
/// message, first live message, each counted from when the fault ended.
fn heal(
    events: &[Event],
    acks: &HashMap<(&str, i64), &Ack>,
    f: FaultTimes,
    reconnect: &mut Vec<i64>,
    first: &mut Vec<i64>,
    live: &mut Vec<i64>,
) {
    let dropped = events.iter().position(|e| matches!(e, Event::Closed { at, .. } if *at >= f.start));
    if let Some(i) = dropped
        && let Some(Event::Connected { at }) = events[i..].iter().find(|e| matches!(e, Event::Connected { .. }))
    {
        reconnect.push((at - f.end).max(0));
    }
    let after: Vec<(i64, &str, i64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message { at, conv, seq } if *at > f.end => Some((*at, conv.as_str(), *seq)),
            _ => None,
        })
        .collect();
    if let Some((at, _, _)) = after.first() {
        first.push(at - f.end);
    }
    let is_live = |m: &&(i64, &str, i64)| {
        let (at, conv, seq) = **m;
        acks.get(&(conv, seq)).is_some_and(|a| a.attempt_start >= f.end && at - a.attempt_start <= LIVE_WITHIN_MS)
    };
    if let Some((at, _, _)) = after.iter().find(is_live) {
        live.push(at - f.end);
    }
}

fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(6)..).unwrap_or(id)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Report {
    /// A scenario's own check, counted like the common ones.
    pub fn require(&mut self, ok: bool, failure: String) {
        if !ok {
            self.failures.push(failure);
            self.json["ok"] = json!(false);
            self.json["failures"] = json!(self.failures);
        }
    }

    /// The table on stderr and `target/faults/<scenario>.json`.
    pub fn publish(&self) {
        let j = &self.json;
        let p = |v: &Value| match v["n"].as_u64() {
            Some(0) | None => "-".to_owned(),
            Some(n) => format!("{} / {} / {} (n={n})", v["p50"], v["p99"], v["max"]),
        };
        let rows = [
            ("scenario", format!("{} ({})", self.scenario, j["scale"].as_str().unwrap_or_default())),
            ("fault", j["what"].as_str().unwrap_or_default().to_owned()),
            ("subscribers / subscriptions", format!("{} / {}", j["subscribers"], j["subscriptions"])),
            (
                "sends acked (retried, never acked)",
                format!("{} ({}, {})", j["sends"]["acked"], j["sends"]["retried"], j["sends"]["neverAcked"]),
            ),
            ("failed attempts", j["sends"]["failedAttempts"].to_string()),
            ("ack latency ms p50/p99/max", p(&j["sends"]["ackLatencyMs"])),
            ("messages stored", j["stored"].to_string()),
            ("acked missing from history", j["ackedMissingFromHistory"].to_string()),
            ("stored twice", j["storedTwice"].to_string()),
            (
                "deliveries expected / received",
                format!("{} / {}", j["delivery"]["expected"], j["delivery"]["received"]),
            ),
            (
                "lost / duplicated / reordered",
                format!("{} / {} / {}", j["delivery"]["lost"], j["delivery"]["duplicated"], j["delivery"]["reordered"]),
            ),
            ("delivery latency ms p50/p99/max", p(&j["delivery"]["latencyMs"])),
            ("heal: reconnect ms", p(&j["healMs"]["reconnect"])),
            ("heal: first message ms", p(&j["healMs"]["firstMessage"])),
            ("heal: live again ms", p(&j["healMs"]["liveAgain"])),
            ("closes by code", j["closes"].to_string()),
            (
                "settle ms used / limit (complete)",
                format!("{} / {} ({})", j["settle"]["usedMs"], j["settle"]["limitMs"], j["settle"]["complete"]),
            ),
            ("extra", j["extra"].to_string()),
            (
                "verdict",
                if self.failures.is_empty() {
                    "PASS".to_owned()
                } else {
                    format!("FAIL: {}", self.failures.join("; "))
                },
            ),
        ];
        let mut table = format!("\n== fault scenario {}\n", self.scenario);
        for (k, v) in rows {
            table.push_str(&format!("| {k:<36} | {v}\n"));
        }
        eprint!("{table}");
        let path = super::out_dir().join(format!("{}.json", self.scenario));
        let _ = std::fs::write(&path, serde_json::to_string_pretty(&self.json).unwrap_or_default());
        eprintln!("(written to {})", path.display());
    }

    pub fn assert_ok(&self, logs: &str) {
        assert!(
            self.failures.is_empty(),
            "fault scenario {} failed: {}\nworst: {}\n{logs}",
            self.scenario,
            self.failures.join("; "),
            self.json["worst"]
        );
    }
}

#[cfg(test)]
mod tests {
    //! The checker itself: a verdict that cannot fail would prove nothing.
    use super::*;

    fn ack(seq: i64) -> Ack {
        Ack {
            conv: "c1".into(),
            client_id: format!("m{seq}"),
            seq,
            first_try: 0,
            attempt_start: 0,
            acked: 1,
            attempts: 1,
        }
    }

    fn check(received: &[i64], acked: &[i64]) -> Report {
        let specs = vec![SubscriberSpec {
            id: "s1".into(),
            token: String::new(),
            urls: vec![],
            subs: vec![("c1".into(), 0)],
            start_delay_ms: 0,
            events: false,
        }];
        let mut seen = Seen::default();
        let events = received.iter().map(|&seq| Event::Message { at: 10, conv: "c1".into(), seq }).collect();
        seen.events.insert("s1".into(), events);
        let sends = Sends { acks: acked.iter().map(|&s| ack(s)).collect(), ..Sends::default() };
        let history = HashMap::from([("c1".to_owned(), (1..=4).map(|s| (s, format!("m{s}"))).collect())]);
        build(&Input {
            scenario: "checker",
            scale: Scale::get(),
            what: "synthetic",
            specs: &specs,
            seen: &seen,
            sends: &sends,
            history: &history,
            fault: None,
            settle: (Duration::ZERO, Duration::ZERO, true),
            extra: Value::Null,
        })
    }

    #[test]
    fn everything_once_in_order_passes() {
        let report = check(&[1, 2, 3, 4], &[1, 2, 3, 4]);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
    }

    #[test]
    fn a_lost_a_doubled_a_reordered_message_and_a_missing_ack_each_fail() {
        let report = check(&[1, 3, 2, 3], &[1, 2, 3, 4, 5]);
        let d = &report.json["delivery"];
        assert_eq!(
            (d["lost"].as_u64(), d["duplicated"].as_u64(), d["reordered"].as_u64()),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(report.json["ackedMissingFromHistory"], 1, "seq 5 was acked but is not stored");
        assert_eq!(report.failures.len(), 4, "{:?}", report.failures);
    }
}
