//! Registration, login, token refresh with rotation, logout, and turning a bearer token
//! into a [`Caller`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use syncchat_realtime::{EventKind, Topic};
use tracing::instrument;
use uuid::Uuid;

use super::tokens::{new_refresh_token, parse_refresh_token};
use super::views::{AuthPayload, UserView};
use super::{Caller, Services, now};
use crate::domain::{DeviceName, DisplayName, Email, Login, Password, Username};
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::{is_unique_violation, session, user};

#[derive(Debug, Clone, async_graphql::InputObject, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct RegisterInput {
    pub username: String,
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, async_graphql::InputObject, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct LoginInput {
    /// Username or email.
    pub login: String,
    pub password: String,
    /// A label for this device, shown in session lists.
    pub device: Option<String>,
}

/// A hash to verify against when the account does not exist, so that a wrong username
/// takes as long as a wrong password.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Wq9tqgqXm5m0Ly0cM2ArSZ1mEJ2KN1dmqEi5b3Q1pAU";

impl Services {
    #[instrument(skip_all, fields(user.username = %input.username))]
    pub async fn register(&self, input: RegisterInput, ip: Option<IpAddr>) -> AppResult<AuthPayload> {
        self.limits().check_auth_ip(ip)?;
        let username = Username::parse(input.username.trim())?;
        let email = Email::parse(&input.email)?;
        let password = Password::parse(&input.password)?;
        let display_name = DisplayName::parse_optional(input.display_name.as_deref())?.map(DisplayName::into_inner);
        let created = self.create_user(&username, &email, &password, display_name, user::ROLE_USER).await?;
        m::registration();
        self.open_session(created, None).await
    }

    /// Creates a user with the given role; used by registration and `syncchat admin create-user`.
    #[instrument(skip_all, fields(user.username = %username.as_str(), user.role = role))]
    pub async fn create_user(
        &self,
        username: &Username,
        email: &Email,
        password: &Password,
        display_name: Option<String>,
        role: &str,
    ) -> AppResult<user::Model> {
        let db = self.db();
        if user::Entity::find().filter(user::Column::Username.eq(username.as_str())).one(db).await?.is_some() {
            return Err(AppError::Conflict("username is taken".into()));
        }
        if user::Entity::find().filter(user::Column::Email.eq(email.as_str())).one(db).await?.is_some() {
            return Err(AppError::Conflict("email is already registered".into()));
        }
        let password_hash = hash_password(password.expose().to_owned()).await?;
        let model = user::ActiveModel {
            id: Set(Uuid::now_v7()),
            username: Set(username.as_str().to_owned()),
            email: Set(email.as_str().to_owned()),
            password_hash: Set(password_hash),
            display_name: Set(display_name),
            role: Set(role.to_owned()),
            disabled: Set(false),
            created_at: Set(now()),
            last_seen_at: Set(None),
        };
        model.insert(db).await.map_err(|e| {
            if is_unique_violation(&e) { AppError::Conflict("username or email is taken".into()) } else { e.into() }
        })
    }

    #[instrument(skip_all, fields(user.login = %input.login))]
    pub async fn login(&self, input: LoginInput, ip: Option<IpAddr>) -> AppResult<AuthPayload> {
        let device = input.device.as_deref().map(DeviceName::parse).transpose()?;
        // Only the console's own sign-in makes console sessions (see `admin_session`).
        if device.as_ref().is_some_and(|d| d.as_str() == CONSOLE_DEVICE) {
            return Err(AppError::bad_input("device", "this device name is reserved"));
        }
        let found = self.verify_credentials(&input.login, input.password, ip).await?;
        self.open_session(found, device.map(DeviceName::into_inner)).await
    }

