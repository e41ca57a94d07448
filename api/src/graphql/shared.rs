//! Subscription items rendered once and shared: when a message goes to a hundred subscribers
//! who asked for the same fields, its JSON is made by the first and reused by the rest.
//!
//! A subscription's *shape* is its document, operation name and variables (hashed with this
//! process's random keys at subscribe time). What an item renders to depends only on the item
//! and the shape: no field of a chat item depends on who is reading it. So [`Shared`] looks up
//! `(item, version, shape)` in the [`RenderCache`]; on a miss it resolves the selection as
//! usual and stores the JSON. Either way it hands the JSON to the connection through the
//! operation's [`Rendered`] slot, which writes it into the frame as is.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};
use uuid::Uuid;

use crate::metrics as m;

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

/// A subscription item that renders through the [`RenderCache`] when it has a key and the
/// operation a shape; otherwise exactly like `T`.
pub struct Shared<T> {
    pub key: Option<ItemKey>,
    pub value: T,
}

impl<T> Shared<T> {
    pub fn new(key: Option<ItemKey>, value: T) -> Self {
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

impl<T: OutputType> OutputType for Shared<T> {
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
        let (Some(item), Some(shape), Some(slot)) = (self.key, ctx.data_opt::<Shape>(), ctx.data_opt::<Rendered>())
        else {
            return self.value.resolve(ctx, field).await;
        };
        let cache = RenderCache::global();
        // A subscription may have several root fields (aliases): each renders on its own.
        let mut h = std::hash::DefaultHasher::new();
        (shape.0, field.node.response_key().node.as_str()).hash(&mut h);
        let key = Key { item, shape: h.finish() };
        if let Some(json) = cache.get(&key) {
            m::render_cache("hit");
            slot.put(json);
            return Ok(Value::Null);
        }
        let value = self.value.resolve(ctx, field).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
