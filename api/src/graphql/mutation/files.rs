use async_graphql::{Context, Object, Result};

use crate::graphql::{GqlResult, caller, services};
use crate::service::UploadTicket;

#[derive(Default)]
pub struct FileMutation;

#[Object]
impl FileMutation {
    /// A URL, valid 10 minutes, that stores one file: `PUT` its bytes there (no bearer token
    /// needed). The answer is the attachment, whose `id` goes in `sendMessage`'s
    /// `attachmentIds`. The type is detected from the bytes; the size limit applies. A second
    /// `PUT` to the same URL is refused (409 `CONFLICT`).
    async fn create_upload_url(&self, ctx: &Context<'_>, file_name: String) -> Result<UploadTicket> {
        let caller = caller(ctx).gql()?;
        services(ctx).files.upload_ticket(&caller, &file_name).gql()
    }
}
