//! Model inputs: validated customer histories, compressed into weighted distinct tuples.

use rayon::slice::ParallelSliceMut;
use thiserror::Error;

/// A problem with one input history, named by its position in the input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DataError {
    /// No histories (or all weights zero).
    #[error("no customers to fit on")]
    Empty,
    /// A value is negative, NaN or infinite.
    #[error("customer #{index}: `{field}` is {value}, expected a finite number ≥ 0")]
    Invalid {
        /// 0-based position in the input.
        index: usize,
        /// The field name (`frequency`, `recency`, `T`, `weight`, …).
        field: &'static str,
        /// The offending value.
        value: f64,
    },
    /// Recency after the end of observation.
    #[error("customer #{index}: recency {t_x} is after T = {t}")]
    RecencyAfterT {
        /// 0-based position in the input.
        index: usize,
        /// Recency.
        t_x: f64,
        /// Observation length.
        t: f64,
    },
    /// The spend model needs at least one repeat purchase with a positive mean value.
    #[error("customer #{index}: the spend model needs frequency ≥ 1 and monetary value > 0, got {x} and {mean}")]
    NoSpend {
        /// 0-based position in the input.
        index: usize,
        /// Frequency.
        x: u32,
        /// Mean spend.
        mean: f64,
    },
    /// A customer without repeat purchases must have recency 0.
    #[error("customer #{index}: frequency is 0 but recency is {t_x} (it must be 0)")]
    RecencyWithoutRepeat {
        /// 0-based position in the input.
        index: usize,
        /// Recency.
        t_x: f64,
    },
}

/// One customer's summary in the continuous-time BTYD notation: `x` repeat purchases, the last at
/// `t_x` after the first, observed for `t` since the first purchase (lifetimes' `frequency`,
/// `recency`, `T`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History {
    /// Repeat purchases (`frequency`).
    pub x: u32,
    /// Time of the last repeat purchase since the first (`recency`); 0 when `x` = 0.
    pub t_x: f64,
    /// Time from the first purchase to the end of observation (`T`).
    pub t: f64,
}

impl History {
    /// A validated history; `index` names it in errors.
    pub fn parse(index: usize, x: u32, t_x: f64, t: f64) -> Result<Self, DataError> {
        check(index, "recency", t_x)?;
        check(index, "T", t)?;
        if x == 0 && t_x != 0.0 {
            return Err(DataError::RecencyWithoutRepeat { index, t_x });
        }
        if t_x > t {
            return Err(DataError::RecencyAfterT { index, t_x, t });
        }
        Ok(History { x, t_x, t })
    }
}

pub(crate) fn check(index: usize, field: &'static str, value: f64) -> Result<(), DataError> {
    if value.is_finite() && value >= 0.0 { Ok(()) } else { Err(DataError::Invalid { index, field, value }) }
}

/// Distinct histories with weights (how many customers share each), sorted by `x`.
///
/// Fitting cost grows with the number of distinct tuples, not customers: with daily or weekly
/// data most customers share their (x, t_x, T) with many others.
#[derive(Debug, Clone)]
pub struct Histories {
    pub(crate) x: Vec<u32>,
    pub(crate) t_x: Vec<f64>,
    pub(crate) t: Vec<f64>,
    pub(crate) weight: Vec<f64>,
    /// Index into `xs` of each tuple's `x`.
    pub(crate) group: Vec<u32>,
    /// The distinct values of `x`, ascending.
    pub(crate) xs: Vec<u32>,
    /// Index of the first tuple of each `x` group (the one with the smallest t_x).
    pub(crate) starts: Vec<usize>,
    total: f64,
}

impl Histories {
    /// Compresses weighted histories. Weights must be finite and ≥ 0; zero weights are dropped.
    pub fn new(items: impl IntoIterator<Item = (History, f64)>) -> Result<Self, DataError> {
        let items = items.into_iter();
        let mut builder = HistoriesBuilder::with_capacity(items.size_hint().0);
        for (h, w) in items {
            builder.push(h, w)?;
        }
        builder.build()
    }

    /// Sorts and merges the pushed tuples (see [`HistoriesBuilder`]), or only groups them by
    /// `x` when they look all distinct ([`looks_distinct`]).
    fn compress(all: Vec<Tuple>) -> Result<Self, DataError> {
        if looks_distinct(&all)
            && let Some(grouped) = Self::group_by_x(&all)
        {
            return Ok(grouped);
        }
        Self::sort_and_merge(all)
    }

