//! `kanta serve`: the HTTP API on the customer store.

use std::time::Duration;

use anyhow::Context;

use crate::cli::ServeArgs;

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let shown = kanta_store::redact(&args.db);
    let store = kanta_store::open(&args.db).await.with_context(|| format!("opening the store {shown}"))?;
    let listener =
        tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr().context("reading the listening address")?;
    // Tests and scripts read this line to find the port when --listen ends in :0.
    println!("kanta serve: listening on http://{address} (store {shown})");
    let router = kanta_api::router(kanta_api::AppState::new(store));
    kanta_api::serve(listener, router, kanta_api::shutdown_signal(), Duration::from_secs(args.grace))
        .await
        .context("serving")?;
    eprintln!("kanta serve: stopped");
    Ok(())
}
