use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::{ApiTags, BearerAuth, ProblemResponse, svc};
use crate::service::views::{MessageView, PinView, ReadState};
use crate::service::{HistoryQuery, SendMessageInput, Services};

pub struct MessageApi {
    pub services: Option<Arc<Services>>,
}

/// Search hits, best first.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct SearchHitList {
    items: Vec<crate::service::search::SearchHitView>,
    /// Pass as `after` for the next page of the same search.
    next_cursor: Option<String>,
}

/// Messages that mention you, newest first.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct MentionList {
    items: Vec<MessageView>,
    /// Pass as `after` for the next (older) page.
    next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct MessageList {
    /// Ascending by `seq`.
    items: Vec<MessageView>,
    /// A seq: pass as `before` (or `after` when paging forward) for the next page.
    next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct NewMessage {
    /// 1 to 4,000 characters; line breaks and tabs are kept, other control characters refused.
    #[oai(
        deserialize_with = "crate::rest::strict::text",
        validator(
            max_length = 4000,
            pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
        )
    )]
    body: String,
    /// Up to 64 characters, chosen by the client to make retries safe.
    #[oai(
        deserialize_with = "crate::rest::strict::optional_text",
        validator(max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    client_message_id: Option<String>,
    /// Files to attach (uploaded by the sender), at most 10.
    #[oai(default, validator(max_items = 10))]
    attachment_ids: Vec<Uuid>,
}

#[derive(Object)]
struct EditMessage {
    #[oai(
        deserialize_with = "crate::rest::strict::text",
        validator(
            max_length = 4000,
            pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
        )
    )]
    body: String,
}

#[derive(Object)]
struct Unpinned {
    /// False when the message was not pinned.
    ok: bool,
}

#[derive(Object)]
struct PinList {
    /// The newest pin first.
    items: Vec<PinView>,
}

#[derive(Object)]
struct MarkRead {
    /// Up to the conversation's last message (409 beyond it).
    #[oai(validator(minimum(value = "0")))]
    seq: i64,
}

