//! Opening the store the settings name, patiently: a database server that is still starting
//! (a container next to kanta's) must not make `kanta serve` exit at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kanta_store::{Storage, StoreError};

use crate::error::OpenError;
use crate::settings::Database;

/// The first wait after an unreachable server; it doubles per attempt up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
const LONGEST_WAIT: Duration = Duration::from_secs(8);

impl Database {
    /// Opens the store these settings name. A database server that does not answer is
    /// reported at once with its host and port (never the password) and tried again, with a
    /// message per attempt, until `connect_timeout` has passed; then the last error is returned.
    pub async fn open(&self) -> Result<Arc<dyn Storage>, OpenError> {
        let url = &self.url;
        let budget = self.connect_timeout.0.unwrap_or_default();
        let started = Instant::now();
        let mut wait = FIRST_WAIT;
        let mut attempts = 1;
        loop {
            match kanta_store::open(url.expose()).await {
                Ok(store) => return Ok(store),
                Err(e @ StoreError::Unreachable { .. }) => {
                    let left = budget.saturating_sub(started.elapsed());
                    if left < wait {
                        return Err(OpenError::GaveUp { url: url.to_string(), attempts, source: e });
                    }
                    tracing::warn!("kanta: {e}; trying again in {:.1} s (attempt {attempts})", wait.as_secs_f64());
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(LONGEST_WAIT);
                    attempts += 1;
                }
                Err(e) => return Err(OpenError::Open { url: url.to_string(), source: e }),
            }
        }
    }
}
