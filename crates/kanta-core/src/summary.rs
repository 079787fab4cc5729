//! The business summary from its parts: counts and sums small enough to come out of a
//! `GROUP BY`.
//!
//! `kanta analyze` on a file computes the parts from the customers in memory
//! ([`crate::analysis::analyze`]); the push-down to a database computes the same parts in the
//! engine (`kanta-warehouse`). Both finish them here, so the sections of `summary.json` are
//! defined once: what differs between the two paths is only how the counts are taken.

use crate::analysis::{
    BusinessSummary, Cohorts, Concentration, GapBin, GroupRow, LadderStep, Returns, RevenueAtRisk, TimeBetween, WhatIf,
};
use crate::money::Money;
use crate::time::Day;

/// Everything [`BusinessSummary`] is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryParts {
    /// The observation end.
    pub as_of: Day,
    /// Customers with at least one purchase.
    pub customers: u64,
    /// Purchase orders.
    pub orders: u64,
    /// Purchase revenue.
    pub revenue: Money,
    /// Customers with exactly one purchase order.
    pub one_time: u64,
    /// Return orders (`share_of_revenue` is filled in by [`BusinessSummary::from_parts`]).
    pub returns: Returns,
    /// Zero-amount orders dropped.
    pub zero_amount_orders_dropped: u64,
    /// Orders after `as_of`.
    pub orders_after_as_of: u64,
    /// `[k]` = customers with at least `k` purchase orders, k = 1…6 (`[0]` unused).
    pub orders_at_least: [u64; 7],
    /// The sums behind the concentration section.
    pub concentration: ConcentrationSums,
    /// Customers by the month of their first purchase (month index, `Day::month_index`).
    pub first_months: Vec<(i32, u64)>,
    /// Customers of cohort `.0` active in month `.0 + .1`, counted `.2` times.
    pub activity: Vec<(i32, u32, u64)>,
    /// Customers by days from their first to their second purchase day, ascending by days.
    pub first_gaps: Vec<(i32, u64)>,
    /// Gaps between consecutive purchase days over all customers (`[g]` = gaps of `g` days,
    /// the last bucket the longer ones).
    pub gap_hist: Vec<u64>,
    /// Customers and their revenue in the last 12 months, lapsing and lost (by the rules).
    pub at_risk: [(u64, Money); 2],
    /// Customers and revenue per RFM segment, in `Segment::ALL` order.
    pub segments: Vec<(u64, Money)>,
    /// Customers and revenue per stage, in `Stage::ALL` order.
    pub stages: Vec<(u64, Money)>,
    /// The lapse threshold used.
    pub lapse_days: u32,
}

impl BusinessSummary {
    /// The summary from its parts.
    pub fn from_parts(p: SummaryParts) -> BusinessSummary {
        let mut returns = p.returns;
        returns.share_of_revenue = ratio(returns.amount.to_f64(), p.revenue.to_f64());
        let segment_names = crate::rfm::Segment::ALL.map(crate::rfm::Segment::name);
        let stage_names = crate::lifecycle::Stage::ALL.map(crate::lifecycle::Stage::name);
        BusinessSummary {
            as_of: p.as_of.to_string(),
            customers: p.customers,
            orders: p.orders,
            revenue: p.revenue,
            one_time_share: ratio(p.one_time as f64, p.customers as f64),
            average_order_value: ratio(p.revenue.to_f64(), p.orders as f64),
            returns,
            zero_amount_orders_dropped: p.zero_amount_orders_dropped,
            orders_after_as_of: p.orders_after_as_of,
            repeat_ladder: ladder(&p.orders_at_least),
            concentration: p.concentration.finish(),
            cohorts: cohorts(&p.first_months, &p.activity, p.as_of),
            time_between_purchases: time_between(&p.first_gaps, &p.gap_hist),
            revenue_at_risk: revenue_at_risk(p.at_risk[0], p.at_risk[1]),
            segments: groups(&p.segments, &segment_names, p.customers, p.revenue),
            stages: groups(&p.stages, &stage_names, p.customers, p.revenue),
            lapse_days: p.lapse_days,
        }
    }
}

