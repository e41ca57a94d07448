//! search: seeds N messages (1,000,000 by default) of generated text through the public API
//! into conversations that one searcher is in, then C clients search them for a spread of
//! queries people type (a rare word, a common word, two words, a phrase, a prefix, `from:`, a
//! Chinese word): searches/s and latency, overall and per kind of query.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::api::Api;
use crate::report::{Report, latency_histogram, latency_json, latency_line, progress};

#[derive(clap::Args, Debug, Clone)]
pub struct SearchArgs {
    /// Messages to seed.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: usize,
    /// Conversations they are spread over (the searcher is in all of them).
    #[arg(long, default_value_t = 50)]
    pub conversations: usize,
    /// Senders (all in every conversation).
    #[arg(long, default_value_t = 16)]
    pub users: usize,
    /// Sends in flight while seeding.
    #[arg(long, default_value_t = 64)]
    pub seed_concurrency: usize,
    /// Concurrent searchers.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds to search for.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
}

const SYLLABLES: [&str; 20] = [
    "ba", "ko", "mi", "te", "ru", "sa", "no", "vi", "le", "da", "po", "xu", "fe", "gi", "ha", "jo", "lu", "ne", "qi",
    "zo",
];
/// Distinct words of the generated text.
const VOCABULARY: u64 = 20_000;
const CJK_WORDS: [&str; 10] = ["会议", "明天", "项目", "发布", "测试", "東京", "タワー", "회의", "내일", "오전"];
const KINDS: [&str; 7] = ["rare word", "common word", "two words", "phrase", "prefix", "from", "cjk"];

/// A word of the vocabulary: index 0 is the most common.
fn word(i: u64) -> String {
    let mut n = i + 20;
    let mut w = String::new();
    while n > 0 {
        w.push_str(SYLLABLES[(n % 20) as usize]);
        n /= 20;
    }
    w
}

/// A small deterministic generator (PCG-style), one per task.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// A word index, skewed towards the common ones (roughly Zipf-like).
    fn zipf(&mut self) -> u64 {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((VOCABULARY as f64) * u.powi(4)) as u64
    }
}

