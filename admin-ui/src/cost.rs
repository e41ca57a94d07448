//! The cost model: monthly cost of a deployment from unit prices, for the current and a
//! projected number of users, with nodes from the capacity model. The default prices are the
//! scaling guide's 10K-user table (3 servers $150, database $60, Redis $30, load balancer
//! $20, CDN $20, monitoring $20 = $300 a month).

use crate::capacity::Plan;

/// Monthly unit prices in dollars; kept in a config file, editable in the console.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnitPrices {
    pub server: f64,
    pub database: f64,
    pub redis: f64,
    pub load_balancer: f64,
    pub cdn: f64,
    pub monitoring: f64,
}

impl Default for UnitPrices {
    fn default() -> Self {
        UnitPrices { server: 50.0, database: 60.0, redis: 30.0, load_balancer: 20.0, cdn: 20.0, monitoring: 20.0 }
    }
}

/// One line of the bill.
#[derive(Clone, Debug, PartialEq)]
pub struct CostLine {
    pub item: &'static str,
    pub quantity: u64,
    pub monthly: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MonthlyCost {
    pub lines: Vec<CostLine>,
    pub total: f64,
    pub per_thousand_users: f64,
}

/// The bill for `plan` serving `users`. A single node needs neither Redis nor a load balancer.
pub fn monthly_cost(plan: &Plan, users: u64, prices: &UnitPrices) -> MonthlyCost {
    let multi = plan.nodes > 1;
    let lines = vec![
        CostLine { item: "Compute (servers)", quantity: plan.nodes, monthly: plan.nodes as f64 * prices.server },
        CostLine { item: "Database", quantity: 1, monthly: prices.database },
        CostLine { item: "Redis", quantity: u64::from(multi), monthly: if multi { prices.redis } else { 0.0 } },
        CostLine {
            item: "Load balancer",
            quantity: u64::from(multi),
            monthly: if multi { prices.load_balancer } else { 0.0 },
        },
        CostLine { item: "CDN", quantity: 1, monthly: prices.cdn },
        CostLine { item: "Monitoring", quantity: 1, monthly: prices.monitoring },
    ];
    let total = lines.iter().map(|l| l.monthly).sum::<f64>();
    let per_thousand_users = if users == 0 { 0.0 } else { total / users as f64 * 1000.0 };
    MonthlyCost { lines, total, per_thousand_users }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::{NodeCapacity, Plan, Workload};

    #[test]
    fn the_guides_10k_user_table_comes_out_of_the_defaults() {
        let workload = Workload::default();
        let plan = Plan::for_workload(&workload, &NodeCapacity::default());
        let cost = monthly_cost(&plan, workload.users, &UnitPrices::default());
        let by_item: Vec<(&str, f64)> = cost.lines.iter().map(|l| (l.item, l.monthly)).collect();
        assert_eq!(
            by_item,
            vec![
                ("Compute (servers)", 150.0),
                ("Database", 60.0),
                ("Redis", 30.0),
                ("Load balancer", 20.0),
                ("CDN", 20.0),
                ("Monitoring", 20.0)
            ]
        );
        assert_eq!(cost.total, 300.0);
        assert_eq!(cost.per_thousand_users, 30.0);
    }

    #[test]
    fn a_single_server_skips_redis_and_the_load_balancer() {
        let workload = Workload { users: 800, ..Workload::default() };
        let plan = Plan::for_workload(&workload, &NodeCapacity::default());
        let cost = monthly_cost(&plan, workload.users, &UnitPrices::default());
        assert_eq!(cost.total, 150.0);
    }

    #[test]
    fn prices_change_the_total() {
        let plan = Plan::for_workload(&Workload::default(), &NodeCapacity::default());
        let prices = UnitPrices { server: 80.0, ..UnitPrices::default() };
        assert_eq!(monthly_cost(&plan, 10_000, &prices).total, 390.0);
    }
}
