#![doc = include_str!("../README.md")]

pub mod capacity;
pub mod charts;
pub mod chrome;
pub mod cost;
pub mod pages;

pub use chrome::{CONSOLE_CSS, CONSOLE_JS, CSS_PATH, Chrome, JS_PATH, Section};
pub use pages::business::{Business, Day, render_business_page};
pub use pages::integrations::{AppRow, EndpointRow, Integrations, KeyRow, render_integrations_page};
pub use pages::login::render_login_page;
pub use pages::moderation::{AuditRow, Moderation, UserRow, render_moderation_page};
pub use pages::overview::{Figures, LiveOverview, NodeRow, render_overview_fragment, render_overview_page};
pub use pages::planning::{
    Deployment, Planning, PlanningInputs, render_capacity_page, render_capacity_results, render_cost_page,
    render_cost_results,
};
