//! Looking up users: the caller themself, one user, and a search for starting conversations.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tracing::instrument;
use uuid::Uuid;

use super::views::{Page, UserView};
use super::{Caller, Services};
use crate::error::{AppError, AppResult};
use crate::storage::user;

pub const MAX_PAGE: u64 = 100;

impl Services {
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn me(&self, caller: &Caller) -> AppResult<UserView> {
        let found = user::Entity::find_by_id(caller.user_id).one(self.db()).await?;
        found.map(|u| UserView::from_model(u, true)).ok_or_else(|| AppError::not_found("user"))
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id, target.id = %id))]
    pub async fn get_user(&self, caller: &Caller, id: Uuid) -> AppResult<UserView> {
        let found = user::Entity::find_by_id(id).one(self.db()).await?;
        found
            .map(|u| UserView::from_model(u, caller.user_id == id || caller.is_admin))
            .ok_or_else(|| AppError::not_found("user"))
    }

    /// Users whose username starts with `search` (or all), by username; `after` is the
    /// last username of the previous page.
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn search_users(
        &self,
        caller: &Caller,
        search: Option<String>,
        first: Option<u64>,
        after: Option<String>,
    ) -> AppResult<Page<UserView>> {
        let limit = page_limit(first, 20, MAX_PAGE)?;
        let mut query = user::Entity::find().filter(user::Column::Disabled.eq(false));
        if let Some(prefix) = search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            if prefix.len() > 64 {
                return Err(AppError::bad_input("search", "search must be at most 64 characters"));
            }
            let escaped: String =
                prefix.to_lowercase().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            query = query.filter(user::Column::Username.starts_with(escaped));
        }
        if let Some(after) = after {
            query = query.filter(user::Column::Username.gt(after));
        }
        let mut rows = query.order_by_asc(user::Column::Username).limit(limit + 1).all(self.db()).await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if has_more { rows.last().map(|u| u.username.clone()) } else { None };
        let items = rows.into_iter().map(|u| UserView::from_model(u, caller.is_admin)).collect();
        Ok(Page { items, next_cursor, has_more })
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
