use crate::error::AppError;

/// Refuses control characters (U+0000-U+001F, U+007F-U+009F) in `text`, except those in
/// `allowed`. Postgres cannot store NUL at all, and the others are never meant to be in a
/// chat's text: both backends answer the same way, before anything is stored.
pub fn refuse_control(field: &'static str, text: &str, allowed: &[char]) -> Result<(), AppError> {
    match text.chars().find(|c| c.is_control() && !allowed.contains(c)) {
        None => Ok(()),
        Some(c) => Err(AppError::bad_input(
            field,
            format!("{field} must not contain control characters (found U+{:04X})", u32::from(c)),
        )),
    }
}

/// A short one-line text typed by a person: trimmed, at most `max` characters, no control
/// characters.
pub fn one_line(field: &'static str, raw: &str, max: usize) -> Result<String, AppError> {
    let trimmed = raw.trim();
    refuse_control(field, trimmed, &[])?;
    if trimmed.chars().count() > max {
        return Err(AppError::bad_input(field, format!("{field} must be at most {max} characters")));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_unless_allowed() {
        for bad in ["a\0b", "\u{7}", "\u{1b}[0m", "\u{7f}", "\u{85}", "\u{9f}"] {
            assert!(refuse_control("x", bad, &['\n']).is_err(), "{bad:?}");
        }
        assert!(refuse_control("x", "two\nlines", &['\n']).is_ok());
        assert!(refuse_control("x", "two\nlines", &[]).is_err());
        // Not control characters: emoji, right-to-left text, zero-width joiners.
        assert!(refuse_control("x", "👩‍💻 שלום", &[]).is_ok());
    }

    #[test]
    fn one_line_trims_and_bounds() {
        assert_eq!(one_line("x", "  ab ", 2).ok(), Some("ab".into()));
        assert!(one_line("x", "abc", 2).is_err());
        assert!(one_line("x", "a\tb", 10).is_err());
    }
}