/// The revenue shares of the top 1, 10 and 20 % of customers.
pub const TOP_SHARES: [f64; 3] = [0.01, 0.10, 0.20];

/// The sums the concentration section is computed from, over the customers ranked by revenue
/// (descending; ties by more orders first).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConcentrationSums {
    /// Customers.
    pub n: u64,
    /// Their revenue, in money's raw units.
    pub total: i128,
    /// Their purchase orders.
    pub total_orders: u64,
    /// Revenue and orders of the top [`ConcentrationSums::top_count`] customers for each of
    /// [`TOP_SHARES`].
    pub top: [(i128, u64); 3],
    /// `[p − 1]` = revenue of the customers whose ascending rank first falls into the Lorenz
    /// point `p` ([`ConcentrationSums::lorenz_point`]), p = 1…100; cumulated by `finish`.
    pub lorenz: Vec<i128>,
    /// Σ ascending rank × revenue (raw units), for the Gini coefficient.
    pub weighted: f64,
}

impl ConcentrationSums {
    /// How many customers the top `share` of `n` is: ⌈n · share⌉, at least one.
    pub fn top_count(n: u64, share: f64) -> u64 {
        ((n as f64 * share).ceil() as u64).clamp(1, n.max(1)).min(n)
    }

    /// The first Lorenz point (1…100) whose cumulative revenue includes the customer of
    /// ascending rank `rank` (1-based) among `n`: point `p` sums the ranks up to ⌈p·n/100⌉, so
    /// it is ⌊100 (rank − 1) / n⌋ + 1.
    pub fn lorenz_point(rank: u64, n: u64) -> usize {
        (100 * (rank - 1) / n.max(1)) as usize + 1
    }

    /// The sums over customers' (revenue in raw units, orders) pairs in any order.
    pub fn of(mut by_revenue: Vec<(i64, u32)>) -> ConcentrationSums {
        // Descending by revenue; ties by more orders first, so the result does not depend on input order.
        by_revenue.sort_unstable_by(|a, b| b.cmp(a));
        let n = by_revenue.len() as u64;
        let mut sums = ConcentrationSums { n, lorenz: vec![0; 100], ..ConcentrationSums::default() };
        for (i, &(r, o)) in by_revenue.iter().enumerate() {
            sums.total += i128::from(r);
            sums.total_orders += u64::from(o);
            for (slot, share) in sums.top.iter_mut().zip(TOP_SHARES) {
                if (i as u64) < Self::top_count(n, share) {
                    slot.0 += i128::from(r);
                    slot.1 += u64::from(o);
                }
            }
        }
        for (i, &(r, _)) in by_revenue.iter().rev().enumerate() {
            let rank = i as u64 + 1;
            sums.weighted += rank as f64 * r as f64;
            sums.lorenz[Self::lorenz_point(rank, n) - 1] += i128::from(r);
        }
        sums
    }

    /// The concentration section.
    pub fn finish(&self) -> Concentration {
        let ConcentrationSums { n, total, total_orders, top, ref lorenz, weighted } = *self;
        let share = |rev: i128| if total == 0 { 0.0 } else { rev as f64 / total as f64 };
        let mut points = Vec::with_capacity(101);
        points.push([0.0, 0.0]);
        let mut cumulative: i128 = 0;
        if n > 0 {
            for (p, &r) in lorenz.iter().enumerate() {
                cumulative += r;
                points.push([(p + 1) as f64 / 100.0, share(cumulative)]);
            }
        }
        let gini = if total <= 0 || n == 0 {
            0.0
        } else {
            2.0 * weighted / (n as f64 * total as f64) - (n as f64 + 1.0) / n as f64
        };
        let (top10, top10_orders) = top[1];
        let rest_orders = total_orders - top10_orders;
        let top_10pct_aov = ratio(top10 as f64, top10_orders as f64) / crate::money::SCALE as f64;
        let rest_aov = ratio((total - top10) as f64, rest_orders as f64) / crate::money::SCALE as f64;
        Concentration {
            top_1pct_share: share(top[0].0),
            top_10pct_share: share(top10),
            top_20pct_share: share(top[2].0),
            gini,
            lorenz: points,
            top_10pct_aov,
            rest_aov,
            top_10pct_aov_ratio: ratio(top_10pct_aov, rest_aov),
        }
    }
}

