//! Scoring: fits the transaction and spend models on an analysed customer base and predicts,
//! for every customer, P(alive), expected purchases, CLV and the next purchase; flags the
//! valuable customers who are slipping away.
//!
//! The time unit of every model here is the day (`recency_days`, `t_days` of the analysis),
//! whatever `--period` the customer table is written in.
//!
//! **Architecture Invariant:** pure and synchronous like `kanta-core` and `kanta-models`, which
//! it glues together; `kanta analyze` today and the store's scoring job later both call
//! [`score`], so the numbers never differ between the two.

pub mod future;
mod holdout;
pub mod sufficient;

pub use holdout::{ConditionalRow, HoldoutCustomer, HoldoutModel, HoldoutReport, Tracking, evaluate_holdout};
pub use sufficient::{
    DayHistory, HistoryScore, Predictions, SpendKey, Sufficient, fit_and_predict, next_purchase_micros,
};

use kanta_core::analysis::{Analysis, CustomerSummary};
use kanta_core::lifecycle::Stage;
use kanta_core::rfm::Segment;
use kanta_models::{
    BgNbd, ClvOptions, FitError, FitOptions, FitReport, GammaGamma, Histories, Nbd, ParetoNbd, Poisson,
    TransactionModel, Variant, fit_limit, title,
};
use rayon::prelude::*;
use serde::Serialize;

pub use kanta_domain::ModelKind;

/// Scoring settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreOptions {
    /// The transaction model (`kanta_domain::ModelKind`, one enum of the models for the CLI,
    /// the settings and this crate).
    ///
    /// With [`ModelKind::Auto`]: fit BG/NBD, MBG/NBD and Pareto/NBD; keep the lowest BIC among
    /// those that are usable.
    ///
    /// A candidate is dropped (its row in the comparison says why) when its fit fails, which
    /// includes a fit the data cannot identify ([`FitError::Boundary`]: parameters running off
    /// to 0 or infinity, no standard errors, as on a shop of almost only one-time buyers), or
    /// when its predictions are not finite for some customer. The next-best BIC is used then.
    ///
    /// When no candidate could be fitted and a boundary fit's estimates say that nobody drops
    /// out, the nested limit it tends to is fitted instead ([`kanta_models::fit_limit`]: the NBD,
    /// or the Poisson when the purchase rates are also the same for everyone). It is an
    /// identified model with estimated parameters and standard errors, not a guess; its row in
    /// the comparison and [`ModelSummary::fallback`] say which model could not be identified and
    /// why. A requested model falls back the same way. A boundary blamed on too few repeat
    /// buyers (a shop of one-time buyers) gets no fallback.
    ///
    /// With nothing left, [`score`] returns [`ScoreError::NoModel`] with every reason, and
    /// `kanta analyze` writes its tables without model columns. There is deliberately no
    /// further fallback to a model with fixed parameters: such numbers would look like
    /// estimates while the data say nothing about them.
    pub model: ModelKind,
    /// CLV horizon and discounting, in days (default: 12 months of 30 days at 1 % a month).
    pub clv: ClvOptions,
    /// P(alive) below which a valuable customer is slipping.
    pub slipping_below: f64,
    /// Optimiser settings.
    pub fit: FitOptions,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            model: ModelKind::Auto,
            clv: ClvOptions::default(),
            slipping_below: 0.5,
            fit: FitOptions::default(),
        }
    }
}

/// How likely a customer is to have left, from P(alive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskBand {
    /// P(alive) ≥ 0.75.
    Low,
    /// 0.5 ≤ P(alive) < 0.75.
    Medium,
    /// 0.25 ≤ P(alive) < 0.5.
    High,
    /// P(alive) < 0.25.
    VeryHigh,
}

impl RiskBand {
    /// The band of a probability of being alive.
    pub fn of(p_alive: f64) -> RiskBand {
        if p_alive >= 0.75 {
            RiskBand::Low
        } else if p_alive >= 0.5 {
            RiskBand::Medium
        } else if p_alive >= 0.25 {
            RiskBand::High
        } else {
            RiskBand::VeryHigh
        }
    }

    /// The name written in `customers.csv`.
    pub fn name(self) -> &'static str {
        match self {
            RiskBand::Low => "low",
            RiskBand::Medium => "medium",
            RiskBand::High => "high",
            RiskBand::VeryHigh => "very_high",
        }
    }
}

