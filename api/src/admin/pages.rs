//! The console's pages, fragments and moderation forms.

use std::collections::HashMap;

use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;
use syncchat_admin_ui as ui;
use uuid::Uuid;

use super::figures::{self, Aggregated, aggregate};
use super::{Admin, Console, api_admin, error_page, html, page_admin, planning, redirect};
use crate::error::AppError;
use crate::service::Services;
use crate::service::apps::AppInput;
use crate::service::scopes::Scope;
use crate::stats;

type Params = Query<HashMap<String, String>>;

/// The nodes' figures, aggregated: current ones from their latest snapshots on every call,
/// the hour's history (for sparklines) at most every [`HISTORY_TTL`], from a cache.
async fn cluster(console: &Console) -> (Aggregated, bool) {
    let now = chrono::Utc::now().timestamp();
    let interval = console.stats_interval.as_secs().max(1) as i64;
    let cached = console.history.lock().ok().and_then(|h| h.clone()).filter(|(at, _)| at.elapsed() < HISTORY_TTL);
    // Enough recent snapshots for the current window, or the whole hour when refreshing it.
    let limit = match cached {
        Some(_) => (figures::CURRENT_WINDOW_SECS / interval + 2) as usize,
        None => syncchat_realtime::STATS_HISTORY,
    };
    let nodes = match console.snapshots.nodes_since(now - 3600, limit).await {
        Ok(nodes) => stats::decode(nodes),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the nodes' stats snapshots");
            Vec::new()
        }
    };
    // A node is current while its last report is at most three intervals old.
    let stale = (interval * 3).max(15);
    let mut agg = aggregate(&nodes, now, now - stale);
    match cached {
        Some((_, history)) => agg.history = history,
        None => {
            if let Ok(mut slot) = console.history.lock() {
                *slot = Some((std::time::Instant::now(), agg.history.clone()));
            }
        }
    }
    (agg, console.snapshots.scope() == "cluster")
}

/// How long the sparklines' hour of history is reused before being read again.
const HISTORY_TTL: std::time::Duration = std::time::Duration::from_secs(30);

async fn live_overview(services: &Services, admin: &Admin, console: &Console) -> Result<ui::LiveOverview, AppError> {
    let counts = services.admin.overview(&admin.caller).await?;
    let (agg, cluster_wide) = cluster(console).await;
    let planned = planning::load(&console.planning_file);
    Ok(ui::LiveOverview {
        cluster_wide,
        capacity: planned.capacity,
        cluster: agg.cluster,
        nodes: agg.nodes,
        history: agg.history,
        users: counts.users,
        conversations: counts.conversations,
        messages: counts.messages,
        sample_secs: console.stats_interval.as_secs(),
        generated_at: chrono::Utc::now().format("%H:%M:%S UTC").to_string(),
    })
}

/// The overview as a page, or (`fragment`) as the live panel alone.
async fn overview_response(req: &Request, services: &Services, console: &Console, fragment: bool) -> Response {
    let admin =
        if fragment { api_admin(req, services, console).await } else { page_admin(req, services, console).await };
    let admin = match admin {
        Ok(admin) => admin,
        Err(refused) => return refused,
    };
    match live_overview(services, &admin, console).await {
        Ok(live) if fragment => html(StatusCode::OK).body(ui::render_overview_fragment(&live)),
        Ok(live) => html(StatusCode::OK).body(ui::render_overview_page(&admin.chrome, &live)),
        Err(e) => error_page(&e),
    }
}

#[handler]
pub async fn overview(req: &Request, services: Data<&Services>, console: Data<&Console>) -> Response {
    overview_response(req, &services, &console, false).await
}

#[handler]
pub async fn overview_fragment(req: &Request, services: Data<&Services>, console: Data<&Console>) -> Response {
    overview_response(req, &services, &console, true).await
}

/// The planning pages' data: inputs from the query over the file's figures and the
/// deployment as it runs now.
async fn planning_data(
    services: &Services,
    admin: &Admin,
    console: &Console,
    q: &HashMap<String, String>,
) -> Result<ui::Planning, AppError> {
    let counts = services.admin.overview(&admin.caller).await?;
    let planned = planning::load(&console.planning_file);
    if let Some(problem) = planned.problem {
        tracing::warn!(problem, "the console's planning file is not usable; using defaults");
    }
    let (agg, cluster_wide) = cluster(console).await;
    Ok(ui::Planning {
        inputs: planning::inputs(q, counts.users)?,
        deployment: ui::Deployment {
            registered_users: counts.users,
            nodes_reporting: agg.nodes.len() as u64,
            redis: cluster_wide,
            connections_now: agg.cluster.connections,
            messages_per_sec_now: agg.cluster.messages_per_sec,
        },
        capacity: planned.capacity,
        capacity_source: planned.capacity_source,
        prices: planning::prices(q, planned.prices)?,
        prices_source: planned.prices_source,
    })
}