/// The repeat-purchase ladder from the counts of customers with at least k orders.
pub(crate) fn ladder(at_least: &[u64; 7]) -> Vec<LadderStep> {
    (1..=5)
        .map(|k| LadderStep {
            purchases: k as u32,
            customers: at_least[k],
            made_next: at_least[k + 1],
            share: ratio(at_least[k + 1] as f64, at_least[k] as f64),
        })
        .collect()
}

fn month_label(month_index: i32) -> String {
    format!("{:04}-{:02}", month_index.div_euclid(12), month_index.rem_euclid(12) + 1)
}

/// The most months the cohort table covers (20 years): see [`Cohorts`].
pub const MAX_COHORT_MONTHS: i32 = 240;

fn cohorts(first_months: &[(i32, u64)], activity: &[(i32, u32, u64)], as_of: Day) -> Cohorts {
    let Some(oldest) = first_months.iter().filter(|&&(_, k)| k > 0).map(|&(m, _)| m).min() else {
        return Cohorts { months: vec![], older_customers: 0, sizes: vec![], active: vec![], retention: vec![] };
    };
    let last = as_of.month_index();
    let first = oldest.max(last - (MAX_COHORT_MONTHS - 1));
    let count = (last - first + 1).max(1) as usize;
    let mut sizes = vec![0u64; count];
    let mut older_customers = 0;
    for &(month, k) in first_months {
        match usize::try_from(month - first).ok().and_then(|row| sizes.get_mut(row)) {
            Some(size) => *size += k,
            None => older_customers += k,
        }
    }
    let mut active: Vec<Vec<u64>> = (0..count).map(|c| vec![0u64; count - c]).collect();
    for &(cohort, offset, k) in activity {
        let Ok(row) = usize::try_from(cohort - first) else { continue };
        if let Some(cell) = active.get_mut(row).and_then(|r| r.get_mut(offset as usize)) {
            *cell += k;
        }
    }
    let retention = active
        .iter()
        .zip(&sizes)
        .map(|(row, &size)| row.iter().map(|&a| ratio(a as f64, size as f64)).collect())
        .collect();
    Cohorts {
        months: (0..count as i32).map(|i| month_label(first + i)).collect(),
        older_customers,
        sizes,
        active,
        retention,
    }
}

/// Bucket edges of the first-to-second-purchase histogram, in days.
const GAP_BUCKETS: [(u32, Option<u32>); 9] = [
    (0, Some(7)),
    (8, Some(14)),
    (15, Some(30)),
    (31, Some(60)),
    (61, Some(90)),
    (91, Some(180)),
    (181, Some(365)),
    (366, Some(730)),
    (731, None),
];

/// `first_gaps`: (days, customers), ascending by days.
fn time_between(first_gaps: &[(i32, u64)], gap_hist: &[u64]) -> TimeBetween {
    let in_range = |from: u32, to: Option<u32>| -> u64 {
        first_gaps
            .iter()
            .filter(|&&(g, _)| g as u32 >= from && to.is_none_or(|to| g as u32 <= to))
            .map(|&(_, k)| k)
            .sum()
    };
    let histogram = GAP_BUCKETS
        .iter()
        .map(|&(from, to)| GapBin {
            label: match to {
                Some(to) => format!("{from}–{to} days"),
                None => format!("over {} days", from - 1),
            },
            from,
            to,
            customers: in_range(from, to),
        })
        .collect();
    TimeBetween {
        customers_with_second: first_gaps.iter().map(|&(_, k)| k).sum(),
        median_days_first_to_second: median_of_counts(first_gaps),
        median_days_between_purchases: median_of_histogram(gap_hist),
        histogram,
    }
}

/// The shares of lapsing customers in the what-if table.
const WHAT_IF_SHARES: [f64; 5] = [0.05, 0.10, 0.20, 0.30, 0.50];