/// The model's view of one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerScore {
    /// P(alive) at the observation end.
    pub p_alive: f64,
    /// Expected purchases in the next 30, 90 and 365 days.
    pub expected_purchases: [f64; 3],
    /// P(at least one purchase in the next 30 days).
    pub p_purchase_30d: f64,
    /// P(at least one purchase in the next 90 days).
    pub p_purchase_90d: f64,
    /// Expected value of a future purchase (Gamma-Gamma), when the spend model could be fitted.
    pub expected_spend: Option<f64>,
    /// Discounted CLV over the next 12 months, when the spend model could be fitted.
    pub clv_12m: Option<f64>,
    /// Median days to the next purchase if alive (see `kanta_models::next_purchase_median`).
    pub next_purchase_days: f64,
    /// Churn-risk band from P(alive).
    pub risk: RiskBand,
    /// Valuable and slipping (see [`kanta_core::lifecycle`]).
    pub slipping: bool,
}

/// Serialises a fit as the `FitReport` object, or a failed one as `{"error": "…"}`, so
/// `summary.json` reads `candidates[0].fit.params` rather than `fit.Ok.params`.
pub(crate) fn fit_or_error<S: serde::Serializer>(fit: &Result<FitReport, String>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    match fit {
        Ok(report) => report.serialize(s),
        Err(e) => {
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry("error", e)?;
            map.end()
        }
    }
}

/// One row of the model comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Model name.
    pub model: &'static str,
    /// The fit, or why it failed.
    #[serde(serialize_with = "fit_or_error")]
    pub fit: Result<FitReport, String>,
    /// Set on the row of a nested limit fitted because a full model could not be identified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

/// Why a nested limit (NBD, Poisson) stands in for a full model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fallback {
    /// The full model that could not be identified (`bgnbd`, `mbgnbd`, `paretonbd`): the first
    /// candidate whose boundary points at the limit.
    pub from: &'static str,
    /// The limit fitted instead (`nbd`, `poisson`).
    pub limit: &'static str,
    /// What the full model's estimates say, e.g. "nobody appears to drop out (…)".
    pub reason: String,
    /// The sentence for a report: "BG/NBD could not be identified: nobody appears to drop out
    /// (…); using the NBD limit".
    pub note: String,
}

/// A histogram bin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    /// Lower edge.
    pub from: f64,
    /// Upper edge.
    pub to: f64,
    /// Customers in the bin.
    pub customers: u64,
}

/// A customer most worth a retention action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// Index into `Analysis::customers`.
    #[serde(skip)]
    pub index: usize,
    /// The customer id (filled in by the caller, which owns the ids).
    pub customer_id: String,
    /// Predicted 12-month CLV.
    pub clv_12m: f64,
    /// P(alive).
    pub p_alive: f64,
    /// Revenue to date.
    pub revenue: f64,
    /// Lifecycle stage.
    pub stage: &'static str,
}

/// The business-level model results: `summary.json`'s `models` and the report's model section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// The transaction model used for the predictions.
    pub chosen: &'static str,
    /// How it was chosen (`bic`, `requested`, or `fallback` for a nested limit that stands in
    /// for the full models, see [`ModelSummary::fallback`]).
    pub selected_by: &'static str,
    /// Every transaction model tried, with its fit.
    pub candidates: Vec<Candidate>,
    /// When the chosen model is a nested limit fitted because no full model could be
    /// identified: which, why and the report's sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// The Gamma-Gamma spend fit, or why there is none.
    #[serde(serialize_with = "fit_or_error")]
    pub spend: Result<FitReport, String>,
    /// Expected purchases of the whole base in the next 30, 90 and 365 days.
    pub expected_purchases: [f64; 3],
    /// Sum of the 12-month CLVs.
    pub clv_12m_total: Option<f64>,
    /// Mean P(alive).
    pub mean_p_alive: f64,
    /// Customers per churn-risk band (low, medium, high, very high).
    pub risk_bands: [u64; 4],
    /// Slipping customers and their revenue to date.
    pub slipping_customers: u64,
    /// P(alive) histogram, 10 bins of 0.1.
    pub p_alive_histogram: Vec<Bin>,
    /// CLV histogram with logarithmic bins (empty without a spend model; see
    /// [`log_histogram`]): CLV is heavy-tailed, and bins of equal width put nearly everyone in
    /// the first.
    pub clv_histogram: Vec<Bin>,
    /// Mean expected purchases in the next 365 days by repeat purchases (rows: 0, 1, …, 9, 10+)
    /// and by recency as a share of T (columns: tenths); `None` where no customer falls.
    pub expected_heatmap: Vec<Vec<Option<f64>>>,
    /// The 20 customers most worth a retention action: highest CLV × (1 − P(alive)).
    pub targets: Vec<Target>,
    /// The time unit of the parameters.
    pub time_unit: &'static str,
    /// The CLV definition.
    pub clv_definition: String,
}

