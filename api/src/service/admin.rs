//! The admin console's rules: who may sign in (role admin), console sessions (the same
//! `sessions` rows as API logins, carried in an HttpOnly cookie), CSRF tokens bound to the
//! session, and the figures the pages show.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::TransactionTrait;
use sha2::{Digest, Sha256};
use syncchat_realtime::{EventKind, PresenceStore, Topic};
use tracing::instrument;
use uuid::Uuid;

use super::webhooks::payload::MESSAGE_DELETED;

use super::tokens::parse_refresh_token;
use super::views::MessageView;
use super::{Accounts, Caller, Context, Messages, Users};
use crate::domain::SearchPrefix;
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::{api_key, app, audit, conversation, message, participant, session, user};

/// How long a console sign-in lasts (also the cookie's Max-Age).
pub const CONSOLE_SESSION_HOURS: i64 = 12;

/// Figures for the overview page, from this node and the database.
#[derive(Clone, Debug)]
pub struct AdminOverview {
    pub users: u64,
    pub conversations: u64,
    pub messages: u64,
    pub online_users: u64,
    pub presence_scope: &'static str,
}

/// The console's rules: sign-in, moderation, figures.
pub struct Admin {
    ctx: Context,
    presence: Arc<dyn PresenceStore>,
    auth: Arc<Accounts>,
    users: Arc<Users>,
    messages: Arc<Messages>,
}

impl Admin {
    pub fn new(
        ctx: Context,
        presence: Arc<dyn PresenceStore>,
        auth: Arc<Accounts>,
        users: Arc<Users>,
        messages: Arc<Messages>,
    ) -> Admin {
        Admin { ctx, presence, auth, users, messages }
    }

    /// Signs an admin into the console; returns the session token for the cookie.
    #[instrument(skip_all, fields(user.login = %login))]
    pub async fn login(&self, login: &str, password: String, ip: Option<IpAddr>) -> AppResult<String> {
        let found = self.auth.verify_credentials(login, password, ip).await?;
        if found.role != user::ROLE_ADMIN {
            return Err(AppError::Forbidden("the console is for admins".into()));
        }
        let payload = self.auth.open_session(found, Some(super::auth::CONSOLE_DEVICE.into())).await?;
        // A console session lasts a working day, not a refresh token's month.
        let session_id = parse_refresh_token(&payload.refresh_token)?.0;
        session::set_expiry(&self.ctx.db, session_id, self.ctx.now() + Duration::hours(CONSOLE_SESSION_HOURS)).await?;
        Ok(payload.refresh_token)
    }

    /// The admin behind a console session cookie: a live console session (one made by the
    /// console's sign-in, never an API login's refresh token) of a user who is still an
    /// enabled admin.
    pub async fn session(&self, token: &str) -> AppResult<Caller> {
        let invalid = || AppError::Unauthenticated("sign in to the console".into());
        let (session_id, hash) = parse_refresh_token(token).map_err(|_| invalid())?;
        let sess = session::find(&self.ctx.db, session_id).await?.ok_or_else(invalid)?;
        let console = sess.device.as_deref() == Some(super::auth::CONSOLE_DEVICE);
        if !console || sess.token_hash != hash || sess.revoked_at.is_some() || sess.expires_at <= self.ctx.now() {
            return Err(invalid());
        }
        let found = user::find(&self.ctx.db, sess.user_id).await?.ok_or_else(invalid)?;
        if found.disabled || found.role != user::ROLE_ADMIN {
            return Err(AppError::Forbidden("the console is for admins".into()));
        }
        Ok(Caller::from_user(found, session_id))
    }

