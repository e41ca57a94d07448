//! Conversations: create (direct, deduplicated per pair; or group), add participants, leave,
//! list the caller's conversations by newest activity, and read one.

use super::scopes::Scope;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{Set, TransactionTrait};
use syncchat_realtime::{EventKind, Topic};
use tracing::instrument;
use uuid::Uuid;

use super::limits::{LimitSettings, RateLimit};
use super::users::page_limit;
use super::views::{
    ConversationKind, ConversationView, MessageView, Page, ParticipantRole, ParticipantView, ReadReceiptView, UserRef,
    conversation_kind,
};
use super::webhooks::payload;
use super::{Caller, Context, Users};
use crate::domain::Title;
use crate::error::{AppError, AppResult};
use crate::metrics as m;
use crate::storage::webhook_event::{self, Change};
use crate::storage::{block, conversation, is_unique_violation, message, participant, user_settings};

/// Most people one call may add.
pub const MAX_PARTICIPANTS_PER_CALL: usize = 100;
/// Most people one group may hold.
pub const MAX_GROUP_SIZE: u64 = 1000;

/// A new conversation. `kind`: `DIRECT` needs exactly one other person; by default it is
/// direct when there is exactly one other person and no title, a group otherwise.
// (`kind` has no doc comment of its own: poem-openapi would wrap its enum reference in an
// `allOf`, which generated clients cannot read.)
#[derive(Debug, Clone, async_graphql::InputObject, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateConversationInput {
    /// The other people (at most 100); the caller is always included.
    #[oai(validator(max_items = 100))]
    pub participant_ids: Vec<Uuid>,
    /// 1 to 200 characters, one line.
    #[oai(
        deserialize_with = "crate::rest::strict::optional_text",
        validator(
            max_length = 200,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub title: Option<String>,
    pub kind: Option<ConversationKind>,
}

/// A change to a group conversation: for now its title.
#[derive(Debug, Clone, async_graphql::InputObject, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateConversationInput {
    /// 1 to 200 characters, one line.
    #[oai(
        deserialize_with = "crate::rest::strict::text",
        validator(
            max_length = 200,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub title: String,
}

/// Conversations and who takes part in them.
pub struct Conversations {
    ctx: Context,
    users: Arc<Users>,
    create_limit: RateLimit<Uuid>,
}

impl Conversations {
    pub fn new(ctx: Context, users: Arc<Users>, limits: &LimitSettings) -> Conversations {
        let create_limit = RateLimit::per_minute("create_conversation", limits.conversations_per_min);
        Conversations { ctx, users, create_limit }
    }

    /// The users area this one reads people through.
    pub(crate) fn users(&self) -> &Users {
        &self.users
    }

