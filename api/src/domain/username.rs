use crate::error::AppError;

/// 3-32 characters of `[a-z0-9_]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let len = raw.chars().count();
        if !(3..=32).contains(&len) {
            return Err(AppError::bad_input("username", "username must be 3 to 32 characters"));
        }
        if !raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(AppError::bad_input(
                "username",
                "username may only contain lowercase letters, digits and underscores",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lowercase_digits_underscore() {
        assert!(Username::parse("ada_99").is_ok());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn rejects_bad_length_and_characters() {
        for bad in ["ab", "", "Ada", "ada-lovelace", "ada lovelace", "adé", &"a".repeat(33)] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
