//! A seeded generator of realistic synthetic shops.
//!
//! Customers follow the BG/NBD story (Fader, Hardie & Lee 2005, §2): while alive a customer
//! buys as a Poisson process with rate λ ~ Gamma(r, α); after each repeat purchase they drop
//! out with probability p ~ Beta(a, b). Order values follow the Gamma-Gamma model (Fader,
//! Hardie & Lee 2005 note; Colombo & Jiang 1999): z ~ Gamma(p_s, ν) with ν ~ Gamma(q, γ), so a
//! customer's mean spend is p_s·γ/(q − 1) on average. First purchases are spread uniformly over
//! the window. Each order has one to eight lines (products from a catalogue of categories, with
//! a per-customer favourite category), and a few orders are later partly returned (a separate
//! order with a negative amount).
//!
//! The same seed and parameters give byte-identical files.

pub mod degenerate;
pub mod feedback;
pub mod write;

use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Exp, Gamma, Poisson};
use rand_pcg::Pcg64Mcg;

use kanta_core::money::Money;
use kanta_core::time::{Day, SECONDS_PER_DAY, Timestamp};

/// Parameters of the synthetic shop.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Number of customers (ignored when `rows` is set).
    pub customers: u64,
    /// Generate customers until at least this many order lines exist.
    pub rows: Option<u64>,
    /// Random seed.
    pub seed: u64,
    /// First day of the window.
    pub start: Day,
    /// Last day of the window (no order after it).
    pub end: Day,
    /// BG/NBD purchase-rate shape r.
    pub r: f64,
    /// BG/NBD purchase-rate scale α (in days).
    pub alpha: f64,
    /// BG/NBD dropout Beta a.
    pub a: f64,
    /// BG/NBD dropout Beta b.
    pub b: f64,
    /// Gamma-Gamma shape p of order values.
    pub spend_p: f64,
    /// Gamma-Gamma shape q of the customer's spend rate.
    pub spend_q: f64,
    /// Gamma-Gamma scale γ of the customer's spend rate.
    pub spend_gamma: f64,
    /// Share of orders that are partly returned later.
    pub return_rate: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            customers: 10_000,
            rows: None,
            seed: 42,
            start: Day::from_ymd(2023, 1, 1).unwrap_or(Day(19_358)),
            end: Day::from_ymd(2024, 12, 31).unwrap_or(Day(20_088)),
            r: 0.45,
            alpha: 80.0,
            a: 1.0,
            b: 2.2,
            spend_p: 6.0,
            spend_q: 3.8,
            spend_gamma: 30.0,
            return_rate: 0.03,
        }
    }
}

/// Why a configuration cannot be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A model parameter is not positive and finite.
    #[error("parameter {0} must be positive and finite, got {1}")]
    Parameter(&'static str, f64),
    /// The window ends before it starts.
    #[error("the window ends ({end}) before it starts ({start})")]
    Window {
        /// Start day.
        start: Day,
        /// End day.
        end: Day,
    },
    /// The return rate is not in [0, 1].
    #[error("the return rate must be between 0 and 1, got {0}")]
    ReturnRate(f64),
}

/// Product categories of the synthetic shop (a coffee and kitchen shop).
pub const CATEGORIES: [&str; 12] = [
    "coffee",
    "tea",
    "grinders",
    "brewers",
    "mugs",
    "filters",
    "syrups",
    "chocolate",
    "kettles",
    "scales",
    "cleaning",
    "gift cards",
];

/// One generated order (before it is expanded into lines).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenOrder {
    /// When it was placed.
    pub time: Timestamp,
    /// Customer number (the id is `C` followed by 7 digits).
    pub customer: u64,
    /// Order number, unique (the id is `O` or, for returns, `R` followed by 9 digits).
    pub number: u64,
    /// Order value (positive) or returned value (negative).
    pub value: Money,
    /// The customer's favourite category (index into [`CATEGORIES`]).
    pub favourite: u8,
    /// Number of lines.
    pub lines: u8,
    /// Seed for the lines' products, quantities and prices.
    pub line_seed: u64,
}

/// One order line, as written to the file.
#[derive(Debug, Clone, PartialEq)]
pub struct GenLine {
    /// `O000000123`, or `R000000123` for a return.
    pub order_id: String,
    /// `C0000042`.
    pub customer_id: String,
    /// Order time.
    pub time: Timestamp,
    /// `P0123`.
    pub product_id: String,
    /// One of [`CATEGORIES`].
    pub category: &'static str,
    /// Units (negative on returns).
    pub quantity: i32,
    /// Price per unit.
    pub unit_price: Money,
    /// quantity × unit price.
    pub amount: Money,
}

