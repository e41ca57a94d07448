//! A message search as typed into a search box, with Mattermost's operators: words (all must
//! match), `"exact phrase"`, `-excluded` (a word or a phrase), `prefix*`, `from:username`,
//! `in:<conversation id>`, `before:`/`after:`/`on:` a date (`YYYY-MM-DD`, UTC). Parsed once
//! here; each backend turns a [`SearchQuery`] into its own full-text syntax from these parts,
//! never from the raw text, so nothing typed reaches SQL as syntax.
//!
//! Chinese, Japanese and Korean are written without spaces, which both backends' word
//! tokenizers (Postgres `simple`, SQLite FTS5 `unicode61`) would keep as one token per run: a
//! sentence could only be found by typing all of it. So runs of those scripts are indexed as
//! overlapping pairs of characters (what Lucene's CJK analyzer does), and a search term in
//! them becomes the phrase of its pairs ([`cjk_index_text`], [`Term::tokens`]). FTS5's
//! trigram tokenizer would need three characters, and most Chinese words are two.

use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use uuid::Uuid;

use super::text::refuse_control;
use crate::error::AppError;

pub const MAX_QUERY_CHARS: usize = 256;
const MAX_TERMS: usize = 16;

/// A word, phrase or prefix of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Lowercased, as typed (a phrase's words separated by single spaces).
    pub text: String,
    pub prefix: bool,
    pub excluded: bool,
}

impl Term {
    /// The index tokens this term must find, in order (adjacent when more than one): its
    /// words, with runs of CJK characters turned into their pairs.
    pub fn tokens(&self) -> Vec<String> {
        words(&self.text).flat_map(|w| if has_cjk(w) { cjk_pairs(w) } else { vec![w.to_owned()] }).collect()
    }

    /// Whether the last token matches as a prefix: asked for with `*`, or one CJK character
    /// (which starts the pairs it is in).
    pub fn is_prefix(&self) -> bool {
        self.prefix || (self.text.chars().count() == 1 && self.text.chars().all(is_cjk))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    pub terms: Vec<Term>,
    /// `from:` usernames (any of them).
    pub from: Vec<String>,
    /// `in:` conversation ids (any of them).
    pub conversations: Vec<Uuid>,
    /// Sent at or after this instant.
    pub since: Option<chrono::DateTime<Utc>>,
    /// Sent before this instant.
    pub until: Option<chrono::DateTime<Utc>>,
}

impl SearchQuery {
    /// Terms that must match.
    pub fn required(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| !t.excluded)
    }

    /// Terms that must not.
    pub fn excluded(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| t.excluded)
    }

    /// Refused as `query`: blank, too long, control characters, an operator without a value
    /// or with a bad one, nothing to look for but exclusions, more than 16 terms.
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let bad = |why: String| AppError::bad_input("query", why);
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(bad(format!("query must be at most {MAX_QUERY_CHARS} characters")));
        }
        refuse_control("query", raw, &[])?;
        let mut q = SearchQuery::default();
        let mut rest = raw.trim();
        while !rest.is_empty() {
            let excluded = rest.starts_with('-') && rest.len() > 1;
            let body = if excluded { &rest[1..] } else { rest };
            let (token, quoted, after) = if let Some(inner) = body.strip_prefix('"') {
                match inner.find('"') {
                    Some(end) => (&inner[..end], true, &inner[end + 1..]),
                    None => (inner, true, ""),
                }
            } else {
                let end = body.find(char::is_whitespace).unwrap_or(body.len());
                (&body[..end], false, &body[end..])
            };
            rest = after.trim_start();
            if !quoted
                && !excluded
                && let Some((op, value)) = token.split_once(':')
            {
                let op = op.to_ascii_lowercase();
                if matches!(op.as_str(), "from" | "in" | "before" | "after" | "on") {
                    if value.is_empty() {
                        return Err(bad(format!("{op}: needs a value")));
                    }
                    q.operator(&op, value)?;
                    continue;
                }
            }
            let prefix = !quoted && token.ends_with('*');
            let text = token.trim_end_matches('*').to_lowercase();
            let text = words(&text).collect::<Vec<_>>().join(" ");
            if text.is_empty() {
                continue;
            }
            q.terms.push(Term { text, prefix, excluded });
        }
        if q.terms.len() > MAX_TERMS {
            return Err(bad(format!("query may have at most {MAX_TERMS} words and phrases")));
        }
        if q.required().next().is_none() && q.from.is_empty() && q.conversations.is_empty() {
            return Err(bad("query needs a word or phrase to look for (or from:/in:)".into()));
        }
        if let (Some(since), Some(until)) = (q.since, q.until)
            && since >= until
        {
            return Err(bad("query's after: date must be before its before: date".into()));
        }
        Ok(q)
    }

    fn operator(&mut self, op: &str, value: &str) -> Result<(), AppError> {
        let bad = |why: String| AppError::bad_input("query", why);
        let day = || {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map(|d| Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)))
                .map_err(|_| bad(format!("{op}: takes a date as YYYY-MM-DD, not {value:?}")))
        };
        match op {
            "from" => self.from.push(value.trim_start_matches('@').to_ascii_lowercase()),
            "in" => self
                .conversations
                .push(Uuid::parse_str(value).map_err(|_| bad(format!("in: takes a conversation id, not {value:?}")))?),
            "before" => self.until = Some(day()?),
            "after" => self.since = Some(day()? + Duration::days(1)),
            _ => {
                let start = day()?;
                self.since = Some(start);
                self.until = Some(start + Duration::days(1));
            }
        }
        Ok(())
    }
}

