//! Cumulative conversion over days since entry for one arm, with a 95 % band.
//!
//! Customers who entered recently are followed for fewer days than the others: counting
//! conversions over all entrants would bias the later days down. The Kaplan–Meier estimator
//! (Kaplan & Meier 1958, *JASA* 53, 457–481) treats them as censored after their last day
//! followed; the band is Greenwood's (1926) variance:
//!
//! ```text
//! nₜ = customers still at risk on day t (not converted before t, followed for ≥ t days)
//! dₜ = customers converting on day t
//! S(t) = Π_{s ≤ t} (1 − dₛ/nₛ)                    converted by day t: F(t) = 1 − S(t)
//! Var F(t) = Var S(t) = S(t)² · Σ_{s ≤ t} dₛ / (nₛ(nₛ − dₛ))
//! band = F(t) ± z·√Var, clipped to [0, 1]
//! ```
//!
//! A customer converting on day t counts as at risk on day t (conversions before censoring at
//! equal times, the usual convention).

use serde::Serialize;

use crate::{Interval, Level};

/// One customer's follow-up: days followed since entry (day 0 is the day of entry) and the day
/// of their first conversion, if any within that time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowUp {
    /// The last day since entry the customer was observed (0: entered today).
    pub days_followed: u32,
    /// The day since entry of the first conversion; ignored when after `days_followed`.
    pub converted_on: Option<u32>,
}

/// One day of the curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Days since entry.
    pub day: u32,
    /// Customers at risk that day (nₜ).
    pub at_risk: u64,
    /// Customers converting that day (dₜ).
    pub conversions: u64,
    /// Estimated share converted by the end of that day, 1 − S(t).
    pub converted: f64,
    /// Greenwood's band around `converted`.
    pub band: Interval,
}

/// The curve from day 0 to the longest follow-up (empty for no customers). Linear in the number
/// of customers plus days: conversions and censorings are counted per day first.
pub fn cumulative_conversion(customers: &[FollowUp], level: Level) -> Vec<CurvePoint> {
    let Some(last_day) = customers.iter().map(|c| c.days_followed).max() else {
        return Vec::new();
    };
    let days = last_day as usize + 1;
    // Per day: conversions, and customers whose observation ends that day (converted or not).
    let mut converting = vec![0u64; days];
    let mut leaving = vec![0u64; days];
    for customer in customers {
        match customer.converted_on {
            Some(day) if day <= customer.days_followed => {
                converting[day as usize] += 1;
                leaving[day as usize] += 1;
            }
            _ => leaving[customer.days_followed as usize] += 1,
        }
    }
    let z = level.z();
    let mut at_risk = customers.len() as u64;
    let mut survival = 1.0;
    let mut greenwood = 0.0;
    let mut curve = Vec::with_capacity(days);
    for day in 0..days {
        let (n, d) = (at_risk, converting[day]);
        if d > 0 {
            survival *= 1.0 - d as f64 / n as f64;
            // d = n empties the risk set: S = 0 from here on and its variance is 0.
            greenwood += if d < n { d as f64 / (n as f64 * (n - d) as f64) } else { 0.0 };
        }
        let spread = z * survival * greenwood.sqrt();
        let converted = 1.0 - survival;
        curve.push(CurvePoint {
            day: day as u32,
            at_risk: n,
            conversions: d,
            converted,
            band: Interval { lower: (converted - spread).max(0.0), upper: (converted + spread).min(1.0) },
        });
        at_risk -= leaving[day];
    }
    curve
}
