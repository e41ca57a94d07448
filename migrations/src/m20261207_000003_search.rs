//! Full-text search over message bodies, kept by the database in the writing transaction:
//! an edit re-indexes, a delete (which empties the body) removes the text.
//!
//! `messages.search_text` is what to index instead of the body when the body holds Chinese,
//! Japanese or Korean (its runs as pairs of characters, written by the server: see
//! `api/src/domain/search_query.rs`); otherwise it is null and the body is indexed.
//! - Postgres: a GIN index on [`pg_search_vector`], the expression every search repeats:
//!   the `simple` configuration over the text with ASCII punctuation turned into spaces, so
//!   that Postgres's parser splits words where SQLite's does (it would otherwise keep
//!   `ann@example.com` or `v1.2` whole and drop `<tag>`s).
//! - SQLite: an FTS5 table (`unicode61`, diacritics folded) with no copy of the text
//!   (contentless, deletable), keyed by `message_search.id`: an integer key of its own,
//!   because a table's implicit rowid may change in a `VACUUM` (`VACUUM INTO` backups
//!   included). Triggers on `messages` keep both.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The `tsvector` of a message, over `messages` as `table` (an alias or the table name).
pub fn pg_search_vector(table: &str) -> String {
    format!(
        "to_tsvector('simple'::regconfig, regexp_replace(coalesce({table}.search_text, {table}.body), \
         '[\\x01-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f]+', ' ', 'g'))"
    )
}

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    SearchText,
}

const SQLITE_UP: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS message_search (id INTEGER PRIMARY KEY, message_id BLOB NOT NULL UNIQUE)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS message_search_fts USING fts5(text, content='', contentless_delete=1, \
     tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS messages_search_insert AFTER INSERT ON messages BEGIN \
       INSERT INTO message_search (message_id) VALUES (new.id); \
       INSERT INTO message_search_fts (rowid, text) VALUES (last_insert_rowid(), coalesce(new.search_text, new.body)); \
     END",
    "CREATE TRIGGER IF NOT EXISTS messages_search_update AFTER UPDATE OF body, search_text ON messages BEGIN \
       DELETE FROM message_search_fts WHERE rowid = (SELECT id FROM message_search WHERE message_id = new.id); \
       INSERT INTO message_search_fts (rowid, text) \
         SELECT id, coalesce(new.search_text, new.body) FROM message_search WHERE message_id = new.id; \
     END",
    "CREATE TRIGGER IF NOT EXISTS messages_search_delete AFTER DELETE ON messages BEGIN \
       DELETE FROM message_search_fts WHERE rowid = (SELECT id FROM message_search WHERE message_id = old.id); \
       DELETE FROM message_search WHERE message_id = old.id; \
     END",
    "INSERT INTO message_search (message_id) SELECT id FROM messages ORDER BY id",
    "INSERT INTO message_search_fts (rowid, text) \
       SELECT s.id, coalesce(m.search_text, m.body) FROM message_search s JOIN messages m ON m.id = s.message_id",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS messages_search_insert",
    "DROP TRIGGER IF EXISTS messages_search_update",
    "DROP TRIGGER IF EXISTS messages_search_delete",
    "DROP TABLE IF EXISTS message_search_fts",
    "DROP TABLE IF EXISTS message_search",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Messages::Table).add_column(text_null(Messages::SearchText)).to_owned())
            .await?;
        let db = m.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            let vector = pg_search_vector("messages");
            db.execute_unprepared(&format!(
                "CREATE INDEX IF NOT EXISTS ix_messages_search ON messages USING GIN ({vector})"
            ))
            .await?;
        } else {
            for sql in SQLITE_UP {
                db.execute_unprepared(sql).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("DROP INDEX IF EXISTS ix_messages_search").await?;
        } else {
            for sql in SQLITE_DOWN {
                db.execute_unprepared(sql).await?;
            }
        }
        m.alter_table(Table::alter().table(Messages::Table).drop_column(Messages::SearchText).to_owned()).await
    }
}
