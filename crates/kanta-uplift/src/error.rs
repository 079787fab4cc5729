//! Why a statistic cannot be computed from the data handed in.

/// The data cannot give the statistic asked for; every variant says which input is short.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpliftError {
    /// A count of successes larger than its count of trials.
    #[error("{successes} successes out of {trials} trials")]
    MoreSuccessesThanTrials {
        /// The successes (conversions) counted.
        successes: u64,
        /// The trials (customers) counted.
        trials: u64,
    },
    /// An arm without a single customer: no rate or mean exists.
    #[error("the {arm} arm has no customers")]
    EmptyArm {
        /// Which arm ("treatment" or "control").
        arm: &'static str,
    },
    /// A sample variance needs at least two observations.
    #[error("the {arm} arm has {n} customers; at least 2 are needed")]
    TooFewCustomers {
        /// Which arm ("treatment" or "control").
        arm: &'static str,
        /// How many customers it has.
        n: usize,
    },
    /// A value that is NaN or infinite (revenue must be a finite number).
    #[error("the {arm} arm has a value that is not a finite number")]
    NotFinite {
        /// Which arm ("treatment" or "control").
        arm: &'static str,
    },
    /// Pre-entry and post-entry values of one arm of different lengths (CUPED pairs them).
    #[error("the {arm} arm has {pre} pre-entry values but {post} post-entry values")]
    UnpairedCovariate {
        /// Which arm ("treatment" or "control").
        arm: &'static str,
        /// Number of pre-entry values.
        pre: usize,
        /// Number of post-entry values.
        post: usize,
    },
    /// A confidence level outside (0, 1).
    #[error("confidence level {0} is not strictly between 0 and 1")]
    Level(f64),
    /// A bootstrap asked for no resamples.
    #[error("a bootstrap needs at least one resample")]
    NoResamples,
}