    /// Sorts by (x, t_x, T) and merges equal tuples by adding their weights.
    fn sort_and_merge(mut all: Vec<Tuple>) -> Result<Self, DataError> {
        // Non-negative finite floats order like their bit patterns.
        all.par_sort_unstable_by_key(|&(x, tx, t, _)| (x, tx, t));
        // Sized for the worst case (every tuple distinct, the usual case with fractional
        // times), so the columns are written once, never regrown and copied.
        let n = all.len();
        let mut out = Histories {
            x: Vec::with_capacity(n),
            t_x: Vec::with_capacity(n),
            t: Vec::with_capacity(n),
            weight: Vec::with_capacity(n),
            group: Vec::with_capacity(n),
            xs: Vec::new(),
            starts: Vec::new(),
            total: 0.0,
        };
        let mut last: Option<(u32, u64, u64)> = None;
        for (x, tx, t, w) in all {
            out.total += w;
            if last == Some((x, tx, t)) {
                if let Some(sum) = out.weight.last_mut() {
                    *sum += w;
                }
                continue;
            }
            last = Some((x, tx, t));
            if out.xs.last() != Some(&x) {
                out.xs.push(x);
                out.starts.push(out.x.len());
            }
            out.x.push(x);
            out.t_x.push(f64::from_bits(tx));
            out.t.push(f64::from_bits(t));
            out.weight.push(w);
            out.group.push((out.xs.len() - 1) as u32);
        }
        if out.x.is_empty() {
            return Err(DataError::Empty);
        }
        Ok(out)
    }

    /// The tuples as they are (none merged), grouped by `x` with a counting sort: O(n), where
    /// sorting is O(n log n) and was a fifth of `kanta fit`'s time at 10⁶ customers with
    /// fractional times, where it merges nothing. Each group's tuple with the smallest `t_x`
    /// comes first, as after a sort (the Pareto/NBD tables are sized from it). `None` when
    /// `x` is too large for a table of counts (the caller sorts).
    fn group_by_x(all: &[Tuple]) -> Option<Self> {
        let max_x = all.iter().map(|&(x, ..)| x).max()?;
        if max_x > MAX_COUNTED_X {
            return None;
        }
        let mut counts = vec![0usize; max_x as usize + 1];
        for &(x, ..) in all {
            counts[x as usize] += 1;
        }
        let (mut xs, mut starts, mut group_of) = (Vec::new(), Vec::new(), vec![0u32; counts.len()]);
        let mut next = Vec::new();
        let mut at = 0;
        for (x, &count) in counts.iter().enumerate() {
            if count > 0 {
                group_of[x] = xs.len() as u32;
                xs.push(x as u32);
                starts.push(at);
                next.push(at);
                at += count;
            }
        }
        let n = all.len();
        let mut out = Histories {
            x: vec![0; n],
            t_x: vec![0.0; n],
            t: vec![0.0; n],
            weight: vec![0.0; n],
            group: vec![0; n],
            xs,
            starts,
            total: 0.0,
        };
        for &(x, tx, t, w) in all {
            let g = group_of[x as usize];
            let i = next[g as usize];
            next[g as usize] += 1;
            out.x[i] = x;
            out.t_x[i] = f64::from_bits(tx);
            out.t[i] = f64::from_bits(t);
            out.weight[i] = w;
            out.group[i] = g;
            out.total += w;
        }
        for (g, &start) in out.starts.iter().enumerate() {
            let end = out.starts.get(g + 1).copied().unwrap_or(n);
            let smallest = (start..end).min_by(|&a, &b| out.t_x[a].total_cmp(&out.t_x[b])).unwrap_or(start);
            out.t_x.swap(start, smallest);
            out.t.swap(start, smallest);
            out.weight.swap(start, smallest);
        }
        Some(out)
    }

    /// Unweighted histories (one customer each).
    pub fn from_histories(items: impl IntoIterator<Item = History>) -> Result<Self, DataError> {
        Self::new(items.into_iter().map(|h| (h, 1.0)))
    }

    /// Number of customers (sum of weights).
    pub fn customers(&self) -> f64 {
        self.total
    }

    /// Number of distinct (x, t_x, T) tuples.
    pub fn distinct(&self) -> usize {
        self.x.len()
    }

    /// A systematic sample of about `target` distinct tuples (every k-th in sorted order, so
    /// every part of the (x, t_x, T) range is represented), or `None` when the data are not
    /// much larger than that. Its mean log-likelihood estimates the full data's.
    pub(crate) fn sample(&self, target: usize) -> Option<Histories> {
        let n = self.x.len();
        if target == 0 || n < 3 * target {
            return None;
        }
        let step = n / target;
        let picked = (step / 2..n)
            .step_by(step)
            .map(|i| (History { x: self.x[i], t_x: self.t_x[i], t: self.t[i] }, self.weight[i]));
        Histories::new(picked).ok()
    }