    /// The account behind a login and password, with the auth rate limits applied; disabled
    /// accounts are `FORBIDDEN`, wrong credentials `UNAUTHENTICATED` either way.
    pub(crate) async fn verify_credentials(
        &self,
        login: &str,
        password: String,
        ip: Option<IpAddr>,
    ) -> AppResult<user::Model> {
        self.limits().check_auth_ip(ip)?;
        let login = Login::parse(login)?;
        let column = if login.is_email() { user::Column::Email } else { user::Column::Username };
        let found = user::Entity::find().filter(column.eq(login.as_str())).one(self.db()).await?;
        // One budget per account, whether it is named by username or email.
        self.limits().check_auth_account(found.as_ref().map(|u| u.id), login.as_str())?;
        let hash = found.as_ref().map_or(DUMMY_HASH.to_owned(), |u| u.password_hash.clone());
        let password_ok = verify_password(password, hash).await?;
        let Some(found) = found.filter(|_| password_ok) else {
            m::login("invalid");
            return Err(AppError::Unauthenticated("invalid login or password".into()));
        };
        if found.disabled {
            m::login("disabled");
            return Err(AppError::Forbidden("this account is disabled".into()));
        }
        m::login("ok");
        self.touch_last_seen(found.id).await;
        Ok(found)
    }

    /// Exchanges a refresh token for a new pair. The old refresh token stops working; using
    /// it again is taken as theft and revokes the whole session.
    #[instrument(skip_all)]
    pub async fn refresh(&self, token: &str, ip: Option<IpAddr>) -> AppResult<AuthPayload> {
        self.limits().check_auth_ip(ip)?;
        let (session_id, presented_hash) = parse_refresh_token(token)?;
        let invalid = || AppError::Unauthenticated("invalid refresh token".into());
        let db = self.db();
        let Some(sess) = session::Entity::find_by_id(session_id).one(db).await? else {
            return Err(invalid());
        };
        // Console sessions live in a cookie and never mint API tokens.
        if sess.revoked_at.is_some() || sess.expires_at <= now() || sess.device.as_deref() == Some(CONSOLE_DEVICE) {
            return Err(invalid());
        }
        let (new_token, new_hash) = new_refresh_token(session_id);
        // Compare-and-swap on the stored hash: of two concurrent refreshes with the same token,
        // exactly one wins; the loser is treated as a reuse.
        let swapped = session::Entity::update_many()
            .col_expr(session::Column::TokenHash, Expr::value(new_hash))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::TokenHash.eq(presented_hash))
            .filter(session::Column::RevokedAt.is_null())
            .exec(db)
            .await?;
        if swapped.rows_affected != 1 {
            tracing::warn!(session.id = %session_id, user.id = %sess.user_id, "refresh token reused: revoking session");
            self.revoke_session(session_id).await?;
            return Err(AppError::Unauthenticated("refresh token was already used; session revoked".into()));
        }
        let Some(found) = user::Entity::find_by_id(sess.user_id).one(db).await? else {
            return Err(invalid());
        };
        if found.disabled {
            self.revoke_session(session_id).await?;
            return Err(AppError::Unauthenticated("this account is disabled".into()));
        }
        let access_token = self.inner.tokens.issue_access(found.id, session_id)?;
        Ok(AuthPayload {
            access_token,
            expires_in: self.inner.tokens.access_ttl_secs,
            refresh_token: new_token,
            user: UserView::from_model(found, true),
        })
    }

    /// Ends the caller's session: its refresh token and access tokens stop working.
    #[instrument(skip_all, fields(user.id = %caller.user_id, session.id = %caller.session_id))]
    pub async fn logout(&self, caller: &Caller) -> AppResult<bool> {
        self.revoke_session(caller.session_id).await?;
        Ok(true)
    }

    /// Turns a bearer access token into a caller: valid signature, not expired, session not
    /// revoked (else `UNAUTHENTICATED`), user not disabled (else `FORBIDDEN`).
    #[instrument(skip_all)]
    pub async fn authenticate(&self, token: &str) -> AppResult<Caller> {
        let claims = self.inner.tokens.verify_access(token)?;
        self.live_session(claims.sub, claims.sid).await
    }

    /// The caller of a session that is still live, trusted for [`SESSION_TRUST`] once checked
    /// (a bearer token's, or an open connection's at each operation).
    pub(crate) async fn live_session(&self, user_id: Uuid, session_id: Uuid) -> AppResult<Caller> {
        if let Some(caller) = self.sessions().get(session_id, user_id) {
            return Ok(caller);
        }
        let generation = self.sessions().generation();
        let caller = self.session_caller(user_id, session_id).await?;
        self.sessions().put(&caller, generation);
        Ok(caller)
    }

    /// The caller behind a live session of `user_id` (tokens other than access tokens, such
    /// as upload URLs, are checked against it too).
    pub(crate) async fn session_caller(&self, user_id: Uuid, session_id: Uuid) -> AppResult<Caller> {
        // One round trip: the user, provided the session is theirs and still live.
        let live_session = Query::select()
            .expr(Expr::val(1))
            .from(session::Entity)
            .and_where(session::Column::Id.eq(session_id))
            .and_where(session::Column::UserId.eq(user_id))
            .and_where(session::Column::RevokedAt.is_null())
            .to_owned();
        let found = user::Entity::find_by_id(user_id).filter(Expr::exists(live_session)).one(self.db()).await?;
        let Some(found) = found else {
            return Err(AppError::Unauthenticated("session has ended".into()));
        };
        if found.disabled {
            return Err(AppError::Forbidden("this account is disabled".into()));
        }
        Ok(Caller::from_user(found, session_id))
    }

    pub(crate) async fn open_session(&self, found: user::Model, device: Option<String>) -> AppResult<AuthPayload> {
        let session_id = Uuid::now_v7();
        let (refresh_token, token_hash) = new_refresh_token(session_id);
        let created_at = now();
        session::ActiveModel {
            id: Set(session_id),
            user_id: Set(found.id),
            token_hash: Set(token_hash),
            device: Set(device),
            created_at: Set(created_at),
            expires_at: Set(created_at + chrono::Duration::seconds(self.inner.tokens.refresh_ttl_secs)),
            revoked_at: Set(None),
        }
        .insert(self.db())
        .await?;
        let access_token = self.inner.tokens.issue_access(found.id, session_id)?;
        Ok(AuthPayload {
            access_token,
            expires_in: self.inner.tokens.access_ttl_secs,
            refresh_token,
            user: UserView::from_model(found, true),
        })
    }

    pub(crate) async fn revoke_session(&self, session_id: Uuid) -> AppResult<()> {
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now()))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(self.db())
            .await?;
        self.sessions().forget_session(session_id);
        self.publish(Topic::Control, EventKind::SessionRevoked { session_id }).await;
        Ok(())
    }
}

