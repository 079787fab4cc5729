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

/// Run `f` on the store the settings name, on a one-thread runtime.
pub(crate) fn with_store<T>(
    store: &crate::cli::StoreArgs,
    f: impl AsyncFnOnce(&dyn kanta_store::Storage) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    use anyhow::Context;
    let url = store.settings()?.database.url;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let opened = kanta_store::open(url.expose()).await.with_context(|| format!("opening the store {url}"))?;
        f(opened.as_ref()).await
    })
}
