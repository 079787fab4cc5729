//! Confidence levels and intervals, shared by every estimator.

use serde::Serialize;

use crate::UpliftError;
use crate::quantile;

/// A two-sided confidence level, strictly between 0 and 1 (0.95 for the report's 95 % intervals).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Level(f64);

impl Level {
    /// The report's level: 95 %.
    pub const NINETY_FIVE: Level = Level(0.95);

    /// A level such as 0.95; anything outside (0, 1), NaN included, is refused because no
    /// quantile exists for it.
    pub fn new(level: f64) -> Result<Level, UpliftError> {
        if level > 0.0 && level < 1.0 { Ok(Level(level)) } else { Err(UpliftError::Level(level)) }
    }

    /// The level as a fraction (0.95).
    pub fn get(self) -> f64 {
        self.0
    }

    /// The upper-tail probability α/2 left out on each side (0.025 for 95 %).
    pub fn tail(self) -> f64 {
        (1.0 - self.0) / 2.0
    }

    /// The standard normal quantile z with P(|Z| ≤ z) = level (1.959964… for 95 %).
    pub fn z(self) -> f64 {
        quantile::normal(1.0 - self.tail())
    }

    /// The Student t quantile with P(|T| ≤ t) = level on `df` degrees of freedom.
    pub fn t(self, df: f64) -> f64 {
        quantile::students_t(1.0 - self.tail(), df)
    }
}

impl Default for Level {
    fn default() -> Level {
        Level::NINETY_FIVE
    }
}

/// A closed interval [lower, upper] around an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// The lower bound.
    pub lower: f64,
    /// The upper bound.
    pub upper: f64,
}

impl Interval {
    /// The interval `centre ± half_width`.
    pub fn around(centre: f64, half_width: f64) -> Interval {
        Interval { lower: centre - half_width, upper: centre + half_width }
    }

    /// Whether `value` lies in the interval, bounds included.
    pub fn contains(&self, value: f64) -> bool {
        self.lower <= value && value <= self.upper
    }

    /// Whether the interval lies wholly on one side of zero: the data then flag a difference
    /// at the interval's level.
    pub fn excludes_zero(&self) -> bool {
        !self.contains(0.0)
    }

    /// upper − lower.
    pub fn width(&self) -> f64 {
        self.upper - self.lower
    }
}
