//! The uplift report of one journey: the arms side by side, every comparison with its
//! intervals, and the verdict rule — computed from one row per customer.
//!
//! **The unit** is the customer from their first entry (intention to treat: whatever happened
//! after the hash put them in an arm). **Matured** customers, whose goal window has fully
//! passed, are the ones compared on conversion and revenue: a customer who entered yesterday
//! has had one day to convert, and mixing them in would make every rate depend on when the
//! report was run. The cumulative conversion curve uses everyone, censored at the day they
//! were last observed ([`crate::curve`]).
//!
//! | figure | method |
//! |---|---|
//! | difference in conversion rate | Wald; Newcombe's hybrid score ([`crate::proportion`]) |
//! | difference in revenue per customer | Welch ([`crate::mean`]); seeded percentile bootstrap ([`crate::bootstrap`]) |
//! | the same, CUPED-adjusted on revenue in the 365 days before entry | [`crate::cuped`] |
//! | incremental conversions and revenue | difference × treated customers (and its interval's ends × treated) |
//! | too early to tell? | minimum detectable effect at 80 % power and the verdict rule ([`crate::power`]) |

use serde::Serialize;

use crate::bootstrap::{self, BootstrapDifference, Options, Sample};
use crate::cuped::{Cuped, Paired};
use crate::curve::{CurvePoint, FollowUp, cumulative_conversion};
use crate::mean::{MeanDifference, Summary, welch_from_summaries};
use crate::power::{Rule, Verdict, mean_mde, rate_mde, verdict};
use crate::proportion::{Proportion, RateDifference, difference};
use crate::{Interval, Level, UpliftError};

/// One customer, as the report reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    /// In a control arm (the journey's holdout or the global one).
    pub control: bool,
    /// Whether their goal window has fully passed: only matured customers are compared.
    pub matured: bool,
    /// Converted within the window.
    pub converted: bool,
    /// Net revenue in the window after entry (currency units).
    pub revenue_after: f64,
    /// Purchases (orders) in the window after entry.
    pub orders_after: f64,
    /// Net revenue in the 365 days before entry (currency units): CUPED's covariate.
    pub revenue_before: f64,
    /// Messages sent to them (0 for control).
    pub messages: u64,
    /// The model's predicted 12-month value of the customer now (after entry: an outcome the
    /// journey may have moved), 0 without a score.
    pub predicted_clv: f64,
    /// Follow-up for the curve.
    pub follow_up: FollowUp,
}

/// How the report computes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Settings {
    /// The confidence level (0.95).
    pub level: f64,
    /// Bootstrap resamples and seed.
    pub bootstrap: Options,
    /// When a verdict may be given.
    pub rule: Rule,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { level: 0.95, bootstrap: Options::seeded(1), rule: Rule::default() }
    }
}

/// One arm's totals.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ArmTotals {
    /// Customers (first entries), matured or not.
    pub customers: u64,
    /// Of them, matured: the ones compared.
    pub matured: u64,
    /// Matured customers who converted.
    pub conversions: u64,
    /// Conversion rate of the matured customers.
    pub conversion_rate: f64,
    /// Net revenue of the matured customers in their windows (currency units).
    pub revenue: f64,
    /// Revenue per matured customer.
    pub revenue_per_customer: f64,
    /// Messages sent to all of them.
    pub messages: u64,
}

/// The conversion comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ConversionComparison {
    /// Rates, difference, Wald and Newcombe intervals (treatment − control).
    #[serde(flatten)]
    pub difference: RateDifference,
    /// The smallest difference the current sizes detect at 80 % power.
    pub minimum_detectable_effect: f64,
    /// What may be said, on Newcombe's interval.
    pub verdict: Verdict,
    /// Conversions the journey added among the treated: difference × treated customers.
    pub incremental: f64,
    /// The same from Newcombe's interval's ends.
    pub incremental_interval: Interval,
}

/// The revenue comparison (raw or CUPED-adjusted).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RevenueComparison {
    /// Welch's t interval.
    pub welch: MeanDifference,
    /// The seeded percentile bootstrap interval.
    pub bootstrap: BootstrapDifference,
    /// The smallest difference the current sizes detect at 80 % power.
    pub minimum_detectable_effect: f64,
    /// What may be said, on the bootstrap interval (revenue is heavy-tailed).
    pub verdict: Verdict,
    /// Revenue the journey added among the treated: difference × treated customers.
    pub incremental: f64,
    /// The same from the bootstrap interval's ends.
    pub incremental_interval: Interval,
}

