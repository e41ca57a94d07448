//! The planning file (`SYNCCHAT_CONSOLE_CONFIG`, TOML: per-node capacity and monthly unit
//! prices) and the planning pages' inputs, read from the query string.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use syncchat_admin_ui::PlanningInputs;
use syncchat_admin_ui::capacity::NodeCapacity;
use syncchat_admin_ui::cost::UnitPrices;

use crate::error::AppError;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PlanningFile {
    node_capacity: Option<CapacitySection>,
    prices: Option<PricesSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapacitySection {
    connections: u64,
    messages_per_sec: f64,
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PricesSection {
    server: f64,
    database: f64,
    redis: f64,
    load_balancer: f64,
    cdn: f64,
    monitoring: f64,
}

/// Capacity and prices with where they came from.
pub struct Planned {
    pub capacity: NodeCapacity,
    pub capacity_source: String,
    pub prices: UnitPrices,
    pub prices_source: String,
    /// A file that exists but cannot be used: shown on the page, defaults used instead.
    pub problem: Option<String>,
}

/// Reads the planning file; a missing file means the built-in defaults.
pub fn load(path: &Path) -> Planned {
    let shown = path.display().to_string();
    let defaults = |source: String, problem: Option<String>| Planned {
        capacity: NodeCapacity::default(),
        capacity_source: source.clone(),
        prices: UnitPrices::default(),
        prices_source: source,
        problem,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return defaults(format!("built-in defaults (no file at {shown})"), None);
        }
        Err(e) => return defaults("built-in defaults".into(), Some(format!("cannot read {shown}: {e}"))),
    };
    let file: PlanningFile = match toml::from_str(&text) {
        Ok(file) => file,
        Err(e) => return defaults("built-in defaults".into(), Some(format!("{shown} is not valid: {e}"))),
    };
    let (capacity, capacity_source) = match file.node_capacity {
        Some(c) if c.connections > 0 && c.messages_per_sec > 0.0 => (
            NodeCapacity { connections: c.connections, messages_per_sec: c.messages_per_sec },
            format!("{shown}: {}", c.source.unwrap_or_else(|| "configured".into())),
        ),
        Some(_) => {
            return defaults("built-in defaults".into(), Some(format!("{shown}: node capacity must be above zero")));
        }
        None => (NodeCapacity::default(), "built-in defaults".into()),
    };
    let (prices, prices_source) = match file.prices {
        Some(p) => (
            UnitPrices {
                server: p.server,
                database: p.database,
                redis: p.redis,
                load_balancer: p.load_balancer,
                cdn: p.cdn,
                monitoring: p.monitoring,
            },
            shown,
        ),
        None => (UnitPrices::default(), "built-in defaults".into()),
    };
    Planned { capacity, capacity_source, prices, prices_source, problem: None }
}

/// A number from the query string: absent or empty means `default`; anything else must
/// parse and lie in `0..=max`.
fn number(q: &HashMap<String, String>, field: &'static str, default: f64, max: f64) -> Result<f64, AppError> {
    match q.get(field).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => match v.parse::<f64>() {
            Ok(n) if n.is_finite() && (0.0..=max).contains(&n) => Ok(n),
            _ => Err(AppError::bad_input(field, format!("{field} must be a number from 0 to {max}"))),
        },
    }
}

/// The workload inputs; `registered` is the default for "users now".
pub fn inputs(q: &HashMap<String, String>, registered: u64) -> Result<PlanningInputs, AppError> {
    Ok(PlanningInputs {
        users: number(q, "users", registered as f64, 1e10)?.round() as u64,
        projected_users: number(q, "projected", 10_000.0, 1e10)?.round() as u64,
        online_pct: number(q, "online_pct", 10.0, 100.0)?,
        messages_per_user_per_min: number(q, "msgs_per_min", 1.0, 10_000.0)?,
    })
}

/// Unit prices from the query string over the configured ones.
pub fn prices(q: &HashMap<String, String>, base: UnitPrices) -> Result<UnitPrices, AppError> {
    const MAX: f64 = 1e9;
    Ok(UnitPrices {
        server: number(q, "server", base.server, MAX)?,
        database: number(q, "database", base.database, MAX)?,
        redis: number(q, "redis", base.redis, MAX)?,
        load_balancer: number(q, "load_balancer", base.load_balancer, MAX)?,
        cdn: number(q, "cdn", base.cdn, MAX)?,
        monitoring: number(q, "monitoring", base.monitoring, MAX)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_holds_the_defaults() {
        let planned = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/console.toml"));
        assert!(planned.problem.is_none(), "{:?}", planned.problem);
        assert_eq!(planned.prices, UnitPrices::default());
        assert_eq!(planned.capacity, NodeCapacity::default());
    }

    #[test]
    fn bad_inputs_are_refused_and_empty_ones_default() {
        let q: HashMap<String, String> =
            [("users".to_owned(), String::new()), ("online_pct".to_owned(), "150".to_owned())].into();
        let err = inputs(&q, 42).expect_err("150 % online");
        assert!(err.to_string().contains("online_pct"), "{err}");
        let ok = inputs(&HashMap::new(), 42).expect("defaults");
        assert_eq!(ok.users, 42);
        let q: HashMap<String, String> = [("server".to_owned(), "-1".to_owned())].into();
        assert!(prices(&q, UnitPrices::default()).is_err());
    }
}
