use crate::error::AppError;

/// A new password: at least 10 characters, at most 256 (argon2 input stays bounded).
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let len = raw.chars().count();
        if len < 10 {
            return Err(AppError::bad_input("password", "password must be at least 10 characters"));
        }
        if len > 256 {
            return Err(AppError::bad_input("password", "password must be at most 256 characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds() {
        assert!(Password::parse("123456789").is_err());
        assert!(Password::parse("1234567890").is_ok());
        assert!(Password::parse(&"x".repeat(257)).is_err());
    }
}