/// How long a checked session is trusted without asking the database again. Ending a
/// session or disabling an account clears it at once on every node (control topic); the
/// lifetime only bounds what a lost control message could leave behind.
const SESSION_TRUST: Duration = Duration::from_secs(5);
/// Most sessions remembered; beyond that the cache starts over.
const SESSION_CACHE_MAX: usize = 100_000;

/// Live sessions recently checked against the database, so a busy client's requests do not
/// each pay a read to authenticate.
#[derive(Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<Uuid, (Caller, Instant)>>,
    /// Bumped by every forget: a read that began before one is not remembered, as it may
    /// predate the revocation.
    generation: AtomicU64,
}

impl SessionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Caller, Instant)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, session_id: Uuid, user_id: Uuid) -> Option<Caller> {
        let entries = self.lock();
        let (caller, checked) = entries.get(&session_id)?;
        (caller.user_id == user_id && checked.elapsed() < SESSION_TRUST).then(|| caller.clone())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Remembers a caller read from the database, unless a session was forgotten since the
    /// read began (`generation`).
    fn put(&self, caller: &Caller, generation: u64) {
        let mut entries = self.lock();
        if self.generation() != generation {
            return;
        }
        if entries.len() >= SESSION_CACHE_MAX {
            entries.clear();
        }
        entries.insert(caller.session_id, (caller.clone(), Instant::now()));
    }

    pub(crate) fn forget_session(&self, session_id: Uuid) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.remove(&session_id);
    }

    pub(crate) fn forget_user(&self, user_id: Uuid) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.retain(|_, (caller, _)| caller.user_id != user_id);
    }
}

/// argon2id with the crate's defaults (OWASP's m=19 MiB, t=2, p=1), off the async threads.
async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing password: {e}")))
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?
}

async fn verify_password(password: String, hash: String) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("stored password hash is malformed: {e}")))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?
}

/// The `device` of admin console sessions: cookie-only, 12 hours, no API tokens.
pub(crate) const CONSOLE_DEVICE: &str = "admin console";
