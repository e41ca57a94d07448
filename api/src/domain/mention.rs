//! `@username`, `@here` and `@all` in a message body, found once on the server so that
//! clients render mentions from positions instead of parsing text themselves.
//!
//! A mention is `@` at the start of the body or after a character that is not a letter,
//! digit, `_` or `@` (so `ada@example.com` mentions no one), followed by a username's
//! characters; matching is case-insensitive. Text inside backticks (`` `code` `` and fenced
//! blocks) mentions no one. Positions are UTF-16 code units, start inclusive, end exclusive:
//! what `String.prototype.slice` takes in a browser (Telegram's message entities count the
//! same way).

use crate::error::AppError;

/// The most distinct people (and `@here`/`@all`) one message may mention.
pub const MAX_MENTIONED: usize = 50;

/// Whom a mention names, as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mentioned {
    /// A username, lowercased (it may name no one: the caller resolves it).
    User(String),
    /// Everyone in the conversation who is online.
    Here,
    /// Everyone in the conversation.
    All,
}

/// One mention's place in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentionSpan {
    pub who: Mentioned,
    /// UTF-16 offset of the `@`.
    pub start: usize,
    /// UTF-16 offset just past the name.
    pub end: usize,
}

/// Every mention in `body`, in order. More than [`MAX_MENTIONED`] distinct names is refused
/// (`body`), so a message cannot ping a crowd by listing it.
pub fn parse(body: &str) -> Result<Vec<MentionSpan>, AppError> {
    if !body.contains('@') {
        return Ok(Vec::new());
    }
    let mut spans = Vec::new();
    let mut in_code = false;
    let mut prev: Option<char> = None;
    let mut offset = 0; // UTF-16 units before `rest`
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            in_code = !in_code;
        }
        let starts = c == '@' && !in_code && !prev.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '@');
        if starts {
            let name: String = rest[1..].chars().take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_').collect();
            let after = rest[1 + name.len()..].chars().next();
            // A name running on into other letters (`@adé`) is not one.
            let whole = !after.is_some_and(|a| a.is_alphanumeric());
            if whole && let Some(who) = mentioned(&name) {
                let end = offset + 1 + name.len();
                spans.push(MentionSpan { who, start: offset, end });
                prev = name.chars().last();
                offset = end;
                rest = &rest[1 + name.len()..];
                continue;
            }
        }
        offset += c.len_utf16();
        prev = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    let distinct: std::collections::HashSet<&Mentioned> = spans.iter().map(|s| &s.who).collect();
    if distinct.len() > MAX_MENTIONED {
        return Err(AppError::bad_input("body", format!("a message may mention at most {MAX_MENTIONED} people")));
    }
    Ok(spans)
}

fn mentioned(name: &str) -> Option<Mentioned> {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "here" => Some(Mentioned::Here),
        "all" => Some(Mentioned::All),
        _ if (3..=32).contains(&name.len()) => Some(Mentioned::User(name)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(body: &str) -> Vec<(Mentioned, usize, usize)> {
        parse(body).unwrap_or_default().into_iter().map(|s| (s.who, s.start, s.end)).collect()
    }

    fn user(name: &str) -> Mentioned {
        Mentioned::User(name.into())
    }

    #[test]
    fn finds_usernames_with_utf16_positions() {
        assert_eq!(names("hi @ada and @Bob_2!"), vec![(user("ada"), 3, 7), (user("bob_2"), 12, 18)]);
        // An emoji before the mention is two UTF-16 units.
        assert_eq!(names("😀 @ada"), vec![(user("ada"), 3, 7)]);
        assert_eq!(names("@ada, hi"), vec![(user("ada"), 0, 4)]);
        assert_eq!(names("(@ada)"), vec![(user("ada"), 1, 5)]);
    }

    #[test]
    fn here_and_all() {
        assert_eq!(names("@here look, @ALL too"), vec![(Mentioned::Here, 0, 5), (Mentioned::All, 12, 16)]);
    }

    #[test]
    fn emails_code_and_short_names_mention_no_one() {
        assert!(names("mail ada@example.com").is_empty());
        assert!(names("`@ada` is code").is_empty());
        assert!(names("```\n@ada\n```").is_empty());
        assert!(names("@ab @@ada @adé").is_empty());
        assert_eq!(names("`code` then @ada"), vec![(user("ada"), 12, 16)]);
    }

    #[test]
    fn too_many_people_is_refused() {
        let crowd: Vec<String> = (0..=MAX_MENTIONED).map(|i| format!("@user{i}")).collect();
        assert!(parse(&crowd.join(" ")).is_err());
        let repeated = vec!["@ada"; 200].join(" ");
        assert_eq!(parse(&repeated).map(|s| s.len()).ok(), Some(200));
    }
}
