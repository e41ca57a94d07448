//! The admin console's HTTP side, served at `/admin`: cookies, CSRF checks, forms and
//! redirects. Pages are rendered by `syncchat-admin-ui`; rules live in `service::admin`.
//!
//! A console session is an HttpOnly, SameSite=Strict cookie holding a session token. Every
//! form carries a CSRF token: for the sign-in form a random value that must match a cookie
//! (double submit), for signed-in forms a value derived from the session token.

use poem::http::{StatusCode, header};
use poem::web::{Data, Form, RemoteAddr};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::error::AppError;
use crate::service::admin::{csrf_for_session, tokens_match};
use crate::service::{Caller, Services};

const SESSION_COOKIE: &str = "syncchat_admin";
const CSRF_COOKIE: &str = "syncchat_admin_csrf";

/// This node's name for the pages.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node_id: String,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(name: &str, value: &str, max_age_secs: i64) -> String {
    format!("{name}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}")
}

fn html(status: StatusCode) -> poem::ResponseBuilder {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
}

/// The sign-in page with a fresh double-submit CSRF token.
fn login_page(status: StatusCode, error: Option<String>) -> Response {
    let csrf = hex::encode(rand::random::<[u8; 16]>());
    let body = syncchat_admin_ui::render_login_page(env!("CARGO_PKG_VERSION"), error, &csrf);
    html(status).header(header::SET_COOKIE, set_cookie(CSRF_COOKIE, &csrf, 3600)).body(body)
}

async fn signed_in(req: &Request, services: &Services) -> Option<(Caller, String)> {
    let token = cookie(req, SESSION_COOKIE)?;
    let caller = services.admin_session(&token).await.ok()?;
    Some((caller, token))
}

#[handler]
pub async fn console(req: &Request, services: Data<&Services>, node: Data<&NodeInfo>) -> Response {
    let Some((caller, token)) = signed_in(req, &services).await else {
        return login_page(StatusCode::OK, None);
    };
    match services.admin_overview(&caller).await {
        Ok(o) => {
            let data = syncchat_admin_ui::OverviewData {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                node_id: node.node_id.clone(),
                users: o.users,
                conversations: o.conversations,
                messages: o.messages,
                online_users: o.online_users,
                presence_scope: o.presence_scope.to_owned(),
            };
            let body = syncchat_admin_ui::render_overview_page(data, &csrf_for_session(&token));
            html(StatusCode::OK).body(body)
        }
        Err(e) => {
            e.log_if_internal();
            login_page(
                StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                Some(e.to_string()),
            )
        }
    }
}

#[handler]
pub async fn login(req: &Request, addr: &RemoteAddr, form: Form<LoginForm>, services: Data<&Services>) -> Response {
    let expected = cookie(req, CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !tokens_match(&expected, &form.csrf) {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("The form expired or did not come from this page: try again.".into()),
        );
    }
    let ip = addr.as_socket_addr().map(|a| a.ip());
    match services.admin_login(&form.login, form.password.clone(), ip).await {
        Ok(token) => Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, "/admin")
            .header(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token, 12 * 3600))
            .header(header::SET_COOKIE, set_cookie(CSRF_COOKIE, "", 0))
            .finish(),
        Err(e) => {
            e.log_if_internal();
            let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = match e {
                AppError::Internal(_) => "Something went wrong; try again.".to_owned(),
                other => other.to_string(),
            };
            login_page(status, Some(message))
        }
    }
}

#[handler]
pub async fn logout(req: &Request, form: Form<CsrfForm>, services: Data<&Services>) -> Response {
    let Some((caller, token)) = signed_in(req, &services).await else {
        return login_page(StatusCode::UNAUTHORIZED, None);
    };
    if !tokens_match(&csrf_for_session(&token), &form.csrf) {
        return html(StatusCode::FORBIDDEN).body("The form did not come from the console.");
    }
    if let Err(e) = services.admin_logout(&caller).await {
        e.log_if_internal();
    }
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/admin")
        .header(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0))
        .finish()
}
