//! `/healthz` (the process answers) and `/readyz` (its dependencies answer too).

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};

use crate::error::AppError;
use crate::service::Services;

#[handler]
pub fn healthz() -> &'static str {
    "ok"
}

#[handler]
pub async fn readyz(services: Data<&Services>) -> Response {
    // While the database is known down the ping fails at once (see `storage/connect.rs`);
    // the error is said the way clients are told, without driver details.
    let database = match services.ctx.db.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => match AppError::from(e) {
            AppError::Internal(e) => format!("error: {e}"),
            other => format!("error: {other}"),
        },
    };
    let presence = match services.live.presence_store().ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let ready = database == "ok" && presence == "ok";
    let body = Json(serde_json::json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": database,
        "eventBus": services.ctx.bus.fanout_name(),
        "presence": services.live.presence_store().name(),
        "presenceStore": presence,
    }));
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    body.with_status(status).into_response()
}
