//! Validated values: parsed once at the edge of the service layer, valid everywhere after.
//! Each `parse` answers `BAD_USER_INPUT` naming the field, so façades never re-check. No
//! text that reaches storage holds a NUL or another control character (message bodies may
//! hold line breaks and tabs): Postgres cannot store NUL, and SQLite must not accept what
//! Postgres refuses.

mod device_name;
mod display_name;
mod email;
mod login;
pub mod mention;
mod message_body;
mod password;
mod search;
pub mod search_query;
mod text;
mod title;
mod username;

pub use device_name::DeviceName;
pub use display_name::DisplayName;
pub use email::Email;
pub use login::Login;
pub use mention::{MentionSpan, Mentioned};
pub use message_body::MessageBody;
pub use password::Password;
pub use search::SearchPrefix;
pub use search_query::SearchQuery;
pub use text::refuse_control;
pub use title::Title;
pub use username::Username;
