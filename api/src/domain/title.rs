use super::text::refuse_control;
use crate::error::AppError;

/// A conversation title: 1-200 characters after trimming, on one line (no control
/// characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let trimmed = raw.trim();
        // Non-blank, and at most 200 characters as sent (the spec's maxLength).
        if trimmed.is_empty() || raw.chars().count() > 200 {
            return Err(AppError::bad_input("title", "title must be 1 to 200 characters"));
        }
        refuse_control("title", trimmed, &[])?;
        Ok(Self(trimmed.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(Title::parse(" ").is_err());
        assert!(Title::parse(&"t".repeat(201)).is_err());
        assert!(Title::parse("a\0b").is_err());
        assert!(Title::parse("two\nlines").is_err());
        assert_eq!(Title::parse(" Team ").map(Title::into_inner).ok(), Some("Team".into()));
    }
}