/// The words of `text` as both tokenizers split them: runs of letters, digits and `_`.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty())
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x2FFFF) // CJK Extensions B on
}

fn has_cjk(text: &str) -> bool {
    text.chars().any(is_cjk)
}

/// A word's tokens when it has CJK characters: each run of them as its overlapping pairs
/// followed by its last character alone (so any one character is the start of a token: a
/// prefix search finds it), other runs as they are.
fn cjk_pairs(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let cjk = is_cjk(chars[i]);
        let start = i;
        while i < chars.len() && is_cjk(chars[i]) == cjk {
            i += 1;
        }
        let run = &chars[start..i];
        if !cjk {
            out.push(run.iter().collect());
        } else if run.len() == 1 {
            out.push(run[0].to_string());
        } else {
            out.extend(run.windows(2).map(|p| p.iter().collect::<String>()));
        }
    }
    out
}

/// What to index for `body` when it holds CJK text (its words, CJK runs as pairs, each run
/// also ending with its last character alone); `None` when the body can be indexed as it is.
pub fn cjk_index_text(body: &str) -> Option<String> {
    if !has_cjk(body) {
        return None;
    }
    let mut out = Vec::new();
    for word in words(body) {
        if !has_cjk(word) {
            out.push(word.to_lowercase());
            continue;
        }
        let tokens = cjk_pairs(word);
        out.extend(tokens);
        if let Some(last) = word.chars().last().filter(|c| is_cjk(*c)) {
            out.push(last.to_string());
        }
    }
    Some(out.join(" "))
}

/// Characters of a snippet, at most.
pub const SNIPPET_CHARS: usize = 160;

