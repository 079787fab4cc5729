//! The statistics of journey uplift: does a journey change what its customers do?
//!
//! A journey with a holdout splits the customers who become eligible into a *treatment* arm (they
//! enter and get the steps) and a randomised *control* arm (recorded as entered, followed for the
//! goal, sent nothing). The analysis is by intention to treat: every assigned customer counts in
//! the arm the hash put them in, whatever happened afterwards.
//!
//! | question | module | method |
//! |---|---|---|
//! | which arm is a customer in? | [`arm`] | SHA-256 of (customer, journey), stable across versions and re-entries |
//! | difference in conversion rate | [`proportion`] | Wald; Newcombe (1998) hybrid score, method 10 |
//! | difference in revenue per customer | [`mean`], [`bootstrap`] | Welch's t interval; seeded percentile bootstrap |
//! | the same with less noise | [`cuped`] | CUPED (Deng, Xu, Kohavi & Walker 2013) on pre-entry revenue |
//! | is it too early to tell? | [`power`] | minimum detectable effect at 80 % power, the verdict rule |
//! | conversion over days since entry | [`curve`] | Kaplan–Meier with Greenwood's band |
//! | all of it for one journey | [`report`] | first entries, matured windows, intention to treat |
//!
//! Every formula is written out in its function's doc comment with its source; the tests pin
//! hand-computed examples to values computed independently (R, scipy, statsmodels) and check by
//! simulation that the 95 % intervals cover a known true effect 95 % of the time.
//!
//! **Architecture Invariant:** this crate is pure and synchronous: no IO, no clock, no global
//! state. Randomness (the bootstrap) comes only from a seed the caller passes, so a report is
//! reproducible to the last digit.

pub mod arm;
pub mod bootstrap;
pub mod cuped;
pub mod curve;
mod error;
mod interval;
pub mod mean;
pub mod power;
pub mod proportion;
mod quantile;
pub mod report;

pub use error::UpliftError;
pub use interval::{Interval, Level};
