//! Jobs over the store, shared by the command line (`kanta score`) and the server's scheduler
//! (`kanta serve`).
//!
//! - [`score`]: reads every purchase from the store, runs `kanta analyze`'s own analysis
//!   (`kanta-core`) and model scoring (`kanta-score`) on it — the same code, so a store and an
//!   exported order log get the same numbers — and writes each customer's scores, the fitted
//!   models and the stage changes back.
//! - [`segments`]: recomputes every saved segment and records who entered and left.
//! - [`schedule`]: runs the jobs every interval until shutdown.
//!
//! **Architecture Invariant:** no HTTP and no argv here; the computation is `kanta-core` and
//! `kanta-score`, the IO is `kanta-store`.

pub mod schedule;
pub mod score;
pub mod segments;

pub use score::{ScoreJob, ScoreOutcome, score_store};

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] kanta_store::StoreError),
    /// The orders could not be grouped (more than 4 billion customers or orders).
    #[error("cannot group the orders: {0}")]
    Aggregate(#[from] kanta_core::aggregate::AggregateError),
    /// The analysis failed.
    #[error("cannot analyse the orders: {0}")]
    Analysis(#[from] kanta_core::analysis::AnalysisError),
    /// A worker thread failed.
    #[error("the scoring worker failed: {0}")]
    Worker(String),
}
