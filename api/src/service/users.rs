//! Users: creating one (registration and `syncchat admin create-user`), looking them up (the
//! caller themself, one user, a search for starting conversations, names for views), and
//! the activity figures the console and the gauges show.

use super::scopes::Scope;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::Set;
use tracing::instrument;
use uuid::Uuid;

use super::views::{BlockedMessages, Page, ReadReceipts, SettingsInput, SettingsView, UserRef, UserView};
use super::{Caller, Context, password};
use crate::domain::{Email, Password, SearchPrefix, Username, refuse_control};
use crate::error::{AppError, AppResult};
use crate::storage::{block, is_unique_violation, user, user_settings};

pub const MAX_PAGE: u64 = 100;

/// Users: needs only the context (and password hashing), so the CLI can create one.
pub struct Users {
    ctx: Context,
}

impl Users {
    pub fn new(ctx: Context) -> Users {
        Users { ctx }
    }

    /// Creates a user with the given role; used by registration and `syncchat admin create-user`.
    #[instrument(skip_all, fields(user.username = %username.as_str(), user.role = role))]
    pub async fn create(
        &self,
        username: &Username,
        email: &Email,
        password: &Password,
        display_name: Option<String>,
        role: &str,
    ) -> AppResult<user::Model> {
        let db = &self.ctx.db;
        if user::by_username(db, username.as_str()).await?.is_some() {
            return Err(AppError::Conflict("username is taken".into()));
        }
        if user::by_email(db, email.as_str()).await?.is_some() {
            return Err(AppError::Conflict("email is already registered".into()));
        }
        let password_hash = password::hash(password.expose().to_owned()).await?;
        let model = user::ActiveModel {
            id: Set(Uuid::now_v7()),
            username: Set(username.as_str().to_owned()),
            email: Set(email.as_str().to_owned()),
            password_hash: Set(password_hash),
            display_name: Set(display_name),
            role: Set(role.to_owned()),
            disabled: Set(false),
            created_at: Set(self.ctx.now()),
            last_seen_at: Set(None),
        };
        user::insert(db, model).await.map_err(|e| {
            if is_unique_violation(&e) { AppError::Conflict("username or email is taken".into()) } else { e.into() }
        })
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn me(&self, caller: &Caller) -> AppResult<UserView> {
        let found = user::find(&self.ctx.db, caller.user_id).await?;
        let mut view = found.map(|u| UserView::from_model(u, true)).ok_or_else(|| AppError::not_found("user"))?;
        view.settings = Some(self.settings(caller).await?);
        Ok(view)
    }

    /// Blocks `user`: they can no longer start a direct conversation with the caller, do not
    /// see the caller's presence or typing, and their messages are flagged for the caller
    /// (`senderBlocked`). `false` when already blocked.
    #[instrument(skip_all, fields(user.id = %caller.user_id, target.id = %target))]
    pub async fn block(&self, caller: &Caller, target: Uuid) -> AppResult<bool> {
        if target == caller.user_id {
            return Err(AppError::bad_input("userId", "you cannot block yourself"));
        }
        if user::find(&self.ctx.db, target).await?.is_none() {
            return Err(AppError::not_found("user"));
        }
        let added = block::add(&self.ctx.db, caller.user_id, target, self.ctx.now()).await?;
        if added {
            crate::metrics::block("blocked");
        }
        Ok(added)
    }

    /// Unblocks `user`; `false` when they were not blocked.
    #[instrument(skip_all, fields(user.id = %caller.user_id, target.id = %target))]
    pub async fn unblock(&self, caller: &Caller, target: Uuid) -> AppResult<bool> {
        let removed = block::remove(&self.ctx.db, caller.user_id, target).await?;
        if removed {
            crate::metrics::block("unblocked");
        }
        Ok(removed)
    }

    /// Whom the caller blocked, the latest first.
    pub async fn blocked(&self, caller: &Caller) -> AppResult<Vec<UserRef>> {
        let ids: Vec<Uuid> =
            block::blocked_by(&self.ctx.db, caller.user_id).await?.into_iter().map(|b| b.blocked_id).collect();
        let refs = self.refs(ids.clone()).await?;
        Ok(ids.into_iter().map(|id| refs.get(&id).cloned().unwrap_or_else(|| UserRef::unknown(id))).collect())
    }

    /// Who blocked `user` (whose presence and typing `user` does not see).
    pub(crate) async fn blockers_of(&self, user: Uuid) -> AppResult<std::collections::HashSet<Uuid>> {
        Ok(block::blockers_of(&self.ctx.db, user).await?.into_iter().collect())
    }

    /// The caller's settings (the defaults until they change one).
    pub async fn settings(&self, caller: &Caller) -> AppResult<SettingsView> {
        self.settings_of(caller.user_id).await
    }

    async fn settings_of(&self, user: Uuid) -> AppResult<SettingsView> {
        let found = user_settings::find(&self.ctx.db, user).await?;
        Ok(SettingsView {
            read_receipts: match &found {
                Some(s) if s.read_receipts == user_settings::READ_RECEIPTS_PRIVATE => ReadReceipts::Private,
                _ => ReadReceipts::Public,
            },
            blocked_messages: match &found {
                Some(s) if s.blocked_messages == user_settings::BLOCKED_HIDE => BlockedMessages::Hide,
                _ => BlockedMessages::Flag,
            },
        })
    }

    /// Whether `user` lets others see how far they have read.
    pub(crate) async fn read_receipts(&self, user: Uuid) -> AppResult<ReadReceipts> {
        Ok(self.settings_of(user).await?.read_receipts)
    }

    /// Whose messages `user` does not want to see: those they blocked, if they chose to hide
    /// them (none otherwise).
    pub(crate) async fn hidden_senders(&self, user: Uuid) -> AppResult<std::collections::HashSet<Uuid>> {
        if self.settings_of(user).await?.blocked_messages == BlockedMessages::Flag {
            return Ok(std::collections::HashSet::new());
        }
        Ok(block::blocked_by(&self.ctx.db, user).await?.into_iter().map(|b| b.blocked_id).collect())
    }

    /// Changes the caller's settings. Making read receipts private hides the caller's marker
    /// from the others at once (their next read of the conversation); later markers are not
    /// sent to them. Hiding blocked senders' messages applies to the next read and the next
    /// subscription.
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn update_settings(&self, caller: &Caller, input: SettingsInput) -> AppResult<SettingsView> {
        let mut settings = self.settings(caller).await?;
        if let Some(receipts) = input.read_receipts {
            settings.read_receipts = receipts;
        }
        if let Some(blocked) = input.blocked_messages {
            settings.blocked_messages = blocked;
        }
        let receipts = match settings.read_receipts {
            ReadReceipts::Public => user_settings::READ_RECEIPTS_PUBLIC,
            ReadReceipts::Private => user_settings::READ_RECEIPTS_PRIVATE,
        };
        let blocked = match settings.blocked_messages {
            BlockedMessages::Flag => user_settings::BLOCKED_FLAG,
            BlockedMessages::Hide => user_settings::BLOCKED_HIDE,
        };
        user_settings::save(&self.ctx.db, caller.user_id, receipts, blocked, self.ctx.now()).await?;
        if input.read_receipts.is_some() {
            crate::metrics::setting_changed("read_receipts", receipts);
        }
        if input.blocked_messages.is_some() {
            crate::metrics::setting_changed("blocked_messages", blocked);
        }
        Ok(settings)
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id, target.id = %id))]
    pub async fn get(&self, caller: &Caller, id: Uuid) -> AppResult<UserView> {
        caller.require(Scope::UsersRead)?;
        let found = user::find(&self.ctx.db, id).await?;
        found
            .map(|u| UserView::from_model(u, caller.user_id == id || caller.is_admin))
            .ok_or_else(|| AppError::not_found("user"))
    }

    /// Users whose username starts with `search` (or all), by username; `after` is the
    /// last username of the previous page.
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn search(
        &self,
        caller: &Caller,
        search: Option<String>,
        first: Option<u64>,
        after: Option<String>,
    ) -> AppResult<Page<UserView>> {
        caller.require(Scope::UsersRead)?;
        let limit = page_limit(first, 20, MAX_PAGE)?;
        let prefix = SearchPrefix::parse_optional("search", search.as_deref())?;
        if let Some(after) = &after {
            // The cursor is the last username of the previous page.
            refuse_control("after", after, &[])?;
        }
        let prefix = prefix.as_ref().map(SearchPrefix::as_str);
        let mut rows = user::search(&self.ctx.db, prefix, after, limit + 1).await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if has_more { rows.last().map(|u| u.username.clone()) } else { None };
        let items = rows.into_iter().map(|u| UserView::from_model(u, caller.is_admin)).collect();
        Ok(Page { items, next_cursor, has_more })
    }
    /// Users active since `since`, cluster-wide (from the database): they sent a message or
    /// were connected in that window.
    #[instrument(skip(self))]
    pub async fn active_users(&self, since: DateTime<Utc>) -> AppResult<u64> {
        Ok(user::count_active_since(&self.ctx.db, since).await?)
    }

    /// Of the users who registered between 14 and 7 days ago, the share active in the last
    /// 7 days; `None` when that cohort is empty.
    pub async fn seven_day_retention(&self, now: DateTime<Utc>) -> AppResult<Option<f64>> {
        Ok(self.seven_day_cohort(now).await?.1)
    }

    /// The 7-day retention cohort's size and the share of it retained.
    #[instrument(skip(self))]
    pub async fn seven_day_cohort(&self, now: DateTime<Utc>) -> AppResult<(u64, Option<f64>)> {
        let week = chrono::Duration::days(7);
        let (from, to) = (now - week - week, now - week);
        let size = user::count_registered(&self.ctx.db, from, to, None).await?;
        if size == 0 {
            return Ok((0, None));
        }
        let retained = user::count_registered(&self.ctx.db, from, to, Some(now - week)).await?;
        Ok((size, Some(retained as f64 / size as f64)))
    }

    /// Each user's name as others see it; ids without a user are left out.
    pub(crate) async fn refs(&self, ids: Vec<Uuid>) -> AppResult<HashMap<Uuid, UserRef>> {
        let found = user::among(&self.ctx.db, ids).await?;
        Ok(found.into_iter().map(|u| (u.id, UserRef::from(u))).collect())
    }

    /// `BAD_USER_INPUT` unless every id is an enabled user.
    pub(crate) async fn ensure_exist(&self, ids: &[Uuid]) -> AppResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let found = user::count_enabled(&self.ctx.db, ids).await?;
        if found != ids.len() as u64 {
            // An id that names nobody is a missing resource, as on every other route.
            return Err(AppError::NotFound("one or more of these users do not exist".into()));
        }
        Ok(())
    }
}

/// Validates a page size: default when absent, 1..=max otherwise.
pub(crate) fn page_limit(requested: Option<u64>, default: u64, max: u64) -> AppResult<u64> {
    match requested {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(AppError::bad_input("limit", format!("page size must be between 1 and {max}"))),
    }
}