async fn planning_response(
    req: &Request,
    services: &Services,
    console: &Console,
    q: &HashMap<String, String>,
    fragment: bool,
    render: fn(&ui::Chrome, &ui::Planning) -> String,
    render_fragment: fn(&ui::Planning) -> String,
) -> Response {
    let admin =
        match if fragment { api_admin(req, services, console).await } else { page_admin(req, services, console).await }
        {
            Ok(admin) => admin,
            Err(refused) => return refused,
        };
    match planning_data(services, &admin, console, q).await {
        Ok(p) if fragment => html(StatusCode::OK).body(render_fragment(&p)),
        Ok(p) => html(StatusCode::OK).body(render(&admin.chrome, &p)),
        Err(e) => error_page(&e),
    }
}

#[handler]
pub async fn capacity(req: &Request, q: Params, services: Data<&Services>, console: Data<&Console>) -> Response {
    planning_response(req, &services, &console, &q, false, ui::render_capacity_page, ui::render_capacity_results).await
}

#[handler]
pub async fn capacity_fragment(
    req: &Request,
    q: Params,
    services: Data<&Services>,
    console: Data<&Console>,
) -> Response {
    planning_response(req, &services, &console, &q, true, ui::render_capacity_page, ui::render_capacity_results).await
}

#[handler]
pub async fn cost(req: &Request, q: Params, services: Data<&Services>, console: Data<&Console>) -> Response {
    planning_response(req, &services, &console, &q, false, ui::render_cost_page, ui::render_cost_results).await
}

#[handler]
pub async fn cost_fragment(req: &Request, q: Params, services: Data<&Services>, console: Data<&Console>) -> Response {
    planning_response(req, &services, &console, &q, true, ui::render_cost_page, ui::render_cost_results).await
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[handler]
pub async fn moderation(req: &Request, q: Params, services: Data<&Services>, console: Data<&Console>) -> Response {
    let admin = match page_admin(req, &services, &console).await {
        Ok(admin) => admin,
        Err(login) => return login,
    };
    let query = q.get("q").cloned().unwrap_or_default();
    let found = services.admin.find_users(&admin.caller, &query, 50).await;
    let audit = services.admin.audit_log(&admin.caller, 50).await;
    let (users, error) = match found {
        Ok(users) => (users, q.get("error").cloned()),
        Err(e @ AppError::BadUserInput { .. }) => (Vec::new(), Some(e.to_string())),
        Err(e) => return error_page(&e),
    };
    let audit = match audit {
        Ok(audit) => audit,
        Err(e) => return error_page(&e),
    };
    let page = ui::Moderation {
        query,
        users: users
            .into_iter()
            .map(|m| ui::UserRow {
                id: m.user.id.to_string(),
                username: m.user.username,
                email: m.user.email,
                display_name: m.user.display_name,
                role: m.user.role,
                disabled: m.user.disabled,
                online: m.online,
                conversations: m.conversations,
                last_seen: m.user.last_seen_at.map(when),
                created_at: when(m.user.created_at),
            })
            .collect(),
        audit: audit
            .into_iter()
            .map(|a| ui::AuditRow {
                at: a.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                actor: a.actor_username,
                action: a.action,
                target: format!("{} {}", a.target_kind, a.target_id),
                detail: a.detail.unwrap_or_default(),
            })
            .collect(),
        notice: q.get("notice").cloned(),
        error,
    };
    html(StatusCode::OK).body(ui::render_moderation_page(&admin.chrome, &page))
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    message_id: String,
    #[serde(default)]
    reason: String,
}

/// Back to the moderation page with a notice or an error.
fn back(query: &str, outcome: Result<String, String>) -> Response {
    let mut url = url_encode_pairs(&[("q", query)]);
    match outcome {
        Ok(notice) => url.push_str(&format!("&{}", url_encode_pairs(&[("notice", &notice)]))),
        Err(error) => url.push_str(&format!("&{}", url_encode_pairs(&[("error", &error)]))),
    }
    redirect(&format!("/admin/moderation?{url}"))
}

fn url_encode_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let encoded: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                    b' ' => "+".to_owned(),
                    other => format!("%{other:02X}"),
                })
                .collect();
            format!("{k}={encoded}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Checks the session and the form's CSRF token for a moderation post.
async fn form_admin(req: &Request, services: &Services, console: &Console, csrf: &str) -> Result<Admin, Response> {
    let admin = api_admin(req, services, console).await?;
    if !admin.csrf_ok(csrf) {
        return Err(html(StatusCode::FORBIDDEN).body("The form did not come from the console."));
    }
    Ok(admin)
}

#[handler]
pub async fn set_disabled(
    req: &Request,
    Path((id, action)): Path<(String, String)>,
    form: Form<ActionForm>,
    services: Data<&Services>,
    console: Data<&Console>,
) -> Response {
    let admin = match form_admin(req, &services, &console, &form.csrf).await {
        Ok(admin) => admin,
        Err(refused) => return refused,
    };
    let disabled = match action.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return html(StatusCode::NOT_FOUND).body("No such action."),
    };
    let Ok(user_id) = Uuid::parse_str(&id) else {
        return back(&form.q, Err("No such user.".into()));
    };
    let outcome = match services.admin.set_disabled(&admin.caller, user_id, disabled).await {
        Ok(true) if disabled => Ok("User disabled: signed out everywhere, live connections closed.".to_owned()),
        Ok(true) => Ok("User enabled.".to_owned()),
        Ok(false) => Ok(format!("Nothing to do: the user was already {action}d.")),
        Err(e) => {
            e.log_if_internal();
            Err(e.to_string())
        }
    };
    back(&form.q, outcome)
}

