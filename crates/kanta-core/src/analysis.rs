//! Per-customer summaries and the business summary, from a [`CustomerBase`].
//!
//! # The BTYD summary
//! The columns `frequency`, `recency`, `T` and `monetary` follow `lifetimes`'
//! `summary_data_from_transaction_data` exactly:
//!
//! ```text
//! purchase period = a calendar day with at least one purchase (same-day orders merge)
//! frequency       = number of purchase periods − 1           (repeat purchase periods)
//! recency         = last period − first period                (in days; weeks = days / 7)
//! T               = as_of − first period                      (in days; weeks = days / 7)
//! monetary        = mean value of the repeat periods          (0 when frequency = 0)
//! ```
//!
//! Orders after `as_of` are ignored. What an order is follows from the sign of its amount
//! (`kanta_domain::purchase::Kind`). An order whose lines sum to a negative amount is a return:
//! it is counted in `returns` / `returned`, never as a purchase. Zero-amount orders are dropped
//! unless `keep_zero` is set (then they are purchases of value 0).

use kanta_domain::purchase::Kind;
use serde::{Deserialize, Serialize};

use crate::aggregate::CustomerBase;
use crate::lifecycle::{Stage, StageRules, lapse_threshold};
use crate::money::Money;
use crate::rfm::{Quintiles, Segment, fm_score};
use crate::summary::groups;
pub use crate::summary::{ConcentrationSums, MAX_COHORT_MONTHS, SummaryParts};
use crate::time::{Day, Timestamp};
use std::collections::HashMap;

/// How to analyse a customer base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysisOptions {
    /// The observation end (inclusive); `None` takes the day of the last order.
    pub as_of: Option<Day>,
    /// Count zero-amount orders as purchases.
    pub keep_zero: bool,
    /// Override the lapse threshold `G` (see [`crate::lifecycle`]).
    pub lapse_days: Option<u32>,
    /// Orders from which a recent customer is `loyal`.
    pub loyal_orders: u32,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions { as_of: None, keep_zero: false, lapse_days: None, loyal_orders: 4 }
    }
}

/// One customer's summary: a row of `customers.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSummary {
    /// Index of the customer in the [`CustomerBase`] (for the id).
    pub customer: u32,
    /// Time of the first purchase.
    pub first_purchase: Timestamp,
    /// Time of the last purchase.
    pub last_purchase: Timestamp,
    /// Number of purchase orders.
    pub orders: u32,
    /// Sum of purchase order amounts (returns excluded).
    pub revenue: Money,
    /// Repeat purchase periods (days with purchases − 1).
    pub frequency: u32,
    /// Days from the first to the last purchase day.
    pub recency_days: i32,
    /// Days from the first purchase day to `as_of`.
    pub t_days: i32,
    /// Mean value of the repeat purchase periods (0 when there are none): `repeat_value` as
    /// a float divided by `frequency`.
    pub monetary: f64,
    /// The value of the orders on the repeat purchase days (exact).
    pub repeat_value: Money,
    /// Number of return orders.
    pub returns: u32,
    /// Total amount returned (positive).
    pub returned: Money,
    /// Purchase revenue in the 365 days up to `as_of`.
    pub revenue_12m: Money,
    /// Days from the last purchase day to `as_of`.
    pub days_since_last: i32,
    /// Days from the first to the second purchase day, if there is one.
    pub first_repeat_gap: Option<i32>,
    /// Recency score 1–5.
    pub r: u8,
    /// Frequency score 1–5 (on orders).
    pub f: u8,
    /// Monetary score 1–5 (on revenue).
    pub m: u8,
    /// Named RFM segment.
    pub segment: Segment,
    /// Lifecycle stage.
    pub stage: Stage,
}

impl CustomerSummary {
    /// Average order value.
    pub fn average_order_value(&self) -> f64 {
        self.revenue.to_f64() / f64::from(self.orders.max(1))
    }
}

/// Everything `kanta analyze` computes.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The observation end used.
    pub as_of: Day,
    /// One summary per customer with at least one purchase, in first-seen order.
    pub customers: Vec<CustomerSummary>,
    /// The business-level summary.
    pub summary: BusinessSummary,
}

/// Why an analysis could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnalysisError {
    /// No order at all was read.
    #[error("the input has no orders")]
    NoOrders,
    /// Orders exist, but none is a purchase on or before `as_of`.
    #[error("no purchase on or before {0}; check --as-of and the amount column")]
    NoPurchases(Day),
}

