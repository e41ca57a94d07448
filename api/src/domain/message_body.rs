use super::text::refuse_control;
use crate::error::AppError;

/// A message body: 1-4000 characters after trimming surrounding whitespace; line breaks and
/// tabs are the only control characters it may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

pub const MAX_BODY_CHARS: usize = 4000;

impl MessageBody {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(AppError::bad_input("body", "message body must not be empty"));
        }
        refuse_control("body", trimmed, &['\n', '\r', '\t'])?;
        // As sent, spaces included: what the spec's maxLength says, on both façades.
        if raw.chars().count() > MAX_BODY_CHARS {
            return Err(AppError::bad_input(
                "body",
                format!("message body must be at most {MAX_BODY_CHARS} characters"),
            ));
        }
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
    fn trims_and_bounds() {
        assert_eq!(MessageBody::parse("  hi \n").map(MessageBody::into_inner).ok(), Some("hi".into()));
        assert!(MessageBody::parse("   \n\t").is_err());
        assert!(MessageBody::parse(&"é".repeat(4000)).is_ok());
        assert!(MessageBody::parse(&"é".repeat(4001)).is_err());
        // Surrounding whitespace does not count towards the limit.
        assert!(MessageBody::parse(&format!("  {}  ", "a".repeat(3996))).is_ok());
        assert!(MessageBody::parse(&format!("  {}  ", "a".repeat(4000))).is_err(), "counted as sent");
    }

    #[test]
    fn keeps_line_breaks_and_tabs_but_no_other_control_characters() {
        assert!(MessageBody::parse("a\r\nb\tc").is_ok());
        for bad in ["a\0b", "a\u{7}", "\u{1b}[31mred", "a\u{85}b"] {
            assert!(MessageBody::parse(bad).is_err(), "{bad:?}");
        }
    }
}
