//! One attempt of a delivery, and when to try again. The request carries the Standard
//! Webhooks headers; the answer's status and the first bytes of its body are kept for the
//! delivery log. Redirects are not followed, and the client's resolver refuses inward
//! addresses ([`super::target`]).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;

use super::{payload, signature, target};
use crate::storage::webhook_delivery::Outcome;
use crate::storage::{webhook_endpoint, webhook_event};

/// The most bytes of an answer's body kept in the delivery log.
pub const EXCERPT_BYTES: usize = 1024;
/// Retry delays grow as `BASE × 2^n` up to a cap, each drawn at random below that (full
/// jitter), so endpoints that recover are not hit by every sender at once.
const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// The HTTP client webhooks use: no redirects, the attempt timeout, the checking resolver.
pub fn client(timeout: Duration, allowed: &target::AllowedHosts) -> reqwest::Client {
    let built = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(target::Resolver { allowed: allowed.clone() }))
        .user_agent(concat!("SyncChat-Webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(4)
        .build();
    built.unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not build the webhook client; using a default one");
        reqwest::Client::new()
    })
}

/// Sends `event` to `endpoint` once, at `now`.
pub async fn attempt(
    client: &reqwest::Client,
    allowed: &target::AllowedHosts,
    endpoint: &webhook_endpoint::Model,
    event: &webhook_event::Model,
    now: DateTime<Utc>,
) -> (Outcome, Duration) {
    let started = Instant::now();
    let failed = |error: String, started: Instant| {
        let took = started.elapsed();
        (Outcome { status: None, error: Some(error), latency_ms: millis(took), excerpt: None }, took)
    };
    let url = match reqwest::Url::parse(&endpoint.url) {
        Ok(url) if target::literal_allowed(&url, allowed) => url,
        Ok(_) => return failed("the endpoint's address may not be used by webhooks".into(), started),
        Err(e) => return failed(format!("the endpoint's url is invalid: {e}"), started),
    };
    let body = payload::render(event).to_string();
    let id = event.id.to_string();
    let timestamp = now.timestamp();
    let mut secrets = vec![endpoint.secret.as_str()];
    if let (Some(previous), Some(until)) = (&endpoint.previous_secret, endpoint.previous_secret_until)
        && until > now
    {
        secrets.push(previous);
    }
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature::header(&secrets, &id, timestamp, &body))
        .body(body);
    let mut answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => return failed(describe(&e), started),
    };
    let status = answer.status().as_u16();
    let mut excerpt = Vec::new();
    while excerpt.len() < EXCERPT_BYTES {
        match answer.chunk().await {
            Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk[..chunk.len().min(EXCERPT_BYTES - excerpt.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    let took = started.elapsed();
    let excerpt = (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned());
    (Outcome { status: Some(i32::from(status)), error: None, latency_ms: millis(took), excerpt }, took)
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// What went wrong, without the URL (which the log shows already).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "redirected (not followed)"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() { kind.to_owned() } else { format!("{kind}: {cause}") }
}

/// How long to wait after the `failures`-th failure in a row of a delivery (at most `cap`).
pub fn backoff(failures: i32, cap: Duration) -> Duration {
    let exp = u32::try_from(failures.clamp(1, 31) - 1).unwrap_or(0);
    let ceiling = BACKOFF_BASE.saturating_mul(2u32.saturating_pow(exp)).min(cap);
    let drawn = rand::rng().random_range(0..=ceiling.as_millis() as u64);
    Duration::from_millis(drawn.max(200))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter_below_it() {
        let cap = Duration::from_secs(3600);
        for failures in 1..40 {
            let ceiling = BACKOFF_BASE.saturating_mul(2u32.saturating_pow((failures.min(31) - 1) as u32)).min(cap);
            for _ in 0..20 {
                let d = backoff(failures, cap);
                assert!(d <= ceiling.max(Duration::from_millis(200)), "{failures}: {d:?} > {ceiling:?}");
            }
        }
        let late: Vec<_> = (0..50).map(|_| backoff(30, cap)).collect();
        assert!((0..50).all(|_| backoff(30, Duration::from_secs(2)) <= Duration::from_secs(2)));
        assert!(late.iter().any(|d| *d > Duration::from_secs(60)), "late retries wait long: {late:?}");
        assert!(late.iter().collect::<std::collections::BTreeSet<_>>().len() > 10, "jittered: {late:?}");
    }
}
