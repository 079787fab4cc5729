//! One customer's next days, drawn from the fitted model: what the daily rescoring would say
//! about them — stage, slipping, predicted next purchase — if their purchases went as drawn.
//! The projection behind `kanta journeys simulate`'s stage and predicted-purchase triggers.
//!
//! [`Projector::draw`] draws the purchases after now ([`kanta_models::draw_future`]: alive with
//! P(alive), then Poisson purchases at a rate from its posterior, dropping out as the model
//! says); [`Projector::days`] replays the scoring job once a day, `k = 1..=days` days after
//! now, on what it would then know:
//!
//! ```text
//! a purchase at t days after now falls on day ⌊f + t⌋ after today (f: the part of today gone)
//! T_k     = T + k                       orders_k = orders + purchases at t ≤ k
//! x_k     = x + new purchase days       t_x,k    = t_x + (last purchase day − old last day)
//! d_k     = days since the last purchase day, as of today + k
//! G_k     = the lapse threshold of day k (LapseThresholds)
//! stage_k = the rules (kanta_core::lifecycle) on (orders_k, d_k) with G_k; slipping when
//!           valuable, P(alive | x_k, t_x,k, T_k) < the threshold and the rules say new,
//!           repeat or loyal
//! next_k  = the median days to the next purchase if alive (kanta_models::next_purchase_median)
//! ```
//!
//! The lapse threshold is the 90th percentile of every gap between purchase days, so it moves
//! as the drawn purchases add gaps: [`LapseThresholds`] adds each drawn gap on the day the
//! scoring would first see it. (On a shop with a two-year history it rises by about a day a
//! week, and every day it rises puts two days' worth of customers back from lost to lapsing;
//! a projection with a fixed threshold overstated a month's `lost` entries by half.)
//!
//! What stays as it is now: the model's parameters (a scoring run would refit them, but a month
//! barely moves a fit on years of history), and whether the customer is valuable (RFM segment
//! and CLV rank: a purchase may promote a customer, which the projection does not follow).
//! Day 0 is the customer today, as the latest scores see them.

use kanta_core::analysis::CustomerSummary;
use kanta_core::lifecycle::{Stage, StageRules, lapse_threshold};
use kanta_models::{History, TransactionModel, draw_future, next_purchase_median};
use rand::Rng;

/// The customer as a day's rescoring would see them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Day {
    /// The lifecycle stage (slipping included).
    pub stage: Stage,
    /// Median days from that day's scoring date to the next purchase, if alive (NaN unless
    /// [`Projector::next_purchase`]).
    pub next_purchase_days: f64,
    /// Purchase orders so far.
    pub orders: u32,
    /// Days from the last purchase to that day's rescoring (fractional).
    pub days_since_last_order: f64,
    /// Days from the first purchase to that day's rescoring (fractional).
    pub days_since_first_order: f64,
    /// P(alive), when computed (for valuable customers the rules call new, repeat or loyal, or
    /// everyone with [`Projector::p_alive_for_all`]).
    pub p_alive: Option<f64>,
}

/// Projects customers of one base under one model.
#[derive(Clone, Copy)]
pub struct Projector<'a> {
    /// The fitted transaction model (time unit: days).
    pub model: &'a (dyn TransactionModel + Sync),
    /// Orders from which a recent customer is loyal.
    pub loyal_orders: u32,
    /// P(alive) below which a valuable customer is slipping.
    pub slipping_below: f64,
    /// Days to project.
    pub days: u32,
    /// The part of today already gone at now, in [0, 1): where purchases fall in days.
    pub fraction_of_today: f64,
    /// Now, in days since the epoch (fractional): the days since a customer's first and last
    /// purchase.
    pub now_days: f64,
    /// Compute P(alive) every day for everyone, not only for the valuable (whose slipping
    /// needs it): a segment condition on `p_alive` reads it.
    pub p_alive_for_all: bool,
    /// Compute the predicted next purchase every day (else [`Day::next_purchase_days`] is NaN):
    /// predicted-purchase triggers read it.
    pub next_purchase: bool,
}

/// A customer's history as the models read it.
fn history(customer: &CustomerSummary) -> History {
    History {
        x: customer.frequency,
        t_x: f64::from(customer.recency_days.max(0)),
        t: f64::from(customer.t_days.max(customer.recency_days).max(0)),
    }
}

