//! Subscription items rendered once and shared: when a message goes to a hundred subscribers
//! who asked for the same fields, its JSON is made by the first and reused by the rest.
//!
//! A subscription's *shape* is its document, operation name and variables (hashed with this
//! process's random keys at subscribe time). What an item renders to depends only on the item
//! and the shape: no field of a shared item depends on who is reading it. The types say so:
//! only a [`SharedView`] goes through the cache, and while one renders, asking who is reading
//! ([`crate::graphql::caller`], [`crate::graphql::client_ip`]) refuses the item instead of
//! caching one reader's answer for everyone. So [`Shared`] looks up `(item, version, shape)`
//! in the [`RenderCache`]; on a miss it resolves the selection as usual and stores the JSON.
//! Either way it hands the JSON to the connection through the operation's [`Rendered`] slot,
//! which writes it into the frame as is.
//!
//! A subscription with a single root field goes further: its resolver hands the item stream
//! to the connection ([`Detach`]) instead of leaving it inside async-graphql's executor,
//! whose per-operation state (request data, query environment, the resolver's futures) is
//! most of what an idle subscription costs. The connection looks each item up in the cache
//! itself and, on a miss, runs the document once more with the item [`Inject`]ed, so the
//! JSON is still made by async-graphql from the client's own selection.

use std::any::Any;
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Field, OperationType, Selection};
use async_graphql::registry::Registry;
use async_graphql::{Context, ContextSelectionSet, ErrorExtensions, OutputType, Positioned, ServerResult, Value};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use super::GqlResult;
use crate::error::AppError;
use crate::metrics as m;
use crate::service::live::LiveStream;

/// A subscription item type that renders the same for every reader: each of its fields, and
/// each field of what it contains, depends only on the item and the selection, never on who
/// is reading (no "did I react", no "is this mine", nothing per caller or per client). The
/// render cache renders such an item once and hands the JSON to every subscriber of the
/// same shape, so a field that broke the rule would show the first reader's answer to
/// everyone. Implement it only for a type that keeps the rule, with a doc comment saying
/// why; a field that needs the reader belongs in a query, or in a type of its own that is
/// not shared. The rule is checked where it matters: a resolver that asks who is reading
/// while a shared item renders makes the item fail, and nothing is cached.
pub trait SharedView: OutputType {}

tokio::task_local! {
    /// Set while a shared item renders: whether a resolver asked who is reading.
    static READER_ASKED: Cell<bool>;
}

/// Whether a shared item is rendering right now; it is then refused. Every accessor of the
/// reader (`graphql::caller`, `graphql::client_ip`) asks this first.
pub(crate) fn rendering_shared() -> bool {
    READER_ASKED.try_with(|asked| asked.set(true)).is_ok()
}

/// Resolves the selection of a shared item, refusing it when a resolver asked who is reading.
async fn render<T: SharedView>(
    value: &T,
    ctx: &ContextSelectionSet<'_>,
    field: &Positioned<Field>,
) -> ServerResult<Value> {
    let (value, asked) = READER_ASKED
        .scope(Cell::new(false), async {
            let value = value.resolve(ctx, field).await;
            (value, READER_ASKED.with(Cell::get))
        })
        .await;
    if asked {
        let e = AppError::Internal(anyhow::anyhow!(
            "{} is a SharedView, rendered once for every reader, but a resolver asked who is reading",
            T::type_name()
        ));
        return Err(e.extend().into_server_error(field.pos));
    }
    value
}

/// Items kept per generation: a few seconds of traffic on a busy node. Two generations are
/// kept, so an entry lives at least this many insertions.
const GENERATION: usize = 4096;

/// Identifies what an item renders to, apart from the selection: an id and a version that
/// changes whenever the content does (an edit, a delete).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ItemKey {
    pub id: Uuid,
    pub version: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Key {
    item: ItemKey,
    shape: u64,
}

impl Key {
    // A subscription may have several root fields (aliases): each renders on its own.
    fn new(item: ItemKey, shape: Shape, response_key: &str) -> Key {
        let mut h = std::hash::DefaultHasher::new();
        (shape.0, response_key).hash(&mut h);
        Key { item, shape: h.finish() }
    }
}

/// The shape of one subscription (request data, set by the WebSocket layer).
#[derive(Clone, Copy, Debug)]
pub struct Shape(pub u64);

/// Where an item's JSON is left for the connection (request data, one per operation).
#[derive(Clone, Default)]
pub struct Rendered(Arc<Mutex<Option<Arc<str>>>>);

impl Rendered {
    fn put(&self, json: Arc<str>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(json);
    }