    /// Weighted mean of `x` and of `T`, for starting values.
    pub(crate) fn means(&self) -> (f64, f64) {
        let (mut sx, mut st) = (0.0, 0.0);
        for i in 0..self.x.len() {
            sx += self.weight[i] * f64::from(self.x[i]);
            st += self.weight[i] * self.t[i];
        }
        (sx / self.total, st / self.total)
    }

    /// Weighted share of customers with at least one repeat purchase.
    pub(crate) fn repeat_share(&self) -> f64 {
        let repeat: f64 = (0..self.x.len()).filter(|&i| self.x[i] > 0).map(|i| self.weight[i]).sum();
        repeat / self.total
    }
}

/// A history as the compression sorts it: `x`, the bits of `t_x` and `T`, and the weight.
type Tuple = (u32, u64, u64, f64);

/// Tuples looked at by [`looks_distinct`].
const DISTINCT_SAMPLE: usize = 4096;

/// The largest `x` [`Histories::group_by_x`] counts in a table.
const MAX_COUNTED_X: u32 = 1 << 20;

/// Whether sorting to merge equal tuples would merge almost nothing: a systematic sample of
/// [`DISTINCT_SAMPLE`] tuples has no two equal. With D distinct values among the tuples, a
/// sample of m has about m²/2D equal pairs, so none among 4,096 means D is well above n for
/// data of the sizes where sorting costs (≥ 16 × the sample: smaller data is sorted anyway).
/// Daily or weekly data, where merging pays, has equal pairs in any sample. Either way the
/// likelihood is the same; only its cost differs.
fn looks_distinct(all: &[Tuple]) -> bool {
    let n = all.len();
    if n < 16 * DISTINCT_SAMPLE {
        return false;
    }
    let step = n / DISTINCT_SAMPLE;
    let mut keys: Vec<(u32, u64, u64)> =
        (0..DISTINCT_SAMPLE).map(|i| all[i * step]).map(|(x, tx, t, _)| (x, tx, t)).collect();
    keys.sort_unstable();
    keys.windows(2).all(|w| w[0] != w[1])
}

/// Collects weighted histories one at a time and compresses them into [`Histories`].
///
/// A reader can push each row as it parses it, so a million-row summary file goes straight
/// into the 32-byte tuples the compression sorts, without a table of rows and a vector of
/// histories in between (each a fresh allocation of tens of megabytes whose pages the kernel
/// must clear: about a tenth of `kanta fit`'s time at 10⁶ customers before this existed).
#[derive(Debug, Default)]
pub struct HistoriesBuilder {
    all: Vec<Tuple>,
    /// Histories pushed so far, zero weights included: the next one's index in errors.
    pushed: usize,
}

impl HistoriesBuilder {
    /// An empty builder with room for `capacity` histories.
    pub fn with_capacity(capacity: usize) -> Self {
        HistoriesBuilder { all: Vec::with_capacity(capacity), pushed: 0 }
    }

    /// Adds a history shared by `weight` customers (finite and ≥ 0; zero weights are dropped).
    /// An error names the history by its 0-based position among those pushed.
    pub fn push(&mut self, h: History, weight: f64) -> Result<(), DataError> {
        let index = self.pushed;
        self.pushed += 1;
        check(index, "weight", weight)?;
        if weight > 0.0 {
            self.all.push((h.x, h.t_x.to_bits(), h.t.to_bits(), weight));
        }
        Ok(())
    }

