#![doc = include_str!("../README.md")]

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Mutex, PoisonError};

/// Set to `1` (CI does), a missing service fails the suite instead of skipping it.
pub const REQUIRE_ALL: &str = "SYNCCHAT_TEST_REQUIRE_ALL";
/// The Postgres server the backend suites use (a superuser URL; each test gets its own database).
pub const DATABASE_URL: &str = "SYNCCHAT_TEST_DATABASE_URL";
/// The Redis the cluster suites use.
pub const REDIS_URL: &str = "SYNCCHAT_TEST_REDIS_URL";
/// The S3 API (moto in CI) the S3 file-store suite uses.
pub const S3_ENDPOINT: &str = "SYNCCHAT_TEST_S3_ENDPOINT";

/// Whether a missing service fails the suite (`SYNCCHAT_TEST_REQUIRE_ALL` is set).
pub fn require_all() -> bool {
    std::env::var_os(REQUIRE_ALL).is_some()
}

/// `what` cannot run because of `missing` (what to install or set): says so, or fails under
/// `SYNCCHAT_TEST_REQUIRE_ALL=1`. The caller then returns without testing.
#[track_caller]
pub fn skip_or_fail(what: &str, missing: &str) {
    assert!(!require_all(), "{REQUIRE_ALL} is set but {missing} ({what} cannot run)");
    say_once(&format!("skipping {what}: {missing}"));
}

/// The value of the environment variable `var`; without it, [`skip_or_fail`] saying to set it.
#[track_caller]
pub fn env_or_skip(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) => Some(value),
        Err(_) => {
            skip_or_fail(what, &format!("{var} is not set"));
            None
        }
    }
}

/// Writes `line` to stderr once per process. Written to the handle, not through `eprintln!`:
/// the test harness captures the macros' output of a passing test, and a skip must be seen.
fn say_once(line: &str) {
    static SAID: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let first = SAID.lock().unwrap_or_else(PoisonError::into_inner).insert(line.to_owned());
    if first {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// The sum of every sample of the series `name` (exactly that name: `x_count` is not `x`)
/// whose line contains each of `labels` (fragments such as `reason="slow_consumer"`), in a
/// Prometheus text rendering.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE x_total counter\n\
        x_total{reason=\"a\",node=\"n\"} 2\n\
        x_total{reason=\"b\",node=\"n\"} 3\n\
        x_total_extra{reason=\"a\"} 100\n\
        y_count 4\n";

    #[test]
    fn sums_one_series_by_labels() {
        assert_eq!(metric_sum(TEXT, "x_total", &[]), 5.0);
        assert_eq!(metric_sum(TEXT, "x_total", &["reason=\"a\""]), 2.0);
        assert_eq!(metric_sum(TEXT, "x_total", &["reason=\"a\"", "node=\"m\""]), 0.0);
        assert_eq!(metric_sum(TEXT, "y_count", &[]), 4.0);
        assert_eq!(metric_sum(TEXT, "y", &[]), 0.0);
    }
}
