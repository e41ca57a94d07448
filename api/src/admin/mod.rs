//! The admin console's HTTP side, served at `/admin`: cookies, CSRF checks, forms and
//! redirects. Pages are rendered by `syncchat-admin-ui`; rules live in `service::admin`.
//!
//! A console session is an HttpOnly, SameSite=Strict cookie holding a session token. Every
//! form carries a CSRF token: for the sign-in form a random value that must match a cookie
//! (double submit), for signed-in forms a value derived from the session token. Pages are
//! served with a strict Content-Security-Policy: the only script is the console's own.

mod figures;
mod pages;
mod planning;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use poem::http::{StatusCode, header};
use poem::web::{Data, Form, RemoteAddr};
use poem::{Request, Response, Route, handler};
use serde::Deserialize;
use syncchat_realtime::SnapshotStore;

use crate::error::AppError;
use crate::service::admin::{CONSOLE_SESSION_HOURS, csrf_for_session, tokens_match};
use crate::service::{Caller, Services};

const SESSION_COOKIE: &str = "syncchat_admin";
const CSRF_COOKIE: &str = "syncchat_admin_csrf";
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// What the console needs besides the services: this node's name, where the nodes' stats
/// snapshots are, and the planning file.
#[derive(Clone)]
pub struct Console {
    pub node_id: String,
    pub snapshots: Arc<dyn SnapshotStore>,
    pub stats_interval: Duration,
    pub planning_file: PathBuf,
    /// The last hour's sparkline points and when they were read (shared by every tab).
    pub history: Arc<std::sync::Mutex<Option<CachedHistory>>>,
}

/// Sparkline points (oldest first, `None` where no node reported) and when they were read.
pub type CachedHistory = (std::time::Instant, Vec<Option<syncchat_admin_ui::Figures>>);

/// Every console route, to nest at `/admin`.
pub fn routes() -> Route {
    use poem::{get, post};
    Route::new()
        .at("/", get(pages::overview))
        .at("/login", post(login))
        .at("/logout", post(logout))
        .at("/live/overview", get(pages::overview_fragment))
        .at("/capacity", get(pages::capacity))
        .at("/capacity/results", get(pages::capacity_fragment))
        .at("/cost", get(pages::cost))
        .at("/cost/results", get(pages::cost_fragment))
        .at("/moderation", get(pages::moderation))
        .at("/moderation/users/:id/:action", post(pages::set_disabled))
        .at("/moderation/messages/delete", post(pages::delete_message))
        .at("/business", get(pages::business))
        .at("/integrations", get(pages::integrations))
        .at("/integrations/apps", post(pages::create_app))
        .at("/integrations/apps/:id/keys", post(pages::create_app_key))
        .at("/integrations/apps/:id/keys/:key_id/revoke", post(pages::revoke_app_key))
        .at("/assets/console.css", get(asset_css))
        .at("/assets/console.js", get(asset_js))
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
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
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

fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}")
}

