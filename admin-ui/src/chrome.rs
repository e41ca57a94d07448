//! What every console page shares: the document, the header with navigation and sign-out,
//! the served stylesheet and script, and formatting helpers.

use leptos::prelude::*;

/// The stylesheet, served at [`CSS_PATH`].
pub const CONSOLE_CSS: &str = include_str!("../assets/console.css");
/// The script for live panels and live forms, served at [`JS_PATH`].
pub const CONSOLE_JS: &str = include_str!("../assets/console.js");
pub const CSS_PATH: &str = "/admin/assets/console.css";
pub const JS_PATH: &str = "/admin/assets/console.js";

/// The console's sections, in navigation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Overview,
    Capacity,
    Cost,
    Moderation,
    Business,
    Integrations,
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::Overview,
        Section::Capacity,
        Section::Cost,
        Section::Moderation,
        Section::Business,
        Section::Integrations,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Section::Overview => "/admin",
            Section::Capacity => "/admin/capacity",
            Section::Cost => "/admin/cost",
            Section::Moderation => "/admin/moderation",
            Section::Business => "/admin/business",
            Section::Integrations => "/admin/integrations",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Section::Overview => "Overview",
            Section::Capacity => "Capacity",
            Section::Cost => "Cost",
            Section::Moderation => "Moderation",
            Section::Business => "Business",
            Section::Integrations => "Integrations",
        }
    }
}

/// Who is looking, on which node, and the CSRF token for the page's forms.
#[derive(Clone, Debug)]
pub struct Chrome {
    pub version: String,
    pub node_id: String,
    pub admin: String,
    pub csrf: String,
}

/// Renders a whole document.
pub fn document(title: &str, live_fallback_secs: Option<u32>, body: impl IntoView + 'static) -> String {
    let title = title.to_owned();
    let html = Owner::new().with(|| {
        view! {
            <html lang="en">
                <head>
                    <meta charset="utf-8"/>
                    <meta name="viewport" content="width=device-width, initial-scale=1"/>
                    <title>{title}</title>
                    <link rel="stylesheet" href=CSS_PATH/>
                    {live_fallback_secs.map(|s| view! { <noscript><meta http-equiv="refresh" content=s.to_string()/></noscript> })}
                    <script src=JS_PATH defer></script>
                </head>
                <body>{body}</body>
            </html>
        }
        .to_html()
    });
    format!("<!DOCTYPE html>{html}")
}

/// Renders a fragment (a live panel's content).
pub fn fragment(body: impl IntoView + 'static) -> String {
    Owner::new().with(|| body.into_view().to_html())
}

/// A signed-in page: header, navigation, sign-out form, then `body`.
pub fn console_page(
    chrome: &Chrome,
    active: Section,
    live_fallback_secs: Option<u32>,
    body: impl IntoView + 'static,
) -> String {
    let Chrome { version, node_id, admin, csrf } = chrome.clone();
    let nav = Section::ALL
        .iter()
        .map(|s| {
            let current = (*s == active).then_some("page");
            view! { <a href=s.path() aria-current=current>{s.title()}</a> }
        })
        .collect_view();
    document(
        &format!("SyncChat admin: {}", active.title()),
        live_fallback_secs,
        view! {
            <header>
                <strong>"SyncChat admin"</strong>
                <nav>{nav}</nav>
                <span class="muted">{format!("{version} · node {node_id} · {admin}")}</span>
                <form method="post" action="/admin/logout">
                    <input type="hidden" name="csrf" value=csrf/>
                    <button type="submit">"Sign out"</button>
                </form>
            </header>
            <main>{body}</main>
        },
    )
}

/// Green, amber or red against a target; `None` when there is nothing to judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Good,
    Warn,
    Bad,
    None,
}

impl Status {
    /// For "lower is better" figures: within 70 % of the target is green, up to the target
    /// amber, past it red.
    pub fn below(value: Option<f64>, target: f64) -> Status {
        match value {
            None => Status::None,
            Some(v) if v <= target * 0.7 => Status::Good,
            Some(v) if v <= target => Status::Warn,
            Some(_) => Status::Bad,
        }
    }

    /// For a share of capacity in use (0-1): under 70 % green, under 100 % amber.
    pub fn utilisation(share: f64) -> Status {
        if share < 0.7 {
            Status::Good
        } else if share < 1.0 {
            Status::Warn
        } else {
            Status::Bad
        }
    }

    pub fn healthy(ok: Option<bool>) -> Status {
        match ok {
            Some(true) => Status::Good,
            Some(false) => Status::Bad,
            None => Status::None,
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Status::Good => "st good",
            Status::Warn => "st warn",
            Status::Bad => "st bad",
            Status::None => "st none",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Good => "● on target",
            Status::Warn => "● near target",
            Status::Bad => "● off target",
            Status::None => "–",
        }
    }
}

pub fn badge(status: Status) -> impl IntoView {
    view! { <span class=status.class() data-status=format!("{status:?}").to_lowercase()>{status.label()}</span> }
}

pub fn fmt_ms(value: Option<f64>) -> String {
    match value {
        None => "–".into(),
        Some(v) if v < 10.0 => format!("{v:.2} ms"),
        Some(v) => format!("{v:.0} ms"),
    }
}

pub fn fmt_count(value: f64) -> String {
    let n = value.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

pub fn fmt_rate(value: f64) -> String {
    if value < 10.0 { format!("{value:.1}/s") } else { format!("{}/s", fmt_count(value)) }
}

pub fn fmt_pct(share: Option<f64>) -> String {
    match share {
        None => "–".into(),
        Some(s) if s < 0.1 => format!("{:.2} %", s * 100.0),
        Some(s) => format!("{:.0} %", s * 100.0),
    }
}

pub fn fmt_money(value: f64) -> String {
    if value.fract().abs() < 0.005 { format!("${}", fmt_count(value)) } else { format!("${value:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_against_targets() {
        assert_eq!(Status::below(Some(50.0), 100.0), Status::Good);
        assert_eq!(Status::below(Some(90.0), 100.0), Status::Warn);
        assert_eq!(Status::below(Some(101.0), 100.0), Status::Bad);
        assert_eq!(Status::below(None, 100.0), Status::None);
        assert_eq!(Status::utilisation(0.69), Status::Good);
        assert_eq!(Status::utilisation(1.0), Status::Bad);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_count(1234567.0), "1,234,567");
        assert_eq!(fmt_count(999.0), "999");
        assert_eq!(fmt_money(300.0), "$300");
        assert_eq!(fmt_money(12.5), "$12.50");
        assert_eq!(fmt_ms(Some(4.312)), "4.31 ms");
        assert_eq!(fmt_pct(Some(0.005)), "0.50 %");
    }
}
