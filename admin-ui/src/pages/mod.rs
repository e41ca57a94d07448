pub mod business;
pub mod integrations;
pub mod login;
pub mod moderation;
pub mod overview;
pub mod planning;
