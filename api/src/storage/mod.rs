//! Storage: sea-orm entities (one module per table) and the database connection.

pub mod attachment;
pub mod audit;
pub mod blob;
pub mod conversation;
pub mod message;
pub mod participant;
pub mod session;
pub mod upload_claim;
pub mod user;

mod connect;

pub use connect::{connect, is_unique_violation};
