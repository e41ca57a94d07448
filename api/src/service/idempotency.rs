//! `Idempotency-Key` on REST POSTs (the IETF draft's semantics, as Stripe has them): the first
//! request with a key runs; a repeat by the same caller within the key's lifetime (a day by
//! default) gets the first answer again (status, content type, body), on any node; a repeat
//! with another request (method, path, query or body differ) is `CONFLICT` and changes
//! nothing; a repeat while the first still runs is `CONFLICT` to retry shortly. Answers not
//! worth keeping (5xx, 429) give the key back, so the client may retry.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Caller, Context};
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::{idempotency, is_unique_violation};

/// Most characters of a key.
pub const MAX_KEY: usize = 255;

/// What to do with a request that carries a key.
pub enum Claim {
    /// Run it, then [`Idempotency::finish`].
    Run,
    /// Answer this again.
    Replay { status: u16, content_type: Option<String>, body: String },
}

/// The idempotency rule, over the shared database.
pub struct Idempotency {
    ctx: Context,
    ttl: chrono::Duration,
}

/// Whose keys a caller uses: an app's keys share one namespace, a user's sessions another.
pub fn caller_key(caller: &Caller) -> String {
    match &caller.app {
        Some(grant) => format!("a:{}", grant.app_id),
        None => format!("u:{}", caller.user_id),
    }
}

/// Checks a key's form: 1 to 255 visible ASCII characters.
pub fn check_key(key: &str) -> AppResult<()> {
    if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::bad_input(
            "Idempotency-Key",
            format!("Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters"),
        ));
    }
    Ok(())
}

/// The fingerprint of a request: its method, path with query, and body.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update([0]);
    hash.update(path_and_query.as_bytes());
    hash.update([0]);
    hash.update(body);
    hex::encode(hash.finalize())
}

impl Idempotency {
    pub fn new(ctx: Context, ttl: std::time::Duration) -> Idempotency {
        let ttl = chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::days(1));
        Idempotency { ctx, ttl }
    }

    /// Takes `key` for this request, or says what to answer instead.
    pub async fn claim(&self, caller: &str, key: &str, fingerprint: &str) -> AppResult<Claim> {
        let db = &self.ctx.db;
        let now = self.ctx.now();
        for _ in 0..2 {
            match idempotency::take(db, caller, key, fingerprint, now, now + self.ttl).await {
                Ok(()) => return Ok(Claim::Run),
                Err(e) if is_unique_violation(&e) => {}
                Err(e) => return Err(e.into()),
            }
            let Some(found) = idempotency::find(db, caller, key).await? else { continue };
            if found.expires_at <= now {
                // Past its lifetime: the key is free again.
                idempotency::release(db, caller, key).await?;
                continue;
            }
            if found.fingerprint != fingerprint {
                m::idempotent_request("conflict");
                return Err(AppError::Conflict(
                    "this Idempotency-Key was already used with a different request".into(),
                ));
            }
            return match found.status {
                None => {
                    m::idempotent_request("in_progress");
                    Err(AppError::Conflict(
                        "a request with this Idempotency-Key is still in progress; retry shortly".into(),
                    ))
                }
                Some(status) => {
                    m::idempotent_request("replayed");
                    Ok(Claim::Replay {
                        status: u16::try_from(status).unwrap_or(500),
                        content_type: found.content_type,
                        body: found.body.unwrap_or_default(),
                    })
                }
            };
        }
        Err(AppError::Conflict("this Idempotency-Key is being used concurrently; retry shortly".into()))
    }

    /// Keeps the answer of a request that ran (or gives the key back for 5xx and 429).
    pub async fn finish(&self, caller: &str, key: &str, status: u16, content_type: Option<String>, body: String) {
        let db = &self.ctx.db;
        let outcome = if status >= 500 || status == 429 {
            idempotency::release(db, caller, key).await
        } else {
            m::idempotent_request("stored");
            idempotency::complete(db, caller, key, i32::from(status), content_type, body).await
        };
        if let Err(e) = outcome {
            // The row expires by itself; until then a repeat is told to retry.
            tracing::warn!(error = %e, "could not store an idempotent answer");
        }
    }

    /// Deletes expired keys.
    pub async fn collect(&self, now: DateTime<Utc>) -> AppResult<u64> {
        Ok(idempotency::delete_expired(&self.ctx.db, now).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_fingerprints() {
        assert!(check_key("order-123_ABC").is_ok());
        for bad in ["", "has space", "tab\tx", "é", &"k".repeat(256)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert_eq!(fingerprint("POST", "/a", b"{}"), fingerprint("POST", "/a", b"{}"));
        assert_ne!(fingerprint("POST", "/a", b"{}"), fingerprint("POST", "/a", b"{ }"));
        assert_ne!(fingerprint("POST", "/a?x=1", b""), fingerprint("POST", "/a", b"x=1"));
    }
}