    pub async fn logout(&self, caller: &Caller) -> AppResult<()> {
        self.auth.revoke_session(caller.session_id).await
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn overview(&self, caller: &Caller) -> AppResult<AdminOverview> {
        if !caller.is_admin {
            return Err(AppError::Forbidden("the console is for admins".into()));
        }
        let db = &self.ctx.db;
        Ok(AdminOverview {
            users: user::count_all(db).await?,
            conversations: conversation::count_all(db).await?,
            messages: message::count_all(db).await?,
            online_users: self.presence.online_count().await as u64,
            presence_scope: if self.presence.name() == "redis" { "cluster" } else { "this node" },
        })
    }
}

/// A user as moderation lists them.
#[derive(Clone, Debug)]
pub struct ModeratedUser {
    pub user: user::Model,
    pub conversations: u64,
    pub online: bool,
}

/// Per-day and overall business figures.
#[derive(Clone, Debug)]
pub struct BusinessFigures {
    pub users: u64,
    pub daily_active: u64,
    pub monthly_active: u64,
    pub messages: u64,
    pub conversations: u64,
    pub retention_7d: Option<f64>,
    pub cohort_size: u64,
    /// (UTC day start, registrations, messages, conversations created), oldest first.
    pub days: Vec<(DateTime<Utc>, u64, u64, u64)>,
}

/// Moderation: every change here is written to the audit log in the same transaction.
impl Admin {
    fn require_admin(caller: &Caller) -> AppResult<()> {
        if caller.is_admin { Ok(()) } else { Err(AppError::Forbidden("the console is for admins".into())) }
    }

