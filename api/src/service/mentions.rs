//! Mentions: the body's `@username`/`@here`/`@all` (parsed in `domain::mention`) resolved
//! against the conversation when a message is sent or edited, stored with it, counted per
//! reader beside the unread count, and listed across conversations (`mentions`).

use std::sync::Arc;

use syncchat_realtime::{MentionKind, MentionSnapshot, PresenceStore, Reactor};
use uuid::Uuid;

use super::conversations::Conversations;
use super::views::{MessageView, Page};
use super::{Caller, Context};
use crate::domain::mention::{self, Mentioned};
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::{conversation, participant};

/// Who may mention everyone (`@here`, `@all`) in a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MentionEveryone {
    /// Anyone in the group.
    #[default]
    Anyone,
    /// The group's owners and platform admins; others are refused (403).
    Owners,
}

/// What a body's mentions come to in its conversation.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    /// The stored form (`messages.mentions`), `None` when no one is mentioned.
    pub json: Option<String>,
    /// Participants mentioned, distinct, never the sender.
    pub users: Vec<Uuid>,
    spans: Vec<MentionSnapshot>,
}

impl Resolved {
    /// Counts what a sent message mentioned (`syncchat_mentions_total`).
    pub fn count(&self) {
        for span in &self.spans {
            m::mention(match span.kind {
                MentionKind::User => "user",
                MentionKind::Here => "here",
                MentionKind::All => "all",
            });
        }
    }
}

pub(crate) struct MentionResolver {
    ctx: Context,
    conversations: Arc<Conversations>,
    presence: Arc<dyn PresenceStore>,
    everyone: MentionEveryone,
}

impl MentionResolver {
    pub fn new(
        ctx: Context,
        conversations: Arc<Conversations>,
        presence: Arc<dyn PresenceStore>,
        everyone: MentionEveryone,
    ) -> Self {
        MentionResolver { ctx, conversations, presence, everyone }
    }

    /// The mentions of `body`, sent by `caller` to `conversation_id`: `@username` names a
    /// participant (anyone else stays text); in a group `@all` is every other participant
    /// and `@here` those of them online now (in a direct conversation both stay text). No
    /// database read for a body without `@`.
    pub async fn resolve(&self, caller: &Caller, conversation_id: Uuid, body: &str) -> AppResult<Resolved> {
        let spans = mention::parse(body)?;
        if spans.is_empty() {
            return Ok(Resolved::default());
        }
        let db = &self.ctx.db;
        let mut names: Vec<String> = spans
            .iter()
            .filter_map(|s| match &s.who {
                Mentioned::User(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        let named = participant::named_among(db, conversation_id, names).await?;
        let everyone = spans.iter().any(|s| matches!(s.who, Mentioned::Here | Mentioned::All));
        let mut group: Option<Vec<Uuid>> = None;
        let mut online: Vec<Uuid> = Vec::new();
        if everyone {
            let (conv, me) = self.conversations.participation(caller, conversation_id).await?;
            if conv.kind != conversation::KIND_DIRECT {
                if self.everyone == MentionEveryone::Owners && me.role != participant::ROLE_OWNER && !caller.is_admin {
                    return Err(AppError::Forbidden(
                        "only the conversation's owners may mention @here or @all in it".into(),
                    ));
                }
                let others: Vec<Uuid> = participant::user_ids(db, conversation_id)
                    .await?
                    .into_iter()
                    .filter(|u| *u != caller.user_id)
                    .collect();
                if spans.iter().any(|s| s.who == Mentioned::Here) {
                    let up = self.presence.online(&others).await;
                    online = others.iter().zip(up).filter(|(_, up)| *up).map(|(u, _)| *u).collect();
                }
                group = Some(others);
            }
        }
        let mut resolved = Resolved::default();
        for span in spans {
            let (kind, user, targets): (MentionKind, Option<Reactor>, Vec<Uuid>) = match &span.who {
                Mentioned::User(name) => match named.iter().find(|(_, n)| n == name) {
                    Some((id, username)) => {
                        (MentionKind::User, Some(Reactor { id: *id, username: username.clone() }), vec![*id])
                    }
                    None => continue,
                },
                Mentioned::All => match &group {
                    Some(others) => (MentionKind::All, None, others.clone()),
                    None => continue,
                },
                Mentioned::Here => match &group {
                    Some(_) => (MentionKind::Here, None, online.clone()),
                    None => continue,
                },
            };
            resolved.users.extend(targets.into_iter().filter(|u| *u != caller.user_id));
            let start = u32::try_from(span.start).unwrap_or(u32::MAX);
            let end = u32::try_from(span.end).unwrap_or(u32::MAX);
            resolved.spans.push(MentionSnapshot { kind, user, start, end });
        }
        resolved.users.sort_unstable();
        resolved.users.dedup();
        if !resolved.spans.is_empty() {
            resolved.json = Some(serde_json::to_string(&resolved.spans).map_err(|e| AppError::Internal(e.into()))?);
        }
        Ok(resolved)
    }
}

/// A `mentions` page cursor: the id of the page's last message.
pub(crate) fn parse_cursor(after: Option<&str>) -> AppResult<Option<Uuid>> {
    after
        .filter(|a| !a.is_empty())
        .map(|a| Uuid::parse_str(a).map_err(|_| AppError::bad_input("after", "after must be a cursor from a page")))
        .transpose()
}

/// The page's cursor for the next one.
pub(crate) fn page_of(mut items: Vec<MessageView>, limit: u64) -> Page<MessageView> {
    let has_more = items.len() as u64 > limit;
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = has_more.then(|| items.last().map(|m| m.id.to_string())).flatten();
    Page { items, next_cursor, has_more }
}