    pub(crate) fn shrink_limits(&self) {
        self.create_limit.shrink();
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn create(&self, caller: &Caller, input: CreateConversationInput) -> AppResult<ConversationView> {
        caller.require(Scope::ConversationsWrite)?;
        let others: Vec<Uuid> = dedupe(input.participant_ids.iter().copied().filter(|id| *id != caller.user_id));
        if others.len() > MAX_PARTICIPANTS_PER_CALL {
            return Err(AppError::bad_input(
                "participantIds",
                format!("at most {MAX_PARTICIPANTS_PER_CALL} participants per call"),
            ));
        }
        let title = input.title.as_deref().map(Title::parse).transpose()?;
        let kind = input.kind.unwrap_or(if others.len() == 1 && title.is_none() {
            ConversationKind::Direct
        } else {
            ConversationKind::Group
        });
        if kind == ConversationKind::Direct && others.len() != 1 {
            return Err(AppError::bad_input(
                "participantIds",
                "a direct conversation has exactly two people: give one other participant",
            ));
        }
        if kind == ConversationKind::Direct && title.is_some() {
            return Err(AppError::bad_input("title", "a direct conversation has no title"));
        }
        self.users.ensure_exist(&others).await?;
        if kind == ConversationKind::Direct && block::exists(&self.ctx.db, others[0], caller.user_id).await? {
            return Err(AppError::Forbidden("this person does not take direct conversations from you".into()));
        }
        self.create_limit.check(&caller.user_id)?;

        let conversation_id = match kind {
            ConversationKind::Direct => self.create_direct(caller, others[0]).await?,
            ConversationKind::Group => self.create_group(caller, &others, title.map(Title::into_inner)).await?,
        };
        self.view(caller, conversation_id).await
    }

    async fn create_direct(&self, me: &Caller, other: Uuid) -> AppResult<Uuid> {
        let key = direct_key(me.user_id, other);
        let existing = || conversation::by_direct_key(&self.ctx.db, &key);
        if let Some(found) = existing().await? {
            return Ok(found.id);
        }
        match self.insert_conversation(me, &[other], conversation::KIND_DIRECT, None, Some(key.clone())).await {
            Ok(id) => Ok(id),
            // Someone created the same pair concurrently: theirs is the one.
            Err(AppError::Conflict(_)) => {
                existing().await?.map(|c| c.id).ok_or_else(|| AppError::not_found("conversation"))
            }
            Err(e) => Err(e),
        }
    }

    async fn create_group(&self, me: &Caller, others: &[Uuid], title: Option<String>) -> AppResult<Uuid> {
        self.insert_conversation(me, others, conversation::KIND_GROUP, title, None).await
    }

    async fn insert_conversation(
        &self,
        caller: &Caller,
        others: &[Uuid],
        kind: &'static str,
        title: Option<String>,
        direct_key: Option<String>,
    ) -> AppResult<Uuid> {
        let me = caller.user_id;
        let title_for_event = title.clone();
        let id = Uuid::now_v7();
        let at = self.ctx.now();
        let txn = self.ctx.db.begin().await?;
        let new = conversation::ActiveModel {
            id: Set(id),
            kind: Set(kind.to_owned()),
            title: Set(title),
            direct_key: Set(direct_key),
            created_by: Set(me),
            created_at: Set(at),
            updated_at: Set(at),
            last_seq: Set(0),
        };
        match conversation::insert(&txn, new).await {
            Err(e) if is_unique_violation(&e) => {
                return Err(AppError::Conflict("conversation exists".into()));
            }
            other => other?,
        };
        let owner_role =
            if kind == conversation::KIND_GROUP { participant::ROLE_OWNER } else { participant::ROLE_MEMBER };
        let rows = std::iter::once((me, owner_role)).chain(others.iter().map(|u| (*u, participant::ROLE_MEMBER))).map(
            |(user_id, role)| participant::ActiveModel {
                conversation_id: Set(id),
                user_id: Set(user_id),
                role: Set(role.to_owned()),
                joined_at: Set(at),
                last_read_seq: Set(0),
            },
        );
        participant::insert_many(&txn, rows).await?;
        let mut participant_ids = vec![me];
        participant_ids.extend_from_slice(others);
        let change = Change {
            id,
            kind: payload::CONVERSATION_CREATED,
            conversation_id: id,
            seq: None,
            data: payload::conversation_created(caller, kind, title_for_event.as_deref(), &participant_ids),
            at,
        };
        webhook_event::record(&txn, &change).await?;
        record_apps_added(&txn, caller, id, &participant_ids, at).await?;
        txn.commit().await?;
        m::conversation_created(kind);
        self.publish_membership(id, participant_ids.clone(), participant_ids, Vec::new()).await;
        Ok(id)
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %conversation_id))]
    pub async fn add_participants(
        &self,
        caller: &Caller,
        conversation_id: Uuid,
        user_ids: Vec<Uuid>,
    ) -> AppResult<ConversationView> {
        caller.require(Scope::ConversationsWrite)?;
        let conv = self.conversation_for(caller, conversation_id).await?;
        if conv.kind == conversation::KIND_DIRECT {
            return Err(AppError::bad_input("conversationId", "people cannot be added to a direct conversation"));
        }
        let wanted = dedupe(user_ids);
        if wanted.is_empty() || wanted.len() > MAX_PARTICIPANTS_PER_CALL {
            return Err(AppError::bad_input("userIds", format!("give 1 to {MAX_PARTICIPANTS_PER_CALL} people to add")));
        }
        self.users.ensure_exist(&wanted).await?;
        let present: HashSet<Uuid> =
            participant::present_among(&self.ctx.db, conversation_id, wanted.clone()).await?.into_iter().collect();
        let new: Vec<Uuid> = wanted.into_iter().filter(|u| !present.contains(u)).collect();
        if !new.is_empty() {
            let size = participant::count_in(&self.ctx.db, conversation_id).await?;
            if size + new.len() as u64 > MAX_GROUP_SIZE {
                return Err(AppError::bad_input("userIds", format!("a group holds at most {MAX_GROUP_SIZE} people")));
            }
            let at = self.ctx.now();
            let txn = self.ctx.db.begin().await?;
            // New members start with everything before their arrival marked read.
            let rows = new.iter().map(|user_id| participant::ActiveModel {
                conversation_id: Set(conversation_id),
                user_id: Set(*user_id),
                role: Set(participant::ROLE_MEMBER.to_owned()),
                joined_at: Set(at),
                last_read_seq: Set(conv.last_seq),
            });
            participant::insert_many(&txn, rows).await.map_err(|e| {
                if is_unique_violation(&e) { AppError::Conflict("already a participant".into()) } else { e.into() }
            })?;
            conversation::touch(&txn, conversation_id, at).await?;
            let change = Change {
                id: Uuid::now_v7(),
                kind: payload::PARTICIPANT_ADDED,
                conversation_id,
                seq: None,
                data: payload::participants_added(caller, &new),
                at,
            };
            webhook_event::record(&txn, &change).await?;
            record_apps_added(&txn, caller, conversation_id, &new, at).await?;
            txn.commit().await?;
            let members = self.member_ids(conversation_id).await?;
            self.publish_membership(conversation_id, members, new, Vec::new()).await;
        }
        self.view(caller, conversation_id).await
    }

    /// Renames a group (any participant may): `conversation.updated` for its apps, and a
    /// conversation change (no one added or removed) for live subscribers, who read it again.
    /// The same title again changes nothing.
    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %conversation_id))]
    pub async fn update(
        &self,
        caller: &Caller,
        conversation_id: Uuid,
        input: UpdateConversationInput,
    ) -> AppResult<ConversationView> {
        caller.require(Scope::ConversationsWrite)?;
        let title = Title::parse(&input.title)?.into_inner();
        let conv = self.conversation_for(caller, conversation_id).await?;
        if conv.kind == conversation::KIND_DIRECT {
            return Err(AppError::Conflict("a direct conversation has no title".into()));
        }
        if conv.title.as_deref() != Some(title.as_str()) {
            let at = self.ctx.now();
            let txn = self.ctx.db.begin().await?;
            conversation::lock(&txn, conversation_id).await?;
            conversation::set_title(&txn, conversation_id, &title, at).await?;
            let change = Change {
                id: Uuid::now_v7(),
                kind: payload::CONVERSATION_UPDATED,
                conversation_id,
                seq: None,
                data: payload::conversation_updated(caller, conv.title.as_deref(), &title),
                at,
            };
            webhook_event::record(&txn, &change).await?;
            txn.commit().await?;
            m::conversation_renamed();
            let members = self.member_ids(conversation_id).await?;
            self.publish_membership(conversation_id, members, Vec::new(), Vec::new()).await;
        }
        self.view(caller, conversation_id).await
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %conversation_id))]
    pub async fn leave(&self, caller: &Caller, conversation_id: Uuid) -> AppResult<bool> {
        caller.require(Scope::ConversationsWrite)?;
        let conv = self.conversation_for(caller, conversation_id).await?;
        if conv.kind == conversation::KIND_DIRECT {
            return Err(AppError::bad_input("conversationId", "a direct conversation cannot be left"));
        }
        let at = self.ctx.now();
        let txn = self.ctx.db.begin().await?;
        // The conversation's row first (as a send takes it), the event while the one who
        // leaves is still there (a leaving bot's app hears of it), then the removal.
        conversation::touch(&txn, conversation_id, at).await?;
        let change = Change {
            id: Uuid::now_v7(),
            kind: payload::PARTICIPANT_REMOVED,
            conversation_id,
            seq: None,
            data: payload::participant_left(caller),
            at,
        };
        webhook_event::record(&txn, &change).await?;
        participant::remove(&txn, conversation_id, caller.user_id).await?;
        txn.commit().await?;
        let members = self.member_ids(conversation_id).await?;
        self.publish_membership(conversation_id, members, Vec::new(), vec![caller.user_id]).await;
        Ok(true)
    }

    /// The caller's conversations, newest activity first.
    #[instrument(skip_all, fields(user.id = %caller.user_id))]
    pub async fn list(
        &self,
        caller: &Caller,
        first: Option<u64>,
        after: Option<String>,
    ) -> AppResult<Page<ConversationView>> {
        caller.require(Scope::ConversationsRead)?;
        let limit = page_limit(first, 20, 100)?;
        let after = after.as_deref().map(decode_activity_cursor).transpose()?;
        let mut rows = conversation::page_of(&self.ctx.db, caller.user_id, after, limit + 1).await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if has_more { rows.last().map(|c| encode_activity_cursor(c.updated_at, c.id)) } else { None };
        let items = self.views(caller, rows).await?;
        Ok(Page { items, next_cursor, has_more })
    }

    #[instrument(skip_all, fields(user.id = %caller.user_id, conversation.id = %conversation_id))]
    pub async fn get(&self, caller: &Caller, conversation_id: Uuid) -> AppResult<ConversationView> {
        caller.require(Scope::ConversationsRead)?;
        self.view(caller, conversation_id).await
    }

    async fn view(&self, caller: &Caller, conversation_id: Uuid) -> AppResult<ConversationView> {
        let conv = self.conversation_for(caller, conversation_id).await?;
        self.views(caller, vec![conv]).await?.pop().ok_or_else(|| AppError::not_found("conversation"))
    }

    /// The conversation, if the caller takes part in it; `NOT_FOUND` otherwise, whether or
    /// not it exists.
    pub(crate) async fn conversation_for(
        &self,
        caller: &Caller,
        conversation_id: Uuid,
    ) -> AppResult<conversation::Model> {
        self.participation(caller, conversation_id).await.map(|(c, _)| c)
    }

    /// Not found unless the caller is in the conversation: one primary-key read (a
    /// participant row implies its conversation).
    pub(crate) async fn require_member(&self, caller: &Caller, conversation_id: Uuid) -> AppResult<()> {
        match participant::find(&self.ctx.db, conversation_id, caller.user_id).await? {
            Some(_) => Ok(()),
            None => Err(AppError::not_found("conversation")),
        }
    }

    pub(crate) async fn participation(
        &self,
        caller: &Caller,
        conversation_id: Uuid,
    ) -> AppResult<(conversation::Model, participant::Model)> {
        let db = &self.ctx.db;
        let me = participant::find(db, conversation_id, caller.user_id).await?;
        let conv = match me {
            Some(_) => conversation::find(db, conversation_id).await?,
            None => None,
        };
        match (conv, me) {
            (Some(c), Some(p)) => Ok((c, p)),
            _ => Err(AppError::not_found("conversation")),
        }
    }

    /// Builds full views for conversations the caller is in, with a fixed number of queries
    /// per page plus one unread count per conversation.
    async fn views(&self, caller: &Caller, convs: Vec<conversation::Model>) -> AppResult<Vec<ConversationView>> {
        if convs.is_empty() {
            return Ok(Vec::new());
        }
        let db = &self.ctx.db;
        let ids: Vec<Uuid> = convs.iter().map(|c| c.id).collect();
        let members = participant::of_conversations(db, ids).await?;
        let last: Vec<(Uuid, i64)> = convs.iter().map(|c| (c.id, c.last_seq)).collect();
        let last_messages = message::at_seqs(db, &last).await?;
        let mut user_ids: Vec<Uuid> = members.iter().map(|p| p.user_id).collect();
        user_ids.extend(last_messages.iter().map(|msg| msg.sender_id));
        let private: HashSet<Uuid> = user_settings::private_among(db, dedupe(members.iter().map(|p| p.user_id)))
            .await?
            .into_iter()
            .filter(|u| *u != caller.user_id)
            .collect();
        let users = self.users.refs(dedupe(user_ids)).await?;
        let user_ref = |id: Uuid| users.get(&id).cloned().unwrap_or_else(|| UserRef::unknown(id));

        let mut by_conv: HashMap<Uuid, Vec<participant::Model>> = HashMap::new();
        for p in members {
            by_conv.entry(p.conversation_id).or_default().push(p);
        }
        let mut last_by_conv: HashMap<Uuid, message::Model> =
            last_messages.into_iter().map(|msg| (msg.conversation_id, msg)).collect();

        let mut views = Vec::with_capacity(convs.len());
        for c in convs {
            let parts = by_conv.remove(&c.id).unwrap_or_default();
            let last_read_seq = parts.iter().find(|p| p.user_id == caller.user_id).map_or(0, |p| p.last_read_seq);
            let (unread_count, mention_count) =
                self.unread_counts(c.id, caller.user_id, last_read_seq, c.last_seq).await?;
            let last_message = last_by_conv.remove(&c.id).map(|msg| {
                let sender = user_ref(msg.sender_id);
                MessageView::from_model(msg, sender)
            });
            let mut read_by: Vec<ReadReceiptView> = parts
                .iter()
                .filter(|p| !private.contains(&p.user_id))
                .map(|p| ReadReceiptView { user: user_ref(p.user_id), last_read_seq: p.last_read_seq })
                .collect();
            read_by.sort_by(|a, b| b.last_read_seq.cmp(&a.last_read_seq).then_with(|| a.user.id.cmp(&b.user.id)));
            views.push(ConversationView {
                id: c.id,
                kind: conversation_kind(&c),
                title: c.title,
                created_by: c.created_by,
                created_at: c.created_at,
                updated_at: c.updated_at,
                last_seq: c.last_seq,
                participants: parts
                    .into_iter()
                    .map(|p| ParticipantView {
                        user: user_ref(p.user_id),
                        role: if p.role == participant::ROLE_OWNER {
                            ParticipantRole::Owner
                        } else {
                            ParticipantRole::Member
                        },
                        joined_at: p.joined_at,
                        last_read_seq: (!private.contains(&p.user_id)).then_some(p.last_read_seq),
                    })
                    .collect(),
                last_message,
                unread_count,
                mention_count,
                last_read_seq,
                read_by,
            });
        }
        Ok(views)
    }

    /// Unread messages and, of them, those that mention `user_id`, after its read marker.
    pub(crate) async fn unread_counts(
        &self,
        conversation_id: Uuid,
        user_id: Uuid,
        last_read_seq: i64,
        last_seq: i64,
    ) -> AppResult<(i64, i64)> {
        if last_read_seq >= last_seq {
            return Ok((0, 0));
        }
        let db = &self.ctx.db;
        let unread = message::count_unread(db, conversation_id, user_id, last_read_seq).await?;
        // Nothing unread mentions anyone when nothing is unread.
        let mentions = if unread == 0 {
            0
        } else {
            crate::storage::mention::count_after(db, user_id, conversation_id, last_read_seq).await?
        };
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Ok((n(unread), n(mentions)))
    }
}

