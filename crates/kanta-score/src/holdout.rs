//! Holdout validation: calibrate the models on the orders before a date, predict the purchases
//! after it, and compare with what customers actually did — the test Fader, Hardie & Lee (2005)
//! use for BG/NBD (their Figures 2–4: tracking and conditional expectations).

use kanta_core::aggregate::CustomerBase;
use kanta_core::analysis::purchase_days;
use kanta_core::time::Day;
use kanta_models::{ClvOptions, FitOptions, FitReport, Histories, History, predict_customers};
use serde::Serialize;

use crate::{ModelKind, ScoreError, fit_transaction};

/// One model's holdout accuracy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldoutModel {
    /// Model name.
    pub model: &'static str,
    /// The calibration fit, or why it failed.
    #[serde(serialize_with = "crate::fit_or_error")]
    pub fit: Result<FitReport, String>,
    /// Mean absolute error of predicted vs actual holdout purchases per customer.
    pub mae: Option<f64>,
    /// Root mean squared error per customer.
    pub rmse: Option<f64>,
    /// Mean of predicted − actual per customer (positive: the model over-predicts).
    pub bias: Option<f64>,
    /// Predicted holdout purchases of the whole calibration cohort.
    pub predicted_total: Option<f64>,
}

/// One row of the conditional-expectations comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionalRow {
    /// Calibration repeat purchases (`7+` for the last row).
    pub frequency: String,
    /// Customers with that frequency.
    pub customers: u64,
    /// Their mean actual holdout purchases.
    pub actual: f64,
    /// Their mean predicted holdout purchases.
    pub predicted: f64,
}

/// The weekly tracking plot: cumulative repeat purchases, actual and predicted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tracking {
    /// Week numbers (from the first week with a first purchase).
    pub weeks: Vec<f64>,
    /// Cumulative repeat purchases (purchase days after the first) of the calibration cohort.
    pub actual: Vec<f64>,
    /// The same predicted by the chosen model from each customer's first purchase on.
    pub predicted: Vec<f64>,
    /// The week in which the holdout starts.
    pub holdout_week: f64,
}

/// One customer in the holdout evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutCustomer {
    /// Index into the customer base.
    pub customer: u32,
    /// Calibration history (days).
    pub history: History,
    /// Actual purchase days in the holdout.
    pub actual: u32,
    /// Predicted by the chosen model.
    pub predicted: f64,
}

/// The holdout evaluation: `summary.json`'s `holdout` and the report's validation section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldoutReport {
    /// Last day of calibration.
    pub calibration_end: String,
    /// Last day of the holdout (the observation end).
    pub holdout_end: String,
    /// Holdout length in days.
    pub holdout_days: i32,
    /// Customers whose first purchase is in the calibration period.
    pub customers: u64,
    /// Actual holdout purchases of those customers.
    pub actual_total: f64,
    /// Every model tried.
    pub models: Vec<HoldoutModel>,
    /// The model with the lowest MAE.
    pub best: &'static str,
    /// Conditional expectations of the best model by calibration frequency 0–6 and 7+.
    pub conditional: Vec<ConditionalRow>,
    /// Weekly tracking of the best model.
    pub tracking: Tracking,
    /// Per-customer comparison (written to `holdout.csv`, not to JSON).
    #[serde(skip)]
    pub per_customer: Vec<HoldoutCustomer>,
}

