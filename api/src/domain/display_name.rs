use super::text::one_line;
use crate::error::AppError;

/// A display name: at most 64 characters after trimming, no control characters; blank means
/// none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

impl DisplayName {
    pub fn parse_optional(raw: Option<&str>) -> Result<Option<Self>, AppError> {
        let Some(raw) = raw else { return Ok(None) };
        let name = one_line("displayName", raw, MAX_DISPLAY_NAME_CHARS)?;
        Ok((!name.is_empty()).then_some(Self(name)))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_none_and_bounds_hold() {
        assert_eq!(DisplayName::parse_optional(None).ok(), Some(None));
        assert_eq!(DisplayName::parse_optional(Some("  ")).ok(), Some(None));
        assert_eq!(
            DisplayName::parse_optional(Some(" Ada ")).ok().flatten().map(DisplayName::into_inner),
            Some("Ada".into())
        );
        assert!(DisplayName::parse_optional(Some(&"a".repeat(65))).is_err());
        assert!(DisplayName::parse_optional(Some("A\0da")).is_err());
    }
}
