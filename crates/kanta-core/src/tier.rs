//! Customer value tiers: where a customer's net revenue (purchases minus returns) ranks among
//! every customer with a purchase.
//!
//! | tier | customers |
//! |---|---|
//! | `top` | the 10 % with the highest revenue |
//! | `high` | the next 20 % |
//! | `mid` | the next 30 % |
//! | `low` | the remaining 40 % |
//!
//! Tiers are ranks, not amounts, so they mean the same in every shop and currency, and follow
//! the revenue-concentration view of the report (a few customers carry most of the revenue).
//! With `n` customers the tiers hold the first ⌈0.1 n⌉, ⌈0.3 n⌉ and ⌈0.6 n⌉ ranks; customers
//! with equal revenue share the tier of the best-ranked among them, so a boundary never
//! separates two customers who spent the same.

use crate::money::Money;

/// A value tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// The top 10 %.
    Top,
    /// The next 20 %.
    High,
    /// The next 30 %.
    Mid,
    /// The remaining 40 %.
    Low,
}

impl Tier {
    /// All tiers, highest first.
    pub const ALL: [Tier; 4] = [Tier::Top, Tier::High, Tier::Mid, Tier::Low];

    /// The stored and shown name.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Top => "top",
            Tier::High => "high",
            Tier::Mid => "mid",
            Tier::Low => "low",
        }
    }
}

/// The tier of each customer, in the order of `revenue`.
pub fn tiers(revenue: &[Money]) -> Vec<Tier> {
    let n = revenue.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| revenue[b].cmp(&revenue[a]));
    // ⌈f·n⌉ in integers: the number of ranks in the tiers up to and including this one.
    let cut = |percent: usize| (percent * n).div_ceil(100);
    let (top, high, mid) = (cut(10), cut(30), cut(60));
    let mut out = vec![Tier::Low; n];
    let mut rank = 0;
    for (position, &i) in order.iter().enumerate() {
        if position == 0 || revenue[i] != revenue[order[position - 1]] {
            rank = position;
        }
        out[i] = match rank {
            r if r < top => Tier::Top,
            r if r < high => Tier::High,
            r if r < mid => Tier::Mid,
            _ => Tier::Low,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(units: i64) -> Money {
        Money::from_raw(units * 10_000)
    }

    fn names(revenue: &[i64]) -> Vec<&'static str> {
        tiers(&revenue.iter().map(|&r| eur(r)).collect::<Vec<_>>()).into_iter().map(Tier::name).collect()
    }

    #[test]
    fn ten_customers_split_one_two_three_four() {
        // Ranks 0 | 1–2 | 3–5 | 6–9, given in shuffled order.
        assert_eq!(
            names(&[70, 100, 10, 90, 40, 80, 20, 60, 50, 30]),
            ["mid", "top", "low", "high", "low", "high", "low", "mid", "mid", "low"]
        );
    }

    #[test]
    fn boundaries_round_up_and_ties_take_the_better_tier() {
        // n = 3: ⌈0.3⌉ = 1 top, ⌈0.9⌉ = 1 → no high, ⌈1.8⌉ = 2 → one mid, one low.
        assert_eq!(names(&[5, 9, 1]), ["mid", "top", "low"]);
        // The 2nd and 3rd of ten spent the same as the 1st: all three are top, and the next
        // one still ranks fourth (mid): ties do not push tiers down the list.
        assert_eq!(names(&[100, 100, 100, 9, 8, 7, 6, 5, 4, 3])[..4], ["top", "top", "top", "mid"]);
        // Everyone equal: everyone top.
        assert!(names(&[7; 20]).iter().all(|t| *t == "top"));
        assert_eq!(names(&[42]), ["top"]);
        assert!(tiers(&[]).is_empty());
    }

    #[test]
    fn a_thousand_customers_fill_the_tiers_exactly() {
        let revenue: Vec<i64> = (1..=1000).collect();
        let got = names(&revenue);
        let count = |t: &str| got.iter().filter(|g| **g == t).count();
        assert_eq!((count("top"), count("high"), count("mid"), count("low")), (100, 200, 300, 400));
        assert_eq!((got[999], got[900], got[899], got[0]), ("top", "top", "high", "low"));
    }
}