fn positive(name: &'static str, v: f64) -> Result<f64, ConfigError> {
    if v.is_finite() && v > 0.0 { Ok(v) } else { Err(ConfigError::Parameter(name, v)) }
}

/// Simulates the orders of the shop, sorted by time (the way shops export them).
pub fn simulate(config: &Config) -> Result<Vec<GenOrder>, ConfigError> {
    if config.end < config.start {
        return Err(ConfigError::Window { start: config.start, end: config.end });
    }
    if !(0.0..=1.0).contains(&config.return_rate) {
        return Err(ConfigError::ReturnRate(config.return_rate));
    }
    let rate = Gamma::new(positive("r", config.r)?, 1.0 / positive("alpha", config.alpha)?)
        .map_err(|_| ConfigError::Parameter("r", config.r))?;
    let dropout = Beta::new(positive("a", config.a)?, positive("b", config.b)?)
        .map_err(|_| ConfigError::Parameter("a", config.a))?;
    let spend_rate = Gamma::new(positive("q", config.spend_q)?, 1.0 / positive("gamma", config.spend_gamma)?)
        .map_err(|_| ConfigError::Parameter("q", config.spend_q))?;
    let spend_p = positive("p", config.spend_p)?;
    let extra_lines = Poisson::new(1.4).map_err(|_| ConfigError::Parameter("lines", 1.4))?;

    let mut rng = Pcg64Mcg::seed_from_u64(config.seed);
    let window_start = i64::from(config.start.0) * SECONDS_PER_DAY;
    let window_end = (i64::from(config.end.0) + 1) * SECONDS_PER_DAY; // exclusive
    let span = (window_end - window_start) as f64;
    let mut orders = Vec::new();
    let mut lines_total = 0u64;
    let mut number = 0u64;
    let target_rows = config.rows;
    let mut customer = 0u64;
    loop {
        match target_rows {
            Some(rows) if lines_total >= rows => break,
            None if customer >= config.customers => break,
            _ => {}
        }
        customer += 1;
        let lambda: f64 = rate.sample(&mut rng) / SECONDS_PER_DAY as f64; // per second
        let p: f64 = dropout.sample(&mut rng);
        let nu: f64 = spend_rate.sample(&mut rng);
        let value_dist = Gamma::new(spend_p, 1.0 / nu.max(1e-9)).map_err(|_| ConfigError::Parameter("nu", nu))?;
        let favourite = rng.random_range(0..CATEGORIES.len()) as u8;
        let mut t = window_start as f64 + rng.random::<f64>() * span;
        let mut first = true;
        loop {
            let value = Money::from_f64((value_dist.sample(&mut rng) * 100.0).round() / 100.0)
                .unwrap_or(Money::ZERO)
                .max(Money::from_raw(100));
            let lines = (1 + extra_lines.sample(&mut rng) as u64).min(8) as u8;
            number += 1;
            lines_total += u64::from(lines);
            let time = Timestamp(t as i64);
            orders.push(GenOrder { time, customer, number, value, favourite, lines, line_seed: rng.random() });
            if rng.random::<f64>() < config.return_rate {
                // Part of the order comes back 1–20 days later.
                let back = t + rng.random_range(1.0..21.0) * SECONDS_PER_DAY as f64;
                if back < window_end as f64 {
                    let share = rng.random_range(0.2..1.0);
                    let returned =
                        Money::from_f64((value.to_f64() * share * 100.0).round() / 100.0).unwrap_or(Money::ZERO);
                    number += 1;
                    lines_total += 1;
                    orders.push(GenOrder {
                        time: Timestamp(back as i64),
                        customer,
                        number,
                        value: -returned.max(Money::from_raw(100)),
                        favourite,
                        lines: 1,
                        line_seed: rng.random(),
                    });
                }
            }
            // BG/NBD: the customer may drop out only after a repeat purchase.
            if !first && rng.random::<f64>() < p {
                break;
            }
            first = false;
            if lambda <= 0.0 {
                break;
            }
            t += Exp::new(lambda).map_err(|_| ConfigError::Parameter("lambda", lambda))?.sample(&mut rng);
            if t >= window_end as f64 {
                break;
            }
        }
    }
    orders.sort_by_key(|o| (o.time, o.number));
    Ok(orders)
}