/// Scores and the summary.
#[derive(Debug, Clone)]
pub struct Scores {
    /// One score per customer, indexed like `Analysis::customers`.
    pub customers: Vec<CustomerScore>,
    /// The business-level results.
    pub summary: ModelSummary,
}

/// Why no model could be fitted; `kanta analyze` reports it and writes the tables without
/// model columns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// No transaction model could be fitted.
    #[error("no customer model could be fitted: {0}")]
    NoModel(String),
    /// Too little data for the models to mean anything.
    #[error(
        "too few customers for the customer models ({customers} customers, {repeat} with a repeat purchase; they need at least {MIN_CUSTOMERS} and {MIN_REPEAT})"
    )]
    TooFew {
        /// Customers.
        customers: usize,
        /// Customers with a repeat purchase.
        repeat: usize,
    },
}

/// Below this many customers, or [`MIN_REPEAT`] repeat customers, [`score`] declines: the
/// estimates would be dominated by noise (and often sit on a parameter boundary).
pub const MIN_CUSTOMERS: usize = 50;
/// See [`MIN_CUSTOMERS`].
pub const MIN_REPEAT: usize = 10;

pub(crate) fn fit_transaction(
    model: ModelKind,
    data: &Histories,
    options: &FitOptions,
) -> Result<(Box<dyn TransactionModel + Send + Sync>, FitReport), FitError> {
    Ok(match model {
        ModelKind::BgNbd | ModelKind::Auto => {
            let (m, r) = BgNbd::fit(Variant::Bg, data, options)?;
            (Box::new(m), r)
        }
        ModelKind::MbgNbd => {
            let (m, r) = BgNbd::fit(Variant::Mbg, data, options)?;
            (Box::new(m), r)
        }
        ModelKind::ParetoNbd => {
            let (m, r) = ParetoNbd::fit(data, options)?;
            (Box::new(m), r)
        }
    })
}

/// Fits the models on `analysis` and scores every customer.
pub fn score(analysis: &Analysis, options: &ScoreOptions) -> Result<Scores, ScoreError> {
    score_customers(&analysis.customers, options)
}

/// [`score`] on the customers alone (of an [`kanta_core::analysis::CustomerAnalysis`], whose
/// business summary is built later): the customers are counted into their distinct
/// histories and spend keys ([`Sufficient`]), the models fitted and predicted on those
/// ([`fit_and_predict`]), and each customer takes the predictions of their keys.
pub fn score_customers(summaries: &[CustomerSummary], options: &ScoreOptions) -> Result<Scores, ScoreError> {
    let (data, history_of, spend_of) = Sufficient::index(summaries);
    let predictions = fit_and_predict(&data, options)?;
    let mut customers = customer_scores(&predictions.histories, &predictions.spends, &history_of, &spend_of);
    mark_slipping(summaries, &mut customers, options);
    let clv = clv_parts(summaries, &customers);
    let summary = model_summary(&data, predictions, clv, &options.clv);
    Ok(Scores { customers, summary })
}

/// Each customer's score from the predictions of their history and spend key.
fn customer_scores(
    histories: &[HistoryScore],
    spends: &[Option<f64>],
    history_of: &[u32],
    spend_of: &[u32],
) -> Vec<CustomerScore> {
    history_of
        .par_iter()
        .zip(spend_of)
        .with_min_len(1024)
        .map(|(&h, &s)| {
            let h = &histories[h as usize];
            let expected_spend = spends[s as usize];
            CustomerScore {
                p_alive: h.p_alive,
                expected_purchases: h.expected_purchases,
                p_purchase_30d: h.p_purchase[0],
                p_purchase_90d: h.p_purchase[1],
                expected_spend,
                clv_12m: expected_spend.map(|s| h.clv(s)),
                next_purchase_days: h.next_purchase_days,
                risk: h.risk,
                slipping: false,
            }
        })
        .collect()
}

/// Slipping needs the CLV ranking of the whole base, hence a pass after the predictions.
fn mark_slipping(summaries: &[CustomerSummary], customers: &mut [CustomerScore], options: &ScoreOptions) {
    let flags = valuable(summaries, customers);
    for ((c, s), valuable) in summaries.iter().zip(customers.iter_mut()).zip(flags) {
        s.slipping = slipping(valuable, s.p_alive, c.stage, options.slipping_below);
    }
}

