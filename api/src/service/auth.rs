//! Accounts: registration, login, token refresh with rotation, logout, and turning a bearer
//! token into a [`Caller`] (with the cache of recently checked sessions).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::Set;
use syncchat_realtime::{EventKind, Topic};
use tracing::instrument;
use uuid::Uuid;

use super::limits::{LimitSettings, RateLimit};
use super::tokens::{TokenIssuer, TokenSettings, new_refresh_token, parse_refresh_token};
use super::views::{AuthPayload, UserView};
use super::{Caller, Context, Users, password};
use crate::domain::{DeviceName, DisplayName, Email, Login, Password, Username};
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::{session, user};

#[derive(Debug, Clone, async_graphql::InputObject, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct RegisterInput {
    /// 3 to 32 lowercase letters, digits and underscores.
    #[oai(deserialize_with = "crate::rest::strict::text", validator(pattern = r"^[a-z0-9_]{3,32}$"))]
    pub username: String,
    #[oai(
        deserialize_with = "crate::rest::strict::text",
        validator(
            max_length = 254,
            pattern = r"^[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]{1,64}@[^@.\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+(\.[^@.\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+)+$"
        )
    )]
    pub email: String,
    #[oai(deserialize_with = "crate::rest::strict::text", validator(min_length = 10, max_length = 256))]
    pub password: String,
    /// Up to 64 characters, one line.
    #[oai(
        deserialize_with = "crate::rest::strict::optional_text",
        validator(max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, async_graphql::InputObject, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct LoginInput {
    /// Username or email.
    #[oai(
        deserialize_with = "crate::rest::strict::text",
        validator(
            max_length = 254,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub login: String,
    #[oai(deserialize_with = "crate::rest::strict::text")]
    pub password: String,
    /// A label for this device, shown in session lists (cut to 100 characters).
    #[oai(deserialize_with = "crate::rest::strict::optional_text", validator(pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"))]
    pub device: Option<String>,
}

/// Whose login budget an attempt spends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum AccountKey {
    User(Uuid),
    Login(String),
}

/// Accounts and their sessions: tokens, the session cache and the auth rate limits.
pub struct Accounts {
    pub(crate) ctx: Context,
    users: Arc<Users>,
    tokens: TokenIssuer,
    pub(crate) sessions: SessionCache,
    /// Key prefix → (secret hash, key id, bot id) of keys checked before (`keys.rs`).
    pub(crate) key_hints: std::sync::Mutex<HashMap<String, (String, Uuid, Uuid)>>,
    /// Calls per app (API keys), per minute.
    pub(crate) per_app: RateLimit<Uuid>,
    per_ip: RateLimit<IpAddr>,
    per_account: RateLimit<AccountKey>,
}

impl Accounts {
    pub fn new(ctx: Context, users: Arc<Users>, tokens: TokenSettings, limits: &LimitSettings) -> Accounts {
        Accounts {
            ctx,
            users,
            tokens: TokenIssuer::new(tokens),
            sessions: SessionCache::default(),
            key_hints: std::sync::Mutex::default(),
            per_app: RateLimit::per_minute("app", limits.app_per_min),
            per_ip: RateLimit::per_minute("auth_ip", limits.auth_per_ip_per_min),
            per_account: RateLimit::per_minute("auth_account", limits.auth_per_account_per_min),
        }
    }

    pub(crate) fn tokens(&self) -> &TokenIssuer {
        &self.tokens
    }

    pub(crate) fn sessions(&self) -> &SessionCache {
        &self.sessions
    }

    pub(crate) fn shrink_limits(&self) {
        self.per_ip.shrink();
        self.per_app.shrink();
        self.per_account.shrink();
    }

    fn check_ip(&self, ip: Option<IpAddr>) -> AppResult<()> {
        match ip {
            Some(ip) => self.per_ip.check(&ip),
            None => Ok(()),
        }
    }

    /// Login attempts against one account: keyed on the account when the login names one,
    /// so its username and its email share a budget; on the normalised login otherwise.
    fn check_account(&self, account: Option<Uuid>, login: &str) -> AppResult<()> {
        let key = match account {
            Some(id) => AccountKey::User(id),
            None => AccountKey::Login(login.trim().to_lowercase()),
        };
        self.per_account.check(&key)
    }

    #[instrument(skip_all, fields(user.username = %input.username))]
    pub async fn register(&self, input: RegisterInput, ip: Option<IpAddr>) -> AppResult<AuthPayload> {
        self.check_ip(ip)?;
        let username = Username::parse(input.username.trim())?;
        let email = Email::parse(&input.email)?;
        let password = Password::parse(&input.password)?;
        let display_name = DisplayName::parse_optional(input.display_name.as_deref())?.map(DisplayName::into_inner);
        let created = self.users.create(&username, &email, &password, display_name, user::ROLE_USER).await?;
        m::registration();
        self.open_session(created, None).await
    }

    #[instrument(skip_all, fields(user.login = %input.login))]
    pub async fn login(&self, input: LoginInput, ip: Option<IpAddr>) -> AppResult<AuthPayload> {
        let device = input.device.as_deref().map(DeviceName::parse).transpose()?;
        // Only the console's own sign-in makes console sessions (see `Admin::session`).
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
        self.check_ip(ip)?;
        let login = Login::parse(login)?;
        let db = &self.ctx.db;
        let found = if login.is_email() {
            user::by_email(db, login.as_str()).await?
        } else {
            user::by_username(db, login.as_str()).await?
        };
        // One budget per account, whether it is named by username or email.
        self.check_account(found.as_ref().map(|u| u.id), login.as_str())?;
        // A bot has no password (its hash is unusable): the same work, then a clear refusal.
        let bot = found.as_ref().is_some_and(|u| u.role == user::ROLE_BOT);
        let hash = match &found {
            Some(u) if !bot => u.password_hash.clone(),
            _ => password::DUMMY_HASH.to_owned(),
        };
        let password_ok = password::verify(password, hash).await?;
        if bot {
            m::login("invalid");
            return Err(AppError::Unauthenticated(
                "an app's bot user has no password: call with one of its app's API keys".into(),
            ));
        }
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
        self.check_ip(ip)?;
        let (session_id, presented_hash) = parse_refresh_token(token)?;
        let invalid = || AppError::Unauthenticated("invalid refresh token".into());
        let db = &self.ctx.db;
        let Some(sess) = session::find(db, session_id).await? else {
            return Err(invalid());
        };
        // Console sessions live in a cookie and never mint API tokens.
        if sess.revoked_at.is_some()
            || sess.expires_at <= self.ctx.now()
            || sess.device.as_deref() == Some(CONSOLE_DEVICE)
        {
            return Err(invalid());
        }
        let (new_token, new_hash) = new_refresh_token(session_id);
        // Compare-and-swap on the stored hash: of two concurrent refreshes with the same token,
        // exactly one wins; the loser is treated as a reuse.
        if !session::swap_token(db, session_id, presented_hash, new_hash).await? {
            tracing::warn!(session.id = %session_id, user.id = %sess.user_id, "refresh token reused: revoking session");
            self.revoke_session(session_id).await?;
            return Err(AppError::Unauthenticated("refresh token was already used; session revoked".into()));
        }
        let Some(found) = user::find(db, sess.user_id).await? else {
            return Err(invalid());
        };
        if found.disabled {
            self.revoke_session(session_id).await?;
            return Err(AppError::Unauthenticated("this account is disabled".into()));
        }
        self.payload(found, session_id, new_token)
    }

    /// Ends the caller's session: its refresh token and access tokens stop working.
    #[instrument(skip_all, fields(user.id = %caller.user_id, session.id = %caller.session_id))]
    pub async fn logout(&self, caller: &Caller) -> AppResult<bool> {
        if caller.app.is_some() {
            return Err(AppError::bad_input(
                "token",
                "an API key has no session to end: an admin revokes it (DELETE /api/v1/apps/{id}/keys/{keyId})",
            ));
        }
        self.revoke_session(caller.session_id).await?;
        Ok(true)
    }

    /// Turns a bearer token into a caller. An access token: valid signature, not expired,
    /// session not revoked (else `UNAUTHENTICATED`), user not disabled (else `FORBIDDEN`).
    /// An API key (`sck_…`): see `keys.rs`. (Not a span of its own: a key's app and key ids
    /// are recorded on the request's span.)
    pub async fn authenticate(&self, token: &str) -> AppResult<Caller> {
        if super::keys::is_key(token) {
            return self.authenticate_key(token).await;
        }
        let claims = self.tokens.verify_access(token)?;
        self.live_session(claims.sub, claims.sid).await
    }

    /// The caller of a session that is still live, trusted for [`SESSION_TRUST`] once checked
    /// (a bearer token's, or an open connection's at each operation).
    pub(crate) async fn live_session(&self, user_id: Uuid, session_id: Uuid) -> AppResult<Caller> {
        if let Some(caller) = self.sessions.get(session_id, user_id) {
            return Ok(caller);
        }
        let generation = self.sessions.generation();
        let caller = self.session_caller(user_id, session_id).await?;
        self.sessions.put(&caller, generation);
        Ok(caller)
    }

    /// The caller behind a live session of `user_id` (tokens other than access tokens, such
    /// as upload URLs, are checked against it too).
    pub(crate) async fn session_caller(&self, user_id: Uuid, session_id: Uuid) -> AppResult<Caller> {
        let Some(found) = session::live_user(&self.ctx.db, user_id, session_id).await? else {
            // A connection opened with an API key: the key is its session.
            if let Some(caller) = self.key_session(user_id, session_id).await? {
                return Ok(caller);
            }
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
        let created_at = self.ctx.now();
        let new = session::ActiveModel {
            id: Set(session_id),
            user_id: Set(found.id),
            token_hash: Set(token_hash),
            device: Set(device),
            created_at: Set(created_at),
            expires_at: Set(created_at + chrono::Duration::seconds(self.tokens.refresh_ttl_secs)),
            revoked_at: Set(None),
        };
        session::insert(&self.ctx.db, new).await?;
        self.payload(found, session_id, refresh_token)
    }

    /// What a login or a refresh answers: a fresh access token beside the refresh token.
    fn payload(&self, found: user::Model, session_id: Uuid, refresh_token: String) -> AppResult<AuthPayload> {
        let access_token = self.tokens.issue_access(found.id, session_id)?;
        Ok(AuthPayload {
            access_token,
            expires_in: self.tokens.access_ttl_secs,
            refresh_token,
            user: UserView::from_model(found, true),
        })
    }

    pub(crate) async fn revoke_session(&self, session_id: Uuid) -> AppResult<()> {
        session::revoke(&self.ctx.db, session_id, self.ctx.now()).await?;
        self.sessions.forget_session(session_id);
        self.ctx.publish(Topic::Control, EventKind::SessionRevoked { session_id }).await;
        Ok(())
    }

    /// Records that the user is around now (presence, active-user counts).
    pub(crate) async fn touch_last_seen(&self, user_id: Uuid) -> DateTime<Utc> {
        let at = self.ctx.now();
        if let Err(e) = user::touch_last_seen(&self.ctx.db, user_id, at).await {
            tracing::warn!(user.id = %user_id, error = %e, "could not store last_seen_at");
        }
        at
    }
}

/// How long a checked session is trusted without asking the database again. Ending a
/// session or disabling an account clears it at once on every node (control topic); the
/// lifetime only bounds what a lost control message could leave behind.
pub(crate) const SESSION_TRUST: Duration = Duration::from_secs(5);
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

    pub(crate) fn get(&self, session_id: Uuid, user_id: Uuid) -> Option<Caller> {
        let entries = self.lock();
        let (caller, checked) = entries.get(&session_id)?;
        (caller.user_id == user_id && checked.elapsed() < SESSION_TRUST).then(|| caller.clone())
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Remembers a caller read from the database, unless a session was forgotten since the
    /// read began (`generation`).
    pub(crate) fn put(&self, caller: &Caller, generation: u64) {
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

/// The `device` of admin console sessions: cookie-only, 12 hours, no API tokens.
pub(crate) const CONSOLE_DEVICE: &str = "admin console";
