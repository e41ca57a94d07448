//! The service layer: every business rule of SyncChat. GraphQL resolvers and REST handlers
//! call these functions and only translate their inputs and outputs.
//!
//! Authorization policy: a conversation is visible only to its participants. For anyone else
//! it does not exist (`NOT_FOUND`), so ids cannot be probed. `FORBIDDEN` is reserved for
//! callers who can see the thing but may not do this to it (edit someone else's message).
//!
//! The rules live in area services, each built from what it needs; they share a [`Context`]
//! (database, event bus, clock) and hold the areas they use behind an `Arc`. [`Services`] holds the set, so a façade
//! calls `services.messages.send(&caller, input)`. An area uses only the areas above it in
//! this list (no cycles):
//!
//! | area | field | owns | uses |
//! |---|---|---|---|
//! | [`Users`] (`users.rs`) | `users` | creating and looking up users, activity figures | context |
//! | [`Accounts`] (`auth.rs`) | `auth` | login, sessions and their cache, tokens, auth rate limits | users |
//! | [`Conversations`] (`conversations.rs`) | `conversations` | membership, conversation lists, the creation limit | users |
//! | [`FileService`] (`files.rs`) | `files` | file store, upload rules, attachments, the collector | auth |
//! | [`Messages`] (`messages.rs`, `batch.rs`, `mentions.rs`) | `messages` | send (batcher, send limit), edit, delete, history, read markers, mentions | users, conversations, files |
//! | [`Live`] (`live.rs`, `heal.rs`) | `live` | subscriptions, presence, typing, the connection registry, the healer | auth, conversations, messages |
//! | [`Admin`] (`admin.rs`) | `admin` | console sign-in, moderation, console figures | auth, users, messages |
//! | [`Apps`] (`apps.rs`; keys as credentials in `keys.rs`, on `auth`) | `apps` | apps, their bot users and API keys | auth |
//! | [`Search`] (`search.rs`) | `search` | message search | conversations, messages |
//! | [`Webhooks`] (`webhooks/`) | `webhooks` | endpoints, the outbox's dispatch and delivery worker, delivery log, replay, the event feed | context |
//!

pub mod admin;
pub mod apps;
pub(crate) mod auth;
mod batch;
pub(crate) mod conversations;
pub mod files;
mod heal;
pub mod idempotency;
mod keys;
mod limits;
pub mod live;
pub(crate) mod mentions;
pub(crate) mod messages;
mod password;
pub mod pins;
pub mod reactions;
pub mod scopes;
pub mod search;
mod tokens;
mod users;
pub mod views;
pub mod webhooks;

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::DatabaseConnection;
use syncchat_realtime::{Event, EventBus, EventKind, PresenceStore, Topic};
use uuid::Uuid;

pub use admin::Admin;
pub use apps::Apps;
pub use auth::{Accounts, LoginInput, RegisterInput};
pub use conversations::{Conversations, CreateConversationInput};
pub use files::{FileService, FileSettings, Files, UploadTicket};
pub use limits::LimitSettings;
pub use live::Live;
pub use mentions::MentionEveryone;
pub use messages::{HistoryQuery, Messages, SendMessageInput};
pub use pins::Pins;
pub use reactions::{ReactionSettings, Reactions};
pub use search::Search;
pub use tokens::TokenSettings;
pub use users::Users;
pub use webhooks::{WebhookSettings, Webhooks};

use crate::metrics as m;

/// The signed-in user behind a request, established from a valid access token.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    /// The session, or for an app the API key, that authenticated the call: revoking it ends
    /// the caller's access (and open connections) on every node.
    pub session_id: Uuid,
    pub is_admin: bool,
    /// Set when an app's API key made the call: the caller is the app's bot user, limited to
    /// the app's scopes.
    pub app: Option<AppGrant>,
}

/// The app behind a call made with an API key.
#[derive(Clone, Debug)]
pub struct AppGrant {
    pub app_id: Uuid,
    pub key_id: Uuid,
    pub scopes: scopes::Scopes,
    /// The app's `app` label on metrics (bounded: see `metrics::app_label`).
    pub app_label: String,
}

impl Caller {
    pub(crate) fn from_user(found: crate::storage::user::Model, session_id: Uuid) -> Caller {
        Caller {
            user_id: found.id,
            is_admin: found.role == crate::storage::user::ROLE_ADMIN,
            username: found.username,
            display_name: found.display_name,
            session_id,
            app: None,
        }
    }

