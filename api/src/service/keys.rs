//! API keys as credentials: `sck_<prefix>_<secret>` in `Authorization: Bearer` (REST,
//! GraphQL, the WebSocket's `connection_init`) makes the call as the app's bot user, with
//! the app's scopes. Only the SHA-256 of the secret is stored (the secret is 256 random
//! bits, so a fast hash is enough), compared in constant time. A checked key is trusted for
//! [`super::auth::SESSION_TRUST`] like a session; revoking it (or deleting its app, or
//! disabling its bot) forgets it on every node through the control topic and closes the
//! connections opened with it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::TransactionTrait;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use syncchat_realtime::{EventKind, Topic};
use uuid::Uuid;

use super::scopes::Scopes;
use super::{Accounts, AppGrant, Caller};
use crate::error::{AppError, AppResult};
use crate::storage::{api_key, app, audit, user};

/// What every key starts with.
pub const KEY_PREFIX: &str = "sck_";
/// Characters of a key's public prefix.
const PREFIX_LEN: usize = 12;
/// How often a key's `last_used_at` is written, at most.
const LAST_USED_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// A new key: (prefix, the whole key to show once, the hash to store).
pub fn new_key() -> (String, String, String) {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut raw = [0u8; PREFIX_LEN + 32];
    rand::rng().fill_bytes(&mut raw);
    let prefix: String = raw[..PREFIX_LEN].iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    let secret = URL_SAFE_NO_PAD.encode(&raw[PREFIX_LEN..]);
    let hash = hash_secret(&secret);
    (prefix.clone(), format!("{KEY_PREFIX}{prefix}_{secret}"), hash)
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether a bearer token is an API key (rather than an access token).
pub fn is_key(token: &str) -> bool {
    token.starts_with(KEY_PREFIX)
}

/// (prefix, secret) of a well-formed key.
fn split(token: &str) -> Option<(&str, &str)> {
    let (prefix, secret) = token.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    (prefix.len() == PREFIX_LEN && !secret.is_empty()).then_some((prefix, secret))
}

impl Accounts {
    /// The caller behind an API key: the app's bot with the app's scopes; `UNAUTHENTICATED`
    /// for an unknown, malformed or revoked key or a deleted app, `FORBIDDEN` for a disabled
    /// bot, `RATE_LIMITED` past the app's budget.
    pub(crate) async fn authenticate_key(&self, token: &str) -> AppResult<Caller> {
        let invalid = || AppError::Unauthenticated("invalid API key".into());
        let (prefix, secret) = split(token).ok_or_else(invalid)?;
        let hash = hash_secret(secret);
        let caller = match self.key_hint(prefix, &hash) {
            Some((key_id, bot_id)) => match self.sessions.get(key_id, bot_id) {
                Some(caller) => caller,
                None => self.key_caller_by_prefix(prefix, &hash).await?,
            },
            None => self.key_caller_by_prefix(prefix, &hash).await?,
        };
        if let Some(grant) = &caller.app {
            self.per_app.check(&grant.app_id)?;
            crate::metrics::app_request(&grant.app_label);
            let span = tracing::Span::current();
            span.record("app.id", tracing::field::display(grant.app_id));
            span.record("key.id", tracing::field::display(grant.key_id));
        }
        Ok(caller)
    }

    /// The (key id, bot id) a prefix was last seen with, if its secret hashes the same.
    fn key_hint(&self, prefix: &str, hash: &str) -> Option<(Uuid, Uuid)> {
        let hints = self.key_hints.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (stored, key_id, bot_id) = hints.get(prefix)?;
        bool::from(stored.as_bytes().ct_eq(hash.as_bytes())).then_some((*key_id, *bot_id))
    }

    async fn key_caller_by_prefix(&self, prefix: &str, hash: &str) -> AppResult<Caller> {
        let generation = self.sessions.generation();
        let key = api_key::by_prefix(&self.ctx.db, prefix).await?;
        let key = key
            .filter(|k| bool::from(k.secret_hash.as_bytes().ct_eq(hash.as_bytes())))
            .ok_or_else(|| AppError::Unauthenticated("invalid API key".into()))?;
        let caller = self.key_caller(key).await?;
        if let Some(grant) = &caller.app {
            let mut hints = self.key_hints.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if hints.len() >= 100_000 {
                hints.clear();
            }
            hints.insert(prefix.to_owned(), (hash.to_owned(), grant.key_id, caller.user_id));
        }
        self.sessions.put(&caller, generation);
        Ok(caller)
    }

    /// The caller of a key that is still live (not revoked, app not deleted, bot enabled).
    pub(crate) async fn key_caller(&self, key: api_key::Model) -> AppResult<Caller> {
        let ended = || AppError::Unauthenticated("this API key has been revoked".into());
        if key.revoked_at.is_some() {
            return Err(ended());
        }
        let found = app::find(&self.ctx.db, key.app_id).await?.ok_or_else(ended)?;
        let bot = user::find(&self.ctx.db, found.bot_user_id).await?.ok_or_else(ended)?;
        if bot.disabled {
            return Err(AppError::Forbidden("this app's bot user is disabled".into()));
        }
        let now = self.ctx.now();
        if key.last_used_at.is_none() {
            if let Err(e) = self.first_use(&key, &bot, now).await {
                tracing::warn!(key.id = %key.id, error = %e, "could not record the key's first use");
            }
        } else if key.last_used_at.is_some_and(|at| now - at >= LAST_USED_EVERY)
            && let Err(e) = api_key::touch(&self.ctx.db, key.id, now).await
        {
            tracing::warn!(key.id = %key.id, error = %e, "could not store the key's last use");
        }
        let mut caller = Caller::from_user(bot, key.id);
        caller.app = Some(AppGrant {
            app_id: found.id,
            key_id: key.id,
            scopes: Scopes::from_stored(&found.scopes),
            app_label: crate::metrics::app_label(&found.name),
        });
        Ok(caller)
    }

    /// A key's first use goes in the audit log beside its creation and revocation (later uses
    /// only move `last_used_at`, at most once a minute).
    async fn first_use(&self, key: &api_key::Model, bot: &user::Model, now: DateTime<Utc>) -> AppResult<()> {
        let txn = self.ctx.db.begin().await?;
        if api_key::touch_first(&txn, key.id, now).await? {
            let entry = audit::Entry {
                actor_id: bot.id,
                actor_username: &bot.username,
                action: "key.first_use",
                target_kind: "app",
                target_id: key.app_id.to_string(),
                detail: Some(format!("key {}", key.prefix)),
                at: now,
            };
            audit::append(&txn, entry).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// The caller of key `key_id` if it belongs to `bot_id` (an open connection's re-check).
    pub(crate) async fn key_session(&self, bot_id: Uuid, key_id: Uuid) -> AppResult<Option<Caller>> {
        let Some(key) = api_key::find(&self.ctx.db, key_id).await? else { return Ok(None) };
        let caller = self.key_caller(key).await?;
        Ok((caller.user_id == bot_id).then_some(caller))
    }

    /// Ends a key's (or every key of a deleted app's) access at once on every node: caches
    /// forget it and its connections close.
    pub(crate) async fn keys_revoked(&self, key_ids: &[Uuid]) {
        for key_id in key_ids {
            self.sessions.forget_session(*key_id);
            self.ctx.publish(Topic::Control, EventKind::SessionRevoked { session_id: *key_id }).await;
        }
        let mut hints = self.key_hints.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        hints.retain(|_, (_, key_id, _)| !key_ids.contains(key_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape_and_split_back() {
        let (prefix, key, hash) = new_key();
        assert!(key.starts_with(&format!("sck_{prefix}_")), "{key}");
        assert_eq!(prefix.len(), PREFIX_LEN);
        let (p, secret) = split(&key).unwrap();
        assert_eq!(p, prefix);
        assert_eq!(hash_secret(secret), hash);
        assert!(secret.len() >= 43, "256 bits: {secret}");
        assert_ne!(new_key().1, key);
        for bad in ["sck_", "sck_short_x", "eyJhbGciOi", "sck_abcdefghijkm_"] {
            assert!(split(bad).is_none(), "{bad}");
        }
    }
}
