//! Detached subscriptions (see [`crate::graphql::shared`]): once a subscription with a
//! single root field is set up, its items leave async-graphql's executor. Each item comes
//! from the render cache when a subscriber of the same shape rendered it already, otherwise
//! from one run of the client's document with the item injected. What stays per subscriber
//! is little more than the item stream.

use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::task::Poll;

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};

use super::frames::FrameWriter;
use super::operation::{Frame, Scope, SubscriptionGauge};
use crate::graphql::AppSchema;
use crate::graphql::shared::{Detach, DetachedStream, Inject, RenderCache, Shape};
use crate::metrics as m;

/// A subscription that may run outside the executor.
pub(super) struct Detached {
    pub(super) template: Arc<Template>,
    /// The root field's name, for the metrics.
    pub(super) field: String,
    pub(super) detach: Detach,
}

/// The client's document, operation name and variables, to render a detached item with, and
/// the response key its items go under. Subscriptions of one shape share one.
#[derive(PartialEq)]
pub(super) struct Template {
    pub(super) query: String,
    pub(super) operation_name: Option<String>,
    pub(super) variables: async_graphql::Variables,
    pub(super) response_key: String,
}

type Templates = std::collections::HashMap<u64, Weak<Template>>;

/// Templates in use, by shape.
static TEMPLATES: LazyLock<Mutex<Templates>> = LazyLock::new(Default::default);

impl Template {
    /// The template of this shape in use already, if it is this one; else this one.
    pub(super) fn shared(shape: Shape, template: Template) -> Arc<Template> {
        let mut templates = TEMPLATES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = templates.get(&shape.0).and_then(Weak::upgrade)
            && *existing == template
        {
            return existing;
        }
        // Forget the shapes nobody uses any more, now and then.
        if templates.len() >= 1024 && templates.len().is_power_of_two() {
            templates.retain(|_, t| t.strong_count() > 0);
        }
        let template = Arc::new(template);
        templates.insert(shape.0, Arc::downgrade(&template));
        template
    }

    fn request(&self) -> async_graphql::Request {
        let mut request = async_graphql::Request::new(self.query.clone()).variables(self.variables.clone());
        if let Some(name) = &self.operation_name {
            request = request.operation_name(name.clone());
        }
        request
    }
}

/// The rest of a detached subscription, polled by the connection's task.
pub(super) struct DetachedOperation {
    /// Whether a frame of this operation has gone out yet.
    delivered: bool,
    items: DetachedStream,
    /// The run rendering the current item, on a cache miss.
    rendering: Option<BoxStream<'static, async_graphql::Response>>,
    schema: AppSchema,
    frames: FrameWriter,
    scope: Scope,
    template: Arc<Template>,
    done: bool,
    _gauge: SubscriptionGauge,
}

impl DetachedOperation {
    /// The operation from its first item on: `frames`, `scope` and `gauge` move over from
    /// the run that set it up.
    pub(super) fn new(
        items: DetachedStream,
        template: Arc<Template>,
        schema: AppSchema,
        frames: FrameWriter,
        scope: Scope,
        gauge: SubscriptionGauge,
    ) -> Self {
        DetachedOperation {
            delivered: false,
            items,
            rendering: None,
            schema,
            frames,
            scope,
            template,
            done: false,
            _gauge: gauge,
        }
    }
}

impl Stream for DetachedOperation {
    type Item = Frame;

    fn poll_next(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Option<Frame>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(rendering) = &mut this.rendering {
                let response = std::task::ready!(rendering.poll_next_unpin(cx));
                this.rendering = None;
                let Some(response) = response else { continue };
                // As when the executor runs it: an error before anything else is `error`.
                if !this.delivered
                    && let Some(text) = this.frames.refusal(&response)
                {
                    this.done = true;
                    return Poll::Ready(Some(Frame::Send { text, last: true }));
                }
                this.delivered = true;
                let text = this.frames.data(response, this.scope.rendered.take());
                return Poll::Ready(Some(Frame::Send { text, last: false }));
            }
            let Some(item) = std::task::ready!(this.items.poll_next_unpin(cx)) else {
                this.done = true;
                return Poll::Ready(Some(Frame::Send { text: this.frames.complete(), last: true }));
            };
            let key = &this.template.response_key;
            let cached = item.key.and_then(|item| RenderCache::global().lookup(item, this.scope.shape, key));
            if let Some(json) = cached {
                m::render_cache("hit");
                this.delivered = true;
                return Poll::Ready(Some(Frame::Send { text: this.frames.item(key, &json), last: false }));
            }
            let request = this.scope.attach(this.template.request()).data(Inject::new(item));
            this.rendering = Some(this.schema.execute_stream(request));
        }
    }
}