    /// The JSON of the item just resolved, if it went through the cache.
    pub fn take(&self) -> Option<Arc<str>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Rendered items by shape, shared by every connection of the process.
pub struct RenderCache {
    hasher: RandomState,
    generations: Mutex<[HashMap<Key, Arc<str>>; 2]>,
}

impl Default for RenderCache {
    fn default() -> Self {
        RenderCache { hasher: RandomState::new(), generations: Mutex::new([HashMap::new(), HashMap::new()]) }
    }
}

static GLOBAL: std::sync::LazyLock<RenderCache> = std::sync::LazyLock::new(RenderCache::default);

impl RenderCache {
    pub fn global() -> &'static RenderCache {
        &GLOBAL
    }

    /// The shape of a subscription from its raw parts (document, operation name, variables).
    pub fn shape(&self, parts: &[&str]) -> Shape {
        let mut h = self.hasher.build_hasher();
        for part in parts {
            part.hash(&mut h);
        }
        Shape(h.finish())
    }

    /// The JSON of `item` for root field `response_key` of a subscription of this shape, if
    /// some subscriber rendered it already.
    pub fn lookup(&self, item: ItemKey, shape: Shape, response_key: &str) -> Option<Arc<str>> {
        self.get(&Key::new(item, shape, response_key))
    }

    fn get(&self, key: &Key) -> Option<Arc<str>> {
        let gens = self.generations.lock().unwrap_or_else(PoisonError::into_inner);
        gens[0].get(key).or_else(|| gens[1].get(key)).cloned()
    }

    fn insert(&self, key: Key, json: Arc<str>) {
        let mut gens = self.generations.lock().unwrap_or_else(PoisonError::into_inner);
        if gens[0].len() >= GENERATION {
            gens[1] = std::mem::take(&mut gens[0]);
        }
        gens[0].insert(key, json);
    }
}

/// A subscription item that renders through the [`RenderCache`] when the operation has a
/// shape (a WebSocket subscription); otherwise like `T`, and never for one reader only.
pub struct Shared<T: SharedView> {
    pub key: ItemKey,
    pub value: T,
}

impl<T: SharedView> Shared<T> {
    pub fn new(key: ItemKey, value: T) -> Self {
        Shared { key, value }
    }
}

impl ItemKey {
    /// The key of item `id` of kind `tag`, whose changeable content is summed up by
    /// `version` (edit and delete times, what its files look like now).
    pub fn of(id: Uuid, tag: u8, version: impl Hash) -> ItemKey {
        let mut h = std::hash::DefaultHasher::new();
        (tag, version).hash(&mut h);
        ItemKey { id, version: h.finish() }
    }
}

impl<T: SharedView> OutputType for Shared<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.value.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        let item = self.key;
        let (Some(shape), Some(slot)) = (ctx.data_opt::<Shape>(), ctx.data_opt::<Rendered>()) else {
            return render(&self.value, ctx, field).await;
        };
        let cache = RenderCache::global();
        let key = Key::new(item, *shape, field.node.response_key().node.as_str());
        if let Some(json) = cache.get(&key) {
            m::render_cache("hit");
            slot.put(json);
            return Ok(Value::Null);
        }
        let value = render(&self.value, ctx, field).await?;
        let json: Arc<str> = match serde_json::to_string(&value) {
            Ok(json) => json.into(),
            Err(_) => return Ok(value),
        };
        m::render_cache("miss");
        cache.insert(key, json.clone());
        slot.put(json);
        Ok(Value::Null)
    }
}

/// One item of a detached subscription: its cache key, and the resolver's own item
/// (`async_graphql::Result<Shared<T>>`) to inject on a miss.
pub struct DetachedItem {
    pub key: Option<ItemKey>,
    value: Box<dyn Any + Send>,
}

pub type DetachedStream = Pin<Box<dyn Stream<Item = DetachedItem> + Send>>;

/// Offered by the WebSocket layer to a subscription with a single root field: the resolver
/// leaves its item stream here and gives the executor an empty one.
#[derive(Clone, Default)]
pub struct Detach(Arc<Mutex<Option<DetachedStream>>>);

impl Detach {
    /// The stream a resolver left, if it did.
    pub fn take(&self) -> Option<DetachedStream> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Request data of the run that renders one detached item: the resolver yields this item
/// instead of subscribing.
pub struct Inject(Mutex<Option<Box<dyn Any + Send>>>);

impl Inject {
    pub fn new(item: DetachedItem) -> Self {
        Inject(Mutex::new(Some(item.value)))
    }

