//! The scoring job: the store's orders in, every customer's scores out.
//!
//! 1. [`Storage::purchases`] streams the completed and refunded orders (cancelled ones are not
//!    purchases) into `kanta-core`'s [`Aggregator`], keyed by the internal customer id, one
//!    order per row — exactly how `kanta analyze` reads an order log with one row per order —
//!    and the categories of their lines, for the product groups.
//! 2. [`analyze`] computes the per-customer summary (RFM, rule-based stage) as of today (UTC),
//!    and [`kanta_score::score`] fits the transaction and spend models and predicts P(alive),
//!    expected purchases, CLV and the next purchase, marking valuable customers who slip.
//! 3. [`Storage::write_scores`] replaces the stored scores in one transaction, recording the
//!    run (model, parameters, diagnostics) and every stage change.
//!
//! Too little data for the models (few customers or repeat buyers) is not a failure: the run
//! stores RFM and rule-based stages and says in its diagnostics why the models are missing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kanta_core::aggregate::{Aggregator, OrderLine};
use kanta_core::analysis::{AnalysisError, AnalysisOptions, analyze};
use kanta_core::crosssell::{Basket, product_groups};
use kanta_core::money::Money;
use kanta_core::time::{Day, Timestamp};
use kanta_score::{ScoreOptions, score};
use kanta_store::{ModelScores, NewScoreRun, ScoreRow, ScoreRunInfo, Storage};
use serde_json::json;

use crate::{Cancel, JobError};

/// Why a store without purchases gets a run with no scores (both ways of scoring say it).
pub(crate) const NO_PURCHASES: &str = "no purchases in the store";

/// `now` (µs since the epoch) plus `took`: when a run that started at `now` finished.
pub(crate) fn micros_after(now: i64, took: Duration) -> i64 {
    now.saturating_add(i64::try_from(took.as_micros()).unwrap_or(0))
}

/// Settings of a scoring run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ScoreJob {
    /// Model choice, CLV horizon and the slipping threshold.
    pub score: ScoreOptions,
    /// Override of the lapse threshold in days (default: learnt from the purchase gaps).
    pub lapse_days: Option<u32>,
    /// Read every order into memory even where the store can aggregate them itself
    /// (PostgreSQL pushes down by default: the `pushdown` module).
    pub in_memory: bool,
}