/// The business summary: `summary.json` and the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessSummary {
    /// Observation end, `YYYY-MM-DD`.
    pub as_of: String,
    /// Customers with at least one purchase.
    pub customers: u64,
    /// Purchase orders.
    pub orders: u64,
    /// Purchase revenue (returns excluded).
    pub revenue: Money,
    /// Share of customers with exactly one order.
    pub one_time_share: f64,
    /// Revenue / orders.
    pub average_order_value: f64,
    /// Returns, reported apart from purchases.
    pub returns: Returns,
    /// Zero-amount orders that were dropped (see `--keep-zero`).
    pub zero_amount_orders_dropped: u64,
    /// Orders after `as_of` that were ignored.
    pub orders_after_as_of: u64,
    /// The repeat-purchase ladder, k = 1…5.
    pub repeat_ladder: Vec<LadderStep>,
    /// Revenue concentration.
    pub concentration: Concentration,
    /// Monthly cohort retention.
    pub cohorts: Cohorts,
    /// Time between purchases.
    pub time_between_purchases: TimeBetween,
    /// Revenue at risk from lapsing and lost customers.
    pub revenue_at_risk: RevenueAtRisk,
    /// Customers and revenue per RFM segment, best segment first.
    pub segments: Vec<GroupRow>,
    /// Customers and revenue per lifecycle stage.
    pub stages: Vec<GroupRow>,
    /// The lapse threshold `G` used for the stages, in days.
    pub lapse_days: u32,
}

/// Return orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Returns {
    /// Number of return orders.
    pub orders: u64,
    /// Total amount returned (positive).
    pub amount: Money,
    /// Customers with at least one return.
    pub customers: u64,
    /// Customers who only returned (their purchase predates the data).
    pub customers_without_purchases: u64,
    /// Returned amount / purchase revenue.
    pub share_of_revenue: f64,
}

/// Of the customers with `purchases` orders or more, how many made one more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LadderStep {
    /// k.
    pub purchases: u32,
    /// Customers with at least k orders.
    pub customers: u64,
    /// Customers with at least k + 1 orders.
    pub made_next: u64,
    /// made_next / customers (0 when nobody reached k).
    pub share: f64,
}

/// How concentrated revenue is in the best customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concentration {
    /// Revenue share of the top 1 % of customers by revenue (at least one customer).
    pub top_1pct_share: f64,
    /// Revenue share of the top 10 %.
    pub top_10pct_share: f64,
    /// Revenue share of the top 20 %.
    pub top_20pct_share: f64,
    /// Gini coefficient of customer revenue: `(2 Σ i·x₍ᵢ₎)/(n Σ x) − (n+1)/n`, x ascending.
    pub gini: f64,
    /// Lorenz curve: (share of customers, share of revenue) at 0 %, 1 %, …, 100 %.
    pub lorenz: Vec<[f64; 2]>,
    /// Average order value of the top 10 % of customers.
    pub top_10pct_aov: f64,
    /// Average order value of everyone else.
    pub rest_aov: f64,
    /// top_10pct_aov / rest_aov (0 when the rest has no orders).
    pub top_10pct_aov_ratio: f64,
}

/// Monthly cohorts: `active[c][k]` customers of cohort `c` bought in month `c + k`.
///
/// The table covers at most the last [`MAX_COHORT_MONTHS`] months up to the observation end:
/// its size grows with the square of the months covered, so one order dated in year 1 would
/// otherwise ask for a matrix of 24,000² cells. Customers whose first purchase is older are
/// counted in `older_customers`, not dropped silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cohorts {
    /// Cohort months, `YYYY-MM`, oldest first.
    pub months: Vec<String>,
    /// Customers whose first purchase falls before the first month of the table.
    pub older_customers: u64,
    /// Customers whose first purchase fell in each month.
    pub sizes: Vec<u64>,
    /// Active customers by cohort and months since the first purchase.
    pub active: Vec<Vec<u64>>,
    /// `active / size`.
    pub retention: Vec<Vec<f64>>,
}

/// A bucket of the gap histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapBin {
    /// e.g. `8–14 days`.
    pub label: String,
    /// Smallest gap in the bucket (days).
    pub from: u32,
    /// Largest gap in the bucket (days), `None` for the open last bucket.
    pub to: Option<u32>,
    /// Customers whose first-to-second gap falls in the bucket.
    pub customers: u64,
}