/// Which customers are valuable (see [`kanta_core::lifecycle`]): RFM Champions or Loyal, or in
/// the top 20 % by predicted 12-month CLV (a positive one).
pub fn valuable(summaries: &[CustomerSummary], customers: &[CustomerScore]) -> Vec<bool> {
    let top_clv = clv_threshold(customers.iter().filter_map(|s| s.clv_12m).collect());
    summaries
        .iter()
        .zip(customers)
        .map(|(c, s)| {
            matches!(c.segment, Segment::Champions | Segment::Loyal)
                || top_clv.is_some_and(|t| s.clv_12m.is_some_and(|v| v >= t && v > 0.0))
        })
        .collect()
}

/// Whether a customer is slipping: valuable, P(alive) below the threshold, and still new,
/// repeat or loyal by the rules (lapsing and lost customers are already flagged by them).
pub fn slipping(valuable: bool, p_alive: f64, rule_stage: Stage, below: f64) -> bool {
    valuable && p_alive < below && matches!(rule_stage, Stage::New | Stage::Repeat | Stage::Loyal)
}

/// Every customer's score under models fitted earlier (the parameters a stored scoring run
/// recorded), without fitting: what `kanta journeys simulate` projects from. `Err` with the
/// reason when a prediction is not finite.
pub fn score_with(
    summaries: &[CustomerSummary],
    model: &(dyn TransactionModel + Sync),
    spend: Option<&GammaGamma>,
    options: &ScoreOptions,
) -> Result<Vec<CustomerScore>, String> {
    let (data, history_of, spend_of) = Sufficient::index(summaries);
    let (histories, spends) = sufficient::predict(model, &data, spend, options)?;
    let mut customers = customer_scores(&histories, &spends, &history_of, &spend_of);
    mark_slipping(summaries, &mut customers, options);
    Ok(customers)
}

/// A transaction model from its name and parameters as a [`FitReport`] records them
/// (`bgnbd` with `r`, `alpha`, `a`, `b`; `mbgnbd`; `paretonbd` with `r`, `alpha`, `s`, `beta`;
/// `nbd` with `r`, `alpha`; `poisson` with `lambda`).
pub fn transaction_model(
    name: &str,
    param: &dyn Fn(&str) -> Option<f64>,
) -> Result<Box<dyn TransactionModel + Send + Sync>, String> {
    let p = |key: &str| param(key).ok_or_else(|| format!("the {name} parameters have no `{key}`"));
    // Send too: a simulation that holds the model runs as a background task on any thread.
    let model: Box<dyn TransactionModel + Send + Sync> = match name {
        "bgnbd" => {
            Box::new(BgNbd::new(Variant::Bg, p("r")?, p("alpha")?, p("a")?, p("b")?).map_err(|e| e.to_string())?)
        }
        "mbgnbd" => {
            Box::new(BgNbd::new(Variant::Mbg, p("r")?, p("alpha")?, p("a")?, p("b")?).map_err(|e| e.to_string())?)
        }
        "paretonbd" => Box::new(ParetoNbd::new(p("r")?, p("alpha")?, p("s")?, p("beta")?).map_err(|e| e.to_string())?),
        "nbd" => Box::new(Nbd::new(p("r")?, p("alpha")?).map_err(|e| e.to_string())?),
        "poisson" => Box::new(Poisson::new(p("lambda")?).map_err(|e| e.to_string())?),
        other => return Err(format!("`{other}` is not a transaction model kanta fits")),
    };
    Ok(model)
}

/// The nested limit that the first boundary among `errors` points at, fitted: its comparison
/// row (with [`Candidate::fallback`] set) and, when the fit succeeded, the model. `None` when
/// no boundary points at a limit (see [`kanta_models::fit_limit`]).
fn fit_fallback(
    errors: &[FitError],
    data: &Histories,
    options: &FitOptions,
) -> Option<(Candidate, Option<Box<dyn TransactionModel + Send + Sync>>)> {
    let (from, result) = errors.iter().find_map(|e| {
        let FitError::Boundary { model, .. } = e else { return None };
        fit_limit(e, data, options).map(|r| (*model, r))
    })?;
    Some(match result {
        Ok(fit) => {
            let limit = fit.report.model;
            let note = format!(
                "{} could not be identified: {}; using the {} limit",
                title(fit.from),
                fit.reason,
                title(limit)
            );
            let fallback = Fallback { from: fit.from, limit, reason: fit.reason, note };
            (
                Candidate { model: limit, fit: Ok(fit.report), fallback: Some(fallback) },
                Some(Box::new(fit.model) as Box<dyn TransactionModel + Send + Sync>),
            )
        }
        Err(e) => {
            let limit = match &e {
                FitError::Degenerate { model, .. }
                | FitError::Boundary { model, .. }
                | FitError::NotConverged { model, .. } => *model,
                FitError::Data(_) => "nbd",
            };
            let reason = format!("tried as the limit of {}: {e}", title(from));
            (Candidate { model: limit, fit: Err(reason), fallback: None }, None)
        }
    })
}

