#![doc = include_str!("../README.md")]

pub mod capacity;
pub mod cost;

use leptos::prelude::*;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d232a}\
header{background:#1d232a;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1rem;align-items:center}\
header form{margin-left:auto}main{padding:1.2rem;max-width:60rem}\
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:1rem;margin:.5rem 0}\
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:.5rem}\
.figure b{display:block;font-size:1.6rem}.error{color:#b00020}label{display:block;margin:.4rem 0}";

fn page(title: &str, body: impl IntoView + 'static) -> String {
    let title = title.to_owned();
    let html = Owner::new().with(|| {
        view! {
            <html lang="en">
                <head>
                    <meta charset="utf-8"/>
                    <meta name="viewport" content="width=device-width, initial-scale=1"/>
                    <title>{title}</title>
                    <style>{STYLE}</style>
                </head>
                <body>{body}</body>
            </html>
        }
        .to_html()
    });
    format!("<!DOCTYPE html>{html}")
}

/// The sign-in form. `csrf` goes in a hidden field and must match the CSRF cookie.
pub fn render_login_page(version: &str, error: Option<String>, csrf: &str) -> String {
    let (version, csrf) = (version.to_owned(), csrf.to_owned());
    page(
        "SyncChat admin: sign in",
        view! {
            <header><strong>"SyncChat admin"</strong><span>{version}</span></header>
            <main>
                <div class="card">
                    <h1>"Sign in"</h1>
                    <p>"For accounts with the admin role (created with " <code>"syncchat admin create-user"</code> ")."</p>
                    {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
                    <form method="post" action="/admin/login">
                        <input type="hidden" name="csrf" value=csrf/>
                        <label>"Username or email " <input name="login" autocomplete="username" required/></label>
                        <label>"Password " <input name="password" type="password" autocomplete="current-password" required/></label>
                        <button type="submit">"Sign in"</button>
                    </form>
                </div>
            </main>
        },
    )
}

/// Figures on the overview page.
#[derive(Clone, Debug)]
pub struct OverviewData {
    pub version: String,
    pub node_id: String,
    pub users: u64,
    pub conversations: u64,
    pub messages: u64,
    pub online_users: u64,
    /// "cluster" or "this node": where the online count comes from.
    pub presence_scope: String,
}

/// The signed-in overview. `csrf` protects the sign-out form.
pub fn render_overview_page(data: OverviewData, csrf: &str) -> String {
    let csrf = csrf.to_owned();
    let figure = |label: &'static str, value: u64| {
        view! { <div class="card figure" data-figure=label><span>{label}</span><b>{value}</b></div> }
    };
    let scope = format!("Online users ({})", data.presence_scope);
    page(
        "SyncChat admin: overview",
        view! {
            <header>
                <strong>"SyncChat admin"</strong>
                <span>{format!("{} · node {}", data.version, data.node_id)}</span>
                <form method="post" action="/admin/logout">
                    <input type="hidden" name="csrf" value=csrf/>
                    <button type="submit">"Sign out"</button>
                </form>
            </header>
            <main>
                <h1>"Overview"</h1>
                <div class="figures">
                    {figure("Users", data.users)}
                    {figure("Conversations", data.conversations)}
                    {figure("Messages", data.messages)}
                    <div class="card figure" data-figure="Online users"><span>{scope}</span><b>{data.online_users}</b></div>
                </div>
                <p>"Live metrics, capacity, cost and moderation pages are on their way; Prometheus metrics are at "
                    <a href="/metrics">"/metrics"</a> "."</p>
            </main>
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_page_carries_the_csrf_token_and_the_error() {
        let html = render_login_page("9.9.9", Some("wrong password".into()), "tok123");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("name=\"csrf\" value=\"tok123\""), "{html}");
        assert!(html.contains("wrong password"));
        assert!(html.contains("action=\"/admin/login\""));
    }

    #[test]
    fn the_overview_shows_its_figures_and_escapes_text() {
        let data = OverviewData {
            version: "1.0".into(),
            node_id: "<n1>".into(),
            users: 12,
            conversations: 3,
            messages: 45,
            online_users: 2,
            presence_scope: "this node".into(),
        };
        let html = render_overview_page(data, "csrf-x");
        assert!(html.contains("<b>12</b>") && html.contains("<b>45</b>"), "{html}");
        assert!(html.contains("Online users (this node)"));
        assert!(!html.contains("<n1>"), "text is escaped");
        assert!(html.contains("value=\"csrf-x\""));
    }
}
