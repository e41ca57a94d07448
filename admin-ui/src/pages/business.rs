//! Business figures: registrations, active users, messages, conversations, retention.

use leptos::prelude::*;

use crate::charts::bars;
use crate::chrome::{Chrome, Section, console_page, fmt_count, fmt_pct};

#[derive(Clone, Debug, PartialEq)]
pub struct Day {
    /// "11-24"
    pub label: String,
    pub registrations: u64,
    pub messages: u64,
    pub conversations: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Business {
    pub users: u64,
    pub daily_active: u64,
    pub monthly_active: u64,
    pub messages: u64,
    pub conversations: u64,
    /// Users registered 14-7 days ago who were active in the last 7 days; `None` with no
    /// such users.
    pub retention_7d: Option<f64>,
    pub cohort_size: u64,
    /// Oldest first.
    pub days: Vec<Day>,
}

pub fn render_business_page(chrome: &Chrome, b: &Business) -> String {
    let figure = |key: &'static str, label: &'static str, value: String| {
        view! { <div class="card figure" data-figure=key><span>{label}</span><b>{value}</b></div> }
    };
    let series = |f: fn(&Day) -> u64| b.days.iter().map(|d| (d.label.clone(), f(d) as f64)).collect::<Vec<_>>();
    let today = b.days.last();
    console_page(
        chrome,
        Section::Business,
        None,
        view! {
            <h1>"Business"</h1>
            <div class="figures">
                {figure("users", "Registered users", fmt_count(b.users as f64))}
                {figure("registrations_today", "Registrations today", fmt_count(today.map_or(0, |d| d.registrations) as f64))}
                {figure("dau", "Daily active users", fmt_count(b.daily_active as f64))}
                {figure("mau", "Monthly active users", fmt_count(b.monthly_active as f64))}
                {figure("messages_today", "Messages today", fmt_count(today.map_or(0, |d| d.messages) as f64))}
                {figure("conversations", "Conversations", fmt_count(b.conversations as f64))}
                {figure("retention", "7-day retention", fmt_pct(b.retention_7d))}
            </div>
            <p class="muted">{format!(
                "Active: connected or sent a message in the last day / 30 days. Retention: of the {} users who registered 14 to 7 days ago, the share active in the last 7 days.",
                b.cohort_size
            )}</p>
            <div class="grid2">
                <div class="card"><h2>"Registrations per day"</h2>{bars("Registrations per day", &series(|d| d.registrations))}</div>
                <div class="card"><h2>"Messages per day"</h2>{bars("Messages per day", &series(|d| d.messages))}</div>
                <div class="card"><h2>"Conversations created per day"</h2>{bars("Conversations created per day", &series(|d| d.conversations))}</div>
            </div>
        },
    )
}
