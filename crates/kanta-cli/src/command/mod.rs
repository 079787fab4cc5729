//! One module per sub-command.

pub mod analyze;
pub mod demo;
pub mod fit;
pub mod generate;
pub mod import;
pub mod insights;
pub mod journeys;
pub mod mail;
pub mod predict;
pub mod retention;
pub mod score;
pub mod serve;
pub mod token;
pub mod webhooks;

/// Run `f` on the store the settings name ([`kanta_server::settings::Database::open`]: an
/// unreachable server is retried until `[database] connect_timeout`), on a one-thread runtime.
pub(crate) fn with_store<T>(
    store: &crate::cli::StoreArgs,
    f: impl AsyncFnOnce(&dyn kanta_store::Storage) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    with_shared_store(store, async |opened| f(opened.as_ref()).await)
}

/// [`with_store`] for callers that keep the store (the journey engine holds an `Arc`).
pub(crate) fn with_shared_store<T>(
    store: &crate::cli::StoreArgs,
    f: impl AsyncFnOnce(std::sync::Arc<dyn kanta_store::Storage>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    use anyhow::Context;
    let database = store.settings()?.database;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let opened = database.open().await?;
        f(opened).await
    })
}
