use async_graphql::connection::Connection;
use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use crate::graphql::{GqlResult, caller, connection, services};
use crate::service::HistoryQuery;
use crate::service::search::SearchHitView;
use crate::service::views::MessageView;

#[derive(Default)]
pub struct MessageQuery;

#[Object]
impl MessageQuery {
    /// History by `seq`, always in ascending order. `after: n` reads forward from seq n,
    /// `before: n` reads back from it, neither reads the newest page. `first`/`last` set the
    /// page size (default 50, max 200). Cursors are seq numbers.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
        before: Option<i64>,
        after: Option<i64>,
        first: Option<u64>,
        last: Option<u64>,
    ) -> Result<Connection<String, MessageView>> {
        let caller = caller(ctx).gql()?;
        let q = HistoryQuery { before, after, limit: first.or(last) };
        let backward = after.is_none();
        let page = services(ctx).messages.list(&caller, conversation_id, q).await.gql()?;
        Ok(connection(page, backward, |m| m.seq.to_string()))
    }

    /// Searches the messages of my conversations (or of `conversationId`). `query` takes
    /// words (all must match), `"exact phrases"`, `-excluded` words or phrases, `prefix*`,
    /// `from:username`, `in:<conversation id>`, `before:`/`after:`/`on:` a date (YYYY-MM-DD,
    /// UTC). Best hits first, then newest; `first` defaults to 20, at most 50; `after` is a
    /// cursor from a page of the same search (up to 1,000 hits deep).
    async fn search_messages(
        &self,
        ctx: &Context<'_>,
        query: String,
        conversation_id: Option<Uuid>,
        first: Option<u64>,
        after: Option<String>,
    ) -> Result<Connection<String, SearchHitView>> {
        let caller = caller(ctx).gql()?;
        let skip: u64 = after.as_deref().and_then(|a| a.parse().ok()).unwrap_or(0);
        let page =
            services(ctx).search.messages(&caller, &query, conversation_id, first, after.as_deref()).await.gql()?;
        // Each edge's cursor is its position in the results: `after` it continues past it.
        let position = std::cell::Cell::new(skip);
        Ok(connection(page, false, move |_| {
            position.set(position.get() + 1);
            position.get().to_string()
        }))
    }

    /// Messages that mention me (by name, `@here` or `@all`), newest first, in the
    /// conversations I am in. `first` defaults to 20, at most 100; `after` is a cursor from
    /// a page.
    async fn mentions(
        &self,
        ctx: &Context<'_>,
        first: Option<u64>,
        after: Option<String>,
    ) -> Result<Connection<String, MessageView>> {
        let caller = caller(ctx).gql()?;
        let page = services(ctx).messages.mentions(&caller, first, after.as_deref()).await.gql()?;
        Ok(connection(page, false, |m| m.id.to_string()))
    }
}
