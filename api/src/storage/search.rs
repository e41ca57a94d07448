//! Full-text search over the messages a reader can see (and does not hide) (the index: migration
//! `m20261207_000003_search`). The statement is built from a parsed [`SearchQuery`]: every
//! word reaches the database as a bound value (quoted inside it as a token, never as syntax).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement, Value};
use uuid::Uuid;

use super::message;
use crate::domain::SearchQuery;
use crate::domain::search_query::Term;

/// A hit and its score (higher is better; only hits of one search compare).
#[derive(Debug, FromQueryResult)]
pub struct Hit {
    #[sea_orm(nested)]
    pub message: message::Model,
    pub rank: f64,
}

/// What narrows a search besides its words.
#[derive(Debug, Default)]
pub struct Scope {
    /// Only these conversations (else every conversation of the reader's).
    pub conversations: Vec<Uuid>,
    /// Only from these senders (`None`: anyone).
    pub senders: Option<Vec<Uuid>>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Bound values and their placeholders, per backend.
struct Params {
    backend: DbBackend,
    values: Vec<Value>,
}

impl Params {
    fn bind(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        if self.backend == DbBackend::Postgres { format!("${}", self.values.len()) } else { "?".into() }
    }

    fn list(&mut self, ids: &[Uuid]) -> String {
        ids.iter().map(|id| self.bind(*id)).collect::<Vec<_>>().join(", ")
    }
}

/// A term as a Postgres `tsquery` source: its tokens quoted, adjacent (`<->`), the last one
/// a prefix (`:*`) if asked.
fn ts_source(term: &Term) -> String {
    let mut out = term.tokens().iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(" <-> ");
    if term.is_prefix() {
        out.push_str(":*");
    }
    out
}

/// A term as an FTS5 phrase: `"tok1 tok2"`, `*` after it for a prefix.
fn fts5_phrase(term: &Term) -> String {
    let star = if term.is_prefix() { "*" } else { "" };
    format!("\"{}\"{star}", term.tokens().join(" "))
}

/// Up to `limit` hits after the first `offset`, best first (then newest), among the live
/// messages of the conversations `reader` is in.
pub async fn search<C: ConnectionTrait>(
    db: &C,
    reader: Uuid,
    query: &SearchQuery,
    scope: &Scope,
    offset: u64,
    limit: u64,
) -> Result<Vec<Hit>, DbErr> {
    let backend = db.get_database_backend();
    let mut p = Params { backend, values: Vec::new() };
    let required: Vec<&Term> = query.required().collect();
    let excluded: Vec<&Term> = query.excluded().collect();
    let pg = backend == DbBackend::Postgres;
    let vector = syncchat_migrations::pg_search_vector("m");

    let mut filters: Vec<String> = Vec::new();
    let (from, rank, order);
    if required.is_empty() {
        from = "messages m".to_owned();
        rank = if pg { "0.0::float8" } else { "0.0" }.to_owned();
        order = "m.id DESC".to_owned();
        if !excluded.is_empty() {
            if pg {
                let any = excluded.iter().map(|t| ts_source(t)).collect::<Vec<_>>().join(" | ");
                filters.push(format!("NOT {vector} @@ to_tsquery('simple', {})", p.bind(any)));
            } else {
                let any = excluded.iter().map(|t| fts5_phrase(t)).collect::<Vec<_>>().join(" OR ");
                filters.push(format!(
                    "m.id NOT IN (SELECT s.message_id FROM message_search s JOIN message_search_fts f ON f.rowid = s.id \
                     WHERE message_search_fts MATCH {})",
                    p.bind(any)
                ));
            }
        }
    } else if pg {
        let mut source = required.iter().map(|t| ts_source(t)).collect::<Vec<_>>().join(" & ");
        for t in &excluded {
            source.push_str(&format!(" & !({})", ts_source(t)));
        }
        let q = format!("to_tsquery('simple', {})", p.bind(source));
        from = "messages m".to_owned();
        filters.push(format!("{vector} @@ {q}"));
        rank = format!("ts_rank_cd({vector}, {q})::float8");
        order = "rank DESC, m.id DESC".to_owned();
    } else {
        let mut expr = required.iter().map(|t| fts5_phrase(t)).collect::<Vec<_>>().join(" AND ");
        for t in &excluded {
            expr = format!("({expr}) NOT {}", fts5_phrase(t));
        }
        // CROSS JOIN fixes SQLite's join order: the full-text match first, once. Otherwise
        // a selective filter (`from:`) can put `messages` outside and run the match again for
        // every row of it.
        from = "message_search_fts CROSS JOIN message_search s ON s.id = message_search_fts.rowid \
                CROSS JOIN messages m ON m.id = s.message_id"
            .to_owned();
        filters.push(format!("message_search_fts MATCH {}", p.bind(expr)));
        // bm25 is lower for better hits.
        rank = "-bm25(message_search_fts)".to_owned();
        order = "rank DESC, m.id DESC".to_owned();
    }
    filters.push(format!(
        "m.conversation_id IN (SELECT conversation_id FROM participants WHERE user_id = {})",
        p.bind(reader)
    ));
    filters.push("m.deleted_at IS NULL".to_owned());
    // As `block::hidden_from`: the senders the reader blocked, if they hide them.
    let (r1, r2) = (p.bind(reader), p.bind(reader));
    filters.push(format!(
        "m.sender_id NOT IN (SELECT b.blocked_id FROM blocks b WHERE b.blocker_id = {r1} AND EXISTS ( \
           SELECT 1 FROM user_settings us WHERE us.user_id = {r2} AND us.blocked_messages = '{}'))",
        super::user_settings::BLOCKED_HIDE
    ));
    if !scope.conversations.is_empty() {
        filters.push(format!("m.conversation_id IN ({})", p.list(&scope.conversations)));
    }
    if let Some(senders) = &scope.senders {
        if senders.is_empty() {
            return Ok(Vec::new());
        }
        filters.push(format!("m.sender_id IN ({})", p.list(senders)));
    }
    if let Some(since) = scope.since {
        filters.push(format!("m.created_at >= {}", p.bind(since)));
    }
    if let Some(until) = scope.until {
        filters.push(format!("m.created_at < {}", p.bind(until)));
    }
    let limit = p.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let offset = p.bind(i64::try_from(offset).unwrap_or(i64::MAX));
    let sql = format!(
        "SELECT m.*, {rank} AS rank FROM {from} WHERE {} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
        filters.join(" AND ")
    );
    Hit::find_by_statement(Statement::from_sql_and_values(backend, sql, p.values)).all(db).await
}