/// Time between purchases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeBetween {
    /// Customers with a second purchase day.
    pub customers_with_second: u64,
    /// Median days from the first to the second purchase day.
    pub median_days_first_to_second: Option<f64>,
    /// Median days between consecutive purchase days, over all repeat purchases.
    pub median_days_between_purchases: Option<f64>,
    /// Distribution of days from the first to the second purchase.
    pub histogram: Vec<GapBin>,
}

/// Revenue at risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevenueAtRisk {
    /// Customers now lapsing.
    pub lapsing_customers: u64,
    /// Their revenue in the last 12 months.
    pub lapsing_revenue_12m: Money,
    /// Customers now lost.
    pub lost_customers: u64,
    /// Their revenue in the last 12 months.
    pub lost_revenue_12m: Money,
    /// If X % more of the lapsing customers were kept, the revenue kept.
    pub what_if: Vec<WhatIf>,
    /// The assumptions behind `what_if`, in words.
    pub assumptions: String,
}

/// One row of the retention what-if table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatIf {
    /// Share of lapsing customers kept (0.05 = 5 %).
    pub kept_share: f64,
    /// Customers that is.
    pub customers: u64,
    /// Revenue over the next 12 months from them.
    pub revenue: Money,
}

/// Customers and revenue of one segment or stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    /// Segment or stage name.
    pub name: String,
    /// Customers in it.
    pub customers: u64,
    /// Share of all customers.
    pub share: f64,
    /// Their purchase revenue.
    pub revenue: Money,
    /// Share of all revenue.
    pub revenue_share: f64,
}

/// The longest gap the gap histogram resolves day by day; longer gaps share the last bucket
/// (the push-down's histogram query caps its gaps here too).
pub const GAP_HIST_DAYS: usize = 3_660;

/// Analyses a customer base: [`analyze_customers`], then the business summary.
pub fn analyze(base: &CustomerBase, options: &AnalysisOptions) -> Result<Analysis, AnalysisError> {
    analyze_customers(base, options).map(CustomerAnalysis::finish)
}

/// An analysis before its business summary: every customer's summary, scores and stage, and
/// what the business summary needs besides them. `kanta analyze` writes the customer tables
/// while the summary is built ([`CustomerAnalysis::summary`]) on another core.
#[derive(Debug, Clone)]
pub struct CustomerAnalysis {
    /// The observation end used.
    pub as_of: Day,
    /// One summary per customer with at least one purchase, in first-seen order.
    pub customers: Vec<CustomerSummary>,
    returns: Returns,
    gap_hist: Vec<u64>,
    activity: Vec<(i32, u32)>,
    lapse_days: u32,
    zero_dropped: u64,
    after_as_of: u64,
}

impl CustomerAnalysis {
    /// Marks the customers flagged by `slipping` (indexed like `customers`) as
    /// [`Stage::Slipping`] when the rules call them new, repeat or loyal. Lapsing and lost
    /// customers keep their stage, so revenue at risk is unchanged.
    pub fn mark_slipping(&mut self, slipping: &[bool]) {
        mark_slipping(&mut self.customers, slipping);
    }

    /// The business summary of the customers as they are now.
    pub fn summary(&self) -> BusinessSummary {
        BusinessSummary::build(
            &self.customers,
            self.as_of,
            self.returns.clone(),
            &self.gap_hist,
            &self.activity,
            self.lapse_days,
            self.zero_dropped,
            self.after_as_of,
        )
    }

    /// The analysis with `summary`, which [`CustomerAnalysis::summary`] built.
    pub fn with_summary(self, summary: BusinessSummary) -> Analysis {
        Analysis { as_of: self.as_of, customers: self.customers, summary }
    }

    /// The histogram of days between consecutive purchase days over all customers (`[g]` =
    /// gaps of `g` days; the last bucket holds the longer ones): what the lapse threshold is
    /// the 90th percentile of ([`crate::lifecycle::lapse_threshold`]).
    pub fn gap_histogram(&self) -> &[u64] {
        &self.gap_hist
    }

    /// The analysis with its summary built now.
    pub fn finish(self) -> Analysis {
        let summary = self.summary();
        self.with_summary(summary)
    }
}