/// The CLV of the customer at the 80th percentile: the top 20 % are at or above it.
fn clv_threshold(mut clvs: Vec<f64>) -> Option<f64> {
    if clvs.is_empty() {
        return None;
    }
    let k = (clvs.len() * 4 / 5).min(clvs.len() - 1);
    let (_, v, _) = clvs.select_nth_unstable_by(k, f64::total_cmp);
    Some(*v)
}

/// The bins of a histogram for heavy-tailed non-negative values (CLV): `bins` logarithmic
/// bins from `low` to the maximum, `low · (max/low)^(i/bins)`, after a first bin `[0, low)` for
/// the values near zero. `low` is the 5th percentile of the positive values, but at least
/// max / 10⁴ (so the bins span at most four decades).
///
/// A value falls in the bin whose edges enclose it, by comparison with the edges (not by its
/// logarithm), so a database given the edges counts exactly the same bins.
#[derive(Debug, Clone, PartialEq)]
pub struct LogBins {
    /// `edges[0]` = low, …, `edges[bins]` ≈ max.
    pub edges: Vec<f64>,
}

impl LogBins {
    /// The bins for values whose maximum is `max` (> 0) and whose positive values have their
    /// 5th percentile (the `⌊n/20⌋`-th smallest, from 0) at `p5`.
    pub fn new(max: f64, p5: f64, bins: usize) -> LogBins {
        let low = p5.max(max / 1e4).min(max);
        let ratio = (max / low).ln();
        let edge = |i: usize| if ratio > 0.0 { low * (ratio * i as f64 / bins as f64).exp() } else { low };
        LogBins { edges: (0..=bins).map(edge).collect() }
    }

    /// The bin of `v`: 0 below `low`, else 1 + the inner edges at or below it.
    pub fn bin(&self, v: f64) -> usize {
        let (low, bins) = (self.edges[0], self.edges.len() - 1);
        if v.is_nan() || v < low { 0 } else { 1 + self.edges[1..bins].partition_point(|&e| e <= v) }
    }

    /// The histogram from the count of each bin (`counts[0]` below `low`).
    pub fn histogram(&self, counts: &[u64]) -> Vec<Bin> {
        let first = Bin { from: 0.0, to: self.edges[0], customers: counts.first().copied().unwrap_or(0) };
        std::iter::once(first)
            .chain(self.edges.windows(2).enumerate().map(|(i, w)| Bin {
                from: w[0],
                to: w[1],
                customers: counts.get(i + 1).copied().unwrap_or(0),
            }))
            .collect()
    }
}

/// A histogram of heavy-tailed non-negative values ([`LogBins`]). Empty for no values; one bin
/// `[0, max]` when no value is positive.
pub fn log_histogram(values: &[f64], bins: usize) -> Vec<Bin> {
    let max = values.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    if values.is_empty() {
        return Vec::new();
    }
    if max <= 0.0 || bins == 0 {
        return vec![Bin { from: 0.0, to: max.max(0.0), customers: values.len() as u64 }];
    }
    let mut positive: Vec<f64> = values.iter().copied().filter(|v| v.is_finite() && *v > 0.0).collect();
    let k = positive.len() / 20;
    let (_, p5, _) = positive.select_nth_unstable_by(k, f64::total_cmp);
    let bins = LogBins::new(max, *p5, bins);
    let mut counts = vec![0u64; bins.edges.len()];
    for &v in values {
        counts[bins.bin(v)] += 1;
    }
    bins.histogram(&counts)
}

