//! The delivery hot path: a message going to 100 subscribers who asked for the same fields.
//! Rendered per subscriber (async-graphql resolves the selection and the response is
//! serialized for each) versus through the render cache (resolved and serialized once, then
//! the JSON is reused). Each iteration drains one subscription stream of 100 items, the same
//! per-item work as 100 subscribers each receiving the message. A detached subscription
//! (`graphql/ws/`) skips the executor for items already rendered: one render, then 99
//! cache lookups straight into frames.
//!
//! `cargo bench -p syncchat-api --bench render`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failed setup step stops it with its reason

use async_graphql::{EmptyMutation, Object, Request, Schema, Subscription};
use chrono::Utc;
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use futures_util::{Stream, StreamExt};
use syncchat_api::graphql::shared::{ItemKey, RenderCache, Rendered, Shared};
use syncchat_api::service::views::{MessageView, UserRef};
use uuid::Uuid;

const SUBSCRIBERS: usize = 100;
const QUERY: &str = "subscription { messageAdded { id seq body createdAt sender { id username displayName } } }";

struct Query;

#[Object]
impl Query {
    async fn ok(&self) -> bool {
        true
    }
}

struct Sub {
    message: MessageView,
}

#[Subscription]
impl Sub {
    async fn message_added(&self) -> impl Stream<Item = Shared<MessageView>> {
        let message = self.message.clone();
        let key = ItemKey::of(message.id, 0, message.edited_at);
        futures_util::stream::iter((0..SUBSCRIBERS).map(move |_| Shared::new(key, message.clone())))
    }
}

fn message() -> MessageView {
    MessageView {
        id: Uuid::now_v7(),
        conversation_id: Uuid::now_v7(),
        seq: 4242,
        sender: UserRef {
            id: Uuid::now_v7(),
            username: "ann".into(),
            display_name: Some("Ann Example".into()),
            is_bot: false,
        },
        body: Some("1764112345678901 the quick brown fox jumps over the lazy dog, twice over".into()),
        client_message_id: None,
        created_at: Utc::now(),
        edited_at: None,
        deleted_at: None,
        attachments: Vec::new(),
        sender_blocked: false,
        reactions: Vec::new(),
        mentions: Vec::new(),
    }
}

/// Drains one stream of 100 items into frames; returns the bytes written.
async fn deliver(schema: &Schema<Query, EmptyMutation, Sub>, cached: bool) -> usize {
    let rendered = Rendered::default();
    let mut request = Request::new(QUERY);
    if cached {
        request = request.data(RenderCache::global().shape(&[QUERY, "", "{}"])).data(rendered.clone());
    }
    let mut responses = schema.execute_stream(request);
    let mut bytes = 0;
    while let Some(response) = responses.next().await {
        let frame = match rendered.take() {
            Some(item) => format!(r#"{{"type":"next","id":"1","payload":{{"data":{{"messageAdded":{item}}}}}}}"#),
            None => format!(
                r#"{{"type":"next","id":"1","payload":{}}}"#,
                serde_json::to_string(&response).unwrap_or_default()
            ),
        };
        bytes += black_box(frame).len();
    }
    bytes
}

/// The detached path: the first subscriber renders through the executor, the other 99 find
/// the JSON in the cache by (item, shape, response key) and frame it.
async fn deliver_detached(schema: &Schema<Query, EmptyMutation, Sub>, message: &MessageView) -> usize {
    let shape = RenderCache::global().shape(&[QUERY, "", "{}"]);
    let key = ItemKey::of(message.id, 0, message.edited_at);
    let rendered = Rendered::default();
    let mut responses = schema.execute_stream(Request::new(QUERY).data(shape).data(rendered.clone()));
    let mut bytes = 0;
    if responses.next().await.is_some()
        && let Some(item) = rendered.take()
    {
        bytes +=
            black_box(format!(r#"{{"type":"next","id":"1","payload":{{"data":{{"messageAdded":{item}}}}}}}"#)).len();
    }
    for _ in 1..SUBSCRIBERS {
        if let Some(item) = RenderCache::global().lookup(key, shape, "messageAdded") {
            bytes += black_box(format!(r#"{{"type":"next","id":"1","payload":{{"data":{{"messageAdded":{item}}}}}}}"#))
                .len();
        }
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else { return };
    let sub_message = message();
    let schema = Schema::new(Query, EmptyMutation, Sub { message: sub_message.clone() });
    // Both paths must produce the same frames.
    let a = rt.block_on(deliver(&schema, false));
    let b = rt.block_on(deliver(&schema, true));
    assert_eq!(a, b, "cached and uncached frames differ in size");
    assert_eq!(a, rt.block_on(deliver_detached(&schema, &sub_message)), "detached frames differ in size");
    let mut group = c.benchmark_group("one message to 100 subscribers");
    group.bench_function("rendered per subscriber", |bench| bench.iter(|| rt.block_on(deliver(&schema, false))));
    group.bench_function("rendered once, shared", |bench| bench.iter(|| rt.block_on(deliver(&schema, true))));
    group.bench_function("detached: rendered once, then cache lookups", |bench| {
        bench.iter(|| rt.block_on(deliver_detached(&schema, &sub_message)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