/// The per-customer part of [`analyze`]: each customer's summary, RFM scores, segment and
/// rule-based stage.
pub fn analyze_customers(base: &CustomerBase, options: &AnalysisOptions) -> Result<CustomerAnalysis, AnalysisError> {
    let max_time = base.max_time().ok_or(AnalysisError::NoOrders)?;
    let as_of = options.as_of.unwrap_or_else(|| max_time.day());
    let window_start = Day(as_of.0 - 364);

    let mut customers = Vec::with_capacity(base.customers());
    let mut gap_hist = vec![0u64; GAP_HIST_DAYS + 1];
    let mut returns =
        Returns { orders: 0, amount: Money::ZERO, customers: 0, customers_without_purchases: 0, share_of_revenue: 0.0 };
    let mut zero_dropped = 0u64;
    let mut after_as_of = 0u64;
    // Cohort activity as (cohort month, months since) pairs; turned into a matrix below.
    let mut activity: Vec<(i32, u32)> = Vec::new();

    for index in 0..base.customers() as u32 {
        let orders = base.orders_of(index);
        let mut acc = Walk::default();
        for (i, order) in orders.iter().enumerate() {
            let day = order.time.day();
            if day > as_of {
                after_as_of += (orders.len() - i) as u64;
                break;
            }
            match Kind::of(order.amount.raw()) {
                Kind::Return => {
                    acc.returns += 1;
                    acc.returned += -order.amount;
                    continue;
                }
                Kind::Zero if !options.keep_zero => {
                    zero_dropped += 1;
                    continue;
                }
                Kind::Zero | Kind::Purchase => {}
            }
            acc.purchase(order.time, day, order.amount, window_start, &mut gap_hist, &mut activity);
        }
        if acc.returns > 0 {
            returns.orders += u64::from(acc.returns);
            returns.amount += acc.returned;
            returns.customers += 1;
        }
        let Some((first_time, first_day)) = acc.first else {
            if acc.returns > 0 {
                returns.customers_without_purchases += 1;
            }
            continue;
        };
        let frequency = acc.periods - 1;
        customers.push(CustomerSummary {
            customer: index,
            first_purchase: first_time,
            last_purchase: acc.last_time,
            orders: acc.orders,
            revenue: acc.revenue,
            frequency,
            recency_days: acc.last_day.0 - first_day.0,
            t_days: as_of.0 - first_day.0,
            monetary: if frequency == 0 { 0.0 } else { acc.repeat_value.to_f64() / f64::from(frequency) },
            repeat_value: acc.repeat_value,
            returns: acc.returns,
            returned: acc.returned,
            revenue_12m: acc.revenue_12m,
            days_since_last: as_of.0 - acc.last_day.0,
            first_repeat_gap: acc.first_repeat_gap,
            r: 1,
            f: 1,
            m: 1,
            segment: Segment::Lost,
            stage: Stage::Lost,
        });
    }
    if customers.is_empty() {
        return Err(AnalysisError::NoPurchases(as_of));
    }

    let lapse_days = options.lapse_days.unwrap_or_else(|| lapse_threshold(&gap_hist));
    let rules = StageRules { lapse_days, loyal_orders: options.loyal_orders };
    score(&mut customers, &rules);

    Ok(CustomerAnalysis { as_of, customers, returns, gap_hist, activity, lapse_days, zero_dropped, after_as_of })
}

/// The distinct purchase days of customer `index` up to `as_of`, oldest first, by the same rules
/// as [`analyze`] (returns are not purchases; zero-amount orders count only with `keep_zero`),
/// so `frequency = purchase_days(…).len() − 1`. The holdout evaluation splits these at a date.
pub fn purchase_days(base: &CustomerBase, index: u32, as_of: Day, keep_zero: bool) -> Vec<Day> {
    let mut days: Vec<Day> = Vec::new();
    for order in base.orders_of(index) {
        let day = order.time.day();
        if day > as_of {
            break;
        }
        match Kind::of(order.amount.raw()) {
            Kind::Return => continue,
            Kind::Zero if !keep_zero => continue,
            Kind::Zero | Kind::Purchase => {}
        }
        if days.last() != Some(&day) {
            days.push(day);
        }
    }
    days
}

/// Running state of one customer's walk through their orders.
#[derive(Default)]
struct Walk {
    first: Option<(Timestamp, Day)>,
    last_time: Timestamp,
    last_day: Day,
    periods: u32,
    orders: u32,
    revenue: Money,
    repeat_value: Money,
    revenue_12m: Money,
    returns: u32,
    returned: Money,
    first_repeat_gap: Option<i32>,
    /// Month index of the first purchase (the cohort), set with `first`.
    cohort: i32,
    last_active_offset: Option<u32>,
}