/// What a run did, with the time each phase took.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOutcome {
    /// The recorded run.
    pub run: ScoreRunInfo,
    /// Why the models are missing, when they are.
    pub models_skipped: Option<String>,
    /// Customers per lifecycle stage, in lifecycle order.
    pub stages: Vec<(&'static str, u64)>,
    /// Wall time per phase, one after the other: read, analyse, models, write.
    pub phases: Vec<(&'static str, Duration)>,
    /// Time of the product groups, which run beside the models (within the models phase; in
    /// the write phase when pushed down).
    pub product_groups: Duration,
    /// What moved, when the store aggregated its orders itself (PostgreSQL).
    pub pushdown: Option<kanta_warehouse::Stats>,
}

/// Score every customer in `store` as of `now` (µs since the epoch).
pub async fn score_store(store: &dyn Storage, job: &ScoreJob, now: i64) -> Result<ScoreOutcome, JobError> {
    score_store_until(store, job, now, &Cancel::default()).await
}

/// [`score_store`] that stops when `cancel` is set: between chunks of the read and between the
/// phases (the model fits themselves are not interrupted; they are bounded, see `kanta-models`).
/// A cancelled run writes no scores — the write is the last phase and one transaction — and is
/// recorded with status `cancelled`, its reason and phase in the diagnostics.
pub async fn score_store_until(
    store: &dyn Storage,
    job: &ScoreJob,
    now: i64,
    cancel: &Cancel,
) -> Result<ScoreOutcome, JobError> {
    let mut orders = 0;
    let result = score_phases(store, job, now, cancel, &mut orders).await;
    if let Err(JobError::Cancelled { phase, reason }) = &result {
        let today = Timestamp::from(kanta_domain::Timestamp::from_micros(now)).day();
        let run = NewScoreRun {
            started_at: now,
            finished_at: micros_after(now, cancel.age()),
            as_of: today.to_string(),
            orders,
            model: None,
            diagnostics: json!({ "cancelled": { "phase": phase, "reason": reason } }),
        };
        store.record_unfinished_run(&run, "cancelled").await?;
    }
    result
}

async fn score_phases(
    store: &dyn Storage,
    job: &ScoreJob,
    now: i64,
    cancel: &Cancel,
    orders_read: &mut u64,
) -> Result<ScoreOutcome, JobError> {
    if !job.in_memory
        && let Some(conn) = store.pushdown_connection().await?
    {
        return crate::pushdown::score_pushed(store, conn, job, now, cancel, orders_read).await;
    }
    let started_at = now;
    let mut phases = Vec::new();
    let clock = Instant::now();

    let mut categories = Categories::default();
    let aggregator = read_purchases(store, cancel, Some(&mut categories)).await?;
    let orders = aggregator.orders() as u64;
    *orders_read = orders;
    cancel.check("read")?;
    phases.push(("read", clock.elapsed()));

    let today = Timestamp::from(kanta_domain::Timestamp::from_micros(now)).day();
    let job = *job;
    let worker_cancel = cancel.clone();
    let computed = tokio::task::spawn_blocking(move || compute(aggregator, categories, today, &job, &worker_cancel))
        .await
        .map_err(|e| JobError::Worker(e.to_string()))??;
    cancel.check("models")?;
    let Computed { rows, model, diagnostics, models_skipped, stages, analyse, models, groups } = computed;
    phases.push(("analyse", analyse));
    phases.push(("models", models));

    let clock = Instant::now();
    let run = NewScoreRun {
        started_at,
        finished_at: micros_after(now, phases.iter().map(|p| p.1).sum()),
        as_of: today.to_string(),
        orders,
        model,
        diagnostics,
    };
    let run = store.write_scores(&run, &rows).await?;
    phases.push(("write", clock.elapsed()));
    Ok(ScoreOutcome { run, models_skipped, stages, phases, product_groups: groups, pushdown: None })
}

/// The store's purchases in an [`Aggregator`] (one order per row, keyed by the internal
/// customer id), and each line's category into `categories` when given. Stops early (with
/// what was read) when `cancel` is set; the caller checks it.
async fn read_purchases(
    store: &dyn Storage,
    cancel: &Cancel,
    mut categories: Option<&mut Categories>,
) -> Result<Aggregator, JobError> {
    let mut aggregator = Aggregator::new();
    let mut failed = None;
    store
        .purchases(categories.is_some(), &mut |chunk| {
            if failed.is_some() || cancel.is_cancelled() {
                return;
            }
            for ((customer, time), amount) in chunk.customer.iter().zip(&chunk.time).zip(&chunk.amount) {
                let line = OrderLine {
                    customer: &customer.to_le_bytes(),
                    order: None,
                    time: Timestamp(*time),
                    amount: Money::from_raw(*amount),
                };
                if let Err(e) = aggregator.push(line) {
                    failed.get_or_insert(e);
                    return;
                }
            }
            if let Some(categories) = categories.as_deref_mut() {
                for (i, category) in chunk.lines.iter() {
                    if let (Some(&customer), Some(&time)) = (chunk.customer.get(i), chunk.time.get(i)) {
                        categories.push(customer, time, category);
                    }
                }
            }
        })
        .await?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(aggregator),
    }
}

/// The store's customers analysed as the scoring job analyses them (`kanta_core::analysis`
/// as of `now`'s UTC day, the lapse threshold learnt unless `lapse_days` is given).
#[derive(Debug, Clone)]
pub struct StoreAnalysis {
    /// The analysis.
    pub analysis: kanta_core::analysis::Analysis,
    /// Each customer row's internal id.
    pub ids: Vec<i64>,
    /// The histogram of days between consecutive purchase days (see
    /// `kanta_core::analysis::CustomerAnalysis::gap_histogram`).
    pub gaps: Vec<u64>,
}