impl Projector<'_> {
    /// Draws the customer's purchases into `purchases`: days after now, ascending, within the
    /// horizon.
    pub fn draw<R: Rng + ?Sized>(&self, customer: &CustomerSummary, rng: &mut R, purchases: &mut Vec<f64>) {
        draw_future(self.model, &history(customer), f64::from(self.days), rng, purchases);
    }

    /// The day after today (0 = today) a purchase `t` days after now falls on.
    fn purchase_day(&self, t: f64) -> i64 {
        (self.fraction_of_today + t).floor() as i64
    }

    /// The gaps between purchase days that `purchases` add to the base, each with the first
    /// rescoring (`k` days after now) that sees it: `gap(k, days)`.
    pub fn new_gaps(&self, customer: &CustomerSummary, purchases: &[f64], gap: &mut dyn FnMut(usize, u32)) {
        let mut last_day = -i64::from(customer.days_since_last.max(0));
        for &t in purchases {
            let day = self.purchase_day(t);
            if day > last_day {
                gap(t.ceil().max(0.0) as usize, u32::try_from(day - last_day).unwrap_or(u32::MAX));
                last_day = day;
            }
        }
    }

    /// The customer's days under `purchases` (from [`Projector::draw`]) into `out`: `out[0]`
    /// today, `out[k]` the rescoring `k` days after now, with `lapse[k]` the lapse threshold of
    /// that day (the last one stands for later days). `valuable` is [`crate::valuable`]'s flag.
    pub fn days(
        &self,
        customer: &CustomerSummary,
        valuable: bool,
        purchases: &[f64],
        lapse: &[u32],
        out: &mut Vec<Day>,
    ) {
        let base = history(customer);
        out.clear();
        // The latest purchase day, in days after today (0 or negative before any draw).
        let mut last_day = -i64::from(customer.days_since_last.max(0));
        let (mut x, mut t_x, mut orders) = (base.x, base.t_x, customer.orders);
        let days_of = |t: kanta_core::time::Timestamp| t.0 as f64 / 86_400.0 - self.now_days;
        // The last purchase instant, in days after now (negative before any draw).
        let mut last_at = days_of(customer.last_purchase);
        let first_at = days_of(customer.first_purchase);
        let mut next = purchases.iter().peekable();
        for k in 0..=self.days {
            let k_f = f64::from(k);
            while let Some(&&t) = next.peek() {
                if t > k_f {
                    break;
                }
                next.next();
                orders = orders.saturating_add(1);
                last_at = t;
                let day = self.purchase_day(t);
                if day > last_day {
                    x = x.saturating_add(1);
                    t_x += (day - last_day) as f64;
                    last_day = day;
                }
            }
            let h = History { x, t_x, t: base.t + k_f };
            let since = i32::try_from(i64::from(k) - last_day).unwrap_or(i32::MAX);
            let g = lapse.get(k as usize).or(lapse.last()).copied().unwrap_or(180);
            let rule = StageRules { lapse_days: g, loyal_orders: self.loyal_orders }.stage(orders, since);
            // Slipping needs P(alive) only of a valuable customer the rules still call new,
            // repeat or loyal; a segment on `p_alive` needs everyone's.
            let could_slip = valuable && matches!(rule, Stage::New | Stage::Repeat | Stage::Loyal);
            let p_alive = (could_slip || self.p_alive_for_all).then(|| self.model.p_alive(&h));
            let stage = if valuable && p_alive.is_some_and(|p| crate::slipping(true, p, rule, self.slipping_below)) {
                Stage::Slipping
            } else {
                rule
            };
            out.push(Day {
                stage,
                next_purchase_days: if self.next_purchase { next_purchase_median(self.model, &h) } else { f64::NAN },
                orders,
                days_since_last_order: k_f - last_at,
                days_since_first_order: k_f - first_at,
                p_alive,
            });
        }
    }
}

/// The lapse threshold of each projected day: the 90th percentile
/// ([`kanta_core::lifecycle::lapse_threshold`]) of the gaps as of now plus those the drawn
/// purchases add by that day; or a fixed override (`--lapse-days`) every day.
#[derive(Debug, Clone)]
pub struct LapseThresholds {
    hist: Vec<u64>,
    added: Vec<Vec<u32>>,
    fixed: Option<u32>,
}

impl LapseThresholds {
    /// From the histogram of gaps as of now (`hist[g]`: gaps of `g` days, the last bucket the
    /// longer ones) for `days` days.
    pub fn new(hist: Vec<u64>, days: u32, fixed: Option<u32>) -> LapseThresholds {
        LapseThresholds { hist, added: vec![Vec::new(); days as usize + 1], fixed }
    }

    /// A gap of `gap` days first seen by the rescoring `k` days after now.
    pub fn add(&mut self, k: usize, gap: u32) {
        if let Some(day) = self.added.get_mut(k) {
            day.push(gap);
        }
    }

    /// Adds everything `other` collected (from another part of the customers).
    pub fn merge(&mut self, other: LapseThresholds) {
        for (mine, theirs) in self.added.iter_mut().zip(other.added) {
            mine.extend(theirs);
        }
    }