/// A piece of `body` around its first hit, as HTML: the text escaped, each place where a
/// required word matches in `<mark>`, `…` where the body was cut. Found by reading the body
/// again (the same word rules as the index), so both backends give the same snippet.
pub fn snippet(body: &str, q: &SearchQuery) -> String {
    let chars: Vec<char> = body.chars().collect();
    let lower: Vec<char> = chars.iter().map(|c| c.to_lowercase().next().unwrap_or(*c)).collect();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut marks = vec![false; chars.len()];
    for term in q.required() {
        let term_words: Vec<&str> = words(&term.text).collect();
        for (i, word) in term_words.iter().enumerate() {
            let needle: Vec<char> = word.chars().collect();
            let cjk = has_cjk(word);
            let prefix = term.is_prefix() && i + 1 == term_words.len();
            let mut at = 0;
            while at + needle.len() <= lower.len() {
                let found = lower[at..at + needle.len()] == needle[..]
                    && (cjk || at == 0 || !is_word(lower[at - 1]))
                    && (cjk || prefix || lower.get(at + needle.len()).is_none_or(|c| !is_word(*c)));
                if !found {
                    at += 1;
                    continue;
                }
                let mut end = at + needle.len();
                while prefix && !cjk && end < lower.len() && is_word(lower[end]) {
                    end += 1;
                }
                marks[at..end].iter_mut().for_each(|m| *m = true);
                at = end;
            }
        }
    }
    let first = marks.iter().position(|m| *m).unwrap_or(0);
    let start = first.saturating_sub(SNIPPET_CHARS / 4);
    let end = (start + SNIPPET_CHARS).min(chars.len());
    let start = end.saturating_sub(SNIPPET_CHARS).min(start);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut open = false;
    for i in start..end {
        if marks[i] != open {
            out.push_str(if marks[i] { "<mark>" } else { "</mark>" });
            open = marks[i];
        }
        match chars[i] {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    if open {
        out.push_str("</mark>");
    }
    if end < chars.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(text: &str, prefix: bool, excluded: bool) -> Term {
        Term { text: text.into(), prefix, excluded }
    }

    #[test]
    fn words_phrases_prefixes_and_exclusions() {
        let q = SearchQuery::parse(r#"Deploy "Release Notes" roll* -friday -"dry run""#).unwrap_or_default();
        assert_eq!(
            q.terms,
            [
                term("deploy", false, false),
                term("release notes", false, false),
                term("roll", true, false),
                term("friday", false, true),
                term("dry run", false, true),
            ]
        );
    }

    #[test]
    fn operators() {
        let id = Uuid::now_v7();
        let q = SearchQuery::parse(&format!("from:@Ann in:{id} after:2026-12-01 before:2026-12-05 plan"))
            .unwrap_or_default();
        assert_eq!((q.from, q.conversations), (vec!["ann".to_owned()], vec![id]));
        assert_eq!(q.since.map(|d| d.to_rfc3339()), Some("2026-12-02T00:00:00+00:00".into()));
        assert_eq!(q.until.map(|d| d.to_rfc3339()), Some("2026-12-05T00:00:00+00:00".into()));
        let on = SearchQuery::parse("on:2026-12-01 x").unwrap_or_default();
        assert_eq!(on.until.zip(on.since).map(|(u, s)| (u - s).num_hours()), Some(24));
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "   ",
            "-only",
            "before:yesterday x",
            "in:general x",
            "from: x",
            "x\u{0}",
            "after:2026-12-05 before:2026-12-01 x",
        ] {
            assert!(SearchQuery::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(SearchQuery::parse(&"w ".repeat(17)).is_err());
        assert!(SearchQuery::parse(&"w".repeat(257)).is_err());
        assert!(SearchQuery::parse("from:ann").is_ok(), "a filter alone lists messages");
    }

    #[test]
    fn snippets_mark_the_hits_and_escape_the_rest() {
        let q = SearchQuery::parse("deploy rel*").unwrap_or_default();
        assert_eq!(
            snippet("<b>Deploy</b> the release, not redeploy", &q),
            "&lt;b&gt;<mark>Deploy</mark>&lt;/b&gt; the <mark>release</mark>, not redeploy"
        );
        let long = format!("{} needle {}", "a ".repeat(200), "b ".repeat(200));
        let cut = snippet(&long, &SearchQuery::parse("needle").unwrap_or_default());
        assert!(cut.starts_with('…') && cut.ends_with('…') && cut.contains("<mark>needle</mark>"), "{cut}");
        assert!(cut.chars().count() < SNIPPET_CHARS + 20);
        assert_eq!(snippet("明天开会吗", &SearchQuery::parse("开会").unwrap_or_default()), "明天<mark>开会</mark>吗");
    }

    #[test]
    fn cjk_is_indexed_and_searched_as_pairs() {
        assert_eq!(cjk_index_text("hello world"), None);
        assert_eq!(cjk_index_text("明天开会 OK").as_deref(), Some("明天 天开 开会 会 ok"));
        assert_eq!(term("开会", false, false).tokens(), ["开会"]);
        assert_eq!(term("明天开会", false, false).tokens(), ["明天", "天开", "开会"]);
        assert_eq!(term("会", false, false).tokens(), ["会"]);
        assert!(term("会", false, false).is_prefix() && !term("ok", false, false).is_prefix());
        assert_eq!(cjk_index_text("東京タワー").as_deref(), Some("東京 京タ タワ ワー ー"));
        assert_eq!(cjk_index_text("회의는 내일").as_deref(), Some("회의 의는 는 내일 일"));
    }
}