/// The CUPED-adjusted revenue comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CupedComparison {
    /// θ = cov(pre, post)/var(pre), pooled.
    pub theta: f64,
    /// The share of the variance of the difference removed (≈ ρ²).
    pub variance_reduction: f64,
    /// The comparison on the adjusted revenue.
    #[serde(flatten)]
    pub revenue: RevenueComparison,
}

/// A per-customer mean, treatment against control, by Welch's interval, and what the
/// difference adds up to among the treated. Used for the orders per customer in the window
/// (incremental orders) and, for retention economics, the predicted 12-month value (CLV): the
/// scores are computed after entry, so a journey that keeps customers active raises the treated
/// arm's CLV, and the difference times the treated customers is the future value the journey
/// kept (a model-based estimate, beside the measured revenue).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanComparison {
    /// Mean per customer, treatment − control, with Welch's interval.
    pub welch: MeanDifference,
    /// Difference × treated customers.
    pub incremental: f64,
    /// The same from the interval's ends.
    pub incremental_interval: Interval,
}

impl MeanComparison {
    fn of(treated: &[f64], control: &[f64], level: Level) -> Result<MeanComparison, UpliftError> {
        let welch = welch_from_summaries(Summary::of(treated, "treatment")?, Summary::of(control, "control")?, level)?;
        let n = treated.len() as f64;
        Ok(MeanComparison {
            welch,
            incremental: welch.difference * n,
            incremental_interval: Interval { lower: welch.interval.lower * n, upper: welch.interval.upper * n },
        })
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpliftReport {
    /// The settings it was computed with.
    pub settings: Settings,
    /// The treated arm.
    pub treatment: ArmTotals,
    /// The control arm.
    pub control: ArmTotals,
    /// Conversion; `None` while an arm has no matured customer.
    pub conversion: Option<ConversionComparison>,
    /// Revenue per customer; `None` while an arm has fewer than two matured customers.
    pub revenue: Option<RevenueComparison>,
    /// Revenue per customer with CUPED; `None` as `revenue`.
    pub cuped: Option<CupedComparison>,
    /// Purchases per customer in the window: incremental orders; `None` as `revenue`.
    pub orders: Option<MeanComparison>,
    /// Predicted 12-month CLV per customer; `None` as `revenue` or without scores.
    pub clv: Option<MeanComparison>,
    /// Cumulative conversion by day since entry, treated arm.
    pub curve_treatment: Vec<CurvePoint>,
    /// Cumulative conversion by day since entry, control arm.
    pub curve_control: Vec<CurvePoint>,
    /// Why a comparison is missing, in words (`the control arm has no customers`).
    pub notes: Vec<String>,
}

impl UpliftReport {
    /// The headline: the conversion verdict, or too early when there is no comparison yet.
    pub fn verdict(&self) -> Verdict {
        self.conversion.as_ref().map_or(Verdict::TooEarly, |c| c.verdict)
    }
}

/// Computes the report from the customers' rows.
pub fn report(units: &[Unit], settings: Settings) -> Result<UpliftReport, UpliftError> {
    let level = Level::new(settings.level)?;
    let mut notes = Vec::new();
    let (treated, control): (Vec<&Unit>, Vec<&Unit>) = units.iter().partition(|u| !u.control);
    let totals = |arm: &[&Unit]| {
        let matured: Vec<&&Unit> = arm.iter().filter(|u| u.matured).collect();
        let conversions = matured.iter().filter(|u| u.converted).count() as u64;
        let revenue: f64 = matured.iter().map(|u| u.revenue_after).sum();
        let n = matured.len() as u64;
        ArmTotals {
            customers: arm.len() as u64,
            matured: n,
            conversions,
            conversion_rate: if n > 0 { conversions as f64 / n as f64 } else { 0.0 },
            revenue,
            revenue_per_customer: if n > 0 { revenue / n as f64 } else { 0.0 },
            messages: arm.iter().map(|u| u.messages).sum(),
        }
    };
    let (t, c) = (totals(&treated), totals(&control));
    let conversion = if t.matured == 0 || c.matured == 0 {
        let arm = if t.matured == 0 { "treatment" } else { "control" };
        notes.push(format!("the {arm} arm has no customer whose goal window has passed yet"));
        None
    } else {
        let (pt, pc) = (Proportion::new(t.conversions, t.matured)?, Proportion::new(c.conversions, c.matured)?);
        let d = difference(pt, pc, level)?;
        let mde = rate_mde(pt, pc, level)?;
        let v = verdict(d.newcombe, mde, d.rate_2, (t.conversions, c.conversions), settings.rule);
        let n = t.matured as f64;
        Some(ConversionComparison {
            difference: d,
            minimum_detectable_effect: mde,
            verdict: v,
            incremental: d.difference * n,
            incremental_interval: Interval { lower: d.newcombe.lower * n, upper: d.newcombe.upper * n },
        })
    };
    let after = |arm: &[&Unit]| arm.iter().filter(|u| u.matured).map(|u| u.revenue_after).collect::<Vec<f64>>();
    let before = |arm: &[&Unit]| arm.iter().filter(|u| u.matured).map(|u| u.revenue_before).collect::<Vec<f64>>();
    let (post_t, post_c) = (after(&treated), after(&control));
    let conversions = (t.conversions, c.conversions);
    let (revenue, cuped, orders, clv) = if post_t.len() < 2 || post_c.len() < 2 {
        if conversion.is_some() {
            notes.push("revenue needs at least two matured customers in each arm".to_owned());
        }
        (None, None, None, None)
    } else {
        let (pre_t, pre_c) = (before(&treated), before(&control));
        // The raw and the CUPED comparison each run a bootstrap, most of the report's time: on
        // two threads. Each bootstrap has its own seeded generator, so the result is the same
        // as one after the other.
        let (raw, adjusted) = std::thread::scope(|scope| {
            let raw = scope.spawn(|| {
                compare_revenue(
                    &post_t,
                    &post_c,
                    (Sample::revenue(&post_t, "treatment")?, Sample::revenue(&post_c, "control")?),
                    conversions,
                    level,
                    settings,
                )
            });
            let adjusted = (|| {
                let adjusted =
                    Cuped::adjust(Paired { pre: &pre_t, post: &post_t }, Paired { pre: &pre_c, post: &post_c })?;
                let samples = adjusted.bootstrap_samples()?;
                let revenue =
                    compare_revenue(&adjusted.adjusted_1, &adjusted.adjusted_2, samples, conversions, level, settings)?;
                Ok::<_, UpliftError>((adjusted, revenue))
            })();
            (raw.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), adjusted)
        });
        let (raw, (adjusted, revenue)) = (raw?, adjusted?);
        let cuped = CupedComparison { theta: adjusted.theta, variance_reduction: adjusted.variance_reduction, revenue };
        let clv_of = |arm: &[&Unit]| arm.iter().filter(|u| u.matured).map(|u| u.predicted_clv).collect::<Vec<f64>>();
        let (clv_t, clv_c) = (clv_of(&treated), clv_of(&control));
        let clv = if clv_t.iter().chain(&clv_c).all(|v| *v == 0.0) {
            notes.push("no matured customer has a predicted CLV: the store has no scores yet".to_owned());
            None
        } else {
            Some(MeanComparison::of(&clv_t, &clv_c, level)?)
        };
        let orders_of = |arm: &[&Unit]| arm.iter().filter(|u| u.matured).map(|u| u.orders_after).collect::<Vec<f64>>();
        let orders = MeanComparison::of(&orders_of(&treated), &orders_of(&control), level)?;
        (Some(raw), Some(cuped), Some(orders), clv)
    };
    let follow = |arm: &[&Unit]| arm.iter().map(|u| u.follow_up).collect::<Vec<FollowUp>>();
    Ok(UpliftReport {
        settings,
        treatment: t,
        control: c,
        conversion,
        revenue,
        cuped,
        orders,
        clv,
        curve_treatment: cumulative_conversion(&follow(&treated), level),
        curve_control: cumulative_conversion(&follow(&control), level),
        notes,
    })
}

fn compare_revenue(
    treated: &[f64],
    control: &[f64],
    samples: (Sample, Sample),
    conversions: (u64, u64),
    level: Level,
    settings: Settings,
) -> Result<RevenueComparison, UpliftError> {
    let (st, sc) = (Summary::of(treated, "treatment")?, Summary::of(control, "control")?);
    let welch = welch_from_summaries(st, sc, level)?;
    let boot = bootstrap::percentile(&samples.0, &samples.1, level, settings.bootstrap)?;
    let mde = mean_mde(st, sc, level);
    let n = treated.len() as f64;
    Ok(RevenueComparison {
        welch,
        bootstrap: boot,
        minimum_detectable_effect: mde,
        verdict: verdict(boot.interval, mde, sc.mean, conversions, settings.rule),
        incremental: boot.difference * n,
        incremental_interval: Interval { lower: boot.interval.lower * n, upper: boot.interval.upper * n },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(control: bool, converted: bool, after: f64, before: f64) -> Unit {
        Unit {
            control,
            matured: true,
            converted,
            revenue_after: after,
            orders_after: if converted { 2.0 } else { 0.0 },
            revenue_before: before,
            messages: u64::from(!control),
            predicted_clv: if converted { 100.0 } else { 20.0 },
            follow_up: FollowUp { days_followed: 30, converted_on: converted.then_some(3) },
        }
    }

    #[test]
    fn a_two_by_two_table_gives_the_proportion_module_s_numbers() {
        // 60 of 400 treated and 40 of 400 control converted.
        let mut units = Vec::new();
        for i in 0..400 {
            units.push(unit(false, i < 60, if i < 60 { 50.0 } else { 0.0 }, 10.0));
            units.push(unit(true, i < 40, if i < 40 { 50.0 } else { 0.0 }, 10.0));
        }
        let r = report(&units, Settings::default()).unwrap();
        assert_eq!((r.treatment.matured, r.treatment.conversions, r.control.conversions), (400, 60, 40));
        assert_eq!((r.treatment.messages, r.control.messages), (400, 0));
        let c = r.conversion.unwrap();
        let expected =
            difference(Proportion::new(60, 400).unwrap(), Proportion::new(40, 400).unwrap(), Level::default()).unwrap();
        assert_eq!(c.difference, expected);
        assert!((c.difference.difference - 0.05).abs() < 1e-15);
        assert!((c.incremental - 20.0).abs() < 1e-9);
        // Revenue: 3000/400 − 2000/400 = 2.5 per customer, 1000 in all among the treated.
        let revenue = r.revenue.unwrap();
        assert!((revenue.welch.difference - 2.5).abs() < 1e-12);
        assert!((revenue.incremental - 1000.0).abs() < 1e-9);
        assert!(revenue.bootstrap.interval.contains(2.5));
        // The pre-entry revenue is constant: CUPED can remove nothing and changes nothing.
        let cuped = r.cuped.unwrap();
        assert_eq!(cuped.theta, 0.0);
        assert!((cuped.revenue.welch.difference - 2.5).abs() < 1e-12);
        // Predicted CLV: 100 for converters, 20 otherwise: (60·100 + 340·20)/400 − (40·100 +
        // 360·20)/400 = 32 − 28 = 4 per customer, 1600 among the 400 treated.
        // Orders: 2 per converter: 2·60/400 − 2·40/400 = 0.1 per customer, 40 among the treated.
        let orders = r.orders.unwrap();
        assert!((orders.welch.difference - 0.1).abs() < 1e-12);
        assert!((orders.incremental - 40.0).abs() < 1e-9);
        let clv = r.clv.unwrap();
        assert!((clv.welch.difference - 4.0).abs() < 1e-12);
        assert!((clv.incremental - 1600.0).abs() < 1e-9);
    }

    #[test]
    fn unmatured_customers_are_counted_but_not_compared() {
        let mut units = vec![unit(false, true, 10.0, 0.0), unit(true, false, 0.0, 0.0)];
        units.push(Unit { matured: false, ..unit(true, true, 99.0, 0.0) });
        let r = report(&units, Settings::default()).unwrap();
        assert_eq!((r.control.customers, r.control.matured, r.control.conversions), (2, 1, 0));
        assert_eq!(r.verdict(), Verdict::TooEarly);
        assert!(r.revenue.is_none());
        assert_eq!(r.notes, ["revenue needs at least two matured customers in each arm"]);
        let empty = report(&units[..1], Settings::default()).unwrap();
        assert!(empty.conversion.is_none());
        assert_eq!(empty.notes, ["the control arm has no customer whose goal window has passed yet"]);
    }
}
