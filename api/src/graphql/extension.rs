//! Counts and times every GraphQL operation by type and root field (bounded by the schema,
//! unlike client-chosen operation names). A subscription counts once, not once per event.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::{Response, ServerResult, Variables};

use super::shared::Inject;
use crate::metrics as m;

pub struct OperationMetrics;

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationMetricsExt::default())
    }
}

#[derive(Default)]
struct OperationMetricsExt {
    shape: Mutex<Option<(&'static str, String)>>,
    /// A subscription runs `execute` once per event: it is counted (and timed) once, by its
    /// first response.
    recorded: AtomicBool,
}

#[async_trait::async_trait]
impl Extension for OperationMetricsExt {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if let Ok(mut shape) = self.shape.lock() {
            *shape = operation_shape(&doc);
        }
        Ok(doc)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let started = Instant::now();
        let response = next.run(ctx, operation_name).await;
        // Rendering one item of a detached subscription, counted when it was detached.
        if ctx.data_opt::<Inject>().is_some() || self.recorded.swap(true, Ordering::Relaxed) {
            return response;
        }
        let (op_type, name) =
            self.shape.lock().ok().and_then(|s| s.clone()).unwrap_or(("unknown", "unknown".to_owned()));
        let outcome = if response.errors.is_empty() { "ok" } else { "error" };
        m::record_graphql(op_type, name, outcome, started.elapsed());
        response
    }
}

/// The type and first root field of the document's (first) operation.
fn operation_shape(doc: &ExecutableDocument) -> Option<(&'static str, String)> {
    let (_, op) = doc.operations.iter().next()?;
    let op_type = match op.node.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let field = op.node.selection_set.node.items.iter().find_map(|sel| match &sel.node {
        Selection::Field(f) => Some(f.node.name.node.to_string()),
        _ => None,
    });
    Some((op_type, field.unwrap_or_else(|| "fragment".to_owned())))
}