#[handler]
pub async fn delete_message(
    req: &Request,
    form: Form<ActionForm>,
    services: Data<&Services>,
    console: Data<&Console>,
) -> Response {
    let admin = match form_admin(req, &services, &console, &form.csrf).await {
        Ok(admin) => admin,
        Err(refused) => return refused,
    };
    let Ok(message_id) = Uuid::parse_str(form.message_id.trim()) else {
        return back(&form.q, Err("message_id: not a message id (a UUID).".into()));
    };
    let outcome = match services.admin.delete_message(&admin.caller, message_id, &form.reason).await {
        Ok((_, true)) => Ok(format!("Message {message_id} deleted.")),
        Ok((_, false)) => Ok(format!("Message {message_id} was already deleted.")),
        Err(e) => {
            e.log_if_internal();
            Err(e.to_string())
        }
    };
    back(&form.q, outcome)
}

#[handler]
pub async fn business(req: &Request, services: Data<&Services>, console: Data<&Console>) -> Response {
    let admin = match page_admin(req, &services, &console).await {
        Ok(admin) => admin,
        Err(login) => return login,
    };
    match services.admin.business(&admin.caller, 14).await {
        Ok(b) => {
            let page = ui::Business {
                users: b.users,
                daily_active: b.daily_active,
                monthly_active: b.monthly_active,
                messages: b.messages,
                conversations: b.conversations,
                retention_7d: b.retention_7d,
                cohort_size: b.cohort_size,
                days: b
                    .days
                    .into_iter()
                    .map(|(day, registrations, messages, conversations)| ui::Day {
                        label: day.format("%m-%d").to_string(),
                        registrations,
                        messages,
                        conversations,
                    })
                    .collect(),
            };
            html(StatusCode::OK).body(ui::render_business_page(&admin.chrome, &page))
        }
        Err(e) => error_page(&e),
    }
}

#[handler]
pub async fn integrations(req: &Request, services: Data<&Services>, console: Data<&Console>) -> Response {
    let admin = match page_admin(req, &services, &console).await {
        Ok(admin) => admin,
        Err(login) => return login,
    };
    let q = req.params::<HashMap<String, String>>().unwrap_or_default();
    let outcome = Shown { notice: q.get("notice").cloned(), error: q.get("error").cloned(), new_secret: None };
    integrations_page(&admin, &services, outcome).await
}

/// What the Integrations page shows above its tables after a form.
#[derive(Default)]
struct Shown {
    notice: Option<String>,
    error: Option<String>,
    new_secret: Option<(String, String)>,
}

async fn integrations_page(admin: &Admin, services: &Services, shown: Shown) -> Response {
    let when = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d %H:%M UTC").to_string();
    let (apps, endpoints) =
        match (services.admin.apps(&admin.caller).await, services.webhooks.overview(&admin.caller).await) {
            (Ok(apps), Ok(endpoints)) => (apps, endpoints),
            (Err(e), _) | (_, Err(e)) => return error_page(&e),
        };
    let now = chrono::Utc::now();
    let page = ui::Integrations {
        apps: apps
            .into_iter()
            .map(|(app, bot, keys)| ui::AppRow {
                id: app.id.to_string(),
                name: app.name,
                bot,
                scopes: app.scopes.split_whitespace().map(str::to_owned).collect(),
                keys: keys
                    .into_iter()
                    .map(|k| ui::KeyRow {
                        id: k.id.to_string(),
                        prefix: k.prefix,
                        created_at: when(k.created_at),
                        last_used: k.last_used_at.map(when),
                        revoked: k.revoked_at.is_some(),
                    })
                    .collect(),
            })
            .collect(),
        endpoints: endpoints
            .into_iter()
            .map(|e| ui::EndpointRow {
                id: e.endpoint.id.to_string(),
                app: e.app_name,
                url: e.endpoint.url,
                events: e.endpoint.events.len(),
                enabled: e.endpoint.enabled,
                disabled_reason: e.endpoint.disabled_reason,
                success_24h: (e.attempts_24h > 0).then(|| e.succeeded_24h as f64 / e.attempts_24h as f64),
                attempts_24h: e.attempts_24h,
                pending: e.pending,
                lag_secs: e.oldest_pending.map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0),
                recent_failures: e
                    .recent_failures
                    .into_iter()
                    .map(|(at, why)| format!("{}: {why}", when(at)))
                    .collect(),
            })
            .collect(),
        all_scopes: Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect(),
        notice: shown.notice,
        error: shown.error,
        new_secret: shown.new_secret.clone(),
    };
    let resp = html(StatusCode::OK);
    // A page with a secret on it is never stored.
    let resp = if shown.new_secret.is_some() { resp.header("cache-control", "no-store") } else { resp };
    resp.body(ui::render_integrations_page(&admin.chrome, &page))
}