/// The i-th message's body: 6 to 17 words; one in 20 has a Chinese, Japanese or Korean part.
fn body(i: u64) -> String {
    let mut rng = Rng(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let n = 6 + rng.next() % 12;
    let mut words: Vec<String> = (0..n).map(|_| word(rng.zipf())).collect();
    if i.is_multiple_of(20) {
        let a = CJK_WORDS[(rng.next() % 10) as usize];
        let b = CJK_WORDS[(rng.next() % 10) as usize];
        words.push(format!("{a}{b}"));
    }
    words.join(" ")
}

pub async fn run(url: &str, args: &SearchArgs, run_id: u64) -> anyhow::Result<Report> {
    let api = Api::new();
    let mut users = Vec::new();
    for u in 0..args.users.max(1) {
        users.push(api.register(url, &format!("lg{run_id}s{u}")).await?);
    }
    let (_, searcher) = users[0].clone();
    let members: Vec<String> = users.iter().skip(1).map(|(id, _)| id.clone()).collect();
    let mut conversations = Vec::new();
    for c in 0..args.conversations.max(1) {
        conversations.push(api.group(url, &searcher, &members, &format!("search {c}")).await?);
    }

    let seeded = Instant::now();
    let bar = progress(args.messages as u64, "messages");
    let mut sends = stream::iter((0..args.messages as u64).map(|i| {
        let (api, bar) = (api.clone(), bar.clone());
        let token = users[(i as usize) % users.len()].1.clone();
        let conv = conversations[(i as usize / 7) % conversations.len()].clone();
        async move {
            let r = api.send(url, &token, &conv, body(i)).await;
            bar.inc(1);
            r
        }
    }))
    .buffer_unordered(args.seed_concurrency.max(1));
    while let Some(r) = sends.next().await {
        r?;
    }
    bar.finish_and_clear();
    let seed_secs = seeded.elapsed().as_secs_f64();

    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration.max(1));
    let mut tasks = Vec::new();
    for c in 0..args.concurrency.max(1) {
        let (api, token, url) = (api.clone(), searcher.clone(), url.to_owned());
        let sender = format!("lg{run_id}s{}", 1 + c % (args.users.max(2) - 1));
        let seeded_n = args.messages.max(1) as u64;
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xC0FFEE + c as u64);
            let mut by_kind: Vec<Histogram<u64>> = KINDS.iter().map(|_| latency_histogram()).collect();
            let mut hits = 0u64;
            let mut k = c;
            while Instant::now() < until {
                k = (k + 1) % KINDS.len();
                let mid = 200 + rng.next() % 2_000;
                let q = match k {
                    0 => word(VOCABULARY / 2 + rng.next() % (VOCABULARY / 2)),
                    1 => word(rng.next() % 10),
                    2 => format!("{} {}", word(mid), word(rng.next() % 50)),
                    3 => {
                        // Two words next to each other in a message that was sent.
                        let words: Vec<String> = body(rng.next() % seeded_n).split(' ').map(str::to_owned).collect();
                        let at = (rng.next() as usize) % (words.len() - 1);
                        format!("\"{} {}\"", words[at], words[at + 1])
                    }
                    4 => format!("{}*", &word(mid)[..4]),
                    5 => format!("from:{sender} {}", word(rng.next() % 100)),
                    _ => CJK_WORDS[(rng.next() % 10) as usize].to_owned(),
                };
                let t0 = Instant::now();
                let page = api
                    .http
                    .get(format!("{url}/api/v1/search/messages"))
                    .query(&[("q", q.as_str()), ("limit", "20")])
                    .bearer_auth(&token)
                    .send()
                    .await?;
                anyhow::ensure!(page.status().is_success(), "search {q}: {}", page.status());
                let page: Value = page.json().await?;
                by_kind[k].record(t0.elapsed().as_micros().max(1) as u64).ok();
                hits += page["items"].as_array().map_or(0, |i| i.len() as u64);
            }
            Ok::<_, anyhow::Error>((by_kind, hits))
        }));
    }
    let mut all = latency_histogram();
    let mut kinds: Vec<Histogram<u64>> = KINDS.iter().map(|_| latency_histogram()).collect();
    let mut hits = 0;
    for t in tasks {
        let (by_kind, h) = t.await??;
        hits += h;
        for (sum, one) in kinds.iter_mut().zip(by_kind) {
            sum.add(&one).ok();
            all.add(&one).ok();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut report = Report::new("search");
    report
        .line(
            "seeded",
            format!(
                "{} messages in {} conversations in {seed_secs:.0}s ({:.0}/s)",
                args.messages,
                args.conversations,
                args.messages as f64 / seed_secs
            ),
        )
        .line("searchers", format!("{} for {elapsed:.1}s", args.concurrency))
        .line("searches/s", format!("{:.0}", all.len() as f64 / elapsed))
        .line("hits/search", format!("{:.1}", hits as f64 / all.len().max(1) as f64))
        .line("latency ms", latency_line(&all));
    let mut per_kind = BTreeMap::new();
    for (kind, h) in KINDS.iter().zip(&kinds) {
        report.line(kind, latency_line(h));
        per_kind.insert(*kind, latency_json(h));
    }
    report.json = json!({
        "scenario": "search", "messages": args.messages, "conversations": args.conversations,
        "seed_seconds": seed_secs, "concurrency": args.concurrency, "seconds": elapsed, "searches": all.len(),
        "searches_per_sec": all.len() as f64 / elapsed, "hits_per_search": hits as f64 / all.len().max(1) as f64,
        "latency_ms": latency_json(&all), "by_kind": per_kind,
    });
    Ok(report)
}