/// The parts of [`ModelSummary`] that need each customer's CLV (the product of their
/// history's and their spend key's predictions), which a database computes where the
/// customers are.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvParts {
    /// Sum of the 12-month CLVs (`None` without a spend model).
    pub total: Option<f64>,
    /// [`log_histogram`] of the CLVs.
    pub histogram: Vec<Bin>,
    /// Customers flagged slipping.
    pub slipping: u64,
    /// The [`TARGETS`] customers most worth a retention action.
    pub targets: Vec<Target>,
}

/// How many customers [`ModelSummary::targets`] lists.
pub const TARGETS: usize = 20;

/// The CLV parts of analysed customers and their scores (slipping already marked).
pub fn clv_parts(summaries: &[CustomerSummary], scores: &[CustomerScore]) -> ClvParts {
    let clvs: Vec<f64> = scores.iter().filter_map(|s| s.clv_12m).collect();
    let mut order: Vec<usize> = (0..scores.len()).filter(|&i| scores[i].clv_12m.is_some()).collect();
    let value = |i: usize| scores[i].clv_12m.unwrap_or(0.0) * (1.0 - scores[i].p_alive);
    order.sort_unstable_by(|&a, &b| value(b).total_cmp(&value(a)).then(a.cmp(&b)));
    let targets = order
        .into_iter()
        .take(TARGETS)
        .map(|i| Target {
            index: i,
            customer_id: String::new(),
            clv_12m: scores[i].clv_12m.unwrap_or(0.0),
            p_alive: scores[i].p_alive,
            revenue: summaries[i].revenue.to_f64(),
            stage: summaries[i].stage.name(),
        })
        .collect();
    ClvParts {
        total: (!clvs.is_empty()).then(|| clvs.iter().sum()),
        histogram: log_histogram(&clvs, CLV_BINS),
        slipping: scores.iter().filter(|s| s.slipping).count() as u64,
        targets,
    }
}

/// Logarithmic bins of the CLV histogram.
pub const CLV_BINS: usize = 10;

/// The model summary: what depends on the histories alone from the predictions per distinct
/// history (weighted by their customers), the rest from `clv`.
pub fn model_summary(data: &Sufficient, predictions: Predictions, clv: ClvParts, options: &ClvOptions) -> ModelSummary {
    let Predictions { fitted, histories, .. } = predictions;
    let n = data.customers().max(1) as f64;
    let mut expected = [0.0; 3];
    let mut risk_bands = [0u64; 4];
    let mut p_alive_sum = 0.0;
    let mut p_alive_bins = [0u64; 10];
    // Heat map: repeat purchases 0…9 and 10+ by recency/T in tenths.
    let mut sums = vec![vec![(0.0, 0u64); 10]; 11];
    for (s, &(h, k)) in histories.iter().zip(&data.histories) {
        let w = k as f64;
        for (e, v) in expected.iter_mut().zip(s.expected_purchases) {
            *e += v * w;
        }
        risk_bands[s.risk as usize] += k;
        p_alive_sum += s.p_alive * w;
        p_alive_bins[((s.p_alive / 0.1).floor().max(0.0) as usize).min(9)] += k;
        let row = (h.x as usize).min(10);
        let share = if h.t > 0 { f64::from(h.recency) / f64::from(h.t) } else { 0.0 };
        let col = ((share * 10.0).floor().max(0.0) as usize).min(9);
        sums[row][col].0 += s.expected_purchases[2] * w;
        sums[row][col].1 += k;
    }
    let expected_heatmap =
        sums.into_iter().map(|row| row.into_iter().map(|(s, k)| (k > 0).then(|| s / k as f64)).collect()).collect();
    let chosen = fitted.model.name();
    let fallback =
        fitted.candidates.iter().find(|c| c.model == chosen && c.fit.is_ok()).and_then(|c| c.fallback.clone());
    ModelSummary {
        chosen,
        selected_by: fitted.selected_by,
        candidates: fitted.candidates,
        fallback,
        spend: fitted.spend_fit,
        expected_purchases: expected,
        clv_12m_total: clv.total,
        mean_p_alive: p_alive_sum / n,
        risk_bands,
        slipping_customers: clv.slipping,
        p_alive_histogram: p_alive_bins
            .iter()
            .enumerate()
            .map(|(i, &customers)| Bin { from: 0.1 * i as f64, to: 0.1 * (i + 1) as f64, customers })
            .collect(),
        clv_histogram: clv.histogram,
        expected_heatmap,
        targets: clv.targets,
        time_unit: "day",
        clv_definition: format!(
            "Σ over {} periods of {} days of expected spend per purchase × expected purchases in the period / (1 + {})^i",
            options.periods, options.period_length, options.discount_rate
        ),
    }
}
