use super::text::refuse_control;
use crate::error::AppError;

/// The label of a session's device, shown in session lists: no control characters, cut to
/// 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceName(String);

pub const MAX_DEVICE_CHARS: usize = 100;

impl DeviceName {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        refuse_control("device", raw, &[])?;
        Ok(Self(raw.trim().chars().take(MAX_DEVICE_CHARS).collect()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_long_names_and_refuses_control_characters() {
        assert_eq!(DeviceName::parse(&"p".repeat(150)).map(|d| d.0.chars().count()).ok(), Some(100));
        assert!(DeviceName::parse("phone\0").is_err());
        assert!(DeviceName::parse("phone\n").is_err());
    }
}
