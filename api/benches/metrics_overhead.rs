//! What metrics cost on the send path: the calls one `sendMessage` makes (one HTTP sample,
//! ten DB statement samples, the message and event counters, one delivery), with the
//! Prometheus recorder installed versus with no recorder (metrics compiled in but inert).
//!
//! `cargo bench -p syncchat-api --bench metrics_overhead`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failed setup step stops it with its reason

use std::time::Duration;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use syncchat_api::metrics as m;

fn send_path_samples() {
    m::record_http("/api/v1/conversations/{id}/messages", "POST", 200, black_box(Duration::from_micros(900)));
    for _ in 0..10 {
        m::record_db_query("select", black_box(Duration::from_micros(80)), false);
    }
    m::message("sent");
    m::event_published("message_added");
    m::delivered(chrono::Utc::now());
}

fn bench(c: &mut Criterion) {
    // Without a recorder the macros go to the no-op recorder.
    c.bench_function("send path metrics, no recorder", |b| b.iter(send_path_samples));
    let _handle = m::install("bench").expect("recorder installs");
    c.bench_function("send path metrics, prometheus recorder", |b| b.iter(send_path_samples));
}

criterion_group!(benches, bench);
criterion_main!(benches);
