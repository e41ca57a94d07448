//! Per-user and per-IP rate limits (token buckets from `governor`), answered with
//! `RATE_LIMITED` and how long to wait. Each area owns the limits of its own operations;
//! their settings come in one [`LimitSettings`].

use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::PresenceVisibility;
use crate::error::AppError;
use crate::metrics as m;

#[derive(Clone, Debug)]
pub struct LimitSettings {
    pub send_per_sec: u32,
    pub send_burst: u32,
    pub conversations_per_min: u32,
    pub auth_per_ip_per_min: u32,
    pub auth_per_account_per_min: u32,
    pub typing_per_sec: u32,
    /// Calls per minute an app's keys may make, all keys together.
    pub app_per_min: u32,
    /// How long an `Idempotency-Key`'s answer is kept.
    pub idempotency_ttl: std::time::Duration,
    /// Not a rate but a bound all the same: whose presence a user may see.
    pub presence_visibility: PresenceVisibility,
    /// Distinct emoji per message, and the custom shortcodes allowed.
    pub reactions: super::ReactionSettings,
    /// Who may mention everyone in a group.
    pub mention_everyone: super::MentionEveryone,
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

/// One keyed limit, named after what it limits (the `limit` label of
/// `syncchat_rate_limited_total`).
pub(crate) struct RateLimit<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    name: &'static str,
}

impl<K: Hash + Eq + Clone> RateLimit<K> {
    pub(crate) fn per_second(name: &'static str, rate: u32, burst: u32) -> Self {
        Self::new(name, Quota::per_second(nz(rate)).allow_burst(nz(burst)))
    }

    pub(crate) fn per_minute(name: &'static str, rate: u32) -> Self {
        Self::new(name, Quota::per_minute(nz(rate)))
    }

    fn new(name: &'static str, quota: Quota) -> Self {
        RateLimit { limiter: RateLimiter::keyed(quota), name }
    }

    /// Spends one unit of `key`'s budget, or says how long to wait.
    pub(crate) fn check(&self, key: &K) -> Result<(), AppError> {
        self.limiter.check_key(key).map_err(|not_until| {
            m::rate_limited(self.name);
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            AppError::RateLimited { retry_after: wait.max(Duration::from_millis(1)) }
        })
    }

    /// Forgets keys whose buckets are full again, so memory stays bounded.
    pub(crate) fn shrink(&self) {
        self.limiter.retain_recent();
    }
}
