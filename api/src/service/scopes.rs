//! What an app's key may do. A user's session has every right its user has; a key has only
//! its app's scopes, checked in the service layer (`caller.require(Scope::MessagesWrite)?`),
//! so GraphQL, REST and the WebSocket refuse the same calls with the same error.
//!
//! | scope | lets a key |
//! |---|---|
//! | `conversations:read` | list and read its bot's conversations |
//! | `conversations:write` | create conversations, add people, leave |
//! | `messages:read` | page history, download files, subscribe (`events`, `messageAdded`, `typing`), read the event feed |
//! | `messages:write` | send, edit, delete, mark read, set typing |
//! | `users:read` | look up and search users, presence (query and subscription) |
//! | `files:write` | upload files (multipart or upload URLs) |
//! | `webhooks:manage` | register, change, rotate, replay and inspect the app's webhooks |
//!
//! `me` needs no scope. Admin operations need an admin's session: a key never has them.

use std::fmt;

use crate::error::{AppError, AppResult};

/// One right an app can be given. The names are the contract (DESIGN.md "Integrators"); the
/// REST API takes and answers them as an enum, so a generated client cannot send an unknown one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, poem_openapi::Enum)]
pub enum Scope {
    #[oai(rename = "conversations:read")]
    ConversationsRead,
    #[oai(rename = "conversations:write")]
    ConversationsWrite,
    #[oai(rename = "messages:read")]
    MessagesRead,
    #[oai(rename = "messages:write")]
    MessagesWrite,
    #[oai(rename = "users:read")]
    UsersRead,
    #[oai(rename = "files:write")]
    FilesWrite,
    #[oai(rename = "webhooks:manage")]
    WebhooksManage,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::ConversationsRead,
        Scope::ConversationsWrite,
        Scope::MessagesRead,
        Scope::MessagesWrite,
        Scope::UsersRead,
        Scope::FilesWrite,
        Scope::WebhooksManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ConversationsRead => "conversations:read",
            Scope::ConversationsWrite => "conversations:write",
            Scope::MessagesRead => "messages:read",
            Scope::MessagesWrite => "messages:write",
            Scope::UsersRead => "users:read",
            Scope::FilesWrite => "files:write",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    /// The scope named `name`, or `BAD_USER_INPUT` listing the known ones.
    pub fn parse(name: &str) -> AppResult<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name).ok_or_else(|| {
            let known: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            AppError::bad_input("scopes", format!("unknown scope {name:?}; known scopes: {}", known.join(", ")))
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes, stored as their names separated by spaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    fn bit(scope: Scope) -> u8 {
        1 << (scope as u8)
    }

    pub fn of(scopes: impl IntoIterator<Item = Scope>) -> Scopes {
        Scopes(scopes.into_iter().fold(0, |bits, s| bits | Scopes::bit(s)))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & Scopes::bit(scope) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// The scopes, in the order of [`Scope::ALL`].
    pub fn to_vec(self) -> Vec<Scope> {
        self.iter().collect()
    }

    /// How the set is stored.
    pub fn to_stored(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
    }

    /// Reads a stored set; names this binary does not know are dropped (a newer node's scope
    /// grants nothing here).
    pub fn from_stored(stored: &str) -> Scopes {
        Scopes::of(stored.split_whitespace().filter_map(|n| Scope::parse(n).ok()))
    }
}

/// The `FORBIDDEN` error for a key that lacks `scope`.
pub fn missing(scope: Scope) -> AppError {
    AppError::Forbidden(format!("this API key's app lacks the scope {scope}"))
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ToJSON;

    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()).ok(), Some(s));
            assert_eq!(s.to_json(), Some(serde_json::Value::from(s.as_str())), "the REST name is the stored one");
        }
        let set = Scopes::of([Scope::UsersRead, Scope::MessagesWrite]);
        assert!(set.contains(Scope::MessagesWrite) && set.contains(Scope::UsersRead));
        assert!(!set.contains(Scope::MessagesRead));
        assert_eq!(Scopes::from_stored(&set.to_stored()), set);
        assert_eq!(set.to_stored(), "messages:write users:read");
        let err = Scope::parse("admin").unwrap_err();
        assert!(err.to_string().contains("unknown scope \"admin\""), "{err}");
        assert_eq!(Scopes::from_stored("messages:read future:scope"), Scopes::of([Scope::MessagesRead]));
    }
}