    /// `value` to render, as a resolver hands it over.
    #[cfg(test)]
    pub(crate) fn item<T: SharedView + Send + 'static>(key: ItemKey, value: T) -> Self {
        let item: async_graphql::Result<Shared<T>> = Ok(Shared::new(key, value));
        Inject(Mutex::new(Some(Box::new(item))))
    }
}

/// What a shared subscription field's resolver returns.
pub type SharedItems<T> = BoxStream<'static, async_graphql::Result<Shared<T>>>;

/// The items of a shared subscription field, as its resolver returns them. On the run that
/// renders one detached item, that item (see [`Inject`]), and `subscribe` is not run.
/// Otherwise `subscribe`'s live stream (it authorizes and subscribes), each item keyed by
/// `key`, either handed to the connection (detached; the executor gets an empty stream) or
/// left to the executor.
pub async fn subscription_items<T: SharedView + Send + 'static>(
    ctx: &Context<'_>,
    key: fn(&T) -> ItemKey,
    subscribe: impl Future<Output = async_graphql::Result<LiveStream<T>>>,
) -> async_graphql::Result<SharedItems<T>> {
    if let Some(item) = injected(ctx) {
        return Ok(item);
    }
    let items = subscribe.await?.map(move |item| item.map(|value| Shared::new(key(&value), value)).gql());
    Ok(match ctx.data_opt::<Detach>() {
        Some(detach) => {
            let detached = items
                .map(|item| DetachedItem { key: item.as_ref().ok().map(|shared| shared.key), value: Box::new(item) });
            *detach.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::pin(detached));
            futures_util::stream::empty().boxed()
        }
        None => items.boxed(),
    })
}

/// The item a resolver is asked to render (see [`Inject`]), as a one-item stream.
fn injected<T: SharedView + Send + 'static>(ctx: &Context<'_>) -> Option<SharedItems<T>> {
    let value = ctx.data_opt::<Inject>()?.0.lock().unwrap_or_else(PoisonError::into_inner).take()?;
    let item = match value.downcast::<async_graphql::Result<Shared<T>>>() {
        Ok(item) => *item,
        Err(_) => Err(async_graphql::Error::new("internal error: a subscription item of another type")),
    };
    Some(futures_util::stream::once(async move { item }).boxed())
}

