//! Apps: integrations an admin registers. Each has a bot user (role `bot`: no password,
//! added to conversations like anyone else, seeing only those), scopes, and API keys
//! (`sck_<prefix>_<secret>`, the secret shown once, two or more live at once for rotation).
//! Every change is in the admin audit log.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{Set, TransactionTrait};
use tracing::instrument;
use uuid::Uuid;

use super::scopes::{Scope, Scopes};
use super::views::UserRef;
use super::{Accounts, Caller, Context, keys};
use crate::error::{AppError, AppResult};
use crate::storage::{api_key, app, audit, is_unique_violation, user};

/// Most characters of an app's name and description.
pub const MAX_NAME: usize = 100;
pub const MAX_DESCRIPTION: usize = 500;
/// Most live keys per app.
pub const MAX_LIVE_KEYS: usize = 10;

/// An app as admins see it. `botUser` is the user it acts as: add it to a conversation to
/// let the app in.
#[derive(Clone, Debug, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct AppView {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub scopes: Vec<Scope>,
    pub bot_user: UserRef,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Its keys, by prefix (never the secret).
    pub keys: Vec<KeyView>,
}

/// An API key as lists show it.
#[derive(Clone, Debug, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct KeyView {
    pub id: Uuid,
    /// The public part: the key is `sck_<prefix>_<secret>`.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// Updated at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just made: the only time its secret is shown.
#[derive(Clone, Debug, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct NewKeyView {
    pub id: Uuid,
    pub prefix: String,
    /// `sck_<prefix>_<secret>`: send as `Authorization: Bearer …`. Store it now; only its
    /// hash is kept.
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

/// A new app with its first key.
#[derive(Clone, Debug, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct AppCreated {
    #[oai(flatten)]
    pub app: AppView,
    pub key: NewKeyView,
}