    /// The threshold of day `k = 0..=days`.
    pub fn thresholds(mut self) -> Vec<u32> {
        let last = self.hist.len().saturating_sub(1);
        let mut out = Vec::with_capacity(self.added.len());
        for day in std::mem::take(&mut self.added) {
            for gap in day {
                if let Some(bucket) = self.hist.get_mut((gap as usize).min(last)) {
                    *bucket += 1;
                }
            }
            out.push(self.fixed.unwrap_or_else(|| lapse_threshold(&self.hist)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kanta_core::money::Money;
    use kanta_core::rfm::Segment;
    use kanta_core::time::Timestamp;
    use kanta_models::{BgNbd, Variant};
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn customer(orders: u32, frequency: u32, recency: i32, t: i32) -> CustomerSummary {
        CustomerSummary {
            customer: 0,
            first_purchase: Timestamp(0),
            last_purchase: Timestamp(0),
            orders,
            revenue: Money::from_raw(0),
            frequency,
            recency_days: recency,
            t_days: t,
            monetary: 0.0,
            repeat_value: Money::from_raw(0),
            returns: 0,
            returned: Money::from_raw(0),
            revenue_12m: Money::from_raw(0),
            days_since_last: t - recency,
            first_repeat_gap: None,
            r: 3,
            f: 3,
            m: 3,
            segment: Segment::Champions,
            stage: Stage::Repeat,
        }
    }

    /// CDNOW's BG/NBD estimates converted from weeks to days (α × 7).
    fn model() -> BgNbd {
        BgNbd::new(Variant::Bg, 0.2426, 4.4136 * 7.0, 0.7929, 2.4259).unwrap()
    }

    #[test]
    fn a_silent_customer_lapses_on_the_day_the_rules_say_and_is_lost_after_twice_the_threshold() {
        let model = model();
        let projector = Projector {
            model: &model,
            loyal_orders: 4,
            slipping_below: 0.0,
            days: 40,
            fraction_of_today: 0.5,
            now_days: 0.0,
            p_alive_for_all: false,
            next_purchase: true,
        };
        let lapse = [30];
        // Three orders in 1,000 days: the posterior rate, 2.24 / 1,034 a day, makes a purchase in
        // the next 50 days unlikely, and this seed draws none (asserted below).
        let c = customer(3, 2, 10, 1_000);
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let (mut purchases, mut days) = (Vec::new(), Vec::new());
        // 20 days since the last purchase: lapsing from day 11 (d = 31), lost from day 41.
        let c = CustomerSummary { days_since_last: 20, recency_days: 980, ..c };
        projector.draw(&c, &mut rng, &mut purchases);
        projector.days(&c, false, &purchases, &lapse, &mut days);
        assert_eq!(days.len(), 41);
        // First and last purchase at the epoch, now 20.5 days later.
        let at = Projector { now_days: 20.5, p_alive_for_all: true, ..projector };
        at.days(&c, false, &purchases, &lapse, &mut days);
        assert_eq!((days[3].orders, days[3].days_since_last_order, days[3].days_since_first_order), (3, 23.5, 23.5));
        let alive = model.p_alive(&History { x: 2, t_x: 980.0, t: 1_003.0 });
        assert_eq!(days[3].p_alive, Some(alive));
        projector.days(&c, false, &purchases, &lapse, &mut days);
        assert_eq!(days[3].p_alive, None, "neither valuable nor asked for");
        assert_eq!(days[10].stage, Stage::Repeat);
        assert_eq!(days[11].stage, Stage::Lapsing);
        assert_eq!(days[40].stage, Stage::Lapsing);
        // The median time to the next purchase grows with T while nothing is bought:
        // (α + T)(2^(1/(r + x)) − 1), FHL's posterior of λ given alive.
        let expected = |t: f64| (4.4136 * 7.0 + t) * ((2f64.ln() / (0.2426 + 2.0)).exp() - 1.0);
        for k in [0usize, 17, 40] {
            if purchases.is_empty() {
                assert!((days[k].next_purchase_days - expected(1_000.0 + k as f64)).abs() < 1e-9);
            }
        }
        let long = Projector { days: 50, ..projector };
        long.draw(&c, &mut rng, &mut purchases);
        long.days(&c, false, &purchases, &lapse, &mut days);
        assert!(purchases.is_empty());
        assert_eq!((days[40].stage, days[41].stage), (Stage::Lapsing, Stage::Lost));
        // A threshold that rises by a day on day 42 (2G: 60 → 62) puts the customer, 62 days
        // silent then, back to lapsing for that day; on day 43 (63 > 62) they are lost again.
        let rising: Vec<u32> = (0..=50).map(|k| if k < 42 { 30 } else { 31 }).collect();
        long.days(&c, false, &purchases, &rising, &mut days);
        assert_eq!(
            [days[41].stage, days[42].stage, days[43].stage, days[44].stage],
            [Stage::Lost, Stage::Lapsing, Stage::Lost, Stage::Lost]
        );
    }

    #[test]
    fn purchases_move_the_stage_and_a_valuable_customer_slips_as_p_alive_falls() {
        let model = model();
        let lapse = [60];
        // A frequent buyer (x = 20 in 200 days) who stopped 25 days ago: P(alive) falls daily.
        let c = CustomerSummary { days_since_last: 25, ..customer(21, 20, 175, 200) };
        let h = |k: f64| History { x: 20, t_x: 175.0, t: 200.0 + k };
        let first_below = (0..60).find(|&k| model.p_alive(&h(f64::from(k))) < 0.5).unwrap();
        assert!(first_below > 0, "P(alive) today {}", model.p_alive(&h(0.0)));
        let projector = Projector {
            model: &model,
            loyal_orders: 4,
            slipping_below: 0.5,
            days: 60,
            fraction_of_today: 0.0,
            now_days: 0.0,
            p_alive_for_all: false,
            next_purchase: true,
        };
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        let (mut purchases, mut days) = (Vec::new(), Vec::new());
        let mut slipped = 0;
        let mut bought = 0;
        for _ in 0..200 {
            projector.draw(&c, &mut rng, &mut purchases);
            projector.days(&c, true, &purchases, &lapse, &mut days);
            match purchases.first() {
                // Without a purchase, slipping starts on the first day P(alive) is below 0.5,
                // until d > G makes the customer lapsing (day 36).
                None => {
                    slipped += 1;
                    let k = first_below as usize;
                    assert_eq!(days[k - 1].stage, Stage::Loyal);
                    assert_eq!(days[k].stage, if k <= 35 { Stage::Slipping } else { Stage::Lapsing });
                    assert_eq!(days[36].stage, Stage::Lapsing);
                }
                // A purchase on day j makes the customer loyal again with d = 0.
                Some(&t) => {
                    bought += 1;
                    let k = t.ceil() as usize;
                    assert_eq!(days[k].stage, Stage::Loyal, "{t} {:?}", &days[..=k]);
                    let by_k: Vec<f64> = purchases.iter().copied().filter(|&p| p <= k as f64).collect();
                    assert_eq!(days[k].orders as usize, 21 + by_k.len());
                    let last = by_k.last().copied().unwrap_or(t);
                    assert!((days[k].days_since_last_order - (k as f64 - last)).abs() < 1e-9);
                }
            }
        }
        assert!(slipped > 20 && bought > 20, "{slipped} slipped, {bought} bought");
        // Not valuable: never slipping.
        projector.days(&c, false, &purchases, &lapse, &mut days);
        assert!(days.iter().all(|d| d.stage != Stage::Slipping));
    }

    #[test]
    fn drawn_gaps_move_the_lapse_threshold_on_the_day_they_are_seen() {
        // 100 gaps: 90 of 40 days and 10 of 100: the 90th percentile is 40.
        let mut hist = vec![0u64; 400];
        hist[40] = 90;
        hist[100] = 10;
        let mut thresholds = LapseThresholds::new(hist.clone(), 3, None);
        // Day 2 sees two gaps of 120 days: 12 of 102 gaps are then above 40 (≥ 10.2 % of them).
        thresholds.add(2, 120);
        let mut other = LapseThresholds::new(hist.clone(), 3, None);
        other.add(2, 120);
        thresholds.merge(other);
        assert_eq!(thresholds.thresholds(), [40, 40, 100, 100]);
        assert_eq!(LapseThresholds::new(hist, 3, Some(55)).thresholds(), [55; 4]);
        // A customer last buying 5 days ago who buys at t = 0.2 and 0.4 (same day, f = 0.7 →
        // day 0 and day 1) adds a 5-day gap seen on day 1 and a 1-day gap seen on day 1.
        let model = model();
        let projector = Projector {
            model: &model,
            loyal_orders: 4,
            slipping_below: 0.5,
            days: 5,
            fraction_of_today: 0.7,
            now_days: 0.0,
            p_alive_for_all: false,
            next_purchase: true,
        };
        let c = CustomerSummary { days_since_last: 5, ..customer(3, 2, 95, 100) };
        let mut seen = Vec::new();
        projector.new_gaps(&c, &[0.2, 0.4, 0.45], &mut |k, g| seen.push((k, g)));
        assert_eq!(seen, [(1, 5), (1, 1)]);
    }
}