/// The root field (name and response key) of a subscription that has exactly one, with no
/// directive: such a subscription can be detached.
pub fn single_root_field(doc: &ExecutableDocument, operation_name: Option<&str>) -> Option<(String, String)> {
    let op = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.iter().find(|(n, _)| n.as_str() == name)?.1,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        _ => return None,
    };
    if op.node.ty != OperationType::Subscription {
        return None;
    }
    let [selection] = op.node.selection_set.node.items.as_slice() else { return None };
    let Selection::Field(field) = &selection.node else { return None };
    if !field.node.directives.is_empty() {
        return None;
    }
    Some((field.node.name.node.to_string(), field.node.response_key().node.to_string()))
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, Object, Schema, Subscription};

    use super::*;
    use crate::graphql::{AuthState, caller};
    use crate::service::Caller;

    #[test]
    fn shapes_differ_by_every_part_and_repeat_for_the_same_parts() {
        let cache = RenderCache::default();
        let a = cache.shape(&["subscription { a }", "", "{}"]).0;
        assert_eq!(a, cache.shape(&["subscription { a }", "", "{}"]).0);
        assert_ne!(a, cache.shape(&["subscription { a }", "Op", "{}"]).0);
        assert_ne!(a, cache.shape(&["subscription { a }", "", "{\"c\":1}"]).0);
        // Parts are delimited: moving text between them is another shape.
        assert_ne!(cache.shape(&["ab", "c"]).0, cache.shape(&["a", "bc"]).0);
    }

    #[test]
    fn only_a_subscription_with_one_plain_root_field_is_detached() {
        let root = |query: &str, name: Option<&str>| {
            let doc = async_graphql::parser::parse_query(query).expect("parses");
            single_root_field(&doc, name)
        };
        let pair = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(
            root("subscription { messageAdded(conversationId: 1) { seq } }", None),
            pair("messageAdded", "messageAdded")
        );
        assert_eq!(root("subscription S { m: events { __typename } }", None), pair("events", "m"));
        assert_eq!(
            root(
                "subscription A { events { __typename } } subscription B { typing(conversationId: 1) { typing } }",
                Some("B")
            ),
            pair("typing", "typing")
        );
        assert_eq!(
            root("subscription A { events { __typename } } subscription B { events { __typename } }", None),
            None
        );
        assert_eq!(root("subscription { a: events { __typename } b: events { __typename } }", None), None);
        assert_eq!(root("subscription { ...F } fragment F on SubscriptionRoot { events { __typename } }", None), None);
        assert_eq!(root("subscription($x: Boolean!) { events @include(if: $x) { __typename } }", None), None);
        assert_eq!(root("query { me { id } }", None), None);
    }

    #[test]
    fn the_cache_keeps_two_generations() {
        let cache = RenderCache::default();
        let key = |n: u64| Key { item: ItemKey { id: Uuid::nil(), version: n }, shape: 1 };
        cache.insert(key(0), "first".into());
        for n in 1..=GENERATION as u64 {
            cache.insert(key(n), "x".into());
        }
        assert_eq!(cache.get(&key(0)).as_deref(), Some("first"), "still in the older generation");
        for n in GENERATION as u64 + 1..=2 * GENERATION as u64 {
            cache.insert(key(n), "x".into());
        }
        assert_eq!(cache.get(&key(0)), None, "gone after two generations");
    }

    /// A shared item with a field that asks who is reading, as "did I react" would.
    struct Probe;

    #[Object]
    impl Probe {
        async fn text(&self) -> &str {
            "the same for everyone"
        }

        async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
            Ok(caller(ctx).gql()?.username)
        }
    }

    impl SharedView for Probe {}

    struct ProbeQuery;

    #[Object]
    impl ProbeQuery {
        async fn ok(&self) -> bool {
            true
        }
    }

    struct ProbeSubscription;

    #[Subscription]
    impl ProbeSubscription {
        async fn probe(&self, ctx: &Context<'_>) -> async_graphql::Result<SharedItems<Probe>> {
            let live: LiveStream<Probe> = Box::pin(futures_util::stream::iter([Ok(Probe)]));
            subscription_items(ctx, |_| PROBE, async { Ok(live) }).await
        }
    }

    const PROBE: ItemKey = ItemKey { id: Uuid::nil(), version: 1 };

    fn reader(name: &str) -> Caller {
        let id = Uuid::now_v7();
        Caller {
            user_id: id,
            username: name.to_owned(),
            display_name: None,
            session_id: id,
            is_admin: false,
            app: None,
        }
    }

    /// One render of `query` for `reader`: the response, and what went into the slot.
    async fn render(query: &str, reader: Caller, shape: Option<Shape>) -> (async_graphql::Response, Option<Arc<str>>) {
        let schema = Schema::new(ProbeQuery, EmptyMutation, ProbeSubscription);
        let rendered = Rendered::default();
        let mut request = async_graphql::Request::new(query).data(AuthState::Authenticated(reader));
        if let Some(shape) = shape {
            request = request.data(shape).data(rendered.clone());
        }
        let response = schema.execute_stream(request).next().await.expect("one response");
        (response, rendered.take())
    }

    #[tokio::test]
    async fn a_shared_item_renders_once_for_every_reader() {
        let shape = RenderCache::global().shape(&[&Uuid::now_v7().to_string()]);
        let (first, json) = render("subscription { probe { text } }", reader("ann"), Some(shape)).await;
        assert!(first.errors.is_empty(), "{:?}", first.errors);
        assert_eq!(json.as_deref(), Some(r#"{"text":"the same for everyone"}"#));
        let (second, cached) = render("subscription { probe { text } }", reader("bob"), Some(shape)).await;
        assert!(second.errors.is_empty(), "{:?}", second.errors);
        assert_eq!(cached, json, "the second reader gets the first one's JSON");
    }

    #[tokio::test]
    async fn a_shared_item_that_asks_who_is_reading_is_refused_not_cached() {
        let query = "subscription { probe { text viewer } }";
        let shape = RenderCache::global().shape(&[&Uuid::now_v7().to_string()]);
        for name in ["ann", "bob"] {
            let (response, json) = render(query, reader(name), Some(shape)).await;
            assert!(!response.errors.is_empty(), "{name}: a caller-dependent field went through the shared path");
            assert_eq!(json, None, "{name}: nothing rendered for the connection");
            let body = serde_json::to_string(&response).unwrap_or_default();
            assert!(!body.contains("\"ann\"") && !body.contains("\"bob\""), "{name} sees a reader's answer: {body}");
        }
        assert_eq!(RenderCache::global().lookup(PROBE, shape, "probe"), None, "nothing cached");
        // Without a shape (no cache) the rule holds all the same, so every path fails alike.
        let (response, _) = render(query, reader("cy"), None).await;
        assert!(!response.errors.is_empty(), "a shared item read its caller outside the cache");
        assert!(!serde_json::to_string(&response).unwrap_or_default().contains("\"cy\""));
    }
}