fn revenue_at_risk(lapsing: (u64, Money), lost: (u64, Money)) -> RevenueAtRisk {
    let what_if = WHAT_IF_SHARES
        .iter()
        .map(|&share| WhatIf {
            kept_share: share,
            customers: (lapsing.0 as f64 * share).round() as u64,
            revenue: Money::from_f64(lapsing.1.to_f64() * share).unwrap_or(Money::ZERO),
        })
        .collect();
    RevenueAtRisk {
        lapsing_customers: lapsing.0,
        lapsing_revenue_12m: lapsing.1,
        lost_customers: lost.0,
        lost_revenue_12m: lost.1,
        what_if,
        assumptions: "A kept customer spends in the next 12 months what they spent in the last 12; kept customers \
                      are a random draw from the lapsing ones; no discount or campaign cost is deducted."
            .to_owned(),
    }
}

/// Customers and revenue per group: `acc[i]` belongs to `names[i]`.
pub(crate) fn groups(acc: &[(u64, Money)], names: &[&'static str], customers: u64, revenue: Money) -> Vec<GroupRow> {
    let n = customers as f64;
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let (count, rev) = acc.get(i).copied().unwrap_or((0, Money::ZERO));
            GroupRow {
                name: (*name).to_owned(),
                customers: count,
                share: ratio(count as f64, n),
                revenue: rev,
                revenue_share: ratio(rev.to_f64(), revenue.to_f64()),
            }
        })
        .collect()
}

pub(crate) fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 { 0.0 } else { num / den }
}

/// The value at ascending rank `rank` (from 0) of values given as (value, count), ascending
/// by value; the largest when `rank` is past the end, `None` for no values. (The medians here;
/// the RFM edges of the push-down, from histograms an engine counted.)
pub fn at_rank<T: Copy>(counts: &[(T, u64)], rank: u64) -> Option<T> {
    let mut seen = 0;
    for &(v, k) in counts {
        seen += k;
        if seen > rank {
            return Some(v);
        }
    }
    counts.last().map(|&(v, _)| v)
}

/// The median of values given as (value, count), ascending by value.
fn median_of_counts(counts: &[(i32, u64)]) -> Option<f64> {
    let total: u64 = counts.iter().map(|&(_, k)| k).sum();
    if total == 0 {
        return None;
    }
    // The values at ranks ⌈n/2⌉ and ⌊n/2⌋ + 1 (1-based), averaged when n is even.
    let value_at = |rank: u64| at_rank(counts, rank - 1).map_or(0.0, f64::from);
    Some((value_at(total.div_ceil(2)) + value_at(total / 2 + 1)) / 2.0)
}

/// The median of a histogram (`[g]` = how many values equal `g`).
pub(crate) fn median_of_histogram(hist: &[u64]) -> Option<f64> {
    let counts: Vec<(i32, u64)> =
        hist.iter().enumerate().filter(|&(_, &k)| k > 0).map(|(g, &k)| (g as i32, k)).collect();
    median_of_counts(&counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_counts_average_the_two_middle_values() {
        assert_eq!(median_of_counts(&[]), None);
        assert_eq!(median_of_counts(&[(3, 1)]), Some(3.0));
        assert_eq!(median_of_counts(&[(1, 1), (4, 1)]), Some(2.5));
        assert_eq!(median_of_counts(&[(1, 2), (4, 1)]), Some(1.0));
        assert_eq!(median_of_histogram(&[0, 2, 0, 0, 2]), Some(2.5));
    }

    #[test]
    fn lorenz_points_take_the_ranks_up_to_the_ceiling() {
        // n = 3: point p sums ranks up to ⌈3p/100⌉: p 1…33 → rank 1, 34…66 → 2, 67…100 → 3.
        assert_eq!(ConcentrationSums::lorenz_point(1, 3), 1);
        assert_eq!(ConcentrationSums::lorenz_point(2, 3), 34);
        assert_eq!(ConcentrationSums::lorenz_point(3, 3), 67);
        // n = 200: rank 2 is point 1 (⌈200/100⌉ = 2), rank 3 point 2.
        assert_eq!(ConcentrationSums::lorenz_point(2, 200), 1);
        assert_eq!(ConcentrationSums::lorenz_point(3, 200), 2);
        assert_eq!(ConcentrationSums::top_count(10, 0.01), 1);
        assert_eq!(ConcentrationSums::top_count(101, 0.01), 2);
        assert_eq!(ConcentrationSums::top_count(0, 0.2), 0);
    }
}
