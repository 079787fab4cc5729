//! Jobs over the store, shared by the command line (`kanta score`) and the server's scheduler
//! (`kanta serve`).
//!
//! - [`score`]: reads every purchase from the store, runs `kanta analyze`'s own analysis
//!   (`kanta-core`) and model scoring (`kanta-score`) on it — the same code, so a store and an
//!   exported order log get the same numbers — and writes each customer's scores, the fitted
//!   models and the stage changes back.
//!   On PostgreSQL the orders are aggregated in the database instead (`pushdown`): only
//!   the distinct histories leave it, and the scores are written there from a session table.
//! - [`segments`]: recomputes every saved segment and records who entered and left.
//! - [`schedule`]: runs the jobs every interval until shutdown.
//!
//! **Architecture Invariant:** no HTTP and no argv here; the computation is `kanta-core` and
//! `kanta-score`, the IO is `kanta-store`.

mod pushdown;
pub mod schedule;
pub mod score;
pub mod segments;

pub use score::{ScoreJob, ScoreOutcome, StoreAnalysis, analyse_store, score_store, score_store_until};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request to stop a job, shared between the job and whoever may stop it (the server's
/// shutdown, a time budget). Jobs check it at their safe points and answer
/// [`JobError::Cancelled`]; the first reason given wins.
#[derive(Debug, Clone)]
pub struct Cancel(Arc<CancelState>);

#[derive(Debug)]
struct CancelState {
    // The flag is read at every chunk of a read; the reason only once, on the way out.
    set: AtomicBool,
    reason: Mutex<Option<String>>,
    created: Instant,
}

impl Default for Cancel {
    fn default() -> Cancel {
        Cancel(Arc::new(CancelState { set: AtomicBool::new(false), reason: Mutex::new(None), created: Instant::now() }))
    }
}

impl Cancel {
    /// Ask the job to stop, saying why (`shutdown`, `time budget of 30m exceeded`).
    pub fn cancel(&self, reason: impl Into<String>) {
        if let Ok(mut r) = self.0.reason.lock()
            && r.is_none()
        {
            *r = Some(reason.into());
        }
        self.0.set.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.set.load(Ordering::SeqCst)
    }

    /// `Err(Cancelled)` naming `phase` when a stop was asked for.
    pub fn check(&self, phase: &'static str) -> Result<(), JobError> {
        if !self.is_cancelled() {
            return Ok(());
        }
        let reason = self.0.reason.lock().ok().and_then(|r| r.clone()).unwrap_or_else(|| "cancelled".into());
        Err(JobError::Cancelled { phase, reason })
    }

    /// Time since the token was made (the job's start, for the record of a cancelled run).
    pub fn age(&self) -> Duration {
        self.0.created.elapsed()
    }
}

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
    /// The push-down into the store failed.
    #[error("scoring in the database failed: {0}")]
    Pushdown(Box<kanta_warehouse::WarehouseError>),
    /// A worker thread failed.
    #[error("the scoring worker failed: {0}")]
    Worker(String),
    /// The job was asked to stop; nothing was written.
    #[error("cancelled during {phase} ({reason}); nothing was written")]
    Cancelled {
        /// The phase that had finished or was running when the stop was seen.
        phase: &'static str,
        /// Why: `shutdown` or the time budget.
        reason: String,
    },
}