/// Whether the browser reached us over HTTPS (directly or through a proxy that says so):
/// then cookies are marked `Secure`.
fn over_https(req: &Request) -> bool {
    req.uri().scheme_str() == Some("https")
        || req.header("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

fn html(status: StatusCode) -> poem::ResponseBuilder {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("content-security-policy", CSP)
        .header("x-frame-options", "DENY")
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "same-origin")
}

fn status_of(e: &AppError) -> StatusCode {
    StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The sign-in page with a fresh double-submit CSRF token.
fn login_page(req: &Request, status: StatusCode, error: Option<String>) -> Response {
    let csrf = hex::encode(rand::random::<[u8; 16]>());
    let body = syncchat_admin_ui::render_login_page(env!("CARGO_PKG_VERSION"), error, &csrf);
    html(status).header(header::SET_COOKIE, set_cookie(CSRF_COOKIE, &csrf, 3600, over_https(req))).body(body)
}

/// A signed-in admin: the caller, and the page chrome (with the CSRF token for forms).
pub(crate) struct Admin {
    caller: Caller,
    token: String,
    chrome: syncchat_admin_ui::Chrome,
}

impl Admin {
    fn csrf_ok(&self, submitted: &str) -> bool {
        tokens_match(&csrf_for_session(&self.token), submitted)
    }
}

async fn signed_in(req: &Request, services: &Services, console: &Console) -> Option<Admin> {
    let token = cookie(req, SESSION_COOKIE)?;
    let caller = services.admin.session(&token).await.ok()?;
    let chrome = syncchat_admin_ui::Chrome {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        node_id: console.node_id.clone(),
        admin: caller.username.clone(),
        csrf: csrf_for_session(&token),
    };
    Some(Admin { caller, token, chrome })
}

/// For pages: the admin, or the sign-in page to answer with. Anyone else never gets data.
async fn page_admin(req: &Request, services: &Services, console: &Console) -> Result<Admin, Response> {
    signed_in(req, services, console).await.ok_or_else(|| login_page(req, StatusCode::OK, None))
}

/// For fragments and form posts: the admin, or an empty 401 (the script reloads the page,
/// which shows the sign-in form).
async fn api_admin(req: &Request, services: &Services, console: &Console) -> Result<Admin, Response> {
    signed_in(req, services, console).await.ok_or_else(|| html(StatusCode::UNAUTHORIZED).body(""))
}

/// A page that failed: the error, with its status, inside the console.
fn error_page(e: &AppError) -> Response {
    e.log_if_internal();
    let message = match e {
        AppError::Internal(_) => "Something went wrong; try again.".to_owned(),
        other => other.to_string(),
    };
    html(status_of(e)).body(format!("<!DOCTYPE html><p role=\"alert\">{}</p>", escape(&message)))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn redirect(location: &str) -> Response {
    Response::builder().status(StatusCode::SEE_OTHER).header(header::LOCATION, location).finish()
}

#[handler]
async fn asset_css() -> Response {
    asset("text/css; charset=utf-8", syncchat_admin_ui::CONSOLE_CSS)
}

#[handler]
async fn asset_js() -> Response {
    asset("text/javascript; charset=utf-8", syncchat_admin_ui::CONSOLE_JS)
}

fn asset(content_type: &str, body: &'static str) -> Response {
    Response::builder()
        .content_type(content_type)
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .header("x-content-type-options", "nosniff")
        .body(body)
}

#[handler]
async fn login(req: &Request, addr: &RemoteAddr, form: Form<LoginForm>, services: Data<&Services>) -> Response {
    let expected = cookie(req, CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !tokens_match(&expected, &form.csrf) {
        return login_page(
            req,
            StatusCode::FORBIDDEN,
            Some("The form expired or did not come from this page: try again.".into()),
        );
    }
    let ip = addr.as_socket_addr().map(|a| a.ip());
    match services.admin.login(&form.login, form.password.clone(), ip).await {
        Ok(token) => Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, "/admin")
            .header(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &token, CONSOLE_SESSION_HOURS * 3600, over_https(req)),
            )
            .header(header::SET_COOKIE, set_cookie(CSRF_COOKIE, "", 0, over_https(req)))
            .finish(),
        Err(e) => {
            e.log_if_internal();
            let message = match e {
                AppError::Internal(_) => "Something went wrong; try again.".to_owned(),
                ref other => other.to_string(),
            };
            let mut page = login_page(req, status_of(&e), Some(message));
            // Too many attempts: say when the next one can succeed, as the API does.
            if let Some(secs) = e.retry_after_secs() {
                page.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            page
        }
    }
}

#[handler]
async fn logout(req: &Request, form: Form<CsrfForm>, services: Data<&Services>, console: Data<&Console>) -> Response {
    let admin = match api_admin(req, &services, &console).await {
        Ok(admin) => admin,
        Err(refused) => return refused,
    };
    if !admin.csrf_ok(&form.csrf) {
        return html(StatusCode::FORBIDDEN).body("The form did not come from the console.");
    }
    if let Err(e) = services.admin.logout(&admin.caller).await {
        e.log_if_internal();
    }
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/admin")
        .header(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, over_https(req)))
        .finish()
}
