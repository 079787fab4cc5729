//! `kanta serve`: the HTTP API on the customer store; `kanta config show`.

use std::time::Duration;

use anyhow::Context;

use crate::cli::{ConfigShowArgs, ServeArgs, ServerArgs, StoreArgs};
use crate::settings::Settings;

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
    let result = runtime.block_on(serve(&settings));
    // A scoring run cancelled at shutdown stops at its next safe point, but a model fit in
    // progress is not interrupted: leave its worker thread behind rather than wait for it
    // (dropping the runtime would block until every blocking task ends).
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

pub fn show(args: &ConfigShowArgs) -> anyhow::Result<()> {
    let settings = server_settings(&args.store, &args.server)?;
    out!("{}", crate::settings::show(&settings))?;
    Ok(())
}

async fn serve(settings: &Settings) -> anyhow::Result<()> {
    // Checked before anything starts: a bad webhook setting is a usage error (exit 2).
    let endpoints = settings.webhook_endpoints()?;
    let inbound = settings.inbound_hooks()?;
    let url = &settings.database.url;
    let store = crate::command::open_store(&settings.database).await?;
    let listen = &settings.server.listen;
    let http_limits = settings.server.http_limits()?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let address = listener.local_addr().context("reading the listening address")?;
    // Tests and scripts read this line to find the port when --listen ends in :0.
    outln!("kanta serve: listening on http://{address} (store {url})")?;
    for hook in &inbound {
        eprintln!("kanta serve: inbound hook `{}` at /v1/hooks/{}", hook.name, hook.name);
    }
    let router = kanta_api::router(
        kanta_api::AppState::new(store.clone()).with_inbound(inbound).with_time_bounds(settings.ingest.bounds()),
    );
    let grace = Duration::from_secs(settings.server.grace_seconds);
    // One stop signal for the server and the scheduler.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        kanta_api::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let scheduler = settings.scoring.every.0.map(|every| {
        eprintln!("kanta serve: scoring every {}", settings.scoring.every);
        let schedule = kanta_jobs::schedule::Schedule { every, budget: settings.scoring.budget.0 };
        tokio::spawn(kanta_jobs::schedule::run(
            store.clone(),
            settings.scoring.job(),
            schedule,
            std::sync::Arc::new(kanta_domain::SystemClock),
            stop_rx.clone(),
            |cycle| {
                for line in kanta_jobs::schedule::describe_cycle(cycle) {
                    eprintln!("kanta serve: {line}");
                }
            },
        ))
    });
    let dispatcher = kanta_webhooks::Dispatcher::new(store.clone()).context("starting the webhook client")?;
    for e in &endpoints {
        eprintln!("kanta serve: webhook `{}` → {}", e.name, e.masked_url());
    }
    let webhooks = kanta_webhooks::dispatch::spawn(&dispatcher, endpoints, &stop_rx, |endpoint, tick| {
        eprintln!("kanta serve: {}", kanta_webhooks::dispatch::describe(endpoint, tick));
    });
    let mut stop = stop_rx;
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    kanta_api::serve_with(listener, router, stopped, grace, http_limits).await.context("serving")?;
    if let Some(scheduler) = scheduler {
        // It saw the stop signal too: a run in progress records itself as cancelled within
        // SHUTDOWN_WAIT; after that it is left behind.
        let wait = kanta_jobs::schedule::SHUTDOWN_WAIT + Duration::from_millis(500);
        if tokio::time::timeout(wait, scheduler).await.is_err() {
            eprintln!("kanta serve: the scoring run did not stop in time; leaving it");
        }
    }
    for task in webhooks {
        task.abort();
    }
    eprintln!("kanta serve: stopped");
    Ok(())
}
