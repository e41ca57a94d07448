//! Users: creating one (registration and `syncchat admin create-user`), looking them up (the
//! caller themself, one user, a search for starting conversations, names for views), and
//! the activity figures the console and the gauges show.

use std::collections::HashMap;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use tracing::instrument;
use uuid::Uuid;

use super::views::{Page, UserRef, UserView};
use super::{Caller, Context, password};
use crate::domain::{Email, Password, SearchPrefix, Username, refuse_control};
use crate::error::{AppError, AppResult};
use crate::storage::{is_unique_violation, user};

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
        if user::Entity::find().filter(user::Column::Username.eq(username.as_str())).one(db).await?.is_some() {
            return Err(AppError::Conflict("username is taken".into()));
        }
        if user::Entity::find().filter(user::Column::Email.eq(email.as_str())).one(db).await?.is_some() {
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
        model.insert(db).await.map_err(|e| {
            if is_unique_violation(&e) { AppError::Conflict("username or email is taken".into()) } else { e.into() }
        })
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn me(&self, caller: &Caller) -> AppResult<UserView> {
        let found = user::Entity::find_by_id(caller.user_id).one(&self.ctx.db).await?;
        found.map(|u| UserView::from_model(u, true)).ok_or_else(|| AppError::not_found("user"))
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id, target.id = %id))]
    pub async fn get(&self, caller: &Caller, id: Uuid) -> AppResult<UserView> {
        let found = user::Entity::find_by_id(id).one(&self.ctx.db).await?;
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
        let limit = page_limit(first, 20, MAX_PAGE)?;
        let mut query = user::Entity::find().filter(user::Column::Disabled.eq(false));
        if let Some(prefix) = SearchPrefix::parse_optional("search", search.as_deref())? {
            query = query.filter(user::Column::Username.like(prefix_pattern(prefix.as_str())));
        }
        if let Some(after) = after {
            // The cursor is the last username of the previous page.
            refuse_control("after", &after, &[])?;
            query = query.filter(user::Column::Username.gt(after));
        }
        let mut rows = query.order_by_asc(user::Column::Username).limit(limit + 1).all(&self.ctx.db).await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if has_more { rows.last().map(|u| u.username.clone()) } else { None };
        let items = rows.into_iter().map(|u| UserView::from_model(u, caller.is_admin)).collect();
        Ok(Page { items, next_cursor, has_more })
    }
    /// Users active since `since`, cluster-wide (from the database): they sent a message or
    /// were connected in that window.
    #[instrument(skip(self))]
    pub async fn active_users(&self, since: chrono::DateTime<chrono::Utc>) -> AppResult<u64> {
        use sea_orm::sea_query::Query;
        use sea_orm::{Condition, PaginatorTrait};

        use crate::storage::message;
        let senders = Query::select()
            .column(message::Column::SenderId)
            .from(message::Entity)
            .and_where(message::Column::CreatedAt.gte(since))
            .to_owned();
        Ok(user::Entity::find()
            .filter(
                Condition::any().add(user::Column::LastSeenAt.gte(since)).add(user::Column::Id.in_subquery(senders)),
            )
            .count(&self.ctx.db)
            .await?)
    }

    /// Of the users who registered between 14 and 7 days ago, the share active in the last
    /// 7 days; `None` when that cohort is empty.
    pub async fn seven_day_retention(&self, now: chrono::DateTime<chrono::Utc>) -> AppResult<Option<f64>> {
        Ok(self.seven_day_cohort(now).await?.1)
    }

    /// The 7-day retention cohort's size and the share of it retained.
    #[instrument(skip(self))]
    pub async fn seven_day_cohort(&self, now: chrono::DateTime<chrono::Utc>) -> AppResult<(u64, Option<f64>)> {
        use sea_orm::PaginatorTrait;
        let week = chrono::Duration::days(7);
        let cohort = user::Entity::find()
            .filter(user::Column::CreatedAt.gte(now - week - week))
            .filter(user::Column::CreatedAt.lt(now - week));
        let size = cohort.clone().count(&self.ctx.db).await?;
        if size == 0 {
            return Ok((0, None));
        }
        let retained = cohort.filter(user::Column::LastSeenAt.gte(now - week)).count(&self.ctx.db).await?;
        Ok((size, Some(retained as f64 / size as f64)))
    }

    /// Each user's name as others see it; ids without a user are left out.
    pub(crate) async fn refs(&self, ids: Vec<Uuid>) -> AppResult<HashMap<Uuid, UserRef>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let found = user::Entity::find().filter(user::Column::Id.is_in(ids)).all(&self.ctx.db).await?;
        Ok(found.into_iter().map(|u| (u.id, UserRef::from(u))).collect())
    }

    /// `BAD_USER_INPUT` unless every id is an enabled user.
    pub(crate) async fn ensure_exist(&self, ids: &[Uuid]) -> AppResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let found = user::Entity::find()
            .filter(user::Column::Id.is_in(ids.to_vec()))
            .filter(user::Column::Disabled.eq(false))
            .count(&self.ctx.db)
            .await?;
        if found != ids.len() as u64 {
            return Err(AppError::bad_input("participantIds", "one or more participants do not exist"));
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

/// A `LIKE` pattern matching strings that start with `prefix` literally: `%`, `_` and the
/// escape character itself are escaped.
pub(crate) fn prefix_pattern(prefix: &str) -> sea_orm::sea_query::LikeExpr {
    let mut escaped = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    sea_orm::sea_query::LikeExpr::new(escaped).escape('\\')
}