/// What an admin gives to make (or change) an app: a name (1 to 100 characters, not only
/// spaces), an optional description (at most 500) and what its keys may do.
// (No doc comments on the fields: poem-openapi would wrap a described enum in an `allOf`.)
#[derive(Clone, Debug, Default, poem_openapi::Object)]
pub struct AppInput {
    #[oai(
        deserialize_with = "crate::rest::strict::text",
        validator(
            max_length = 100,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: String,
    #[oai(
        deserialize_with = "crate::rest::strict::optional_text",
        validator(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    pub description: Option<String>,
    #[oai(validator(min_items = 1))]
    pub scopes: Vec<Scope>,
}

/// Changes to an app; a field left out stays as it is.
#[derive(Clone, Debug, Default, poem_openapi::Object)]
pub struct AppChanges {
    #[oai(
        deserialize_with = "crate::rest::strict::optional_text",
        validator(
            max_length = 100,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: Option<String>,
    #[oai(
        deserialize_with = "crate::rest::strict::optional_text",
        validator(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    pub description: Option<String>,
    #[oai(validator(min_items = 1))]
    pub scopes: Option<Vec<Scope>>,
}

/// The apps area.
pub struct Apps {
    ctx: Context,
    auth: Arc<Accounts>,
}

fn require_admin(caller: &Caller) -> AppResult<()> {
    if caller.is_admin && caller.app.is_none() {
        Ok(())
    } else {
        Err(AppError::Forbidden("only admins manage apps".into()))
    }
}

fn check_text(field: &'static str, value: &str, max: usize) -> AppResult<String> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(AppError::bad_input(field, format!("{field} must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(AppError::bad_input(field, format!("{field} must not contain control characters")));
    }
    Ok(value.to_owned())
}

fn check_name(name: &str) -> AppResult<String> {
    let name = check_text("name", name, MAX_NAME)?;
    if name.is_empty() {
        return Err(AppError::bad_input("name", "name must not be empty"));
    }
    Ok(name)
}

fn check_description(description: Option<String>) -> AppResult<Option<String>> {
    Ok(description.map(|d| check_text("description", &d, MAX_DESCRIPTION)).transpose()?.filter(|d| !d.is_empty()))
}

fn check_scopes(scopes: &[Scope]) -> AppResult<Scopes> {
    if scopes.is_empty() {
        return Err(AppError::bad_input("scopes", "give at least one scope"));
    }
    Ok(Scopes::of(scopes.iter().copied()))
}

/// The bot's username: the app's name in `[a-z0-9_]`, then `_bot` (3-32 characters).
fn bot_username(name: &str, attempt: u32) -> String {
    let mut base: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if base.is_empty() {
        base = "app".into();
    }
    let suffix = if attempt == 0 { "_bot".to_owned() } else { format!("_bot{}", attempt + 1) };
    base.truncate(32 - suffix.len());
    format!("{base}{suffix}")
}

impl Apps {
    pub fn new(ctx: Context, auth: Arc<Accounts>) -> Apps {
        Apps { ctx, auth }
    }

    /// Registers an app with its bot user and a first key.
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn create(&self, caller: &Caller, input: AppInput) -> AppResult<AppCreated> {
        require_admin(caller)?;
        let name = check_name(&input.name)?;
        let description = check_description(input.description)?;
        let scopes = check_scopes(&input.scopes)?;
        let now = self.ctx.now();
        let (app_id, bot_id) = (Uuid::now_v7(), Uuid::now_v7());
        // A free username for the bot: the name's, then numbered.
        let mut attempt = 0;
        let username = loop {
            let candidate = bot_username(&name, attempt);
            if user::by_username(&self.ctx.db, &candidate).await?.is_none() || attempt >= 50 {
                break candidate;
            }
            attempt += 1;
        };
        let (prefix, secret, hash) = keys::new_key();
        let txn = self.ctx.db.begin().await?;
        let bot = user::ActiveModel {
            id: Set(bot_id),
            username: Set(username),
            // Not an address anyone can have: `.invalid` is reserved (RFC 2606).
            email: Set(format!("{bot_id}@bots.syncchat.invalid")),
            password_hash: Set("!".into()),
            display_name: Set(Some(name.clone())),
            role: Set(user::ROLE_BOT.into()),
            disabled: Set(false),
            created_at: Set(now),
            last_seen_at: Set(None),
        };
        let bot = match user::insert(&txn, bot).await {
            Err(e) if is_unique_violation(&e) => {
                return Err(AppError::Conflict(
                    "could not find a free username for the app's bot; rename the app".into(),
                ));
            }
            other => other?,
        };
        let saved = app::insert(
            &txn,
            app::ActiveModel {
                id: Set(app_id),
                name: Set(name),
                description: Set(description),
                scopes: Set(scopes.to_stored()),
                bot_user_id: Set(bot_id),
                created_by: Set(caller.user_id),
                created_at: Set(now),
                updated_at: Set(now),
                deleted_at: Set(None),
            },
        )
        .await?;
        let key = api_key::insert(&txn, key_row(app_id, &prefix, hash, now)).await?;
        audit_entry(&txn, caller, "app.create", app_id, format!("{} ({})", saved.name, saved.scopes), now).await?;
        audit_entry(&txn, caller, "key.create", app_id, format!("key {prefix}"), now).await?;
        txn.commit().await?;
        let view = app_view(saved, bot, vec![key.clone()]);
        Ok(AppCreated { app: view, key: NewKeyView { id: key.id, prefix, secret, created_at: now } })
    }

    /// Every app that is not deleted, oldest first.
    pub async fn list(&self, caller: &Caller) -> AppResult<Vec<AppView>> {
        require_admin(caller)?;
        let mut out = Vec::new();
        for found in app::all_live(&self.ctx.db).await? {
            out.push(self.view(found).await?);
        }
        Ok(out)
    }

    pub async fn get(&self, caller: &Caller, id: Uuid) -> AppResult<AppView> {
        require_admin(caller)?;
        let found = self.find(id).await?;
        self.view(found).await
    }

    async fn find(&self, id: Uuid) -> AppResult<app::Model> {
        app::find(&self.ctx.db, id).await?.ok_or_else(|| AppError::not_found("app"))
    }

    async fn view(&self, found: app::Model) -> AppResult<AppView> {
        let bot = user::find(&self.ctx.db, found.bot_user_id).await?.ok_or_else(|| AppError::not_found("app"))?;
        let keys = api_key::of_app(&self.ctx.db, found.id).await?;
        Ok(app_view(found, bot, keys))
    }

    /// Renames an app or changes its description or scopes (at once for its keys: cached
    /// keys are forgotten on every node).
    #[instrument(skip_all, fields(user.id = %caller.user_id, app.id = %id))]
    pub async fn update(&self, caller: &Caller, id: Uuid, changes: AppChanges) -> AppResult<AppView> {
        require_admin(caller)?;
        let name = changes.name.as_deref().map(check_name).transpose()?;
        let description = changes.description.map(|d| check_description(Some(d))).transpose()?;
        let scopes = changes.scopes.as_deref().map(check_scopes).transpose()?;
        let found = self.find(id).await?;
        let now = self.ctx.now();
        let mut edit: app::ActiveModel = found.into();
        let mut what = Vec::new();
        if let Some(name) = name {
            what.push(format!("name {name}"));
            edit.name = Set(name);
        }
        if let Some(description) = description {
            what.push("description".to_owned());
            edit.description = Set(description);
        }
        if let Some(scopes) = scopes {
            what.push(format!("scopes {}", scopes.to_stored()));
            edit.scopes = Set(scopes.to_stored());
        }
        edit.updated_at = Set(now);
        let txn = self.ctx.db.begin().await?;
        let saved = app::update(&txn, edit).await?;
        audit_entry(&txn, caller, "app.update", id, what.join(", "), now).await?;
        txn.commit().await?;
        // Keys checked before carry the old scopes: forget them everywhere.
        let keys = api_key::of_app(&self.ctx.db, id).await?;
        self.auth.keys_revoked(&keys.iter().map(|k| k.id).collect::<Vec<_>>()).await;
        self.view(saved).await
    }

    /// Deletes an app: its keys stop working at once on every node and its bot is disabled
    /// (it stays in conversations' history).
    #[instrument(skip_all, fields(user.id = %caller.user_id, app.id = %id))]
    pub async fn delete(&self, caller: &Caller, id: Uuid) -> AppResult<bool> {
        require_admin(caller)?;
        let found = self.find(id).await?;
        let now = self.ctx.now();
        let keys = api_key::of_app(&self.ctx.db, id).await?;
        let txn = self.ctx.db.begin().await?;
        for key in keys.iter().filter(|k| k.revoked_at.is_none()) {
            api_key::revoke(&txn, id, key.id, now).await?;
        }
        if let Some(bot) = user::find(&txn, found.bot_user_id).await? {
            user::set_disabled(&txn, bot, true).await?;
        }
        let name = found.name.clone();
        let mut edit: app::ActiveModel = found.into();
        edit.deleted_at = Set(Some(now));
        edit.updated_at = Set(now);
        app::update(&txn, edit).await?;
        audit_entry(&txn, caller, "app.delete", id, name, now).await?;
        txn.commit().await?;
        self.auth.keys_revoked(&keys.iter().map(|k| k.id).collect::<Vec<_>>()).await;
        Ok(true)
    }

    /// A new key for the app (the old ones keep working until revoked: rotation).
    #[instrument(skip_all, fields(user.id = %caller.user_id, app.id = %id))]
    pub async fn create_key(&self, caller: &Caller, id: Uuid) -> AppResult<NewKeyView> {
        require_admin(caller)?;
        self.find(id).await?;
        let live = api_key::of_app(&self.ctx.db, id).await?.iter().filter(|k| k.revoked_at.is_none()).count();
        if live >= MAX_LIVE_KEYS {
            return Err(AppError::Conflict(format!("an app has at most {MAX_LIVE_KEYS} live keys: revoke one first")));
        }
        let now = self.ctx.now();
        let (prefix, secret, hash) = keys::new_key();
        let txn = self.ctx.db.begin().await?;
        let key = api_key::insert(&txn, key_row(id, &prefix, hash, now)).await?;
        audit_entry(&txn, caller, "key.create", id, format!("key {prefix}"), now).await?;
        txn.commit().await?;
        Ok(NewKeyView { id: key.id, prefix, secret, created_at: now })
    }

    /// Revokes a key: refused at once on every node, and connections opened with it close.
    #[instrument(skip_all, fields(user.id = %caller.user_id, app.id = %id, key.id = %key_id))]
    pub async fn revoke_key(&self, caller: &Caller, id: Uuid, key_id: Uuid) -> AppResult<bool> {
        require_admin(caller)?;
        self.find(id).await?;
        let key = api_key::find(&self.ctx.db, key_id).await?.filter(|k| k.app_id == id);
        let key = key.ok_or_else(|| AppError::not_found("key"))?;
        let now = self.ctx.now();
        let txn = self.ctx.db.begin().await?;
        let revoked = api_key::revoke(&txn, id, key_id, now).await?;
        if revoked {
            audit_entry(&txn, caller, "key.revoke", id, format!("key {}", key.prefix), now).await?;
        }
        txn.commit().await?;
        self.auth.keys_revoked(&[key_id]).await;
        Ok(revoked)
    }
}

fn key_row(app_id: Uuid, prefix: &str, hash: String, now: DateTime<Utc>) -> api_key::ActiveModel {
    api_key::ActiveModel {
        id: Set(Uuid::now_v7()),
        app_id: Set(app_id),
        prefix: Set(prefix.to_owned()),
        secret_hash: Set(hash),
        created_at: Set(now),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
}

fn app_view(found: app::Model, bot: user::Model, keys: Vec<api_key::Model>) -> AppView {
    AppView {
        id: found.id,
        scopes: Scopes::from_stored(&found.scopes).to_vec(),
        name: found.name,
        description: found.description,
        bot_user: UserRef::from(bot),
        created_at: found.created_at,
        updated_at: found.updated_at,
        keys: keys
            .into_iter()
            .map(|k| KeyView {
                id: k.id,
                prefix: k.prefix,
                created_at: k.created_at,
                last_used_at: k.last_used_at,
                revoked_at: k.revoked_at,
            })
            .collect(),
    }
}

async fn audit_entry<C: sea_orm::ConnectionTrait>(
    db: &C,
    caller: &Caller,
    action: &str,
    app_id: Uuid,
    detail: String,
    at: DateTime<Utc>,
) -> AppResult<()> {
    let entry = audit::Entry {
        actor_id: caller.user_id,
        actor_username: &caller.username,
        action,
        target_kind: "app",
        target_id: app_id.to_string(),
        detail: Some(detail),
        at,
    };
    Ok(audit::append(db, entry).await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bot_usernames_are_valid_usernames() {
        for (name, attempt, want) in [
            ("Help Desk", 0, "help_desk_bot"),
            ("CRM — Sync!", 1, "crm_sync_bot2"),
            ("???", 0, "app_bot"),
            ("a very long application name that goes on", 0, "a_very_long_application_name_bot"),
        ] {
            let got = super::bot_username(name, attempt);
            assert_eq!(got, want);
            assert!(crate::domain::Username::parse(&got).is_ok(), "{got}");
        }
    }
}
