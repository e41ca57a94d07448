#![doc = include_str!("../README.md")]

pub mod capacity;
pub mod cost;

use leptos::prelude::*;

/// The page shown at `/admin` while the console's pages (login, overview, capacity, cost,
/// moderation) are being built: it names the node's version and where the operator tools are.
pub fn render_status_page(version: &str) -> String {
    let version = version.to_owned();
    let body = Owner::new().with(|| {
        view! {
            <html lang="en">
                <head>
                    <meta charset="utf-8"/>
                    <title>"SyncChat admin"</title>
                </head>
                <body>
                    <h1>"SyncChat admin"</h1>
                    <p>"Version " {version}</p>
                    <p>"The admin console (sign-in, overview, capacity, cost, moderation) is not available in this version yet."</p>
                    <ul>
                        <li><a href="/metrics">"Prometheus metrics"</a></li>
                        <li><a href="/api/docs">"REST API docs"</a></li>
                        <li><a href="/graphql">"GraphiQL"</a></li>
                        <li><a href="/readyz">"Readiness"</a></li>
                    </ul>
                </body>
            </html>
        }
        .to_html()
    });
    format!("<!DOCTYPE html>{body}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_page_names_version_and_links() {
        let html = super::render_status_page("9.9.9");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("Version 9.9.9") || html.contains("9.9.9"));
        assert!(html.contains("href=\"/metrics\""));
    }
}
