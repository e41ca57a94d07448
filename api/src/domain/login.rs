use super::text::refuse_control;
use crate::error::AppError;

/// What a person signs in with: a username or an email, trimmed and lowercased (both are
/// stored lowercase), at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login(String);

impl Login {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let login = raw.trim().to_lowercase();
        if login.is_empty() || login.chars().count() > 254 {
            return Err(AppError::bad_input("login", "login must be a username or an email"));
        }
        refuse_control("login", &login, &[])?;
        Ok(Self(login))
    }

    pub fn is_email(&self) -> bool {
        self.0.contains('@')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses_control_characters() {
        assert_eq!(Login::parse(" Ann@Example.COM ").map(|l| l.0).ok(), Some("ann@example.com".into()));
        assert!(Login::parse("ann").is_ok_and(|l| !l.is_email()));
        for bad in ["", "  ", "ann\0", "a\u{1b}"] {
            assert!(Login::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Login::parse(&"a".repeat(255)).is_err());
    }
}
