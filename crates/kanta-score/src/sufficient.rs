//! Fitting and predicting on sufficient statistics: the distinct day-resolution histories
//! with how many customers share each, and the distinct (x, mean spend) pairs.
//!
//! Customers with the same (x, t_x, T) are interchangeable for the transaction models, and
//! customers with the same (x, z̄) for the spend model, so a base of 10⁸ customers has a few
//! million of each at most. `kanta analyze` on a file counts them in memory
//! ([`Sufficient::index`]); the push-down to a database has the engine count them
//! (`kanta-warehouse`). Both hand them to [`fit_and_predict`], which fits on them in one
//! canonical order (ascending keys), so the two paths fit on the same numbers in the same order
//! and get the same bits.

use std::collections::HashMap;

use kanta_core::analysis::CustomerSummary;
use kanta_core::money::Money;
use kanta_models::{
    FitReport, GammaGamma, Histories, History, Spend, TransactionModel, clv_from_expected, next_purchase_median,
};
use rayon::prelude::*;

use crate::{Candidate, RiskBand, ScoreError, ScoreOptions};

/// A customer's purchase history at day resolution, as the transaction models see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DayHistory {
    /// Repeat purchase days (frequency).
    pub x: u32,
    /// Days from the first to the last purchase day (recency).
    pub recency: i32,
    /// Days from the first purchase day to the observation end (T).
    pub t: i32,
}

impl DayHistory {
    /// The history of one analysed customer.
    pub fn of(c: &CustomerSummary) -> DayHistory {
        DayHistory { x: c.frequency, recency: c.recency_days, t: c.t_days }
    }

    /// The model's view: times as days, T never below the recency nor 0.
    pub fn history(self) -> History {
        History { x: self.x, t_x: f64::from(self.recency.max(0)), t: f64::from(self.t.max(self.recency).max(0)) }
    }
}

/// A customer's repeat purchases for the spend model: their number and total value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpendKey {
    /// Repeat purchase days.
    pub x: u32,
    /// The value of the orders on those days (exact).
    pub repeat_value: Money,
}

impl SpendKey {
    /// The mean value of a repeat purchase day, `monetary` of the customer table: the total as
    /// a float divided by x (0 when x = 0), computed one way everywhere.
    pub fn monetary(self) -> f64 {
        if self.x == 0 { 0.0 } else { self.repeat_value.to_f64() / f64::from(self.x) }
    }
}

/// The distinct histories and spend keys of a customer base, with how many customers have
/// each; both ascending by key and without duplicates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sufficient {
    /// (history, customers).
    pub histories: Vec<(DayHistory, u64)>,
    /// (spend key, customers).
    pub spends: Vec<(SpendKey, u64)>,
}

impl Sufficient {
    /// Counts them over analysed customers, and gives each customer the index of their history
    /// and spend key.
    pub fn index(summaries: &[CustomerSummary]) -> (Sufficient, Vec<u32>, Vec<u32>) {
        /// Numbers the distinct keys in order of appearance, counting them; then sorts them
        /// and renumbers the customers' ids into sorted positions.
        fn distinct<K: Copy + Eq + std::hash::Hash + Ord>(keys: impl Iterator<Item = K>) -> (Vec<(K, u64)>, Vec<u32>) {
            let mut ids: HashMap<K, u32> = HashMap::new();
            let mut counted: Vec<(K, u64)> = Vec::new();
            let mut of: Vec<u32> = Vec::new();
            for key in keys {
                let id = *ids.entry(key).or_insert_with(|| {
                    counted.push((key, 0));
                    (counted.len() - 1) as u32
                });
                counted[id as usize].1 += 1;
                of.push(id);
            }
            let mut order: Vec<u32> = (0..counted.len() as u32).collect();
            order.sort_unstable_by_key(|&i| counted[i as usize].0);
            let mut position = vec![0u32; counted.len()];
            for (pos, &i) in order.iter().enumerate() {
                position[i as usize] = pos as u32;
            }
            let sorted = order.iter().map(|&i| counted[i as usize]).collect();
            (sorted, of.into_iter().map(|id| position[id as usize]).collect())
        }
        let (histories, history_of) = distinct(summaries.iter().map(DayHistory::of));
        let (spends, spend_of) =
            distinct(summaries.iter().map(|c| SpendKey { x: c.frequency, repeat_value: c.repeat_value }));
        (Sufficient { histories, spends }, history_of, spend_of)
    }

    /// From counts in any order (sorted here).
    pub fn from_counts(mut histories: Vec<(DayHistory, u64)>, mut spends: Vec<(SpendKey, u64)>) -> Sufficient {
        histories.sort_unstable();
        spends.sort_unstable();
        Sufficient { histories, spends }
    }

    /// Customers counted.
    pub fn customers(&self) -> u64 {
        self.histories.iter().map(|&(_, k)| k).sum()
    }

    /// Customers with a repeat purchase.
    pub fn repeat_customers(&self) -> u64 {
        self.histories.iter().filter(|(h, _)| h.x > 0).map(|&(_, k)| k).sum()
    }
}

