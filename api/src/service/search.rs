//! Message search: `searchMessages` / `GET /search/messages`. Only the conversations the
//! caller is in are searched (the participant filter is part of the statement, so a hit can
//! never come from elsewhere); hits are ranked by the backend's full-text score, then newest
//! first, each with a highlighted snippet. Pages are cut by position (`after` is the number
//! of hits already seen), up to [`MAX_OFFSET`] deep, as search engines page ranked results.

use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;

use super::scopes::Scope;
use super::users::page_limit;
use super::views::{MessageView, Page};
use super::{Caller, Context, Conversations, Messages};
use crate::domain::SearchQuery;
use crate::domain::search_query::snippet;
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::{search, user};

/// The deepest a search pages.
pub const MAX_OFFSET: u64 = 1000;

/// One hit.
#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[graphql(name = "SearchHit")]
#[oai(rename_all = "camelCase")]
pub struct SearchHitView {
    pub message: MessageView,
    /// HTML: the part of the body around the first hit, escaped, with each hit in
    /// `<mark>…</mark>` and `…` where the body was cut.
    pub snippet: String,
}

pub struct Search {
    ctx: Context,
    conversations: Arc<Conversations>,
    messages: Arc<Messages>,
}

impl Search {
    pub fn new(ctx: Context, conversations: Arc<Conversations>, messages: Arc<Messages>) -> Self {
        Search { ctx, conversations, messages }
    }

    /// Messages matching `query` (see `domain::search_query` for its operators), in
    /// `conversation_id` if given (404 if the caller is not in it), `first` (default 20, at
    /// most 50) after `after` hits.
    #[tracing::instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn messages(
        &self,
        caller: &Caller,
        query: &str,
        conversation_id: Option<Uuid>,
        first: Option<u64>,
        after: Option<&str>,
    ) -> AppResult<Page<SearchHitView>> {
        let started = Instant::now();
        let result = self.run(caller, query, conversation_id, first, after).await;
        match &result {
            Ok(page) if page.items.is_empty() => m::search("none", Some(started.elapsed())),
            Ok(_) => m::search("hits", Some(started.elapsed())),
            Err(AppError::BadUserInput { .. }) => m::search("refused", None),
            Err(_) => {}
        }
        result
    }

    async fn run(
        &self,
        caller: &Caller,
        query: &str,
        conversation_id: Option<Uuid>,
        first: Option<u64>,
        after: Option<&str>,
    ) -> AppResult<Page<SearchHitView>> {
        caller.require(Scope::MessagesRead)?;
        let q = SearchQuery::parse(query)?;
        let limit = page_limit(first, 20, 50)?;
        let offset = match after.filter(|a| !a.is_empty()) {
            None => 0,
            Some(a) => a
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= MAX_OFFSET)
                .ok_or_else(|| AppError::bad_input("after", "after must be a cursor from a page of this search"))?,
        };
        let mut scope = search::Scope { since: q.since, until: q.until, ..Default::default() };
        scope.conversations.clone_from(&q.conversations);
        if let Some(id) = conversation_id {
            self.conversations.require_member(caller, id).await?;
            if !scope.conversations.is_empty() && !scope.conversations.contains(&id) {
                return Ok(Page { items: Vec::new(), next_cursor: None, has_more: false });
            }
            scope.conversations = vec![id];
        }
        if !q.from.is_empty() {
            scope.senders = Some(user::ids_named(&self.ctx.db, q.from.clone()).await?);
        }
        let mut hits = search::search(&self.ctx.db, caller.user_id, &q, &scope, offset, limit + 1).await?;
        let has_more = hits.len() as u64 > limit && offset + limit < MAX_OFFSET;
        hits.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let seen = offset + hits.len() as u64;
        let mut views = self.messages.views(hits.into_iter().map(|h| h.message).collect()).await?;
        super::reactions::attach(&self.ctx.db, caller.user_id, &mut views).await?;
        let items = views
            .into_iter()
            .map(|message| {
                let snippet = snippet(message.body.as_deref().unwrap_or_default(), &q);
                SearchHitView { message, snippet }
            })
            .collect();
        Ok(Page { items, next_cursor: has_more.then(|| seen.to_string()), has_more })
    }
}