impl Walk {
    fn purchase(
        &mut self,
        time: Timestamp,
        day: Day,
        amount: Money,
        window_start: Day,
        gap_hist: &mut [u64],
        activity: &mut Vec<(i32, u32)>,
    ) {
        self.orders += 1;
        self.revenue += amount;
        if day >= window_start {
            self.revenue_12m += amount;
        }
        // A new purchase day may start a new month of activity; another order on the same day cannot.
        let new_day = match self.first {
            None => {
                self.first = Some((time, day));
                self.periods = 1;
                self.cohort = day.month_index();
                true
            }
            Some((_, first_day)) => {
                let new_day = day != self.last_day;
                if new_day {
                    let gap = (day.0 - self.last_day.0) as usize;
                    gap_hist[gap.min(GAP_HIST_DAYS)] += 1;
                    if self.periods == 1 {
                        self.first_repeat_gap = Some(day.0 - first_day.0);
                    }
                    self.periods += 1;
                }
                if self.periods > 1 {
                    self.repeat_value += amount;
                }
                new_day
            }
        };
        self.last_time = time;
        self.last_day = day;
        if new_day {
            let offset = (day.month_index() - self.cohort) as u32;
            if self.last_active_offset != Some(offset) {
                self.last_active_offset = Some(offset);
                activity.push((self.cohort, offset));
            }
        }
    }
}

/// Fills in R, F, M, the segment and the stage.
fn score(customers: &mut [CustomerSummary], rules: &StageRules) {
    let days = Quintiles::new(&mut customers.iter().map(|c| c.days_since_last).collect::<Vec<_>>());
    let orders = Quintiles::new(&mut customers.iter().map(|c| c.orders).collect::<Vec<_>>());
    let revenue = Quintiles::new(&mut customers.iter().map(|c| c.revenue).collect::<Vec<_>>());
    for c in customers.iter_mut() {
        c.r = days.lower_better(c.days_since_last);
        c.f = orders.higher_better(c.orders);
        c.m = revenue.higher_better(c.revenue);
        c.segment = Segment::from_scores(c.r, fm_score(c.f, c.m));
        c.stage = rules.stage(c.orders, c.days_since_last);
    }
}

impl BusinessSummary {
    #[allow(clippy::too_many_arguments)] // one private call site; a struct would only rename the arguments
    fn build(
        customers: &[CustomerSummary],
        as_of: Day,
        returns: Returns,
        gap_hist: &[u64],
        activity: &[(i32, u32)],
        lapse_days: u32,
        zero_amount_orders_dropped: u64,
        orders_after_as_of: u64,
    ) -> BusinessSummary {
        // Sorting every customer by revenue is the largest part; on a second core it overlaps
        // with the other sections (a third of `analyze` on two million customers).
        std::thread::scope(|scope| {
            let sorted =
                scope.spawn(|| ConcentrationSums::of(customers.iter().map(|c| (c.revenue.raw(), c.orders)).collect()));
            let mut orders_at_least = [0u64; 7];
            let mut first_months: HashMap<i32, u64> = HashMap::new();
            let mut first_gaps: HashMap<i32, u64> = HashMap::new();
            let mut at_risk = [(0u64, Money::ZERO); 2];
            let (mut orders, mut revenue, mut one_time) = (0u64, Money::ZERO, 0u64);
            for c in customers {
                orders += u64::from(c.orders);
                revenue += c.revenue;
                one_time += u64::from(c.orders == 1);
                for (k, slot) in orders_at_least.iter_mut().enumerate().skip(1) {
                    *slot += u64::from(c.orders as usize >= k);
                }
                *first_months.entry(c.first_purchase.day().month_index()).or_default() += 1;
                if let Some(gap) = c.first_repeat_gap {
                    *first_gaps.entry(gap).or_default() += 1;
                }
                let risk = match c.stage {
                    Stage::Lapsing => Some(0),
                    Stage::Lost => Some(1),
                    _ => None,
                };
                if let Some(i) = risk {
                    at_risk[i].0 += 1;
                    at_risk[i].1 += c.revenue_12m;
                }
            }
            let mut first_gaps: Vec<(i32, u64)> = first_gaps.into_iter().collect();
            first_gaps.sort_unstable();
            BusinessSummary::from_parts(SummaryParts {
                as_of,
                customers: customers.len() as u64,
                orders,
                revenue,
                one_time,
                returns,
                zero_amount_orders_dropped,
                orders_after_as_of,
                orders_at_least,
                // A panic in the thread is a bug; it travels on as a panic.
                concentration: sorted.join().unwrap_or_else(|payload| std::panic::resume_unwind(payload)),
                first_months: first_months.into_iter().collect(),
                activity: activity.iter().map(|&(c, o)| (c, o, 1)).collect(),
                first_gaps,
                gap_hist: gap_hist.to_vec(),
                at_risk,
                segments: group_sums(customers, Segment::ALL.len(), |c| c.segment as usize),
                stages: group_sums(customers, Stage::ALL.len(), |c| c.stage as usize),
                lapse_days,
            })
        })
    }
}