    /// `FORBIDDEN` naming `scope` unless the caller may use it: a user's session may use every
    /// scope, an app's key only its app's.
    pub fn require(&self, scope: scopes::Scope) -> crate::error::AppResult<()> {
        match &self.app {
            Some(grant) if !grant.scopes.contains(scope) => Err(scopes::missing(scope)),
            _ => Ok(()),
        }
    }

    /// The caller as others see them.
    pub(crate) fn user_ref(&self) -> views::UserRef {
        views::UserRef {
            id: self.user_id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            is_bot: self.app.is_some(),
        }
    }
}

/// Where timestamps come from: one place, so a test can fake it later.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock;

impl Clock {
    /// `now()` truncated to microseconds: what Postgres keeps, so a timestamp read back
    /// equals the one written on both backends (cursors compare them).
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// What every area shares: the database, the event bus and the clock. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub db: DatabaseConnection,
    pub bus: EventBus,
    pub clock: Clock,
}

impl Context {
    pub fn new(db: DatabaseConnection, bus: EventBus) -> Context {
        Context { db, bus, clock: Clock }
    }

    /// The time to store, from the context's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Publishes an event that has committed (or, for typing and presence, just happened).
    pub(crate) async fn publish(&self, topic: Topic, kind: EventKind) {
        m::event_published(kind.as_label());
        self.bus.publish(Event { topic, committed_at: Utc::now(), kind }).await;
    }
}

/// Every area service of a running server, shared by every request and connection. One
/// `Arc` (a pointer to clone and hold, as before the areas), derefs to the [`ServiceSet`]:
/// `services.messages.send(..)`.
#[derive(Clone)]
pub struct Services(Arc<ServiceSet>);

impl std::ops::Deref for Services {
    type Target = ServiceSet;

    fn deref(&self) -> &ServiceSet {
        &self.0
    }
}

/// The area services of a running server.
pub struct ServiceSet {
    pub ctx: Context,
    pub users: Arc<Users>,
    pub auth: Arc<Accounts>,
    pub conversations: Arc<Conversations>,
    pub files: Arc<FileService>,
    pub messages: Arc<Messages>,
    pub live: Arc<Live>,
    pub admin: Arc<Admin>,
    pub apps: Arc<Apps>,
    pub webhooks: Arc<Webhooks>,
    pub idempotency: Arc<idempotency::Idempotency>,
    pub reactions: Arc<Reactions>,
    pub pins: Arc<Pins>,
    pub search: Arc<Search>,
}

impl Services {
    pub fn new(
        ctx: Context,
        presence: Arc<dyn PresenceStore>,
        tokens: TokenSettings,
        limits: LimitSettings,
        files: Files,
        webhooks: WebhookSettings,
        background: &crate::background::Background,
    ) -> Self {
        let users = Arc::new(Users::new(ctx.clone()));
        let auth = Arc::new(Accounts::new(ctx.clone(), users.clone(), tokens, &limits));
        let conversations = Arc::new(Conversations::new(ctx.clone(), users.clone(), &limits));
        let files = Arc::new(FileService::new(ctx.clone(), auth.clone(), files));
        let messages = Arc::new(Messages::new(
            ctx.clone(),
            users.clone(),
            conversations.clone(),
            files.clone(),
            presence.clone(),
            &limits,
            background,
        ));
        let live = Arc::new(Live::new(
            ctx.clone(),
            presence.clone(),
            auth.clone(),
            conversations.clone(),
            messages.clone(),
            &limits,
        ));
        let admin = Arc::new(Admin::new(ctx.clone(), presence, auth.clone(), users.clone(), messages.clone()));
        let apps = Arc::new(Apps::new(ctx.clone(), auth.clone()));
        let webhooks = Webhooks::new(ctx.clone(), webhooks, Some(background));
        let idempotency = Arc::new(idempotency::Idempotency::new(ctx.clone(), limits.idempotency_ttl));
        let reactions =
            Arc::new(Reactions::new(ctx.clone(), conversations.clone(), messages.clone(), limits.reactions.clone()));
        let pins = Arc::new(Pins::new(ctx.clone(), users.clone(), conversations.clone(), messages.clone()));
        let search = Arc::new(Search::new(ctx.clone(), conversations.clone(), messages.clone()));
        Services(Arc::new(ServiceSet {
            ctx,
            users,
            auth,
            conversations,
            files,
            messages,
            live,
            admin,
            apps,
            webhooks,
            idempotency,
            reactions,
            pins,
            search,
        }))
    }

    /// Drops rate-limiter state for keys that are idle again.
    pub fn shrink_limits(&self) {
        self.auth.shrink_limits();
        self.conversations.shrink_limits();
        self.messages.shrink_limits();
        self.live.shrink_limits();
    }
}