    /// Sorts by (x, t_x, T), merges identical histories by adding their weights, and groups
    /// them by `x`; [`DataError::Empty`] when nothing with a positive weight was pushed.
    pub fn build(self) -> Result<Histories, DataError> {
        Histories::compress(self.all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_histories_are_merged_with_weights() {
        let h = |x, tx, t| History::parse(0, x, tx, t).unwrap();
        let data = Histories::new([
            (h(1, 2.0, 5.0), 1.0),
            (h(0, 0.0, 5.0), 2.0),
            (h(1, 2.0, 5.0), 3.0),
            (h(3, 4.0, 5.0), 1.0),
            (h(0, 0.0, 4.0), 0.0),
        ])
        .unwrap();
        assert_eq!(data.distinct(), 3);
        assert_eq!(data.customers(), 7.0);
        assert_eq!(data.x, vec![0, 1, 3]);
        assert_eq!(data.weight, vec![2.0, 4.0, 1.0]);
        assert_eq!(data.xs, vec![0, 1, 3]);
        assert_eq!(data.group, vec![0, 1, 2]);
        assert_eq!(data.means(), (1.0, 5.0));
    }

    #[test]
    fn the_builder_compresses_like_new_and_names_bad_weights_by_position() {
        let h = |x, tx, t| History::parse(0, x, tx, t).unwrap();
        let items = [(h(3, 4.0, 5.0), 1.0), (h(0, 0.0, 4.0), 0.0), (h(1, 2.0, 5.0), 2.5), (h(3, 4.0, 5.0), 0.5)];
        let mut builder = HistoriesBuilder::with_capacity(1);
        for (hist, w) in items {
            builder.push(hist, w).unwrap();
        }
        let built = builder.build().unwrap();
        let direct = Histories::new(items).unwrap();
        assert_eq!((built.x.clone(), built.weight.clone()), (vec![1, 3], vec![2.5, 1.5]));
        assert_eq!((direct.x, direct.weight, direct.starts), (built.x, built.weight, built.starts));
        let mut bad = HistoriesBuilder::default();
        bad.push(h(0, 0.0, 1.0), 0.0).unwrap();
        assert!(matches!(
            bad.push(h(0, 0.0, 1.0), f64::NAN),
            Err(DataError::Invalid { index: 1, field: "weight", .. })
        ));
        assert_eq!(bad.build().unwrap_err(), DataError::Empty);
    }

    #[test]
    fn fractional_times_are_grouped_by_x_unmerged_with_the_same_likelihood_as_after_a_sort() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
        let mut all = Vec::new();
        for _ in 0..100_000 {
            let x: u32 = rng.random_range(0..12);
            let t: f64 = rng.random_range(1.0..500.0);
            let tx = if x == 0 { 0.0 } else { rng.random_range(0.0..t) };
            all.push((x, f64::to_bits(tx), f64::to_bits(t), 1.0));
        }
        assert!(looks_distinct(&all));
        let grouped = Histories::compress(all.clone()).unwrap();
        let sorted = Histories::sort_and_merge(all.clone()).unwrap();
        assert_eq!((grouped.distinct(), sorted.distinct()), (100_000, 100_000));
        assert_eq!((&grouped.xs, &grouped.starts), (&sorted.xs, &sorted.starts));
        assert_eq!(grouped.customers(), sorted.customers());
        for (g, &start) in grouped.starts.iter().enumerate() {
            // The group's smallest t_x first, as the Pareto/NBD tables expect.
            assert_eq!(grouped.t_x[start], sorted.t_x[start], "group {g}");
            let end = grouped.starts.get(g + 1).copied().unwrap_or(grouped.distinct());
            assert!(grouped.x[start..end].iter().all(|&x| x == grouped.xs[g]));
            assert!(grouped.group[start..end].iter().all(|&i| i as usize == g));
        }
        let model = crate::BgNbd::new(crate::Variant::Bg, 0.24, 4.4, 0.79, 2.4).unwrap();
        let (a, b) = (model.log_likelihood(&grouped), model.log_likelihood(&sorted));
        assert!((a - b).abs() <= 1e-9 * b.abs(), "{a} vs {b}");
        // Whole weeks: equal tuples in any sample, so they are sorted and merged.
        let days: Vec<Tuple> = all
            .iter()
            .map(|&(x, tx, t, w)| {
                let day = |bits: u64| f64::to_bits((f64::from_bits(bits) / 7.0).floor());
                (x, day(tx), day(t), w)
            })
            .collect();
        assert!(!looks_distinct(&days));
        let merged = Histories::compress(days).unwrap();
        assert!(merged.distinct() < 40_000, "{}", merged.distinct());
        assert_eq!(merged.customers(), 100_000.0);
    }

    #[test]
    fn invalid_histories_are_named() {
        assert_eq!(History::parse(4, 1, 6.0, 5.0), Err(DataError::RecencyAfterT { index: 4, t_x: 6.0, t: 5.0 }));
        assert_eq!(History::parse(2, 0, 1.0, 5.0), Err(DataError::RecencyWithoutRepeat { index: 2, t_x: 1.0 }));
        assert!(matches!(History::parse(1, 1, f64::NAN, 5.0), Err(DataError::Invalid { field: "recency", .. })));
        assert!(matches!(History::parse(1, 1, 1.0, -5.0), Err(DataError::Invalid { field: "T", .. })));
        assert_eq!(Histories::new([]).unwrap_err(), DataError::Empty);
        let h = History::parse(0, 0, 0.0, 1.0).unwrap();
        assert!(matches!(Histories::new([(h, -1.0)]), Err(DataError::Invalid { field: "weight", .. })));
    }
}
