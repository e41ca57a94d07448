use std::sync::Arc;

use poem_openapi::OpenApi;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::{ApiTags, BearerAuth, ProblemResponse, svc};
use crate::service::Services;
use crate::service::views::PresenceView;

pub struct PresenceApi {
    pub services: Option<Arc<Services>>,
}

#[OpenApi(tag = "ApiTags::Users")]
impl PresenceApi {
    /// Whether each user is online now (on any node), and when they were last seen.
    /// `userIds` is a comma-separated list of up to 200 ids. Only you and the people you
    /// share a conversation with are answered for (others are left out, as unknown ids are),
    /// unless the server shows everyone's (`SYNCCHAT_PRESENCE_VISIBILITY=all`).
    #[oai(path = "/presence", method = "get", operation_id = "presence")]
    async fn presence(
        &self,
        auth: BearerAuth,
        #[oai(
            name = "userIds",
            validator(
                pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(,[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}){0,199}$"
            )
        )]
        user_ids: Query<String>,
    ) -> Result<Json<Vec<PresenceView>>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let ids = user_ids
            .0
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| Uuid::try_parse(s.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| crate::error::AppError::bad_input("userIds", "userIds must be comma-separated UUIDs"))?;
        Ok(Json(services.live.presence(&caller, ids).await?))
    }
}
