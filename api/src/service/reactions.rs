//! Reactions: one per (user, message, emoji), added and removed idempotently by participants.
//! An emoji is one from Unicode's emoji list (the `emojis` crate, Unicode 17: skin tones and
//! ZWJ sequences included), a GitHub/gemoji shortcode such as `:rocket:` (stored as its emoji),
//! or a custom `:name:` the operator allows (`SYNCCHAT_REACTION_SHORTCODES`). A message holds
//! at most `SYNCCHAT_MAX_REACTIONS_PER_MESSAGE` distinct emoji. Each change is told to the
//! conversation as a `ReactionsUpdated` event carrying the message's new summary.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sea_orm::TransactionTrait;
use syncchat_realtime::{EventKind, ReactionCount, Reactor, Topic};
use tracing::instrument;
use uuid::Uuid;

use super::scopes::Scope;
use super::views::{MessageView, ReactionView, ReactorView};
use super::{Caller, Context, Conversations, Messages};
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::{conversation, message, reaction};

/// Bounds and the custom shortcodes.
#[derive(Clone, Debug)]
pub struct ReactionSettings {
    pub max_per_message: usize,
    /// Custom shortcodes allowed besides the emoji, without their colons (`parrot`).
    pub shortcodes: HashSet<String>,
}

/// The reactions area.
pub struct Reactions {
    ctx: Context,
    conversations: Arc<Conversations>,
    messages: Arc<Messages>,
    settings: ReactionSettings,
}

/// Longest custom shortcode, colons included (the column holds 64).
const MAX_SHORTCODE: usize = 34;

impl Reactions {
    pub fn new(
        ctx: Context,
        conversations: Arc<Conversations>,
        messages: Arc<Messages>,
        settings: ReactionSettings,
    ) -> Reactions {
        Reactions { ctx, conversations, messages, settings }
    }

    /// Adds the caller's reaction (a repeat changes nothing) and answers the message.
    #[instrument(skip_all, fields(user.id = %caller.user_id, message.id = %message_id))]
    pub async fn add(&self, caller: &Caller, message_id: Uuid, emoji: &str) -> AppResult<MessageView> {
        self.change(caller, message_id, emoji, true).await
    }

    /// Removes the caller's reaction (none to remove changes nothing) and answers the message.
    #[instrument(skip_all, fields(user.id = %caller.user_id, message.id = %message_id))]
    pub async fn remove(&self, caller: &Caller, message_id: Uuid, emoji: &str) -> AppResult<MessageView> {
        self.change(caller, message_id, emoji, false).await
    }

    async fn change(&self, caller: &Caller, message_id: Uuid, raw: &str, add: bool) -> AppResult<MessageView> {
        caller.require(Scope::MessagesWrite)?;
        let emoji = parse_emoji(&self.settings, raw)?;
        let db = &self.ctx.db;
        let msg = message::find(db, message_id).await?.ok_or_else(|| AppError::not_found("message"))?;
        // Existence is only revealed to participants; a deleted message takes no reactions.
        self.conversations
            .conversation_for(caller, msg.conversation_id)
            .await
            .map_err(|_| AppError::not_found("message"))?;
        if msg.deleted_at.is_some() {
            return Err(AppError::Conflict("a deleted message takes no reactions".into()));
        }
        let changed = if add {
            let txn = db.begin().await?;
            // The conversation's row first, as a send takes it: adds to one message are
            // serialised, so the bound holds.
            conversation::lock(&txn, msg.conversation_id).await?;
            let present = reaction::emojis_of(&txn, message_id).await?;
            if !present.contains(&emoji) && present.len() >= self.settings.max_per_message {
                return Err(AppError::Conflict(format!(
                    "this message has {} different reactions already, the most it may have",
                    present.len()
                )));
            }
            let added = reaction::add(&txn, message_id, caller.user_id, &emoji, self.ctx.now()).await?;
            txn.commit().await?;
            added
        } else {
            let txn = db.begin().await?;
            let removed = reaction::remove(&txn, message_id, caller.user_id, &emoji).await?;
            txn.commit().await?;
            removed
        };
        if changed {
            m::reaction(if add { "added" } else { "removed" });
            let counts = counts(&reaction::summaries(db, &[message_id]).await?);
            let kind = EventKind::ReactionsUpdated {
                conversation_id: msg.conversation_id,
                message_id,
                seq: msg.seq,
                user_id: caller.user_id,
                username: caller.username.clone(),
                emoji,
                added: add,
                reactions: counts.get(&message_id).cloned().unwrap_or_default(),
            };
            self.ctx.publish(Topic::Conversation(msg.conversation_id), kind).await;
        }
        let mut view = self.messages.view(msg).await?;
        attach(db, caller.user_id, std::slice::from_mut(&mut view)).await?;
        Ok(view)
    }
}

