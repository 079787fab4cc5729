//! `kanta serve`: the server application (`kanta_server::Application`) with the flags applied;
//! `kanta config show`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kanta_server::{Application, Settings};

use crate::cli::{ConfigShowArgs, ServeArgs, ServerArgs, StoreArgs};

/// The settings with `serve`'s own flags applied.
fn server_settings(store: &StoreArgs, server: &ServerArgs) -> Result<Settings, crate::UsageError> {
    let mut settings = store.settings()?;
    if let Some(listen) = &server.listen {
        settings.server.listen = listen.clone();
    }
    if let Some(grace) = server.grace {
        settings.server.grace_seconds = grace;
    }
    if let Some(every) = server.score_every {
        settings.scoring.every = every;
    }
    Ok(settings)
}

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = server_settings(&args.store, &args.server)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let result = runtime.block_on(serve(settings));
    // A scoring run cancelled at shutdown stops at its next safe point, but a model fit in
    // progress is not interrupted: leave its worker thread behind rather than wait for it
    // (dropping the runtime would block until every blocking task ends).
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

pub fn show(args: &ConfigShowArgs) -> anyhow::Result<()> {
    let settings = server_settings(&args.store, &args.server)?;
    out!("{}", kanta_server::settings::show(&settings))?;
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let url = settings.database.url.clone();
    let app = Application::build(settings, Arc::new(kanta_domain::SystemClock)).await?;
    // Tests and scripts read this line to find the port when --listen ends in :0.
    outln!("kanta serve: listening on http://{} (store {url})", app.address())?;
    app.run_until(kanta_api::shutdown_signal()).await?;
    Ok(())
}
