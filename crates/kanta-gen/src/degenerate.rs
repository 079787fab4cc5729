//! Degenerate shops: the bases that break naive models and naive code.
//!
//! Real shops are often nothing like [`simulate`](crate::simulate)'s BG/NBD world: a shop in its
//! first year has almost no repeat buyers, an import of a migration puts every order on one day,
//! a data-entry error dates an order in year 1. Each [`Shape`] here is one such base, small
//! enough for a test (at most 76,900 customers) and seeded, so that every command can be run over
//! all of them and must finish with finite numbers or a stated reason (issue 16).

use kanta_core::money::Money;
use kanta_core::time::{Day, SECONDS_PER_DAY, Timestamp};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::GenOrder;

/// A degenerate base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The issue's new shop: 76,400 customers who bought once and 500 who bought twice, all in
    /// 2024.
    NewShop,
    /// 5,000 customers, every one of them a one-time buyer.
    OneTime,
    /// 2,000 customers with one to four orders each, all on 2024-06-01.
    SameDay,
    /// One customer with twelve orders.
    OneCustomer,
    /// 1,000 one-time buyers and one customer with three orders.
    OneRepeat,
    /// 1,000 customers whose first purchase was in 1975 and whose last was up to 2024 (T of
    /// fifty years).
    LongHistory,
    /// 999 customers with one to three orders and one with 500.
    HeavyBuyer,
    /// A small ordinary shop (2024) plus one order dated 0001-01-01.
    AncientOrder,
    /// 500 customers whose orders were all returned: no purchase at all.
    ReturnsOnly,
}

impl Shape {
    /// Every shape, in the order of the documentation.
    pub const ALL: [Shape; 9] = [
        Shape::NewShop,
        Shape::OneTime,
        Shape::SameDay,
        Shape::OneCustomer,
        Shape::OneRepeat,
        Shape::LongHistory,
        Shape::HeavyBuyer,
        Shape::AncientOrder,
        Shape::ReturnsOnly,
    ];