    /// Users whose username or email starts with `query` (any case); without a query, the
    /// most recently registered. Disabled users are included.
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn find_users(&self, caller: &Caller, query: &str, limit: u64) -> AppResult<Vec<ModeratedUser>> {
        Self::require_admin(caller)?;
        let query = SearchPrefix::parse_optional("q", Some(query))?;
        // LIKE wildcards in the search are taken literally.
        let prefix = query.as_ref().map(SearchPrefix::as_str);
        let users = user::moderation_search(&self.ctx.db, prefix, limit.clamp(1, 200)).await?;
        let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
        let counts = participant::conversation_counts(&self.ctx.db, ids.clone()).await?;
        let online = self.presence.online(&ids).await;
        Ok(users
            .into_iter()
            .zip(online)
            .map(|(user, online)| {
                let conversations =
                    counts.iter().find(|(id, _)| *id == user.id).map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0));
                ModeratedUser { user, conversations, online }
            })
            .collect())
    }

    /// Disables or enables an account. Disabling revokes every session and closes the
    /// user's live connections on every node. Returns whether anything changed.
    #[instrument(skip_all, fields(user.id = %caller.user_id, target.id = %target, disabled))]
    pub async fn set_disabled(&self, caller: &Caller, target: Uuid, disabled: bool) -> AppResult<bool> {
        Self::require_admin(caller)?;
        if target == caller.user_id && disabled {
            return Err(AppError::bad_input("user", "you cannot disable your own account"));
        }
        let txn = self.ctx.db.begin().await?;
        let found = user::find(&txn, target).await?.ok_or_else(|| AppError::not_found("user"))?;
        if found.disabled == disabled {
            return Ok(false);
        }
        let username = found.username.clone();
        user::set_disabled(&txn, found, disabled).await?;
        if disabled {
            session::revoke_all_of(&txn, target, self.ctx.now()).await?;
        }
        let action = if disabled { "user.disable" } else { "user.enable" };
        record(&txn, self.ctx.now(), caller, action, "user", target.to_string(), Some(username)).await?;
        txn.commit().await?;
        m::admin_action(action);
        if disabled {
            self.auth.sessions().forget_user(target);
            self.ctx.publish(Topic::Control, EventKind::AccountDisabled { user_id: target }).await;
        }
        Ok(true)
    }

    /// Deletes any message (its body is wiped, its `seq` stays), tells its conversation, and
    /// logs who did it and why.
    #[instrument(skip_all, fields(user.id = %caller.user_id, message.id = %message_id))]
    pub async fn delete_message(
        &self,
        caller: &Caller,
        message_id: Uuid,
        reason: &str,
    ) -> AppResult<(MessageView, bool)> {
        Self::require_admin(caller)?;
        let reason = reason.trim();
        if reason.chars().count() > 500 {
            return Err(AppError::bad_input("reason", "the reason must be at most 500 characters"));
        }
        let txn = self.ctx.db.begin().await?;
        let msg = message::find(&txn, message_id).await?.ok_or_else(|| AppError::not_found("message"))?;
        if msg.deleted_at.is_some() {
            txn.commit().await?;
            return Ok((
                self.messages.views(vec![msg]).await?.pop().ok_or_else(|| AppError::not_found("message"))?,
                false,
            ));
        }
        let detail = format!(
            "conversation {}{}",
            msg.conversation_id,
            if reason.is_empty() { String::new() } else { format!(": {reason}") }
        );
        let updated = message::wipe(&txn, msg, self.ctx.now()).await?;
        crate::storage::reaction::clear(&txn, updated.id).await?;
        crate::storage::pin::clear_message(&txn, updated.id).await?;
        super::messages::record_message_change(&txn, caller, MESSAGE_DELETED, &updated, self.ctx.now()).await?;
        record(&txn, self.ctx.now(), caller, "message.delete", "message", message_id.to_string(), Some(detail)).await?;
        txn.commit().await?;
        m::admin_action("message.delete");
        Ok((self.messages.deleted(updated).await?, true))
    }

    /// Every app that is not deleted, with its bot's username and its keys, oldest first.
    pub async fn apps(&self, caller: &Caller) -> AppResult<Vec<(app::Model, String, Vec<api_key::Model>)>> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        Self::require_admin(caller)?;
        let db = &self.ctx.db;
        let apps = app::Entity::find()
            .filter(app::Column::DeletedAt.is_null())
            .order_by_asc(app::Column::CreatedAt)
            .all(db)
            .await?;
        let mut out = Vec::with_capacity(apps.len());
        for found in apps {
            let bot = user::find(db, found.bot_user_id).await?.map(|u| u.username).unwrap_or_default();
            let keys = api_key::Entity::find()
                .filter(api_key::Column::AppId.eq(found.id))
                .order_by_asc(api_key::Column::CreatedAt)
                .all(db)
                .await?;
            out.push((found, bot, keys));
        }
        Ok(out)
    }

    /// The latest entries of the audit log, newest first.
    pub async fn audit_log(&self, caller: &Caller, limit: u64) -> AppResult<Vec<audit::Model>> {
        Self::require_admin(caller)?;
        Ok(audit::latest(&self.ctx.db, limit.clamp(1, 500)).await?)
    }

    /// Registrations, active users, messages and conversations per day for the last `days`
    /// UTC days (today included), with totals and 7-day retention.
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn business(&self, caller: &Caller, days: u32) -> AppResult<BusinessFigures> {
        Self::require_admin(caller)?;
        let db = &self.ctx.db;
        let now = Utc::now();
        let today = Utc.from_utc_datetime(&now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default());
        let mut per_day = Vec::new();
        for back in (0..i64::from(days.clamp(1, 90))).rev() {
            let start = today - Duration::days(back);
            let end = start + Duration::days(1);
            let registrations = user::count_registered(db, start, end, None).await?;
            let messages = message::count_created(db, start, end).await?;
            let conversations = conversation::count_created(db, start, end).await?;
            per_day.push((start, registrations, messages, conversations));
        }
        let (cohort_size, retention_7d) = self.users.seven_day_cohort(now).await?;
        Ok(BusinessFigures {
            users: user::count_all(db).await?,
            daily_active: self.users.active_users(now - Duration::days(1)).await?,
            monthly_active: self.users.active_users(now - Duration::days(30)).await?,
            messages: message::count_all(db).await?,
            conversations: conversation::count_all(db).await?,
            retention_7d,
            cohort_size,
            days: per_day,
        })
    }
}

async fn record<C: sea_orm::ConnectionTrait>(
    db: &C,
    at: DateTime<Utc>,
    caller: &Caller,
    action: &str,
    target_kind: &str,
    target_id: String,
    detail: Option<String>,
) -> AppResult<()> {
    let entry = audit::Entry {
        actor_id: caller.user_id,
        actor_username: &caller.username,
        action,
        target_kind,
        target_id,
        detail,
        at,
    };
    Ok(audit::append(db, entry).await?)
}

/// The CSRF token of a console session: derived from the session token, which only the
/// browser holding the HttpOnly cookie has, so another site cannot forge it.
pub fn csrf_for_session(session_token: &str) -> String {
    hex::encode(Sha256::digest(format!("syncchat-admin-csrf:{session_token}").as_bytes()))
}

/// Constant-time comparison for tokens.
pub fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_depends_on_the_session() {
        assert_ne!(csrf_for_session("a.b"), csrf_for_session("a.c"));
        assert!(tokens_match(&csrf_for_session("x"), &csrf_for_session("x")));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "ab"));
    }
}