impl Conversations {
    /// Tells the conversation and every added or removed user, so live subscriptions start
    /// or stop delivering that conversation.
    async fn publish_membership(
        &self,
        conversation_id: Uuid,
        participant_ids: Vec<Uuid>,
        added: Vec<Uuid>,
        removed: Vec<Uuid>,
    ) {
        let mut topics = vec![Topic::Conversation(conversation_id)];
        topics.extend(added.iter().chain(&removed).map(|u| Topic::User(*u)));
        let kind = EventKind::ConversationChanged { conversation_id, participant_ids, added, removed };
        for topic in topics {
            self.ctx.publish(topic, kind.clone()).await;
        }
    }

    pub(crate) async fn member_ids(&self, conversation_id: Uuid) -> AppResult<Vec<Uuid>> {
        Ok(participant::user_ids(&self.ctx.db, conversation_id).await?)
    }
}

fn dedupe(ids: impl IntoIterator<Item = Uuid>) -> Vec<Uuid> {
    let mut seen = HashSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

fn direct_key(a: Uuid, b: Uuid) -> String {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

/// `<micros since the epoch>_<id>`: plain enough for the spec to give its pattern (REST
/// `listConversations`: up to 17 digits, i.e. up to the year 5138, and a lowercase UUID), so
/// a client can tell a cursor from garbage.
pub(crate) fn encode_activity_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{}", at.timestamp_micros(), id.hyphenated())
}

/// 9999-12-31T23:59:59.999999Z: the last instant a cursor may name.
const LAST_CURSOR_MICROS: i64 = 253_402_300_799_999_999;

fn decode_activity_cursor(cursor: &str) -> AppResult<(DateTime<Utc>, Uuid)> {
    let invalid = || AppError::bad_input("after", "invalid cursor");
    let (micros, id) = cursor.split_once('_').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    // The server's cursors hold times it stored; far-off ones (which Postgres cannot even
    // compare with) are not a cursor of ours.
    if !(0..=LAST_CURSOR_MICROS).contains(&micros) {
        return Err(invalid());
    }
    let at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(invalid)?;
    Ok((at, Uuid::try_parse(id).map_err(|_| invalid())?))
}

/// Records `app.added_to_conversation` for the apps whose bot is among `added` (in the
/// transaction that added them).
async fn record_apps_added<C: sea_orm::ConnectionTrait>(
    txn: &C,
    caller: &Caller,
    conversation_id: Uuid,
    added: &[Uuid],
    at: DateTime<Utc>,
) -> AppResult<()> {
    let change = Change {
        id: Uuid::now_v7(),
        kind: payload::APP_ADDED,
        conversation_id,
        seq: None,
        data: payload::app_added(caller),
        at,
    };
    Ok(webhook_event::record_for_bots(txn, &change, added).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_key_is_order_independent() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(direct_key(a, b), direct_key(b, a));
    }

    #[test]
    fn activity_cursor_round_trips() {
        let at = crate::service::Clock.now();
        let id = Uuid::now_v7();
        assert_eq!(decode_activity_cursor(&encode_activity_cursor(at, id)).ok(), Some((at, id)));
        assert!(decode_activity_cursor("!!").is_err());
        for micros in [-1, LAST_CURSOR_MICROS + 1, i64::MIN, i64::MAX] {
            assert!(decode_activity_cursor(&format!("{micros}_{id}")).is_err(), "{micros}");
        }
        assert!(decode_activity_cursor(&format!("{LAST_CURSOR_MICROS}_{id}")).is_ok());
        // The largest cursor the spec's pattern allows is one of ours.
        assert!(decode_activity_cursor(&format!("{}_{id}", "9".repeat(17))).is_ok());
    }
}
