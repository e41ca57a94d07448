//! The admin console's rules: who may sign in (role admin), console sessions (the same
//! `sessions` rows as API logins, carried in an HttpOnly cookie), CSRF tokens bound to the
//! session, and the figures the pages show.

use std::net::IpAddr;

use sea_orm::{EntityTrait, PaginatorTrait};
use sha2::{Digest, Sha256};
use tracing::instrument;

use super::tokens::parse_refresh_token;
use super::{Caller, Services, now};
use crate::error::{AppError, AppResult};
use crate::storage::{conversation, message, session, user};

/// Figures for the overview page, from this node and the database.
#[derive(Clone, Debug)]
pub struct AdminOverview {
    pub users: u64,
    pub conversations: u64,
    pub messages: u64,
    pub online_users: u64,
    pub presence_scope: &'static str,
}

impl Services {
    /// Signs an admin into the console; returns the session token for the cookie.
    #[instrument(skip_all, fields(user.login = %login))]
    pub async fn admin_login(&self, login: &str, password: String, ip: Option<IpAddr>) -> AppResult<String> {
        let found = self.verify_credentials(login, password, ip).await?;
        if found.role != user::ROLE_ADMIN {
            return Err(AppError::Forbidden("the console is for admins".into()));
        }
        let payload = self.open_session(found, Some("admin console".into())).await?;
        Ok(payload.refresh_token)
    }

    /// The admin behind a console session cookie: a live session of a user who is still an
    /// enabled admin.
    pub async fn admin_session(&self, token: &str) -> AppResult<Caller> {
        let invalid = || AppError::Unauthenticated("sign in to the console".into());
        let (session_id, hash) = parse_refresh_token(token).map_err(|_| invalid())?;
        let sess = session::Entity::find_by_id(session_id).one(self.db()).await?.ok_or_else(invalid)?;
        if sess.token_hash != hash || sess.revoked_at.is_some() || sess.expires_at <= now() {
            return Err(invalid());
        }
        let found = user::Entity::find_by_id(sess.user_id).one(self.db()).await?.ok_or_else(invalid)?;
        if found.disabled || found.role != user::ROLE_ADMIN {
            return Err(AppError::Forbidden("the console is for admins".into()));
        }
        Ok(Caller { user_id: found.id, username: found.username, session_id, is_admin: true })
    }

    pub async fn admin_logout(&self, caller: &Caller) -> AppResult<()> {
        self.revoke_session(caller.session_id).await
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn admin_overview(&self, caller: &Caller) -> AppResult<AdminOverview> {
        if !caller.is_admin {
            return Err(AppError::Forbidden("the console is for admins".into()));
        }
        let db = self.db();
        Ok(AdminOverview {
            users: user::Entity::find().count(db).await?,
            conversations: conversation::Entity::find().count(db).await?,
            messages: message::Entity::find().count(db).await?,
            online_users: self.presence_store().online_count().await as u64,
            presence_scope: if self.presence_store().name() == "redis" { "cluster" } else { "this node" },
        })
    }
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
