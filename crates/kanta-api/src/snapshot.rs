//! The per-customer summary in the 360 view, computed by `kanta analyze`'s own code
//! (`kanta_core::aggregate` and `kanta_core::analysis`) over every order in the store.
//!
//! RFM scores are quintiles of the whole customer base and the lifecycle stage uses the base's
//! lapse threshold, so a customer's summary cannot be computed from their orders alone. The
//! server keeps one analysis of the whole store in memory and recomputes it on a read after
//! writes. When one analysis takes longer than [`QUICK`] (a large store), a stale one is
//! served until it is five times as old as it took to compute, so a read-heavy dashboard under
//! constant ingestion does not recompute on every read; the view says when its analysis was
//! computed and whether writes happened since.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kanta_core::aggregate::{Aggregator, OrderLine};
use kanta_core::analysis::{AnalysisOptions, CustomerSummary, analyze};
use kanta_core::money::Money;
use kanta_core::time::{Day, Timestamp};
use kanta_domain::purchase;
use kanta_store::{OrderFact, Storage, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// An analysis faster than this is redone on every read after a write.
const QUICK: Duration = Duration::from_millis(250);

/// A customer's summary, as in `customers.csv`.
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
    /// Days from the first purchase day to the analysis day (BTYD `T`).
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
    /// Revenue in the last 365 days.
    pub revenue_12m: f64,
    /// Days since the last purchase.
    pub days_since_last: i32,
    /// Recency score 1–5.
    pub r: u8,
    /// Frequency score 1–5.
    pub f: u8,
    /// Monetary score 1–5.
    pub m: u8,
    /// Named RFM segment.
    pub segment: &'static str,
    /// Lifecycle stage.
    pub stage: &'static str,
}

/// When and over what the analysis behind a summary was computed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AnalysisInfo {
    /// The observation day (today, UTC).
    pub as_of: String,
    /// When the analysis ran, RFC 3339.
    pub computed_at: String,
    /// Whether writes have happened since.
    pub stale: bool,
    /// Customers with purchases in the analysis.
    pub customers: usize,
}

struct Snapshot {
    generation: u64,
    day: Day,
    computed_at: i64,
    took: Duration,
    taken: Instant,
    customers: HashMap<String, Summary>,
}

/// The cached analysis and the write generation it was computed at.
#[derive(Default)]
pub struct Snapshots {
    generation: AtomicU64,
    current: tokio::sync::Mutex<Option<Snapshot>>,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots").field("generation", &self.generation.load(Ordering::Relaxed)).finish()
    }
}

impl Snapshots {
    /// Note that the store changed.
    pub fn written(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The summary of `customer` (None if they have no purchase), refreshing the analysis first
    /// when it is due.
    pub async fn summary(
        &self,
        store: &dyn Storage,
        customer: &str,
    ) -> Result<(Option<Summary>, Option<AnalysisInfo>), StoreError> {
        let mut current = self.current.lock().await;
        let generation = self.generation.load(Ordering::Acquire);
        let now = kanta_store::now_micros();
        let today = Timestamp::from(kanta_domain::Timestamp::from_micros(now)).day();
        let due = match current.as_ref() {
            None => true,
            Some(s) => {
                s.day != today || (s.generation != generation && (s.took < QUICK || s.taken.elapsed() >= s.took * 5))
            }
        };
        if due {
            let started = Instant::now();
            let facts = store.order_facts().await?;
            let customers = tokio::task::spawn_blocking(move || summaries(&facts, today))
                .await
                .map_err(|e| StoreError::Corrupt(format!("analysis task failed: {e}")))?;
            *current = Some(Snapshot {
                generation,
                day: today,
                computed_at: now,
                took: started.elapsed(),
                taken: Instant::now(),
                customers,
            });
        }
        let Some(snapshot) = current.as_ref() else { return Ok((None, None)) };
        let (y, m, d) = snapshot.day.ymd();
        let info = AnalysisInfo {
            as_of: format!("{y:04}-{m:02}-{d:02}"),
            computed_at: kanta_store::rfc3339(snapshot.computed_at),
            stale: snapshot.generation != generation,
            customers: snapshot.customers.len(),
        };
        Ok((snapshot.customers.get(customer).cloned(), Some(info)))
    }
}

/// Every customer's summary as of `as_of`, keyed by external id. Orders count by their signed
/// amounts (`kanta_domain::purchase`): a completed order is a purchase, a refunded one a return
/// (as a negative line is in `kanta analyze`), a cancelled one is left out.
pub fn summaries(facts: &[OrderFact], as_of: Day) -> HashMap<String, Summary> {
    let mut aggregator = Aggregator::new();
    for f in facts {
        let Some(amount) = purchase::signed_amount(f.status, f.amount) else { continue };
        let amount = Money::from_raw(amount);
        // A fact is a whole order and order ids are unique in the store, so each fact is its
        // own order: no order id is needed to group lines (and none is looked up).
        let line = OrderLine { customer: f.customer.as_bytes(), order: None, time: Timestamp::from(f.time), amount };
        if aggregator.push(line).is_err() {
            continue;
        }
    }
    let base = aggregator.finish();
    let options = AnalysisOptions { as_of: Some(as_of), ..AnalysisOptions::default() };
    let Ok(analysis) = analyze(&base, &options) else { return HashMap::new() };
    analysis.customers.iter().map(|c| (String::from_utf8_lossy(base.id(c.customer)).into_owned(), summary(c))).collect()
}

fn summary(c: &CustomerSummary) -> Summary {
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
        r: c.r,
        f: c.f,
        m: c.m,
        segment: c.segment.name(),
        stage: c.stage.name(),
    }
}

#[cfg(test)]
mod tests {
    use kanta_store::record::OrderStatus;

    use super::*;

    fn fact(customer: &str, order: &str, day: i64, amount: i64, status: OrderStatus) -> OrderFact {
        let time = kanta_domain::Timestamp::from_micros(day * 86_400_000_000);
        OrderFact { customer: customer.into(), order: order.into(), time, amount, status }
    }

    #[test]
    fn summaries_follow_the_analyze_definitions_and_order_statuses() {
        let facts = [
            fact("a", "1", 100, 100_000, OrderStatus::Completed),
            fact("a", "2", 110, 200_000, OrderStatus::Completed),
            fact("a", "3", 110, 50_000, OrderStatus::Completed),
            fact("a", "4", 120, 70_000, OrderStatus::Refunded),
            fact("a", "5", 125, 90_000, OrderStatus::Cancelled),
            fact("b", "6", 130, 10_000, OrderStatus::Completed),
        ];
        let s = summaries(&facts, Day(140));
        let a = &s["a"];
        assert_eq!((a.orders, a.frequency, a.recency, a.t, a.days_since_last), (3, 1, 10, 40, 30));
        assert_eq!((a.revenue, a.monetary, a.returns, a.returned), (35.0, 25.0, 1, 7.0));
        assert_eq!(a.first_purchase, "1970-04-11T00:00:00Z");
        let b = &s["b"];
        assert_eq!((b.orders, b.frequency, b.t), (1, 0, 10));
        assert_eq!(s.len(), 2);
    }
}