#[OpenApi(tag = "ApiTags::Messages")]
impl MessageApi {
    /// History by seq, ascending. `after=n` reads forward from seq n, `before=n` reads back
    /// from it, neither reads the newest page. `limit` defaults to 50, at most 200.
    #[oai(path = "/conversations/:id/messages", method = "get", operation_id = "listMessages")]
    async fn list(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(validator(minimum(value = "0")))] before: Query<Option<i64>>,
        #[oai(validator(minimum(value = "0")))] after: Query<Option<i64>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<Option<u64>>,
    ) -> Result<Json<MessageList>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let q = HistoryQuery { before: before.0, after: after.0, limit: limit.0 };
        let page = services.messages.list(&caller, id.0, q).await?;
        Ok(Json(MessageList { items: page.items, next_cursor: page.next_cursor }))
    }

    /// Messages that mention you (by name, `@here` or `@all`), newest first, in the
    /// conversations you are in. `limit` defaults to 20, at most 100.
    #[oai(path = "/users/me/mentions", method = "get", operation_id = "listMentions")]
    async fn mentions(
        &self,
        auth: BearerAuth,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u64>>,
        #[oai(validator(pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))] after: Query<
            Option<String>,
        >,
    ) -> Result<Json<MentionList>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let page = services.messages.mentions(&caller, limit.0, after.0.as_deref()).await?;
        Ok(Json(MentionList { items: page.items, next_cursor: page.next_cursor }))
    }

    /// Search the messages of your conversations. `q` takes words (all must match), `"exact
    /// phrases"`, `-excluded` words or phrases, `prefix*`, `from:username`, `in:<conversation
    /// id>`, `before:`/`after:`/`on:` a date (YYYY-MM-DD, UTC). Best hits first (then newest),
    /// each with an HTML snippet whose hits are in `<mark>`. `limit` defaults to 20, at most 50;
    /// results page up to 1,000 deep.
    #[oai(path = "/search/messages", method = "get", operation_id = "searchMessages")]
    async fn search(
        &self,
        auth: BearerAuth,
        #[oai(validator(
            max_length = 256,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff][^\x00-\x1f\x7f-\x9f]*$"
        ))]
        q: Query<String>,
        #[oai(name = "conversationId")] conversation_id: Query<Option<Uuid>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "50")))] limit: Query<Option<u64>>,
        #[oai(validator(pattern = r"^[0-9]{1,4}$"))] after: Query<Option<String>>,
    ) -> Result<Json<SearchHitList>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let page = services.search.messages(&caller, &q.0, conversation_id.0, limit.0, after.0.as_deref()).await?;
        Ok(Json(SearchHitList { items: page.items, next_cursor: page.next_cursor }))
    }

    /// Send a message. Retrying with the same `clientMessageId` returns the first message.
    #[oai(path = "/conversations/:id/messages", method = "post", operation_id = "sendMessage")]
    async fn send(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<NewMessage>,
    ) -> Result<Json<MessageView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let input = SendMessageInput {
            conversation_id: id.0,
            body: body.0.body,
            client_message_id: body.0.client_message_id,
            attachment_ids: body.0.attachment_ids,
        };
        Ok(Json(services.messages.send(&caller, input).await?))
    }

    /// Edit one of your messages.
    #[oai(path = "/messages/:id", method = "patch", operation_id = "editMessage")]
    async fn edit(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<EditMessage>,
    ) -> Result<Json<MessageView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.messages.edit(&caller, id.0, &body.0.body).await?))
    }

    /// Delete one of your messages: it keeps its seq, its body is removed.
    #[oai(path = "/messages/:id", method = "delete", operation_id = "deleteMessage")]
    async fn delete(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<MessageView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.messages.delete(&caller, id.0).await?))
    }

    /// React to a message with one emoji (percent-encoded: `%F0%9F%91%8D` is 👍), or a
    /// shortcode such as `:rocket:`; a repeat changes nothing. Answers the message with its
    /// reactions.
    #[oai(path = "/messages/:id/reactions/:emoji", method = "put", operation_id = "addReaction")]
    async fn add_reaction(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(validator(min_length = 1, max_length = 64))] emoji: Path<String>,
    ) -> Result<Json<MessageView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.reactions.add(&caller, id.0, &emoji.0).await?))
    }

    /// Take your reaction back (none to take back changes nothing).
    #[oai(path = "/messages/:id/reactions/:emoji", method = "delete", operation_id = "removeReaction")]
    async fn remove_reaction(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(validator(min_length = 1, max_length = 64))] emoji: Path<String>,
    ) -> Result<Json<MessageView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.reactions.remove(&caller, id.0, &emoji.0).await?))
    }

    /// Pin a message (a group's owner, or anyone in a direct conversation; at most 50 per
    /// conversation: 409 past it). Pinning again changes nothing.
    #[oai(path = "/messages/:id/pin", method = "put", operation_id = "pinMessage")]
    async fn pin(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<PinView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.pins.pin(&caller, id.0).await?))
    }

    /// Unpin a message (`ok: false` when it was not pinned).
    #[oai(path = "/messages/:id/pin", method = "delete", operation_id = "unpinMessage")]
    async fn unpin(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<Unpinned>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(Unpinned { ok: services.pins.unpin(&caller, id.0).await? }))
    }

    /// A conversation's pinned messages, the newest pin first.
    #[oai(path = "/conversations/:id/pins", method = "get", operation_id = "listPins")]
    async fn pins(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<PinList>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(PinList { items: services.pins.list(&caller, id.0).await? }))
    }

    /// Move your read marker forward to `seq` (never back).
    #[oai(path = "/conversations/:id/read", method = "post", operation_id = "markRead")]
    async fn mark_read(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<MarkRead>,
    ) -> Result<Json<ReadState>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        Ok(Json(services.messages.mark_read(&caller, id.0, body.0.seq).await?))
    }
}