/// The emoji `raw` names, as stored: the emoji itself, or a custom `:shortcode:`.
pub fn parse_emoji(settings: &ReactionSettings, raw: &str) -> AppResult<String> {
    if let Some(emoji) = emojis::get(raw) {
        return Ok(emoji.as_str().to_owned());
    }
    if let Some(name) = raw.strip_prefix(':').and_then(|r| r.strip_suffix(':'))
        && !name.is_empty()
    {
        // The server's own shortcodes first: an operator's `:parrot:` is theirs, not 🦜.
        if raw.len() <= MAX_SHORTCODE && settings.shortcodes.contains(name) {
            return Ok(raw.to_owned());
        }
        if let Some(emoji) = emojis::get_by_shortcode(name) {
            return Ok(emoji.as_str().to_owned());
        }
    }
    Err(AppError::bad_input(
        "emoji",
        "emoji must be one emoji (such as 👍 or 👋🏽), a shortcode such as :thumbsup:, or a shortcode this server allows",
    ))
}

/// The summaries (per emoji, in the order first used) shared by every reader.
fn counts(rows: &[reaction::SummaryRow]) -> HashMap<Uuid, Vec<ReactionCount>> {
    let mut out: HashMap<Uuid, Vec<ReactionCount>> = HashMap::new();
    for row in rows {
        let list = out.entry(row.message_id).or_default();
        if list.last().is_none_or(|last| last.emoji != row.emoji) {
            list.push(ReactionCount { emoji: row.emoji.clone(), count: row.n, users: Vec::new() });
        }
        if let Some(last) = list.last_mut() {
            last.users.push(Reactor { id: row.user_id, username: row.username.clone() });
        }
    }
    out
}

/// The reactions of `messages` as `reader` sees them.
pub(crate) async fn summaries<C: sea_orm::ConnectionTrait>(
    db: &C,
    reader: Uuid,
    messages: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<ReactionView>>> {
    if messages.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = reaction::summaries(db, messages).await?;
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let mine: HashSet<(Uuid, String)> = reaction::mine(db, reader, messages).await?.into_iter().collect();
    Ok(counts(&rows)
        .into_iter()
        .map(|(message_id, list)| {
            let views = list
                .into_iter()
                .map(|c| ReactionView {
                    reacted_by_me: mine.contains(&(message_id, c.emoji.clone())),
                    emoji: c.emoji,
                    count: c.count,
                    users: c.users.into_iter().map(|u| ReactorView { id: u.id, username: u.username }).collect(),
                })
                .collect();
            (message_id, views)
        })
        .collect())
}

/// Fills in the reactions of `views` for `reader`.
pub(crate) async fn attach<C: sea_orm::ConnectionTrait>(
    db: &C,
    reader: Uuid,
    views: &mut [MessageView],
) -> AppResult<()> {
    let ids: Vec<Uuid> = views.iter().map(|v| v.id).collect();
    let mut found = summaries(db, reader, &ids).await?;
    for view in views {
        view.reactions = found.remove(&view.id).unwrap_or_default();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(shortcodes: &[&str]) -> ReactionSettings {
        ReactionSettings { max_per_message: 20, shortcodes: shortcodes.iter().map(|s| (*s).to_owned()).collect() }
    }

    fn parse(settings: &ReactionSettings, raw: &str) -> Option<String> {
        parse_emoji(settings, raw).ok()
    }

    #[test]
    fn emoji_are_one_emoji_or_a_known_shortcode() {
        let s = area(&["parrot"]);
        for ok in ["👍", "👋🏽", "👩‍💻", "🇫🇷", "❤️"] {
            assert_eq!(parse(&s, ok).as_deref(), Some(ok), "{ok}");
        }
        assert_eq!(parse(&s, ":rocket:").as_deref(), Some("🚀"), "gemoji shortcodes become their emoji");
        assert_eq!(parse(&s, ":parrot:").as_deref(), Some(":parrot:"), "a configured shortcode wins over gemoji's 🦜");
        assert_eq!(parse(&area(&[]), ":parrot:").as_deref(), Some("🦜"));
        for bad in ["", "a", "👍👍", "👍 ", ":nope:", "::", "🚀x", "\u{0}"] {
            assert_eq!(parse(&s, bad), None, "{bad:?}");
        }
    }
}
