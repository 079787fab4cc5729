//! The customer's own summary in the 360 view: what `kanta analyze` computes for one customer
//! from that customer's orders alone (`kanta_core::aggregate` and `kanta_core::analysis`, the
//! same code and definitions), read live on every request.
//!
//! Everything that needs the whole customer base — RFM quintiles and segment, lifecycle stage
//! (the base's lapse threshold), value tier, P(alive), CLV, the next purchase date — is not
//! computed here: the view shows it from the latest scoring run (`scores`, with `scored_at`).
//! An earlier version kept a whole-store analysis in the API beside the scoring job's; on a
//! large store that was a second copy of the scoring work, and the two could disagree.

use kanta_core::aggregate::{Aggregator, OrderLine};
use kanta_core::analysis::{AnalysisOptions, CustomerSummary, analyze_customers};
use kanta_core::money::Money;
use kanta_core::time::{Day, Timestamp};
use kanta_domain::purchase;
use kanta_store::OrderFact;
use serde::Serialize;
use utoipa::ToSchema;

/// A customer's own summary, as in `customers.csv` (the columns that depend on this customer's
/// orders alone).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Summary {
    /// Purchase orders.
    pub orders: u32,
    /// Revenue of the purchase orders (returns excluded).
    pub revenue: f64,
    /// First purchase, RFC 3339.
    pub first_purchase: String,
    /// Last purchase, RFC 3339.
    pub last_purchase: String,
    /// Repeat purchase days (BTYD `frequency`).
    pub frequency: u32,
    /// Days from first to last purchase day (BTYD `recency`).
    pub recency: i32,
    /// Days from the first purchase day to `as_of` (BTYD `T`).
    #[serde(rename = "T")]
    pub t: i32,
    /// Mean value of the repeat purchase days (BTYD `monetary`).
    pub monetary: f64,
    /// Average order value.
    pub average_order_value: f64,
    /// Refunded or returned orders.
    pub returns: u32,
    /// Amount refunded or returned.
    pub returned: f64,
    /// Revenue in the 365 days up to `as_of`.
    pub revenue_12m: f64,
    /// Days from the last purchase to `as_of`.
    pub days_since_last: i32,
}

/// The summary of one customer's `orders` as of the day `as_of` (None without a purchase by
/// then). Orders count by their signed amounts (`kanta_domain::purchase`): a completed order is
/// a purchase, a refunded one a return (as a negative line is in `kanta analyze`), a cancelled
/// one is left out.
pub fn summary(orders: &[OrderFact], as_of: Day) -> Option<Summary> {
    let mut aggregator = Aggregator::new();
    for f in orders {
        let Some(amount) = purchase::signed_amount(f.status, f.amount) else { continue };
        // A fact is a whole order and order ids are unique in the store, so each fact is its
        // own order: no order id is needed to group lines (and none is looked up).
        let line = OrderLine {
            customer: f.customer.as_bytes(),
            order: None,
            time: Timestamp::from(f.time),
            amount: Money::from_raw(amount),
        };
        // Pushing cannot fail without order ids; a fact that did would be left out, not fatal.
        let _ = aggregator.push(line);
    }
    let base = aggregator.finish();
    let options = AnalysisOptions { as_of: Some(as_of), ..AnalysisOptions::default() };
    let analysis = analyze_customers(&base, &options).ok()?;
    analysis.customers.first().map(own)
}

fn own(c: &CustomerSummary) -> Summary {
    Summary {
        orders: c.orders,
        revenue: c.revenue.to_f64(),
        first_purchase: kanta_store::rfc3339(kanta_domain::Timestamp::from(c.first_purchase).micros()),
        last_purchase: kanta_store::rfc3339(kanta_domain::Timestamp::from(c.last_purchase).micros()),
        frequency: c.frequency,
        recency: c.recency_days,
        t: c.t_days,
        monetary: c.monetary,
        average_order_value: c.average_order_value(),
        returns: c.returns,
        returned: c.returned.to_f64(),
        revenue_12m: c.revenue_12m.to_f64(),
        days_since_last: c.days_since_last,
    }
}

#[cfg(test)]
mod tests {
    use kanta_store::record::OrderStatus;

    use super::*;

    fn fact(order: &str, day: i64, amount: i64, status: OrderStatus) -> OrderFact {
        let time = kanta_domain::Timestamp::from_micros(day * 86_400_000_000);
        OrderFact { customer: "a".into(), order: order.into(), time, amount, status }
    }

    #[test]
    fn a_customers_summary_follows_the_analyze_definitions_and_order_statuses() {
        let orders = [
            fact("1", 100, 100_000, OrderStatus::Completed),
            fact("2", 110, 200_000, OrderStatus::Completed),
            fact("3", 110, 50_000, OrderStatus::Completed),
            fact("4", 120, 70_000, OrderStatus::Refunded),
            fact("5", 125, 90_000, OrderStatus::Cancelled),
            fact("6", 400, 10_000, OrderStatus::Completed),
        ];
        // As of day 140: the order on day 400 is after the observation end.
        let s = summary(&orders, Day(140)).expect("purchases");
        assert_eq!((s.orders, s.frequency, s.recency, s.t, s.days_since_last), (3, 1, 10, 40, 30));
        assert_eq!((s.revenue, s.monetary, s.returns, s.returned), (35.0, 25.0, 1, 7.0));
        assert_eq!((s.average_order_value, s.revenue_12m), (35.0 / 3.0, 35.0));
        assert_eq!(
            (s.first_purchase.as_str(), s.last_purchase.as_str()),
            ("1970-04-11T00:00:00Z", "1970-04-21T00:00:00Z")
        );
        // As of day 500 the late order counts: a third purchase day.
        let later = summary(&orders, Day(500)).expect("purchases");
        assert_eq!((later.orders, later.frequency, later.recency, later.t), (4, 2, 300, 400));
        assert_eq!(later.revenue_12m, 1.0, "only the order on day 400 is within 365 days of day 500");
    }

    #[test]
    fn no_purchase_gives_no_summary() {
        assert_eq!(summary(&[], Day(10)), None);
        let cancelled = [fact("1", 5, 100_000, OrderStatus::Cancelled)];
        assert_eq!(summary(&cancelled, Day(10)), None);
        // A purchase after the observation day is not one yet.
        let later = [fact("1", 20, 100_000, OrderStatus::Completed)];
        assert_eq!(summary(&later, Day(10)), None);
    }
}
