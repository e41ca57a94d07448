#![allow(clippy::unwrap_used, clippy::expect_used, clippy::large_futures)] // test code: a failed step stops the test with its reason
//! Integration tests of the SyncChat server: a real server on port 0 per test, a fresh
//! database per test. Every scenario runs on SQLite; on Postgres too when
//! `SYNCCHAT_TEST_DATABASE_URL` is set (CI sets it, and `SYNCCHAT_TEST_REQUIRE_ALL=1` makes
//! its absence a failure rather than a skip).

mod helpers;

mod admin;
mod apps;
mod auth;
mod background;
mod bad_input;
mod blocks;
mod cluster;
mod config_docs;
mod contracts;
mod conversations;
mod edge;
mod files;
mod idempotency;
mod limits;
mod live_trust;
mod mentions;
mod messages;
mod observability;
mod outage;
mod pins;
mod reactions;
mod realtime;
mod receipts;
mod search;
mod users;
mod visibility;
mod webhooks;
mod ws_client;
