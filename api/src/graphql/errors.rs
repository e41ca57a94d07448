//! AppError → GraphQL error with `extensions.code` (and `field`, `retryAfter`).

use async_graphql::ErrorExtensions;

use crate::error::{AppError, AppResult};

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        self.log_if_internal();
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| {
            ext.set("code", self.code().as_str());
            if let Some(field) = self.field() {
                ext.set("field", field);
            }
            if let Some(secs) = self.retry_after_secs() {
                ext.set("retryAfter", secs);
            }
        })
    }
}

/// `.gql()` turns a service result into a resolver result.
pub trait GqlResult<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResult<T> for AppResult<T> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}
