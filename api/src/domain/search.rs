use super::text::one_line;
use crate::error::AppError;

/// The start of a username (or email) to search for: trimmed, lowercased, at most 64
/// characters, no control characters; blank means no filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPrefix(String);

impl SearchPrefix {
    /// `field` is the parameter's name on the surface that took it (`search`, `q`).
    pub fn parse_optional(field: &'static str, raw: Option<&str>) -> Result<Option<Self>, AppError> {
        let Some(raw) = raw else { return Ok(None) };
        let prefix = one_line(field, raw, 64)?.to_lowercase();
        Ok((!prefix.is_empty()).then_some(Self(prefix)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_and_refuses_control_characters() {
        assert_eq!(SearchPrefix::parse_optional("search", Some(" An ")).ok().flatten().map(|s| s.0), Some("an".into()));
        assert_eq!(SearchPrefix::parse_optional("search", Some("")).ok(), Some(None));
        assert!(SearchPrefix::parse_optional("search", Some("a\0")).is_err());
        assert!(SearchPrefix::parse_optional("search", Some(&"a".repeat(65))).is_err());
    }
}
