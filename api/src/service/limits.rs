//! Per-user and per-IP rate limits (token buckets from `governor`), answered with
//! `RATE_LIMITED` and how long to wait; and how far presence reaches.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

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
    /// Not a rate but a bound all the same: whose presence a user may see.
    pub presence_visibility: PresenceVisibility,
}

/// Whose login budget an attempt spends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum AccountKey {
    User(Uuid),
    Login(String),
}

pub struct Limits {
    send: DefaultKeyedRateLimiter<Uuid>,
    conversations: DefaultKeyedRateLimiter<Uuid>,
    auth_ip: DefaultKeyedRateLimiter<IpAddr>,
    auth_account: DefaultKeyedRateLimiter<AccountKey>,
    typing: DefaultKeyedRateLimiter<Uuid>,
    clock: DefaultClock,
    presence_visibility: PresenceVisibility,
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

impl Limits {
    pub fn new(s: LimitSettings) -> Self {
        Limits {
            send: RateLimiter::keyed(Quota::per_second(nz(s.send_per_sec)).allow_burst(nz(s.send_burst))),
            conversations: RateLimiter::keyed(Quota::per_minute(nz(s.conversations_per_min))),
            auth_ip: RateLimiter::keyed(Quota::per_minute(nz(s.auth_per_ip_per_min))),
            auth_account: RateLimiter::keyed(Quota::per_minute(nz(s.auth_per_account_per_min))),
            typing: RateLimiter::keyed(Quota::per_second(nz(s.typing_per_sec)).allow_burst(nz(s.typing_per_sec * 3))),
            clock: DefaultClock::default(),
            presence_visibility: s.presence_visibility,
        }
    }

    pub fn presence_visibility(&self) -> PresenceVisibility {
        self.presence_visibility
    }

    pub fn check_send(&self, user: Uuid) -> Result<(), AppError> {
        self.check(&self.send, &user, "send_message")
    }

    pub fn check_create_conversation(&self, user: Uuid) -> Result<(), AppError> {
        self.check(&self.conversations, &user, "create_conversation")
    }

    pub fn check_typing(&self, user: Uuid) -> Result<(), AppError> {
        self.check(&self.typing, &user, "set_typing")
    }

    pub fn check_auth_ip(&self, ip: Option<IpAddr>) -> Result<(), AppError> {
        match ip {
            Some(ip) => self.check(&self.auth_ip, &ip, "auth_ip"),
            None => Ok(()),
        }
    }

    /// Login attempts against one account: keyed on the account when the login names one,
    /// so its username and its email share a budget; on the normalised login otherwise.
    pub fn check_auth_account(&self, account: Option<Uuid>, login: &str) -> Result<(), AppError> {
        let key = match account {
            Some(id) => AccountKey::User(id),
            None => AccountKey::Login(login.trim().to_lowercase()),
        };
        self.check(&self.auth_account, &key, "auth_account")
    }

    fn check<K: Hash + Eq + Clone>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
        name: &'static str,
    ) -> Result<(), AppError> {
        limiter.check_key(key).map_err(|not_until| {
            m::rate_limited(name);
            let wait = not_until.wait_time_from(self.clock.now());
            AppError::RateLimited { retry_after: wait.max(Duration::from_millis(1)) }
        })
    }

    /// Forgets keys whose buckets are full again, so memory stays bounded.
    pub fn shrink(&self) {
        self.send.retain_recent();
        self.conversations.retain_recent();
        self.auth_ip.retain_recent();
        self.auth_account.retain_recent();
        self.typing.retain_recent();
    }
}
