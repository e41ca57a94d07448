//! Moderation: find users, disable or enable them, delete a message by id, and the audit
//! log of every such action. Every form posts with the session's CSRF token.

use leptos::prelude::*;

use crate::chrome::{Chrome, Section, console_page, fmt_count};

#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub role: String,
    pub disabled: bool,
    pub online: bool,
    pub conversations: u64,
    pub last_seen: Option<String>,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Moderation {
    pub query: String,
    pub users: Vec<UserRow>,
    pub audit: Vec<AuditRow>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

fn action_form(csrf: &str, query: &str, path: String, label: &'static str, id: &str) -> impl IntoView + use<> {
    let (csrf, query, name) = (csrf.to_owned(), query.to_owned(), format!("{label} {id}"));
    view! {
        <form method="post" action=path class="inline">
            <input type="hidden" name="csrf" value=csrf/>
            <input type="hidden" name="q" value=query/>
            <button type="submit" aria-label=name>{label}</button>
        </form>
    }
}

pub fn render_moderation_page(chrome: &Chrome, m: &Moderation) -> String {
    let csrf = chrome.csrf.clone();
    let users = m
        .users
        .iter()
        .map(|u| {
            let action = if u.disabled {
                action_form(&csrf, &m.query, format!("/admin/moderation/users/{}/enable", u.id), "Enable", &u.username)
            } else {
                action_form(&csrf, &m.query, format!("/admin/moderation/users/{}/disable", u.id), "Disable", &u.username)
            };
            let status = match (u.disabled, u.online) {
                (true, _) => "disabled",
                (false, true) => "online",
                (false, false) => "active",
            };
            view! {
                <tr data-user=u.username.clone() class=if u.disabled { "disabled-user" } else { "" }>
                    <td><b>{u.username.clone()}</b><br/><span class="muted">{u.display_name.clone().unwrap_or_default()}</span></td>
                    <td>{u.email.clone()}</td>
                    <td>{u.role.clone()}</td>
                    <td class="num" data-conversations=u.username.clone()>{fmt_count(u.conversations as f64)}</td>
                    <td>{u.last_seen.clone().unwrap_or_else(|| "never".into())}</td>
                    <td>{u.created_at.clone()}</td>
                    <td data-user-status=status>{status}</td>
                    <td>{action}</td>
                </tr>
            }
        })
        .collect_view();
    let audit = m
        .audit
        .iter()
        .map(|a| {
            view! {
                <tr data-audit=a.action.clone()>
                    <td>{a.at.clone()}</td><td>{a.actor.clone()}</td><td>{a.action.clone()}</td>
                    <td>{a.target.clone()}</td><td>{a.detail.clone()}</td>
                </tr>
            }
        })
        .collect_view();
    let found = if m.query.is_empty() {
        format!("The {} most recently registered users.", m.users.len())
    } else {
        format!("{} user(s) matching \u{201c}{}\u{201d}.", m.users.len(), m.query)
    };
    console_page(
        chrome,
        Section::Moderation,
        None,
        view! {
            <h1>"Moderation"</h1>
            {m.notice.clone().map(|n| view! { <p class="notice" role="status">{n}</p> })}
            {m.error.clone().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <div class="card">
                <form method="get" action="/admin/moderation">
                    <label>"Find users (username or email prefix) " <input name="q" value=m.query.clone() type="search"/></label>
                    <button type="submit">"Search"</button>
                </form>
                <p class="muted">{found}</p>
                <table>
                    <thead><tr><th>"User"</th><th>"Email"</th><th>"Role"</th><th>"Conversations"</th><th>"Last seen"</th>
                        <th>"Registered"</th><th>"Status"</th><th></th></tr></thead>
                    <tbody>{users}</tbody>
                </table>
                <p class="muted">"Disabling signs the user out everywhere and closes their live connections on every node."</p>
            </div>
            <div class="card">
                <h2>"Delete a message"</h2>
                <form method="post" action="/admin/moderation/messages/delete">
                    <input type="hidden" name="csrf" value=csrf.clone()/>
                    <label>"Message id " <input name="message_id" required size="40"/></label>
                    <label>"Reason " <input name="reason" size="40"/></label>
                    <button type="submit">"Delete message"</button>
                </form>
            </div>
            <div class="card">
                <h2>"Audit log"</h2>
                <table>
                    <thead><tr><th>"When"</th><th>"Admin"</th><th>"Action"</th><th>"Target"</th><th>"Detail"</th></tr></thead>
                    <tbody>{audit}</tbody>
                </table>
            </div>
        },
    )
}
