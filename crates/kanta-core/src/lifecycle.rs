//! Rule-based lifecycle stages.
//!
//! Until the predictive models arrive, the stage is read from two numbers per customer —
//! orders and days since the last purchase `d` — and one number for the whole base, the
//! *lapse threshold* `G`:
//!
//! ```text
//! G = the 90th percentile of the gaps between consecutive purchase days of all customers,
//!     clamped to [30, 365] days (180 days when nobody bought twice); `--lapse-days` overrides it.
//!
//! lost     if d > 2G
//! lapsing  if G < d ≤ 2G
//! new      if d ≤ G and orders = 1
//! loyal    if d ≤ G and orders ≥ loyal_orders (default 4)
//! repeat   otherwise (d ≤ G, 2 ≤ orders < loyal_orders)
//! ```
//!
//! `G` adapts to the business: nine in ten repeat purchases happen within `G` days of the
//! previous one, so a customer silent for longer than `G` is behind their usual rhythm, and one
//! silent for twice as long has most likely gone.
//!
//! A fifth stage comes from the models (`kanta-score`): **slipping** is a valuable customer —
//! RFM Champions or Loyal, or in the top 20 % by predicted 12-month CLV — whose probability of
//! still being active has fallen below a threshold (0.5) while the rules above still call them
//! new, repeat or loyal: the early warning before a good customer lapses.

use std::fmt;

use serde::Serialize;

/// Where a customer is in their relationship with the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// One purchase, recently.
    New,
    /// Two or more purchases, recently.
    Repeat,
    /// Many purchases, recently.
    Loyal,
    /// A valuable customer whose model probability of being active has fallen (see the module docs).
    Slipping,
    /// Silent for longer than the usual gap between purchases.
    Lapsing,
    /// Silent for more than twice the usual gap.
    Lost,
}

impl Stage {
    /// All stages in lifecycle order.
    pub const ALL: [Stage; 6] = [Stage::New, Stage::Repeat, Stage::Loyal, Stage::Slipping, Stage::Lapsing, Stage::Lost];

    /// The name written in `customers.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Repeat => "repeat",
            Stage::Loyal => "loyal",
            Stage::Slipping => "slipping",
            Stage::Lapsing => "lapsing",
            Stage::Lost => "lost",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The rule parameters; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageRules {
    /// The lapse threshold `G` in days.
    pub lapse_days: u32,
    /// Orders from which a recent customer is loyal.
    pub loyal_orders: u32,
}

impl StageRules {
    /// The stage of a customer with `orders` orders whose last purchase was `days_since_last` days ago.
    pub fn stage(&self, orders: u32, days_since_last: i32) -> Stage {
        let g = i64::from(self.lapse_days);
        let d = i64::from(days_since_last);
        if d > 2 * g {
            Stage::Lost
        } else if d > g {
            Stage::Lapsing
        } else if orders <= 1 {
            Stage::New
        } else if orders >= self.loyal_orders {
            Stage::Loyal
        } else {
            Stage::Repeat
        }
    }
}

/// The lapse threshold from a histogram of gaps between purchase days (`hist[g]` = number of
/// gaps of `g` days; the last bucket holds all longer gaps).
pub fn lapse_threshold(hist: &[u64]) -> u32 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 180;
    }
    // The smallest g with at least 90 % of gaps ≤ g.
    let target = (total * 9).div_ceil(10);
    let mut seen = 0;
    for (g, &count) in hist.iter().enumerate() {
        seen += count;
        if seen >= target {
            return (g as u32).clamp(30, 365);
        }
    }
    365
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_follow_the_documented_rules() {
        let rules = StageRules { lapse_days: 60, loyal_orders: 4 };
        assert_eq!(rules.stage(1, 0), Stage::New);
        assert_eq!(rules.stage(1, 60), Stage::New);
        assert_eq!(rules.stage(1, 61), Stage::Lapsing);
        assert_eq!(rules.stage(3, 10), Stage::Repeat);
        assert_eq!(rules.stage(4, 10), Stage::Loyal);
        assert_eq!(rules.stage(9, 120), Stage::Lapsing);
        assert_eq!(rules.stage(9, 121), Stage::Lost);
        // ALL is in declaration order, so `stage as usize` indexes it.
        for (i, s) in Stage::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
    }

    #[test]
    fn the_threshold_is_the_clamped_90th_percentile_of_gaps() {
        let mut hist = vec![0u64; 400];
        // 100 gaps: 89 of 40 days, 11 of 100 days -> the 90th gap is 100 days.
        hist[40] = 89;
        hist[100] = 11;
        assert_eq!(lapse_threshold(&hist), 100);
        hist[40] = 90;
        hist[100] = 10;
        assert_eq!(lapse_threshold(&hist), 40);
        let mut short = vec![0u64; 10];
        short[3] = 5;
        assert_eq!(lapse_threshold(&short), 30);
        assert_eq!(lapse_threshold(&[]), 180);
        let mut long = vec![0u64; 1000];
        long[999] = 1;
        assert_eq!(lapse_threshold(&long), 365);
    }
}
