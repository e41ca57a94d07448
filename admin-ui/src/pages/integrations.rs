//! Integrations: the apps (their bot, scopes, keys by prefix and last use) and every webhook
//! endpoint with its success rate, backlog, lag, disabled state and recent failures. Admins
//! create apps, issue keys and revoke them here; a new key's secret is shown once, on the
//! page that answers the form (never in a URL).

use leptos::prelude::*;

use crate::chrome::{Chrome, Section, console_page, fmt_count, fmt_pct};

#[derive(Clone, Debug, PartialEq)]
pub struct KeyRow {
    pub id: String,
    pub prefix: String,
    pub created_at: String,
    pub last_used: Option<String>,
    pub revoked: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AppRow {
    pub id: String,
    pub name: String,
    pub bot: String,
    pub scopes: Vec<String>,
    pub keys: Vec<KeyRow>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EndpointRow {
    pub id: String,
    pub app: String,
    pub url: String,
    pub events: usize,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Share of attempts in the last 24 h answered 2xx; `None` without attempts.
    pub success_24h: Option<f64>,
    pub attempts_24h: u64,
    pub pending: u64,
    /// Age of the oldest undelivered event, seconds.
    pub lag_secs: Option<f64>,
    /// The latest failed attempts: "when: why".
    pub recent_failures: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Integrations {
    pub apps: Vec<AppRow>,
    pub endpoints: Vec<EndpointRow>,
    /// Every scope an app can be given, for the new-app form.
    pub all_scopes: Vec<String>,
    /// A key just issued: (app name, the whole `sck_…` secret).
    pub new_secret: Option<(String, String)>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

fn post_form(csrf: &str, path: String, label: &'static str, target: &str) -> impl IntoView + use<> {
    let (csrf, name) = (csrf.to_owned(), format!("{label} {target}"));
    view! {
        <form method="post" action=path class="inline">
            <input type="hidden" name="csrf" value=csrf/>
            <button type="submit" aria-label=name>{label}</button>
        </form>
    }
}

fn fmt_lag(secs: Option<f64>) -> String {
    match secs {
        None => "none waiting".into(),
        Some(s) if s < 1.0 => "< 1 s".into(),
        Some(s) if s < 120.0 => format!("{s:.0} s"),
        Some(s) if s < 7200.0 => format!("{:.0} min", s / 60.0),
        Some(s) => format!("{:.1} h", s / 3600.0),
    }
}

pub fn render_integrations_page(chrome: &Chrome, i: &Integrations) -> String {
    let csrf = chrome.csrf.clone();
    let apps = i
        .apps
        .iter()
        .map(|a| {
            let keys = a
                .keys
                .iter()
                .map(|k| {
                    let state = if k.revoked { "revoked" } else { "live" };
                    let revoke = (!k.revoked).then(|| {
                        let path = format!("/admin/integrations/apps/{}/keys/{}/revoke", a.id, k.id);
                        post_form(&csrf, path, "Revoke", &format!("sck_{}", k.prefix))
                    });
                    view! {
                        <li data-key=k.prefix.clone() data-key-state=state>
                            <code>{format!("sck_{}_…", k.prefix)}</code>" "{state}
                            <span class="muted">{format!(
                                " · created {} · last used {}",
                                k.created_at,
                                k.last_used.clone().unwrap_or_else(|| "never".into())
                            )}</span>" "{revoke}
                        </li>
                    }
                })
                .collect_view();
            let new_key = post_form(&csrf, format!("/admin/integrations/apps/{}/keys", a.id), "New key", &a.name);
            view! {
                <tr data-app=a.name.clone()>
                    <td><b>{a.name.clone()}</b><br/><span class="muted">{a.id.clone()}</span></td>
                    <td>{a.bot.clone()}</td>
                    <td>{a.scopes.join(", ")}</td>
                    <td><ul class="plain">{keys}</ul>{new_key}</td>
                </tr>
            }
        })
        .collect_view();
    let scope_boxes = i
        .all_scopes
        .iter()
        .map(|s| {
            view! {
                <label class="inline"><input type="checkbox" name="scopes" value=s.clone()/>" "{s.clone()}</label>" "
            }
        })
        .collect_view();
    let secret = i.new_secret.clone().map(|(app, secret)| {
        view! {
            <div class="card notice" role="status" data-new-secret="">
                <h2>{format!("New key for {app}")}</h2>
                <p>"Copy it now: only its hash is kept, and this is the only time it is shown."</p>
                <p><code data-secret="">{secret}</code></p>
                <p class="muted">"Send it as Authorization: Bearer <key> on REST, GraphQL and the WebSocket's connection_init."</p>
            </div>
        }
    });
    let endpoints = i
        .endpoints
        .iter()
        .map(|e| {
            let state = if e.enabled { "enabled" } else { "disabled" };
            let failures = e.recent_failures.iter().map(|f| view! { <li>{f.clone()}</li> }).collect_view();
            view! {
                <tr data-endpoint=e.id.clone() data-endpoint-state=state class=if e.enabled { "" } else { "disabled-user" }>
                    <td>{e.app.clone()}</td>
                    <td><code>{e.url.clone()}</code><br/><span class="muted">{format!("{} event types", e.events)}</span></td>
                    <td data-endpoint-status=state>{state}<br/><span class="muted">{e.disabled_reason.clone().unwrap_or_default()}</span></td>
                    <td class="num" data-success=e.id.clone()>{fmt_pct(e.success_24h)}<br/><span class="muted">{format!("{} attempts", fmt_count(e.attempts_24h as f64))}</span></td>
                    <td class="num" data-pending=e.id.clone()>{fmt_count(e.pending as f64)}</td>
                    <td class="num" data-lag=e.id.clone()>{fmt_lag(e.lag_secs)}</td>
                    <td><ul class="plain">{failures}</ul></td>
                </tr>
            }
        })
        .collect_view();
    let disabled = i.endpoints.iter().filter(|e| !e.enabled).count();
    console_page(
        chrome,
        Section::Integrations,
        None,
        view! {
            <h1>"Integrations"</h1>
            {i.notice.clone().map(|n| view! { <p class="notice" role="status">{n}</p> })}
            {i.error.clone().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {secret}
            <div class="figures">
                <div class="card figure" data-figure="apps"><span>"Apps"</span><b>{fmt_count(i.apps.len() as f64)}</b></div>
                <div class="card figure" data-figure="endpoints"><span>"Webhook endpoints"</span><b>{fmt_count(i.endpoints.len() as f64)}</b></div>
                <div class="card figure" data-figure="endpoints_disabled"><span>"Disabled endpoints"</span><b>{fmt_count(disabled as f64)}</b></div>
            </div>
            <div class="card">
                <h2>"Apps"</h2>
                <table>
                    <thead><tr><th>"App"</th><th>"Bot user"</th><th>"Scopes"</th><th>"Keys"</th></tr></thead>
                    <tbody>{apps}</tbody>
                </table>
                <h2>"New app"</h2>
                <form method="post" action="/admin/integrations/apps" data-form="new-app">
                    <input type="hidden" name="csrf" value=csrf.clone()/>
                    <p><label>"Name "<input type="text" name="name" required maxlength="100"/></label></p>
                    <p><label>"Description "<input type="text" name="description" maxlength="500"/></label></p>
                    <p>"Scopes: "{scope_boxes}</p>
                    <p><button type="submit">"Create app"</button>
                    <span class="muted">" Makes its bot user and a first key, shown once."</span></p>
                </form>
            </div>
            <div class="card">
                <h2>"Webhook endpoints"</h2>
                <table>
                    <thead><tr><th>"App"</th><th>"URL"</th><th>"State"</th><th>"Success (24 h)"</th>
                        <th>"Waiting"</th><th>"Lag"</th><th>"Recent failures"</th></tr></thead>
                    <tbody>{endpoints}</tbody>
                </table>
                <p class="muted">"Lag: age of the oldest event not yet acknowledged. A disabled endpoint keeps its events; its app re-enables it (PATCH /api/v1/webhooks/{id} {\"enabled\": true}) and it resumes where it stopped."</p>
            </div>
        },
    )
}