/// Back to the Integrations page with a notice or an error (never a secret).
fn back_to_integrations(outcome: Result<String, String>) -> Response {
    let pair = match &outcome {
        Ok(notice) => ("notice", notice.as_str()),
        Err(error) => ("error", error.as_str()),
    };
    redirect(&format!("/admin/integrations?{}", url_encode_pairs(&[pair])))
}

fn failed(e: AppError) -> String {
    e.log_if_internal();
    e.to_string()
}

/// The new-app form: name, description, scopes (checkboxes, repeated `scopes`).
#[handler]
pub async fn create_app(
    req: &Request,
    Form(fields): Form<Vec<(String, String)>>,
    services: Data<&Services>,
    console: Data<&Console>,
) -> Response {
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let admin = match form_admin(req, &services, &console, &field("csrf")).await {
        Ok(admin) => admin,
        Err(refused) => return refused,
    };
    let scopes: Result<Vec<Scope>, _> =
        fields.iter().filter(|(k, _)| k == "scopes").map(|(_, v)| Scope::parse(v)).collect();
    let description = Some(field("description")).filter(|d| !d.trim().is_empty());
    let created = match scopes {
        Ok(scopes) => services.apps.create(&admin.caller, AppInput { name: field("name"), description, scopes }).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(app) => {
            let shown = Shown {
                notice: Some(format!("App {} created, with its bot user {}.", app.app.name, app.app.bot_user.username)),
                error: None,
                new_secret: Some((app.app.name, app.key.secret)),
            };
            integrations_page(&admin, &services, shown).await
        }
        Err(e) => integrations_page(&admin, &services, Shown { error: Some(failed(e)), ..Shown::default() }).await,
    }
}

#[handler]
pub async fn create_app_key(
    req: &Request,
    Path(id): Path<String>,
    form: Form<super::CsrfForm>,
    services: Data<&Services>,
    console: Data<&Console>,
) -> Response {
    let admin = match form_admin(req, &services, &console, &form.csrf).await {
        Ok(admin) => admin,
        Err(refused) => return refused,
    };
    let Ok(app_id) = Uuid::parse_str(&id) else { return back_to_integrations(Err("No such app.".into())) };
    let outcome = async {
        let app = services.apps.get(&admin.caller, app_id).await?;
        let key = services.apps.create_key(&admin.caller, app_id).await?;
        Ok::<_, AppError>((app.name, key.secret))
    };
    match outcome.await {
        Ok((name, secret)) => {
            let shown = Shown { notice: None, error: None, new_secret: Some((name, secret)) };
            integrations_page(&admin, &services, shown).await
        }
        Err(e) => integrations_page(&admin, &services, Shown { error: Some(failed(e)), ..Shown::default() }).await,
    }
}

#[handler]
pub async fn revoke_app_key(
    req: &Request,
    Path((id, key_id)): Path<(String, String)>,
    form: Form<super::CsrfForm>,
    services: Data<&Services>,
    console: Data<&Console>,
) -> Response {
    let admin = match form_admin(req, &services, &console, &form.csrf).await {
        Ok(admin) => admin,
        Err(refused) => return refused,
    };
    let (Ok(app_id), Ok(key_id)) = (Uuid::parse_str(&id), Uuid::parse_str(&key_id)) else {
        return back_to_integrations(Err("No such key.".into()));
    };
    let outcome = match services.apps.revoke_key(&admin.caller, app_id, key_id).await {
        Ok(true) => Ok("Key revoked: refused from now on, on every node.".to_owned()),
        Ok(false) => Ok("Nothing to do: the key was already revoked.".to_owned()),
        Err(e) => Err(failed(e)),
    };
    back_to_integrations(outcome)
}
