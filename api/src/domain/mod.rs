//! Validated values: parsed once at the edge of the service layer, valid everywhere after.
//! Each `parse` answers `BAD_USER_INPUT` naming the field, so façades never re-check.

mod email;
mod message_body;
mod password;
mod title;
mod username;

pub use email::Email;
pub use message_body::MessageBody;
pub use password::Password;
pub use title::Title;
pub use username::Username;