/// The store analysed as the scoring job does it ([`StoreAnalysis`]); `None` when the store
/// holds no purchase.
pub async fn analyse_store(
    store: &dyn Storage,
    now: i64,
    lapse_days: Option<u32>,
) -> Result<Option<StoreAnalysis>, JobError> {
    let aggregator = read_purchases(store, &Cancel::default(), None).await?;
    let today = Timestamp::from(kanta_domain::Timestamp::from_micros(now)).day();
    tokio::task::spawn_blocking(move || {
        let base = aggregator.finish();
        let options = AnalysisOptions { as_of: Some(today), lapse_days, ..AnalysisOptions::default() };
        match kanta_core::analysis::analyze_customers(&base, &options) {
            Ok(customers) => {
                let ids = customers.customers.iter().map(|c| internal_id(base.id(c.customer))).collect();
                let gaps = customers.gap_histogram().to_vec();
                Ok(Some(StoreAnalysis { analysis: customers.finish(), ids, gaps }))
            }
            Err(AnalysisError::NoOrders | AnalysisError::NoPurchases(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await
    .map_err(|e| JobError::Worker(e.to_string()))?
}

/// The internal customer id the aggregator was keyed by (its little-endian bytes).
fn internal_id(key: &[u8]) -> i64 {
    <[u8; 8]>::try_from(key).map(i64::from_le_bytes).unwrap_or_default()
}

/// Every purchase line's category, interned: (internal customer id, time, category id).
#[derive(Default)]
struct Categories {
    ids: HashMap<String, u32>,
    names: Vec<String>,
    lines: Vec<(i64, i64, u32)>,
}

impl Categories {
    fn push(&mut self, customer: i64, time: i64, category: &str) {
        let id = match self.ids.get(category) {
            Some(&id) => id,
            None => {
                let id = self.names.len() as u32;
                self.names.push(category.to_string());
                self.ids.insert(category.to_string(), id);
                id
            }
        };
        self.lines.push((customer, time, id));
    }

    /// The main category and cross-sell hint (`kanta_core::crosssell`) of each of `customers`
    /// (internal ids, in row order).
    fn groups(self, customers: &[i64]) -> Vec<(Option<String>, Option<String>)> {
        if self.lines.is_empty() {
            return vec![(None, None); customers.len()];
        }
        let index = RowIndex::new(customers.iter().copied());
        // Lines grouped by row (a counting sort), then by time and category within each row;
        // the lines of one customer at one time are a basket.
        let mut counts = vec![0usize; customers.len() + 1];
        let keyed: Vec<(usize, i64, u32)> =
            self.lines.iter().filter_map(|&(c, t, category)| Some((index.get(c)?, t, category))).collect();
        for l in &keyed {
            counts[l.0 + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let mut lines = vec![(0usize, 0i64, 0u32); keyed.len()];
        let mut next = counts.clone();
        for l in keyed {
            lines[next[l.0]] = l;
            next[l.0] += 1;
        }
        for w in counts.windows(2) {
            lines[w[0]..w[1]].sort_unstable();
        }
        let categories: Vec<u32> = lines.iter().map(|l| l.2).collect();
        let mut baskets = Vec::new();
        let mut start = 0;
        for order in lines.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
            let end = start + order.len();
            baskets.push(Basket { customer: order[0].0, time: order[0].1, categories: &categories[start..end] });
            start = end;
        }
        let name = |c: Option<u32>| c.map(|c| self.names[c as usize].clone());
        product_groups(&baskets, customers.len(), &self.names)
            .into_iter()
            .map(|g| (name(g.main), name(g.next)))
            .collect()
    }
}

/// The row of each customer id: a vector indexed by id when the ids are dense (the stores' ids
/// count up from 1), else a map. Ten million lookups in a map took a second.
enum RowIndex {
    Dense(Vec<u32>),
    Sparse(HashMap<i64, usize>),
}

impl RowIndex {
    fn new(ids: impl Iterator<Item = i64> + Clone) -> RowIndex {
        let (n, max) = ids.clone().fold((0usize, 0i64), |(n, m), id| (n + 1, m.max(id)));
        let min = ids.clone().min().unwrap_or(0);
        if min >= 0 && (max as u64) < 4 * n as u64 + 1_024 {
            let mut rows = vec![u32::MAX; max as usize + 1];
            for (i, id) in ids.enumerate() {
                rows[id as usize] = i as u32;
            }
            RowIndex::Dense(rows)
        } else {
            RowIndex::Sparse(ids.enumerate().map(|(i, id)| (id, i)).collect())
        }
    }

    fn get(&self, id: i64) -> Option<usize> {
        match self {
            RowIndex::Dense(rows) => {
                let i = *rows.get(usize::try_from(id).ok()?)?;
                (i != u32::MAX).then_some(i as usize)
            }
            RowIndex::Sparse(map) => map.get(&id).copied(),
        }
    }
}

struct Computed {
    rows: Vec<ScoreRow>,
    model: Option<String>,
    diagnostics: serde_json::Value,
    models_skipped: Option<String>,
    stages: Vec<(&'static str, u64)>,
    analyse: Duration,
    models: Duration,
    groups: Duration,
}

/// The CPU part: analysis, then the models (which use every core) and, beside them on a thread
/// of their own, the product groups. (On a blocking thread.)
fn compute(
    aggregator: Aggregator,
    categories: Categories,
    today: Day,
    job: &ScoreJob,
    cancel: &Cancel,
) -> Result<Computed, JobError> {
    let clock = Instant::now();
    let base = aggregator.finish();
    let options = AnalysisOptions { as_of: Some(today), lapse_days: job.lapse_days, ..AnalysisOptions::default() };
    let mut analysis = match analyze(&base, &options) {
        Ok(a) => a,
        Err(AnalysisError::NoOrders | AnalysisError::NoPurchases(_)) => {
            return Ok(Computed {
                rows: Vec::new(),
                model: None,
                diagnostics: json!({ "models": null, "models_skipped": NO_PURCHASES }),
                models_skipped: Some(NO_PURCHASES.into()),
                stages: Vec::new(),
                analyse: clock.elapsed(),
                models: Duration::ZERO,
                groups: Duration::ZERO,
            });
        }
        Err(e) => return Err(e.into()),
    };
    cancel.check("analyse")?;
    let analyse = clock.elapsed();
    let clock = Instant::now();
    let ids: Vec<i64> = analysis.customers.iter().map(|c| internal_id(base.id(c.customer))).collect();
    // The product groups need only the rows' customer ids; the models leave a core idle part of
    // the time (between likelihood sums), which the groups use.
    let (scored, (groups, groups_time)) = std::thread::scope(|scope| {
        let groups = scope.spawn(|| {
            let clock = Instant::now();
            let groups = categories.groups(&ids);
            (groups, clock.elapsed())
        });
        let scored = score(&analysis, &job.score);
        (scored, groups.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    let (scores, model, diagnostics, models_skipped) = match scored {
        Ok(mut scores) => {
            let slipping: Vec<bool> = scores.customers.iter().map(|c| c.slipping).collect();
            analysis.mark_slipping(&slipping);
            // The targets list names customers by the analysis' ids, which here are internal
            // row ids: the 360 view and segments are the way to find them instead.
            scores.summary.targets.clear();
            let diagnostics = json!({ "models": scores.summary, "summary": analysis.summary });
            (Some(scores.customers), Some(scores.summary.chosen.to_owned()), diagnostics, None)
        }
        Err(e) => {
            let why = e.to_string();
            (None, None, json!({ "models": null, "models_skipped": why, "summary": analysis.summary }), Some(why))
        }
    };
    let models = clock.elapsed();
    let net: Vec<kanta_core::money::Money> = analysis.customers.iter().map(|c| c.revenue - c.returned).collect();
    let tiers = kanta_core::tier::tiers(&net);
    let rows = analysis
        .customers
        .iter()
        .enumerate()
        .zip(groups)
        .map(|((i, c), (main_category, next_category))| {
            let customer = ids[i];
            let model = scores.as_ref().and_then(|s| s.get(i)).map(|s| ModelScores {
                p_alive: s.p_alive,
                expected_30d: s.expected_purchases[0],
                expected_90d: s.expected_purchases[1],
                expected_365d: s.expected_purchases[2],
                p_purchase_30d: s.p_purchase_30d,
                expected_spend: s.expected_spend,
                clv_12m: s.clv_12m,
                next_purchase_at: kanta_score::next_purchase_micros(today, s.next_purchase_days)
                    .map(kanta_domain::Timestamp::from_micros),
            });
            ScoreRow {
                customer,
                r: c.r,
                f: c.f,
                m: c.m,
                rfm_segment: c.segment.name(),
                stage: c.stage.name(),
                value_tier: tiers[i].name(),
                main_category,
                next_category,
                model,
            }
        })
        .collect();
    let stages = analysis.summary.stages.iter().map(|g| (stage_name(&g.name), g.customers)).collect();
    Ok(Computed { rows, model, diagnostics, models_skipped, stages, analyse, models, groups: groups_time })
}

/// The static name of a stage row of the business summary.
pub(crate) fn stage_name(name: &str) -> &'static str {
    kanta_core::lifecycle::Stage::ALL.iter().map(|s| s.name()).find(|n| *n == name).unwrap_or("other")
}

#[cfg(test)]
mod row_index_tests {
    use super::RowIndex;

    #[test]
    fn dense_and_sparse_ids_find_the_same_rows() {
        let dense = RowIndex::new([3i64, 1, 2, 7].into_iter());
        let sparse = RowIndex::new([3i64, 1, 2, 7_000_000_000].into_iter());
        assert!(matches!(dense, RowIndex::Dense(_)) && matches!(sparse, RowIndex::Sparse(_)));
        for index in [&dense, &sparse] {
            assert_eq!([3, 1, 2, 5, -1, 0].map(|id| index.get(id)), [Some(0), Some(1), Some(2), None, None, None]);
        }
        assert_eq!(dense.get(7), Some(3));
        assert_eq!(sparse.get(7_000_000_000), Some(3));
    }
}