/// Customers and their revenue per group (`index_of` gives a customer's group, below `groups`).
fn group_sums(
    customers: &[CustomerSummary],
    groups: usize,
    index_of: impl Fn(&CustomerSummary) -> usize,
) -> Vec<(u64, Money)> {
    let mut acc = vec![(0u64, Money::ZERO); groups];
    for c in customers {
        let slot = &mut acc[index_of(c)];
        slot.0 += 1;
        slot.1 += c.revenue;
    }
    acc
}

impl Analysis {
    /// Marks the customers flagged by `slipping` (indexed like `customers`) as
    /// [`Stage::Slipping`] when the rules call them new, repeat or loyal, and recounts the stage
    /// table. Lapsing and lost customers keep their stage, so revenue at risk is unchanged.
    pub fn mark_slipping(&mut self, slipping: &[bool]) {
        mark_slipping(&mut self.customers, slipping);
        let stages = group_sums(&self.customers, Stage::ALL.len(), |c| c.stage as usize);
        self.summary.stages =
            groups(&stages, &Stage::ALL.map(Stage::name), self.customers.len() as u64, self.summary.revenue);
    }
}

fn mark_slipping(customers: &mut [CustomerSummary], slipping: &[bool]) {
    for (c, &flag) in customers.iter_mut().zip(slipping) {
        if flag && matches!(c.stage, Stage::New | Stage::Repeat | Stage::Loyal) {
            c.stage = Stage::Slipping;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Aggregator, OrderLine};
    use crate::time::TimeFormat;

    /// (customer, order, date, amount in cents)
    fn base(lines: &[(&str, &str, &str, i64)]) -> CustomerBase {
        let mut agg = Aggregator::new();
        for &(customer, order, date, cents) in lines {
            agg.push(OrderLine {
                customer: customer.as_bytes(),
                order: Some(order.as_bytes()),
                time: TimeFormat::Auto.parse(date).unwrap(),
                amount: Money::from_raw(cents * 100),
            })
            .unwrap();
        }
        agg.finish()
    }

    fn find<'a>(b: &CustomerBase, a: &'a Analysis, id: &str) -> &'a CustomerSummary {
        a.customers.iter().find(|c| b.id(c.customer) == id.as_bytes()).unwrap()
    }

    #[test]
    fn purchase_days_agree_with_the_summary() {
        let b = base(&[
            ("a", "1", "2024-01-01T09:00:00", 1000),
            ("a", "2", "2024-01-01T18:00:00", 500),
            ("a", "3", "2024-01-05", -300),
            ("a", "4", "2024-01-11", 0),
            ("a", "5", "2024-01-31", 4000),
            ("a", "6", "2024-03-01", 4000),
        ]);
        let as_of = Day::parse("2024-02-15").unwrap();
        let a = analyze(&b, &AnalysisOptions { as_of: Some(as_of), ..AnalysisOptions::default() }).unwrap();
        let days = purchase_days(&b, 0, as_of, false);
        assert_eq!(days, vec![Day::parse("2024-01-01").unwrap(), Day::parse("2024-01-31").unwrap()]);
        assert_eq!(days.len() as u32 - 1, find(&b, &a, "a").frequency);
        assert_eq!(purchase_days(&b, 0, as_of, true).len(), 3, "the zero-amount order counts with keep_zero");
    }

    #[test]
    fn btyd_columns_follow_lifetimes_definitions() {
        // Two orders on 2024-01-01 form one period; 01-11 and 01-31 are repeat periods.
        let b = base(&[
            ("a", "1", "2024-01-01T09:00:00", 1000),
            ("a", "2", "2024-01-01T18:00:00", 500),
            ("a", "3", "2024-01-11", 2000),
            ("a", "4", "2024-01-31", 4000),
            ("a", "5", "2024-03-01", 9900), // after as_of: ignored
            ("b", "6", "2024-01-21", 700),
        ]);
        let options = AnalysisOptions { as_of: Day::parse("2024-02-10"), ..AnalysisOptions::default() };
        let a = analyze(&b, &options).unwrap();
        let ca = find(&b, &a, "a");
        assert_eq!((ca.orders, ca.frequency, ca.recency_days, ca.t_days), (4, 2, 30, 40));
        assert_eq!(ca.revenue, Money::from_raw(750_000));
        // Repeat periods are worth 20.00 and 40.00.
        assert_eq!(ca.monetary, 30.0);
        assert_eq!(ca.first_repeat_gap, Some(10));
        assert_eq!(ca.days_since_last, 10);
        let cb = find(&b, &a, "b");
        assert_eq!((cb.frequency, cb.recency_days, cb.t_days, cb.monetary), (0, 0, 20, 0.0));
        assert_eq!(a.summary.orders_after_as_of, 1);
    }

    #[test]
    fn cohorts_count_customers_active_in_each_later_month() {
        let b = base(&[
            ("a", "1", "2024-01-05", 100),
            ("a", "2", "2024-01-25", 100),
            ("a", "3", "2024-03-02", 100),
            ("b", "4", "2024-01-31", 100),
            ("b", "5", "2024-02-01", 100),
            ("c", "6", "2024-02-15", 100),
        ]);
        let a = analyze(&b, &AnalysisOptions::default()).unwrap();
        let c = &a.summary.cohorts;
        assert_eq!(c.months, ["2024-01", "2024-02", "2024-03"]);
        assert_eq!(c.sizes, [2, 1, 0]);
        assert_eq!(c.active, vec![vec![2, 1, 1], vec![1, 0], vec![0]]);
        assert_eq!(c.older_customers, 0);
    }

    #[test]
    fn cohorts_cover_at_most_twenty_years_and_count_older_first_purchases() {
        // Regression (issue 16): one order in year 1 asked for a 24,300 × 24,300 matrix.
        let b = base(&[
            ("ancient", "1", "0001-01-01", 100),
            ("ancient", "2", "2024-06-10", 100),
            ("old", "3", "2004-06-30", 100),
            ("edge", "4", "2004-07-01", 100),
            ("new", "5", "2024-06-01", 100),
        ]);
        let options = AnalysisOptions { as_of: Day::parse("2024-06-30"), ..AnalysisOptions::default() };
        let a = analyze(&b, &options).unwrap();
        let c = &a.summary.cohorts;
        assert_eq!(c.months.len(), MAX_COHORT_MONTHS as usize);
        assert_eq!((c.months[0].as_str(), c.months[239].as_str()), ("2004-07", "2024-06"));
        assert_eq!(c.older_customers, 2, "year 1 and 2004-06");
        assert_eq!((c.sizes[0], c.sizes[239], c.sizes.iter().sum::<u64>()), (1, 1, 2));
        assert_eq!(c.active.len(), 240);
        assert_eq!((c.active[0].len(), c.active[239].len()), (240, 1));
        // The ancient customer's June 2024 purchase belongs to a cohort outside the table.
        assert_eq!(c.active[239], [1]);
    }

    #[test]
    fn concentration_and_ladder_on_hand_computed_values() {
        // Ten customers with revenue 1..=10 (one order each, except the best with two).
        let mut lines = Vec::new();
        let ids: Vec<String> = (1..=10).map(|i| format!("c{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            lines.push((id.as_str(), "", "2024-01-01", (i as i64 + 1) * 100));
        }
        let orders: Vec<String> = (0..11).map(|i| format!("o{i}")).collect();
        let mut with_orders: Vec<(&str, &str, &str, i64)> =
            lines.iter().enumerate().map(|(i, &(c, _, d, v))| (c, orders[i].as_str(), d, v)).collect();
        with_orders[9].3 = 600; // c10: 6.00 + 4.00 on a second day
        with_orders.push(("c10", orders[10].as_str(), "2024-01-02", 400));
        let a = analyze(&base(&with_orders), &AnalysisOptions::default()).unwrap();
        let c = &a.summary.concentration;
        // Total 55; top 1 customer = 10 → 10/55; top 2 (20 %) = 19/55.
        assert!((c.top_1pct_share - 10.0 / 55.0).abs() < 1e-12);
        assert!((c.top_10pct_share - 10.0 / 55.0).abs() < 1e-12);
        assert!((c.top_20pct_share - 19.0 / 55.0).abs() < 1e-12);
        // Gini of 1..=10: 2·Σ i·i /(10·55) − 11/10 = 2·385/550 − 1.1 = 0.3.
        assert!((c.gini - 0.3).abs() < 1e-12);
        assert_eq!(c.lorenz.len(), 101);
        assert_eq!(c.lorenz[10], [0.1, 1.0 / 55.0]);
        assert_eq!(c.lorenz[100], [1.0, 1.0]);
        // AOV: top 10 % = 10.00 / 2 orders = 5; the rest = 45 / 9 = 5.
        assert!((c.top_10pct_aov_ratio - 1.0).abs() < 1e-12);
        let ladder: Vec<(u64, u64)> = a.summary.repeat_ladder.iter().map(|l| (l.customers, l.made_next)).collect();
        assert_eq!(ladder, [(10, 1), (1, 0), (0, 0), (0, 0), (0, 0)]);
        assert_eq!(a.summary.repeat_ladder[0].share, 0.1);
        assert_eq!(a.summary.time_between_purchases.median_days_first_to_second, Some(1.0));
    }

    #[test]
    fn returns_and_zero_orders_are_reported_not_counted_as_purchases() {
        let b = base(&[
            ("a", "1", "2024-01-01", 1000),
            ("a", "2", "2024-01-02", -300),
            ("b", "3", "2024-01-03", 0),
            ("c", "4", "2024-01-04", -50),
        ]);
        let a = analyze(&b, &AnalysisOptions::default()).unwrap();
        assert_eq!(a.customers.len(), 1);
        let r = &a.summary.returns;
        assert_eq!(
            (r.orders, r.amount, r.customers, r.customers_without_purchases),
            (2, Money::from_raw(35_000), 2, 1)
        );
        assert_eq!(a.summary.zero_amount_orders_dropped, 1);
        let kept = analyze(&b, &AnalysisOptions { keep_zero: true, ..AnalysisOptions::default() }).unwrap();
        assert_eq!(kept.customers.len(), 2);
        assert_eq!(
            analyze(&Aggregator::new().finish(), &AnalysisOptions::default()).unwrap_err(),
            AnalysisError::NoOrders
        );
        assert_eq!(
            analyze(&b, &AnalysisOptions { as_of: Day::parse("2023-01-01"), ..AnalysisOptions::default() })
                .unwrap_err(),
            AnalysisError::NoPurchases(Day::parse("2023-01-01").unwrap())
        );
    }

    #[test]
    fn slipping_marks_active_stages_only_and_both_paths_give_one_summary() {
        let b = base(&[
            ("new", "1", "2024-06-25", 1000),
            ("repeat", "2", "2024-05-01", 1000),
            ("repeat", "3", "2024-06-20", 2000),
            ("old", "4", "2021-01-01", 500),
            ("old", "5", "2021-02-01", 700),
        ]);
        let options = AnalysisOptions { as_of: Day::parse("2024-06-30"), ..AnalysisOptions::default() };
        let flags = [true, true, true];
        let mut one = analyze(&b, &options).unwrap();
        let before: Vec<Stage> = one.customers.iter().map(|c| c.stage).collect();
        assert_eq!(before, [Stage::New, Stage::Repeat, Stage::Lost]);
        one.mark_slipping(&flags);
        let after: Vec<Stage> = one.customers.iter().map(|c| c.stage).collect();
        assert_eq!(after, [Stage::Slipping, Stage::Slipping, Stage::Lost], "lost customers keep their stage");
        let count =
            |a: &Analysis, stage: Stage| a.summary.stages.iter().find(|g| g.name == stage.name()).unwrap().customers;
        assert_eq!((count(&one, Stage::Slipping), count(&one, Stage::New), count(&one, Stage::Lost)), (2, 0, 1));
        // `kanta analyze` marks the customers first and builds the summary afterwards.
        let mut two = analyze_customers(&b, &options).unwrap();
        two.mark_slipping(&flags);
        let summary = two.summary();
        let two = two.with_summary(summary);
        assert_eq!(two.summary, one.summary);
        assert_eq!(two.customers.iter().map(|c| c.stage).collect::<Vec<_>>(), after);
    }
}