/// The model's predictions for every customer with one history. Everything but the CLV is a
/// function of the history alone; the CLV is `expected_spend × p_alive × clv_unit`, evaluated
/// left to right, wherever the spend is known (here or in a database), so it has the same bits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryScore {
    /// P(alive) at the observation end.
    pub p_alive: f64,
    /// Expected purchases in the next 30, 90 and 365 days (× P(alive)).
    pub expected_purchases: [f64; 3],
    /// P(a purchase in the next 30 and 90 days) (× P(alive)).
    pub p_purchase: [f64; 2],
    /// Discounted CLV per unit of spend if alive.
    pub clv_unit: f64,
    /// Median days to the next purchase if alive.
    pub next_purchase_days: f64,
    /// The churn-risk band.
    pub risk: RiskBand,
}

impl HistoryScore {
    /// The 12-month CLV of a customer with this history and `expected_spend`.
    pub fn clv(&self, expected_spend: f64) -> f64 {
        expected_spend * self.p_alive * self.clv_unit
    }
}

/// A predicted next purchase as µs since the epoch: `as_of` (its midnight, UTC) plus
/// `days` ([`HistoryScore::next_purchase_days`]), rounded to the µs; `None` when no purchase is
/// expected (infinite days) or the instant is beyond `i64`. One function, so the store's
/// in-memory scoring and its push-down store the same instant.
pub fn next_purchase_micros(as_of: kanta_core::time::Day, days: f64) -> Option<i64> {
    const MICROS_PER_DAY: f64 = 86_400_000_000.0;
    let micros = (f64::from(as_of.0) * MICROS_PER_DAY + days * MICROS_PER_DAY).round();
    // `as` saturates; the range check keeps a saturated value from passing as an instant.
    (micros.is_finite() && micros.abs() < 9.2e18).then_some(micros as i64)
}

/// The fitted models and the comparison of candidates.
pub struct Fitted {
    /// The transaction model whose predictions are used.
    pub model: Box<dyn TransactionModel + Send + Sync>,
    /// The spend model, when it could be fitted.
    pub spend_model: Option<GammaGamma>,
    /// Every candidate with its fit or why it failed.
    pub candidates: Vec<Candidate>,
    /// The spend fit or why there is none.
    pub spend_fit: Result<FitReport, String>,
    /// How the model was chosen.
    pub selected_by: &'static str,
}

/// What [`fit_and_predict`] returns: the models, a score per history and an expected spend
/// per spend key (both indexed like the [`Sufficient`]'s lists).
pub struct Predictions {
    /// The models.
    pub fitted: Fitted,
    /// One score per distinct history.
    pub histories: Vec<HistoryScore>,
    /// E[spend | x, z̄] per distinct spend key, when the spend model was fitted.
    pub spends: Vec<Option<f64>>,
}

/// Fits the models on the sufficient statistics and predicts for each distinct history and
/// spend key. See [`ScoreOptions::model`] for how the model is chosen.
pub fn fit_and_predict(data: &Sufficient, options: &ScoreOptions) -> Result<Predictions, ScoreError> {
    let customers = data.customers() as usize;
    let repeat = data.repeat_customers() as usize;
    if customers < crate::MIN_CUSTOMERS || repeat < crate::MIN_REPEAT {
        return Err(ScoreError::TooFew { customers, repeat });
    }
    let histories: Vec<History> = data.histories.iter().map(|(h, _)| h.history()).collect();
    let weighted = Histories::new(histories.iter().zip(&data.histories).map(|(&h, &(_, k))| (h, k as f64)))
        .map_err(|e| ScoreError::NoModel(e.to_string()))?;
    let choices = options.model.candidates();
    let mut selected_by = if options.model == kanta_domain::ModelKind::Auto { "bic" } else { "requested" };
    let mut candidates = Vec::new();
    // Fitted models with their BIC and row in `candidates`.
    let mut fitted: Vec<(Box<dyn TransactionModel + Send + Sync>, f64, usize)> = Vec::new();
    let mut errors = Vec::new();
    for &choice in choices {
        match crate::fit_transaction(choice, &weighted, &options.fit) {
            Ok((model, report)) => {
                fitted.push((model, report.bic, candidates.len()));
                candidates.push(Candidate { model: report.model, fit: Ok(report), fallback: None });
            }
            Err(e) => {
                candidates.push(Candidate { model: choice.name(), fit: Err(e.to_string()), fallback: None });
                errors.push(e);
            }
        }
    }
    if fitted.is_empty()
        && let Some(row) = crate::fit_fallback(&errors, &weighted, &options.fit)
    {
        if let (Ok(report), Some(model)) = (&row.0.fit, row.1) {
            fitted.push((model, report.bic, candidates.len()));
            selected_by = "fallback";
        }
        candidates.push(row.0);
    }
    fitted.sort_by(|a, b| a.1.total_cmp(&b.1));
    let spend_data: Vec<(Spend, f64)> = data
        .spends
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| s.x > 0 && s.monetary() > 0.0)
        .filter_map(|(i, &(s, k))| Spend::parse(i, s.x, s.monetary()).ok().map(|spend| (spend, k as f64)))
        .collect();
    let spend_fit = if spend_data.is_empty() {
        Err("no repeat customer with spend".to_owned())
    } else {
        GammaGamma::fit(&spend_data, &options.fit).map_err(|e| e.to_string())
    };
    let (spend_model, spend_fit) = match spend_fit {
        Ok((m, r)) => (Some(m), Ok(r)),
        Err(e) => (None, Err(e)),
    };
    // The best BIC whose predictions are all finite; a model whose numbers are not is dropped
    // like a failed fit, with the reason in its comparison row.
    for (model, _, row) in fitted {
        match predict(model.as_ref(), data, spend_model.as_ref(), options) {
            Ok((histories, spends)) => {
                let fitted = Fitted { model, spend_model, candidates, spend_fit, selected_by };
                return Ok(Predictions { fitted, histories, spends });
            }
            Err(reason) => candidates[row].fit = Err(reason),
        }
    }
    let reasons: Vec<String> = candidates.iter().filter_map(|c| c.fit.as_ref().err().cloned()).collect();
    Err(ScoreError::NoModel(reasons.join("; ")))
}