/// Calibrates on purchases up to the day before `holdout_from`, predicts to `as_of`.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_holdout(
    base: &CustomerBase,
    holdout_from: Day,
    as_of: Day,
    keep_zero: bool,
    choices: &[ModelKind],
    fit: &FitOptions,
) -> Result<HoldoutReport, ScoreError> {
    let calibration_end = Day(holdout_from.0 - 1);
    let horizon = f64::from(as_of.0 - calibration_end.0);
    if horizon <= 0.0 {
        return Err(ScoreError::NoModel(format!(
            "the holdout must start after the first purchase and on or before the observation end {as_of}"
        )));
    }
    let mut customers = Vec::new();
    let mut first_days = Vec::new();
    let mut repeat_days: Vec<i32> = Vec::new();
    for index in 0..base.customers() as u32 {
        let days = purchase_days(base, index, as_of, keep_zero);
        let Some(&first) = days.first() else { continue };
        if first > calibration_end {
            continue;
        }
        let cal = days.iter().take_while(|d| **d <= calibration_end).count();
        let last = days[cal - 1];
        customers.push(HoldoutCustomer {
            customer: index,
            history: History {
                x: (cal - 1) as u32,
                t_x: f64::from(last.0 - first.0),
                t: f64::from(calibration_end.0 - first.0),
            },
            actual: (days.len() - cal) as u32,
            predicted: 0.0,
        });
        first_days.push(first.0);
        repeat_days.extend(days[1..].iter().map(|d| d.0));
    }
    let data = Histories::from_histories(customers.iter().map(|c| c.history))
        .map_err(|e| ScoreError::NoModel(e.to_string()))?;
    let inputs: Vec<(History, f64)> = customers.iter().map(|c| (c.history, 0.0)).collect();
    let n = customers.len().max(1) as f64;
    let mut models = Vec::new();
    let mut best: Option<(Box<dyn kanta_models::TransactionModel + Sync>, f64, Vec<f64>)> = None;
    for &choice in choices {
        match fit_transaction(choice, &data, fit) {
            Ok((model, report)) => {
                let predicted: Vec<f64> =
                    predict_customers(model.as_ref(), None, &inputs, horizon, &ClvOptions::default())
                        .iter()
                        .map(|p| p.expected_purchases)
                        .collect();
                let (mut abs, mut sq, mut diff) = (0.0, 0.0, 0.0);
                for (c, p) in customers.iter().zip(&predicted) {
                    let e = p - f64::from(c.actual);
                    abs += e.abs();
                    sq += e * e;
                    diff += e;
                }
                let mae = abs / n;
                models.push(HoldoutModel {
                    model: report.model,
                    fit: Ok(report),
                    mae: Some(mae),
                    rmse: Some((sq / n).sqrt()),
                    bias: Some(diff / n),
                    predicted_total: Some(predicted.iter().sum()),
                });
                if best.as_ref().is_none_or(|(_, m, _)| mae < *m) {
                    best = Some((model, mae, predicted));
                }
            }
            Err(e) => models.push(HoldoutModel {
                model: choice.name(),
                fit: Err(e.to_string()),
                mae: None,
                rmse: None,
                bias: None,
                predicted_total: None,
            }),
        }
    }
    let Some((model, _, predicted)) = best else {
        let reasons: Vec<String> = models.iter().filter_map(|m| m.fit.as_ref().err().cloned()).collect();
        return Err(ScoreError::NoModel(reasons.join("; ")));
    };
    for (c, p) in customers.iter_mut().zip(&predicted) {
        c.predicted = *p;
    }
    let conditional = (0..8)
        .filter_map(|k| {
            let group: Vec<&HoldoutCustomer> =
                customers.iter().filter(|c| if k == 7 { c.history.x >= 7 } else { c.history.x == k }).collect();
            let m = group.len() as f64;
            (m > 0.0).then(|| ConditionalRow {
                frequency: if k == 7 { "7+".to_owned() } else { k.to_string() },
                customers: group.len() as u64,
                actual: group.iter().map(|c| f64::from(c.actual)).sum::<f64>() / m,
                predicted: group.iter().map(|c| c.predicted).sum::<f64>() / m,
            })
        })
        .collect();
    let tracking = tracking(model.as_ref(), &first_days, &repeat_days, holdout_from, as_of);
    Ok(HoldoutReport {
        calibration_end: calibration_end.to_string(),
        holdout_end: as_of.to_string(),
        holdout_days: as_of.0 - calibration_end.0,
        customers: customers.len() as u64,
        actual_total: customers.iter().map(|c| f64::from(c.actual)).sum(),
        best: model.name(),
        models,
        conditional,
        tracking,
        per_customer: customers,
    })
}

/// Weekly cumulative repeat purchases: actual from the purchase days, predicted as
/// Σ_d n_d E[X(t − d)] over the customers' first-purchase days d (FHL 2005, Figure 2).
fn tracking(
    model: &(dyn kanta_models::TransactionModel + Sync),
    first_days: &[i32],
    repeat_days: &[i32],
    holdout_from: Day,
    as_of: Day,
) -> Tracking {
    let start = first_days.iter().copied().min().unwrap_or(as_of.0);
    let span = (as_of.0 - start + 1).max(1) as usize;
    let weeks = span.div_ceil(7);
    let mut actual = vec![0.0; weeks];
    for d in repeat_days {
        actual[((d - start) as usize / 7).min(weeks - 1)] += 1.0;
    }
    let mut firsts = vec![0.0; span];
    for d in first_days {
        firsts[(d - start) as usize] += 1.0;
    }
    // E[X(k)] for every whole number of days k up to the span.
    let expected: Vec<f64> = (0..=span).map(|k| model.expected_purchases(k as f64)).collect();
    let mut predicted = Vec::with_capacity(weeks);
    for w in 0..weeks {
        // End of week w, as days since `start` (inclusive of the last day).
        let end = ((w + 1) * 7).min(span);
        let total: f64 = (0..end).map(|d| firsts[d] * expected[end - 1 - d]).sum();
        predicted.push(total);
    }
    let mut cumulative = 0.0;
    for a in &mut actual {
        cumulative += *a;
        *a = cumulative;
    }
    Tracking {
        weeks: (1..=weeks).map(|w| w as f64).collect(),
        actual,
        predicted,
        holdout_week: f64::from(holdout_from.0 - start) / 7.0,
    }
}