/// Expands an order into its lines; the line amounts sum exactly to the order value.
pub fn lines_of(order: &GenOrder, out: &mut Vec<GenLine>) {
    out.clear();
    let mut rng = Pcg64Mcg::seed_from_u64(order.line_seed);
    let returning = order.value < Money::ZERO;
    let order_id = format!("{}{:09}", if returning { 'R' } else { 'O' }, order.number);
    let customer_id = format!("C{:07}", order.customer);
    let total_cents = order.value.raw().abs() / 100;
    let n = i64::from(order.lines);
    // Split the value into n line amounts of at least one cent each.
    let mut weights: Vec<f64> = (0..n).map(|_| rng.random_range(0.2..1.0)).collect();
    let sum: f64 = weights.iter().sum();
    weights.iter_mut().for_each(|w| *w /= sum);
    let mut remaining = total_cents;
    for (i, w) in weights.iter().enumerate() {
        let left = n - i as i64 - 1;
        let cents = if left == 0 {
            remaining
        } else {
            ((total_cents as f64 * w).round() as i64).clamp(1, (remaining - left).max(1))
        };
        remaining -= cents;
        let category =
            if rng.random::<f64>() < 0.6 { order.favourite as usize } else { rng.random_range(0..CATEGORIES.len()) };
        let product = category * 40 + rng.random_range(0..40);
        // A quantity that divides the amount into whole cents, else one unit.
        let quantity = [3i64, 2]
            .into_iter()
            .find(|q| cents % q == 0 && cents / q >= 100 && rng.random::<f64>() < 0.3)
            .unwrap_or(1);
        let unit = Money::from_raw(cents / quantity * 100);
        let signed = if returning { -1 } else { 1 };
        out.push(GenLine {
            order_id: order_id.clone(),
            customer_id: customer_id.clone(),
            time: order.time,
            product_id: format!("P{product:04}"),
            category: CATEGORIES[category],
            quantity: (quantity * signed) as i32,
            unit_price: unit,
            amount: Money::from_raw(cents * 100 * signed),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Config {
        Config { customers: 2_000, seed: 7, ..Config::default() }
    }

    #[test]
    fn the_same_seed_gives_the_same_shop_and_another_seed_does_not() {
        let a = simulate(&small()).unwrap();
        let b = simulate(&small()).unwrap();
        assert_eq!(a, b);
        let c = simulate(&Config { seed: 8, ..small() }).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn orders_are_sorted_inside_the_window_and_lines_sum_to_the_order() {
        let config = small();
        let orders = simulate(&config).unwrap();
        assert!(orders.windows(2).all(|w| w[0].time <= w[1].time));
        assert!(orders.iter().all(|o| o.time.day() >= config.start && o.time.day() <= config.end));
        let customers: std::collections::HashSet<u64> = orders.iter().map(|o| o.customer).collect();
        assert_eq!(customers.len(), 2_000);
        let mut lines = Vec::new();
        for o in &orders {
            lines_of(o, &mut lines);
            assert_eq!(lines.len(), usize::from(o.lines));
            let sum = lines.iter().fold(Money::ZERO, |acc, l| acc + l.amount);
            assert_eq!(sum.raw() / 100, o.value.raw() / 100, "{o:?}");
            for l in &lines {
                assert_eq!(
                    l.unit_price.times_quantity(Money::from_units(i64::from(l.quantity)).unwrap()),
                    Some(l.amount)
                );
            }
        }
        let returns = orders.iter().filter(|o| o.value < Money::ZERO).count();
        assert!(returns > 0 && returns < orders.len() / 10, "{returns} returns of {}", orders.len());
    }

    #[test]
    fn purchase_counts_follow_the_bg_nbd_mean() {
        // E[X(t)] of BG/NBD (Fader, Hardie & Lee 2005, eq. 9) for customers observed t days:
        // a + b − 1 over a − 1 times [1 − (α/(α+t))^r · 2F1(r, b; a+b−1; t/(α+t))]. Instead of the
        // closed form we check a robust consequence: the mean number of purchases over the
        // window lies between 1 (everyone buys once) and 1 + t·r/α (nobody ever drops out).
        let config = Config { customers: 20_000, ..Config::default() };
        let orders = simulate(&config).unwrap();
        let purchases = orders.iter().filter(|o| o.value > Money::ZERO).count() as f64 / 20_000.0;
        let mean_days = f64::from(config.end.0 - config.start.0) / 2.0;
        assert!(purchases > 1.5 && purchases < 1.0 + mean_days * config.r / config.alpha, "{purchases}");
    }

    #[test]
    fn rows_target_stops_once_enough_lines_exist() {
        let orders = simulate(&Config { rows: Some(5_000), ..Config::default() }).unwrap();
        let lines: u64 = orders.iter().map(|o| u64::from(o.lines)).sum();
        assert!((5_000..5_100).contains(&lines), "{lines}");
    }

    #[test]
    fn bad_parameters_are_reported() {
        assert_eq!(simulate(&Config { r: -1.0, ..small() }), Err(ConfigError::Parameter("r", -1.0)));
        assert!(matches!(simulate(&Config { end: Day(0), ..small() }), Err(ConfigError::Window { .. })));
    }
}
