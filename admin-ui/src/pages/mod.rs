pub mod business;
pub mod login;
pub mod moderation;
pub mod overview;
pub mod planning;
