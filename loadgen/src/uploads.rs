//! The upload scenario: `clients` users each stream `mib` MiB of text through
//! `POST /api/v1/files` at the same time. Bodies are generated on the fly (never held whole by
//! the generator either); the server's resident memory is sampled from `/proc/<pid>/status`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::stream;
use serde_json::{Value, json};

use crate::api::Api;
use crate::procfs::rss_kib;
use crate::report::Report;

const CHUNK: usize = 1024 * 1024;

#[derive(clap::Args, Debug, Clone)]
pub struct UploadArgs {
    /// Concurrent uploading clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// MiB each client uploads.
    #[arg(long, default_value_t = 100)]
    pub upload_mib: usize,
}

pub async fn run(base: &str, server_pid: Option<u32>, args: &UploadArgs, run_id: u64) -> anyhow::Result<Report> {
    let (api, clients, mib) = (&Api::new(), args.clients, args.upload_mib);
    let mut tokens = Vec::new();
    for c in 0..clients {
        tokens.push(api.register(base, &format!("lg{run_id}u{c}")).await?.1);
    }
    let baseline = server_pid.and_then(rss_kib);
    let peak_kib = Arc::new(AtomicU64::new(0));
    let sampling = server_pid.map(|pid| {
        let peak_kib = peak_kib.clone();
        tokio::spawn(async move {
            while let Some(kib) = rss_kib(pid) {
                peak_kib.fetch_max(kib, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    });
    let started = Instant::now();
    let mut uploads = Vec::new();
    for (c, token) in tokens.into_iter().enumerate() {
        let (http, url) = (api.http.clone(), format!("{base}/api/v1/files"));
        uploads.push(tokio::spawn(async move {
            let line: Vec<u8> = format!("client {c} writes line after line of plain text to upload.\n").into_bytes();
            let chunk: Vec<u8> = line.iter().copied().cycle().take(CHUNK).collect();
            let chunk = bytes::Bytes::from(chunk);
            let body =
                reqwest::Body::wrap_stream(stream::iter((0..mib).map(move |_| Ok::<_, std::io::Error>(chunk.clone()))));
            let part = reqwest::multipart::Part::stream_with_length(body, (mib * CHUNK) as u64)
                .file_name(format!("big{c}.txt"));
            let t0 = Instant::now();
            let resp = http
                .post(url)
                .bearer_auth(token)
                .multipart(reqwest::multipart::Form::new().part("file", part))
                .send()
                .await?;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!("upload {c}: {status} {body}");
            }
            anyhow::ensure!(body["size"].as_u64() == Some((mib * CHUNK) as u64), "upload {c} stored {body}");
            Ok::<_, anyhow::Error>(t0.elapsed())
        }));
    }
    let mut each = Vec::new();
    for u in uploads {
        each.push(u.await.context("upload task")??);
    }
    let elapsed = started.elapsed();
    let peak = sampling.map(|task| {
        task.abort();
        peak_kib.load(Ordering::Relaxed)
    });
    let total_mib = (clients * mib) as f64;
    let throughput = total_mib / elapsed.as_secs_f64();
    let slowest = each.iter().max().copied().unwrap_or_default();
    let mut report = Report::new("uploads");
    report
        .line("clients", format!("{clients} × {mib} MiB = {total_mib:.0} MiB in {:.2}s", elapsed.as_secs_f64()))
        .line("throughput", format!("{throughput:.1} MiB/s (slowest client {:.2}s)", slowest.as_secs_f64()));
    if let (Some(b), Some(p)) = (baseline, peak) {
        report.line(
            "server RSS",
            format!("{:.1} MiB before, peak {:.1} MiB during", b as f64 / 1024.0, p as f64 / 1024.0),
        );
    }
    report.json = json!({
        "scenario": "uploads", "clients": clients, "mib_each": mib, "seconds": elapsed.as_secs_f64(),
        "mib_per_sec": throughput, "server_rss_before_mib": baseline.map(|b| b as f64 / 1024.0),
        "server_rss_peak_mib": peak.map(|p| p as f64 / 1024.0),
    });
    Ok(report)
}
