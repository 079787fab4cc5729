//! RFM quintile scores and named segments.
//!
//! # Scores
//! Each customer gets three scores from 1 to 5 by where they stand among all customers:
//!
//! ```text
//! F = 1 + floor(5 · #{customers with fewer orders}       / n)
//! M = 1 + floor(5 · #{customers with less revenue}       / n)
//! R = 1 + floor(5 · #{customers whose last purchase is older} / n)
//! ```
//!
//! so the best fifth scores 5. Counting only the customers *strictly* below means ties always
//! share a score (two customers with the same revenue never land in different quintiles), and a
//! tie is scored by its lowest member: when 60 % of customers bought once, all of them get F = 1
//! and the first repeat buyers get F = 4. Quintiles are therefore uneven on lumpy data, which
//! is the honest answer — splitting one-time buyers into F = 1…3 at random would invent a
//! difference that is not there.
//!
//! # Segments
//! The named segment is read from R and FM = ⌈(F + M) / 2⌉ with this grid (the usual
//! eleven-segment map used by retention marketers):
//!
//! ```text
//!        FM=1            FM=2                FM=3                FM=4             FM=5
//! R=5    New             Potential loyalist  Potential loyalist  Champions        Champions
//! R=4    Promising       Potential loyalist  Potential loyalist  Loyal            Champions
//! R=3    About to sleep  About to sleep      Need attention      Loyal            Loyal
//! R=2    Hibernating     Hibernating         At risk             At risk          Can't lose them
//! R=1    Lost            Lost                At risk             At risk          Can't lose them
//! ```

use std::fmt;

use serde::Serialize;

/// A named RFM segment; see the module docs for the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Segment {
    /// Bought recently, often and much.
    Champions,
    /// Buys regularly and spends well.
    Loyal,
    /// Recent customers with a few purchases who could become loyal.
    PotentialLoyalist,
    /// Bought for the first time very recently.
    New,
    /// Recent, but bought little so far.
    Promising,
    /// Average recency, frequency and spend.
    NeedAttention,
    /// Below-average recency and frequency: slipping away.
    AboutToSleep,
    /// Used to buy often and much, but not lately.
    AtRisk,
    /// Were among the best customers and have not come back for a long time.
    CantLoseThem,
    /// Long since the last purchase, low frequency and spend.
    Hibernating,
    /// Lowest recency, frequency and spend.
    Lost,
}

impl Segment {
    /// All segments, best first (the order reports use).
    pub const ALL: [Segment; 11] = [
        Segment::Champions,
        Segment::Loyal,
        Segment::PotentialLoyalist,
        Segment::New,
        Segment::Promising,
        Segment::NeedAttention,
        Segment::AboutToSleep,
        Segment::AtRisk,
        Segment::CantLoseThem,
        Segment::Hibernating,
        Segment::Lost,
    ];