    /// The shape's name on the command line (`kanta generate --shape NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Shape::NewShop => "new-shop",
            Shape::OneTime => "one-time",
            Shape::SameDay => "same-day",
            Shape::OneCustomer => "one-customer",
            Shape::OneRepeat => "one-repeat",
            Shape::LongHistory => "long-history",
            Shape::HeavyBuyer => "heavy-buyer",
            Shape::AncientOrder => "ancient-order",
            Shape::ReturnsOnly => "returns-only",
        }
    }

    /// The shape named `name`.
    pub fn parse(name: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Builds the orders one customer at a time; the shapes differ only in their schedules.
struct Builder {
    rng: Pcg64Mcg,
    orders: Vec<GenOrder>,
    customer: u64,
    number: u64,
}

impl Builder {
    fn new(seed: u64) -> Builder {
        Builder { rng: Pcg64Mcg::seed_from_u64(seed), orders: Vec::new(), customer: 0, number: 0 }
    }

    /// A customer who orders at each of `times` (seconds since the epoch); values 5–120.
    fn customer(&mut self, times: &[i64]) {
        self.customer += 1;
        let favourite = self.rng.random_range(0..crate::CATEGORIES.len()) as u8;
        for &t in times {
            let cents = self.rng.random_range(500..12_000);
            self.push(t, Money::from_raw(cents * 100), favourite);
        }
    }

    fn push(&mut self, t: i64, value: Money, favourite: u8) {
        self.number += 1;
        let line_seed = self.rng.random();
        let order = GenOrder {
            time: Timestamp(t),
            customer: self.customer,
            number: self.number,
            value,
            favourite,
            lines: 1,
            line_seed,
        };
        self.orders.push(order);
    }

    /// A uniformly random instant of the days `from ..= to`.
    fn instant(&mut self, from: &str, to: &str) -> i64 {
        let (from, to) = (day(from), day(to));
        let d = self.rng.random_range(from.0..=to.0);
        i64::from(d) * SECONDS_PER_DAY + self.rng.random_range(0..SECONDS_PER_DAY)
    }

    fn finish(mut self) -> Vec<GenOrder> {
        self.orders.sort_by_key(|o| (o.time, o.number));
        self.orders
    }
}

fn day(text: &str) -> Day {
    // The dates are this module's own constants.
    Day::parse(text).unwrap_or(Day(0))
}

/// The orders of `shape`, sorted by time; the same seed gives the same orders.
pub fn orders(shape: Shape, seed: u64) -> Vec<GenOrder> {
    let mut b = Builder::new(seed);
    match shape {
        Shape::NewShop => {
            for i in 0..76_900 {
                let first = b.instant("2024-01-01", "2024-12-30");
                if i < 500 {
                    let second = first
                        + b.rng.random_range(
                            1..=(day("2024-12-31").0 as i64 * SECONDS_PER_DAY + SECONDS_PER_DAY - 1 - first).max(1),
                        );
                    b.customer(&[first, second]);
                } else {
                    b.customer(&[first]);
                }
            }
        }
        Shape::OneTime => {
            for _ in 0..5_000 {
                let t = b.instant("2024-01-01", "2024-12-31");
                b.customer(&[t]);
            }
        }
        Shape::SameDay => {
            for _ in 0..2_000 {
                let n = b.rng.random_range(1..=4);
                let times: Vec<i64> = (0..n).map(|_| b.instant("2024-06-01", "2024-06-01")).collect();
                b.customer(&times);
            }
        }
        Shape::OneCustomer => {
            let times: Vec<i64> = (0..12).map(|m| i64::from(day("2024-01-15").0 + m * 30) * SECONDS_PER_DAY).collect();
            b.customer(&times);
        }
        Shape::OneRepeat => {
            for _ in 0..1_000 {
                let t = b.instant("2024-01-01", "2024-12-31");
                b.customer(&[t]);
            }
            let times = [
                b.instant("2024-01-01", "2024-03-31"),
                b.instant("2024-04-01", "2024-06-30"),
                b.instant("2024-07-01", "2024-12-31"),
            ];
            b.customer(&times);
        }
        Shape::LongHistory => {
            for _ in 0..1_000 {
                let first = b.instant("1975-01-01", "1975-12-31");
                let n = b.rng.random_range(0..=6);
                let mut times = vec![first];
                times.extend((0..n).map(|_| b.instant("1976-01-01", "2024-12-31")));
                b.customer(&times);
            }
        }
        Shape::HeavyBuyer => {
            for _ in 0..999 {
                let n = b.rng.random_range(1..=3);
                let times: Vec<i64> = (0..n).map(|_| b.instant("2024-01-01", "2024-12-31")).collect();
                b.customer(&times);
            }
            let times: Vec<i64> = (0..500).map(|_| b.instant("2024-01-01", "2024-12-31")).collect();
            b.customer(&times);
        }
        Shape::AncientOrder => {
            for _ in 0..2_000 {
                let n = b.rng.random_range(1..=5);
                let times: Vec<i64> = (0..n).map(|_| b.instant("2024-01-01", "2024-12-31")).collect();
                b.customer(&times);
            }
            let ancient = i64::from(day("0001-01-01").0) * SECONDS_PER_DAY;
            let recent = b.instant("2024-01-01", "2024-12-31");
            b.customer(&[ancient, recent]);
        }
        Shape::ReturnsOnly => {
            for _ in 0..500 {
                b.customer += 1;
                let t = b.instant("2024-01-01", "2024-12-31");
                let cents = b.rng.random_range(500..12_000);
                b.push(t, Money::from_raw(-cents * 100), 0);
            }
        }
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn per_customer(orders: &[GenOrder]) -> HashMap<u64, usize> {
        let mut counts = HashMap::new();
        for o in orders {
            *counts.entry(o.customer).or_default() += 1;
        }
        counts
    }

    #[test]
    fn the_new_shop_has_the_issues_shape() {
        let orders = orders(Shape::NewShop, 1);
        let counts = per_customer(&orders);
        assert_eq!(counts.len(), 76_900);
        assert_eq!(counts.values().filter(|&&n| n == 2).count(), 500);
        assert_eq!(counts.values().filter(|&&n| n == 1).count(), 76_400);
        let (lo, hi) =
            (i64::from(day("2024-01-01").0) * SECONDS_PER_DAY, i64::from(day("2025-01-01").0) * SECONDS_PER_DAY);
        assert!(orders.iter().all(|o| (lo..hi).contains(&o.time.0)));
        assert!(orders.windows(2).all(|w| w[0].time <= w[1].time), "sorted by time");
    }

    #[test]
    fn every_shape_is_what_its_name_says_and_seeds_repeat() {
        for shape in Shape::ALL {
            assert_eq!(Shape::parse(shape.name()), Some(shape));
            assert_eq!(orders(shape, 7), orders(shape, 7), "{shape:?}");
        }
        assert_eq!(Shape::parse("nonsense"), None);
        let one = per_customer(&orders(Shape::OneTime, 1));
        assert!(one.len() == 5_000 && one.values().all(|&n| n == 1));
        let same = orders(Shape::SameDay, 1);
        assert!(same.iter().all(|o| o.time.0.div_euclid(SECONDS_PER_DAY) == i64::from(day("2024-06-01").0)));
        assert_eq!(per_customer(&orders(Shape::OneCustomer, 1)).len(), 1);
        let repeat = per_customer(&orders(Shape::OneRepeat, 1));
        assert_eq!(repeat.values().filter(|&&n| n > 1).count(), 1);
        let heavy = per_customer(&orders(Shape::HeavyBuyer, 1));
        assert_eq!(heavy.values().max(), Some(&500));
        let ancient = orders(Shape::AncientOrder, 1);
        assert_eq!(ancient[0].time.0, i64::from(day("0001-01-01").0) * SECONDS_PER_DAY);
        assert!(orders(Shape::ReturnsOnly, 1).iter().all(|o| o.value < Money::ZERO));
        let long = orders(Shape::LongHistory, 1);
        assert!(long[0].time.0 < i64::from(day("1976-01-01").0) * SECONDS_PER_DAY);
    }
}
