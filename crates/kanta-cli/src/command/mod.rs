//! One module per sub-command.

pub mod analyze;
pub mod demo;
pub mod fit;
pub mod generate;
pub mod import;
pub mod insights;
pub mod predict;
pub mod retention;
pub mod score;
pub mod serve;
pub mod token;
pub mod webhooks;

/// Opens the store the settings name. A database server that does not answer is reported at
/// once with its host and port (never the password) and tried again, with a message per attempt,
/// until `[database] connect_timeout` has passed; then the last error is returned (exit 1).
pub(crate) async fn open_store(
    database: &crate::settings::Database,
) -> anyhow::Result<std::sync::Arc<dyn kanta_store::Storage>> {
    use anyhow::Context;
    let url = &database.url;
    let budget = database.connect_timeout.0.unwrap_or_default();
    let started = std::time::Instant::now();
    let mut wait = std::time::Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match kanta_store::open(url.expose()).await {
            Ok(store) => return Ok(store),
            Err(e @ kanta_store::StoreError::Unreachable { .. }) => {
                let left = budget.saturating_sub(started.elapsed());
                if left < wait {
                    return Err(e).context(format!("giving up on {url} after {attempt} attempts"));
                }
                eprintln!("kanta: {e}; trying again in {:.1} s (attempt {attempt})", wait.as_secs_f64());
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(8));
                attempt += 1;
            }
            Err(e) => return Err(e).with_context(|| format!("opening the store {url}")),
        }
    }
}

/// Run `f` on the store the settings name, on a one-thread runtime.
pub(crate) fn with_store<T>(
    store: &crate::cli::StoreArgs,
    f: impl AsyncFnOnce(&dyn kanta_store::Storage) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    use anyhow::Context;
    let database = store.settings()?.database;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let opened = open_store(&database).await?;
        f(opened.as_ref()).await
    })
}