    /// The display name, as written in `customers.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Segment::Champions => "Champions",
            Segment::Loyal => "Loyal",
            Segment::PotentialLoyalist => "Potential loyalist",
            Segment::New => "New",
            Segment::Promising => "Promising",
            Segment::NeedAttention => "Need attention",
            Segment::AboutToSleep => "About to sleep",
            Segment::AtRisk => "At risk",
            Segment::CantLoseThem => "Can't lose them",
            Segment::Hibernating => "Hibernating",
            Segment::Lost => "Lost",
        }
    }

    /// The segment for scores R and FM (each 1–5; values outside are clamped).
    pub fn from_scores(r: u8, fm: u8) -> Segment {
        use Segment::*;
        const GRID: [[Segment; 5]; 5] = [
            // R = 1
            [Lost, Lost, AtRisk, AtRisk, CantLoseThem],
            // R = 2
            [Hibernating, Hibernating, AtRisk, AtRisk, CantLoseThem],
            // R = 3
            [AboutToSleep, AboutToSleep, NeedAttention, Loyal, Loyal],
            // R = 4
            [Promising, PotentialLoyalist, PotentialLoyalist, Loyal, Champions],
            // R = 5
            [New, PotentialLoyalist, PotentialLoyalist, Champions, Champions],
        ];
        GRID[usize::from(r.clamp(1, 5) - 1)][usize::from(fm.clamp(1, 5) - 1)]
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// FM = ⌈(F + M) / 2⌉.
pub fn fm_score(f: u8, m: u8) -> u8 {
    (f + m).div_ceil(2)
}

/// Scores values where higher is better: `1 + floor(5 · #{below} / n)`.
///
/// `sorted` must be the ascending sorted values of all customers (including `value`).
pub fn score_higher_better<T: PartialOrd>(sorted: &[T], value: &T) -> u8 {
    let below = sorted.partition_point(|u| u < value);
    quintile(below, sorted.len())
}

/// Scores values where lower is better (days since the last purchase):
/// `1 + floor(5 · #{above} / n)`. `sorted` is ascending.
pub fn score_lower_better<T: PartialOrd>(sorted: &[T], value: &T) -> u8 {
    let above = sorted.len() - sorted.partition_point(|u| u <= value);
    quintile(above, sorted.len())
}

/// Precomputed quintile boundaries: scores a value with four comparisons instead of a binary
/// search, and is built in linear time with `select_nth_unstable` instead of a full sort.
///
/// With `s` the sorted values and `c_k = ⌈k·n/5⌉`, `#{u < v} ≥ c_k` ⟺ `v > s[c_k − 1]`, so the
/// higher-is-better score is `1 + #{k ∈ 1..=4 : v > s[c_k − 1]}`; likewise `#{u > v} ≥ c_k` ⟺
/// `v < s[n − c_k]` for lower-is-better. Both equal [`score_higher_better`] and
/// [`score_lower_better`] (a test checks it).
#[derive(Debug, Clone)]
pub struct Quintiles<T> {
    /// `s[c_k − 1]` for k = 1..=4 (for higher-is-better).
    upper: Vec<T>,
    /// `s[n − c_k]` for k = 1..=4 (for lower-is-better).
    lower: Vec<T>,
}

impl<T: PartialOrd + Copy + Ord> Quintiles<T> {
    /// Boundaries of `values` (reordered in place).
    pub fn new(values: &mut [T]) -> Quintiles<T> {
        let mut upper = Vec::with_capacity(4);
        let mut lower = Vec::with_capacity(4);
        for (u, l) in quintile_ranks(values.len()) {
            upper.push(*values.select_nth_unstable(u).1);
            lower.push(*values.select_nth_unstable(l).1);
        }
        Quintiles { upper, lower }
    }

    /// The boundaries from the values at [`quintile_ranks`] (ascending, from 0), found
    /// elsewhere (a database ranks them for the push-down).
    pub fn from_edges(upper: Vec<T>, lower: Vec<T>) -> Quintiles<T> {
        Quintiles { upper, lower }
    }

    /// The `upper` boundaries ([`Quintiles::higher_better`] counts those below a value).
    pub fn upper(&self) -> &[T] {
        &self.upper
    }

    /// The `lower` boundaries ([`Quintiles::lower_better`] counts those above a value).
    pub fn lower(&self) -> &[T] {
        &self.lower
    }

    /// `1 + floor(5 · #{below} / n)`.
    pub fn higher_better(&self, v: T) -> u8 {
        1 + self.upper.iter().filter(|&&t| v > t).count() as u8
    }

    /// `1 + floor(5 · #{above} / n)`.
    pub fn lower_better(&self, v: T) -> u8 {
        1 + self.lower.iter().filter(|&&t| v < t).count() as u8
    }
}

/// The ascending ranks (from 0) of the values that bound the quintiles of `n` values: for
/// k = 1…4, c = ⌈k·n/5⌉ and the pair (c − 1, n − c): the `upper` boundary (the c-th smallest)
/// and the `lower` one (the c-th largest).
pub fn quintile_ranks(n: usize) -> Vec<(usize, usize)> {
    (1..=4usize).map(|k| (k * n).div_ceil(5)).filter(|&c| c >= 1 && c <= n).map(|c| (c - 1, n - c)).collect()
}

fn quintile(count: usize, n: usize) -> u8 {
    if n == 0 {
        return 1;
    }
    (1 + (5 * count) / n).min(5) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_fill_the_quintiles_evenly() {
        let values: Vec<u32> = (1..=10).collect();
        let scores: Vec<u8> = values.iter().map(|v| score_higher_better(&values, v)).collect();
        assert_eq!(scores, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        let r: Vec<u8> = values.iter().map(|v| score_lower_better(&values, v)).collect();
        assert_eq!(r, [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]);
    }

    #[test]
    fn ties_share_the_score_of_their_lowest_member() {
        // Six one-time buyers, two with 2 orders, one with 3, one with 9.
        let orders = [1, 1, 1, 1, 1, 1, 2, 2, 3, 9];
        let scores: Vec<u8> = orders.iter().map(|v| score_higher_better(&orders, v)).collect();
        assert_eq!(scores, [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]);
        // Days since last purchase: the three most recent tie at 0 days.
        let days = [0, 0, 0, 5, 9, 9, 30, 100, 200, 400];
        let r: Vec<u8> = days.iter().map(|v| score_lower_better(&days, v)).collect();
        assert_eq!(r, [4, 4, 4, 4, 3, 3, 2, 2, 1, 1]);
    }

    #[test]
    fn precomputed_boundaries_agree_with_counting() {
        // Deterministic pseudo-random lumpy data of many sizes, including heavy ties.
        let mut seed = 12345u64;
        for n in 1..200usize {
            let mut values: Vec<u32> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    ((seed >> 33) % (1 + n as u64 / 3)) as u32
                })
                .collect();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let q = Quintiles::new(&mut values);
            for v in &sorted {
                assert_eq!(q.higher_better(*v), score_higher_better(&sorted, v), "n={n} v={v}");
                assert_eq!(q.lower_better(*v), score_lower_better(&sorted, v), "n={n} v={v}");
            }
        }
    }

    #[test]
    fn one_customer_scores_one_and_empty_input_does_not_panic() {
        assert_eq!(score_higher_better(&[7], &7), 1);
        assert_eq!(score_lower_better(&[7], &7), 1);
        assert_eq!(quintile(0, 0), 1);
    }

    #[test]
    fn the_grid_names_each_corner() {
        assert_eq!(Segment::from_scores(5, 5), Segment::Champions);
        assert_eq!(Segment::from_scores(5, 1), Segment::New);
        assert_eq!(Segment::from_scores(1, 1), Segment::Lost);
        assert_eq!(Segment::from_scores(1, 5), Segment::CantLoseThem);
        assert_eq!(Segment::from_scores(3, 3), Segment::NeedAttention);
        assert_eq!(Segment::from_scores(4, 1), Segment::Promising);
        assert_eq!(Segment::from_scores(2, 4), Segment::AtRisk);
        assert_eq!(fm_score(1, 2), 2);
        assert_eq!(fm_score(4, 5), 5);
        assert_eq!(fm_score(3, 3), 3);
        // ALL is in declaration order, so `segment as usize` indexes it.
        for (i, s) in Segment::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
        // Every cell of the grid is one of the eleven segments.
        for r in 1..=5 {
            for fm in 1..=5 {
                assert!(Segment::ALL.contains(&Segment::from_scores(r, fm)));
            }
        }
    }
}