/// Every history's and spend key's prediction under `model`; `Err` with the reason when some
/// customer's numbers would not be finite or P(alive) is outside [0, 1] (a series in the
/// model's predictions that did not converge reports NaN rather than a wrong number).
pub fn predict(
    model: &(dyn TransactionModel + Sync),
    data: &Sufficient,
    spend_model: Option<&GammaGamma>,
    options: &ScoreOptions,
) -> Result<(Vec<HistoryScore>, Vec<Option<f64>>), String> {
    // One pass per history: the three horizons and the CLV period ends share one batched
    // evaluation, and P(alive) is computed once.
    let mut ts = vec![30.0, 90.0, 365.0];
    ts.extend((1..=options.clv.periods).map(|i| f64::from(i) * options.clv.period_length));
    let within = [30.0, 90.0];
    let discount = options.clv.discount_rate;
    let histories: Vec<HistoryScore> = data
        .histories
        .par_iter()
        .with_min_len(256)
        .map_init(
            || vec![0.0; ts.len()],
            |out, &(key, _)| {
                let h = key.history();
                let mut purchase = [0.0; 2];
                // Everything but P(alive) depends on a history only through (x, T).
                model.if_alive_many(h.x, h.t, &ts, out, &within, &mut purchase);
                let clv_unit = clv_from_expected(&out[3..], 1.0, discount);
                let p_alive = model.p_alive(&h);
                HistoryScore {
                    p_alive,
                    expected_purchases: [out[0] * p_alive, out[1] * p_alive, out[2] * p_alive],
                    p_purchase: [purchase[0] * p_alive, purchase[1] * p_alive],
                    clv_unit,
                    next_purchase_days: next_purchase_median(model, &h),
                    risk: RiskBand::of(p_alive),
                }
            },
        )
        .collect();
    let spends: Vec<Option<f64>> = data
        .spends
        .iter()
        .map(|&(s, _)| spend_model.and_then(|m| m.conditional_expected_spend(s.x, s.monetary())))
        .collect();
    let bad_history: u64 =
        histories.iter().zip(&data.histories).filter(|(s, _)| !history_is_finite(s)).map(|(_, &(_, k))| k).sum();
    let bad_spend: u64 =
        spends.iter().zip(&data.spends).filter(|(s, _)| s.is_some_and(|v| !v.is_finite())).map(|(_, &(_, k))| k).sum();
    let bad = bad_history.max(bad_spend);
    if bad > 0 {
        return Err(format!(
            "{} was fitted, but its predictions are not finite for {bad} of {} customers",
            kanta_models::title(model.name()),
            data.customers()
        ));
    }
    Ok((histories, spends))
}

/// Whether every number of a history's score is finite and P(alive) a probability.
fn history_is_finite(s: &HistoryScore) -> bool {
    (0.0..=1.0).contains(&s.p_alive)
        && s.expected_purchases.iter().all(|v| v.is_finite())
        && s.p_purchase.iter().all(|v| v.is_finite())
        && s.clv_unit.is_finite()
        && s.next_purchase_days.is_finite()
}

#[cfg(test)]
mod tests {
    use super::next_purchase_micros;
    use kanta_core::time::Day;

    #[test]
    fn next_purchase_instants_round_to_the_microsecond_and_refuse_infinity() {
        let day = 86_400_000_000i64;
        assert_eq!(next_purchase_micros(Day(19_000), 0.0), Some(19_000 * day));
        assert_eq!(next_purchase_micros(Day(19_000), 1.5), Some(19_001 * day + day / 2));
        // 1e-7 days is 8,640 µs (8,640.000000000001 before rounding).
        assert_eq!(next_purchase_micros(Day(0), 1e-7), Some(8_640));
        assert_eq!(next_purchase_micros(Day(10), f64::INFINITY), None);
        assert_eq!(next_purchase_micros(Day(10), f64::NAN), None);
        assert_eq!(next_purchase_micros(Day(10), 1e15), None);
    }
}
