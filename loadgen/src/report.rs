//! What a run prints: a table for people and one JSON line for scripts.

use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

pub struct Report {
    pub scenario: &'static str,
    lines: Vec<(String, String)>,
    pub json: Value,
    /// Whether the run met its own completeness check (every delivery arrived, ...).
    pub ok: bool,
}

impl Report {
    pub fn new(scenario: &'static str) -> Report {
        Report { scenario, lines: Vec::new(), json: Value::Null, ok: true }
    }

    pub fn line(&mut self, label: &str, value: String) -> &mut Report {
        self.lines.push((label.to_owned(), value));
        self
    }

    pub fn print(&self) {
        println!("{:<16} {}", "scenario", self.scenario);
        for (label, value) in &self.lines {
            println!("{label:<16} {value}");
        }
        println!("{}", self.json);
    }
}

pub fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{msg:>12} {bar:40} {pos}/{len} {per_sec} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

/// "p50 … p99 … max …" in milliseconds, for the table.
pub fn latency_line(h: &Histogram<u64>) -> String {
    format!("p50 {:.2}  p99 {:.2}  max {:.2}", ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99)), ms(h.max()))
}

/// The same figures for the JSON line.
pub fn latency_json(h: &Histogram<u64>) -> Value {
    json!({"p50": ms(h.value_at_quantile(0.5)), "p99": ms(h.value_at_quantile(0.99)), "max": ms(h.max())})
}

/// A latency histogram in µs, 1 µs to 60 s, 3 significant digits.
#[allow(clippy::expect_used, reason = "constant bounds, valid by hdrhistogram's rules (low ≥ 1, high ≥ 2·low)")]
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}
