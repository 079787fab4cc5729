//! The application `kanta serve` runs: the HTTP API, the scoring scheduler, one webhook worker
//! per configured endpoint and the journey engine, built from [`Settings`] and stopped together.
//!
//! Two steps, so a caller can learn the address before anything is served: [`Application::build`]
//! checks the settings, opens the store and binds the listener (port 0 picks a free one);
//! [`Application::run_until`] starts the scheduler and the workers, serves until the stop future
//! resolves, then shuts everything down in order — in-flight requests get the grace period, a
//! scoring run in progress [`SHUTDOWN_WAIT`](kanta_jobs::schedule::SHUTDOWN_WAIT) to record
//! itself as cancelled, and the webhook loops are aborted (a delivery cut off mid-request is
//! still pending and is sent again at the next start). The journey engine finishes the batch it
//! is working on within the grace period; an email cut off mid-send after that stays `sending`
//! and becomes `in_doubt` (never sent twice), as after a crash.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kanta_domain::Clock;
use kanta_store::Storage;
use kanta_webhooks::{Dispatcher, Endpoint};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ServerError;
use crate::settings::Settings;

/// The server, built and bound but not yet serving.
pub struct Application {
    settings: Settings,
    store: Arc<dyn Storage>,
    listener: TcpListener,
    address: SocketAddr,
    router: axum::Router,
    http_limits: kanta_api::HttpLimits,
    /// Names of the configured inbound hooks, for the start-up log.
    inbound: Vec<String>,
    endpoints: Vec<Endpoint>,
    dispatcher: Dispatcher,
    clock: Arc<dyn Clock>,
    /// The journey engine, unless `[journeys] enabled = false`.
    engine: Option<Arc<kanta_engine::Engine>>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("address", &self.address).field("settings", &self.settings).finish()
    }
}

impl Application {
    /// Checks the settings, opens the store and binds the listening address. `clock` is what
    /// the API's ingest checks, the scheduler and the webhook workers read the time from
    /// (`SystemClock` in production, a `ManualClock` in tests).
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Application, ServerError> {
        // Checked before anything starts: a bad webhook or inbound setting is the user's to fix.
        let endpoints = settings.webhook_endpoints()?;
        let inbound = settings.inbound_hooks()?;
        let email = settings.email_config()?;
        settings.journeys.tick()?;
        let public_url = settings.email.as_ref().map(|e| e.public_url.as_str());
        let web_config = settings
            .dashboard
            .enabled
            .then(|| settings.dashboard.web_config(public_url))
            .transpose()?
            .map(|config| kanta_web::WebConfig { settings_text: crate::settings::show(&settings), ..config });
        let store = settings.database.open().await?;
        let http_limits = settings.server.http_limits()?;
        let listen = &settings.server.listen;
        let listener =
            TcpListener::bind(listen).await.map_err(|source| ServerError::Bind { address: listen.clone(), source })?;
        let address = listener.local_addr().map_err(ServerError::Address)?;
        let inbound_names = inbound.iter().map(|h| h.name.clone()).collect();
        let state = kanta_api::AppState::new(store.clone())
            .with_inbound(inbound)
            .with_time_bounds(settings.ingest.bounds())
            .with_soft_bounce_limit(settings.guardrails.soft_bounce_limit)
            .with_clock(clock.clone());
        let state = match &email {
            Some(email) => state.with_unsubscribe_key(email.unsubscribe_key.clone()),
            None => state,
        };
        let engine = if settings.journeys.enabled {
            let config = settings.engine_config(&worker_name())?;
            let engine =
                kanta_engine::Engine::new(store.clone(), config, clock.clone()).map_err(ServerError::Engine)?;
            Some(Arc::new(engine))
        } else {
            None
        };
        let state = match &engine {
            Some(engine) => state.with_journey_nudge(engine.nudge()),
            None => state,
        };
        let router = kanta_api::router(state);
        // The dashboard's pages beside the API, on the same port (they share no path).
        let router = match web_config {
            Some(config) => {
                let web =
                    kanta_web::WebState::new(store.clone(), clock.clone(), config).map_err(ServerError::Dashboard)?;
                let web = match &engine {
                    Some(engine) => web.with_engine(engine.clone(), settings.scoring.slipping_below),
                    None => web,
                };
                kanta_web::router(web).merge(router)
            }
            None => router,
        };
        let dispatcher = Dispatcher::new(store.clone()).map_err(ServerError::WebhookClient)?.with_clock(clock.clone());
        Ok(Application {
            settings,
            store,
            listener,
            address,
            router,
            http_limits,
            inbound: inbound_names,
            endpoints,
            dispatcher,
            clock,
            engine,
        })
    }

    /// The address it listens on (the port chosen when the settings said 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The store it serves.
    pub fn store(&self) -> Arc<dyn Storage> {
        self.store.clone()
    }

    /// Serves until `stop` resolves (SIGTERM or Ctrl-C in `kanta serve`), with the scheduler and
    /// the webhook workers running beside the API; returns once all of them have stopped.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> Result<(), ServerError> {
        for name in &self.inbound {
            tracing::info!("kanta serve: inbound hook `{name}` at /v1/hooks/{name}");
        }
        // One stop signal for the server, the scheduler and the webhook loops.
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            stop.await;
            let _ = stop_tx.send(true);
        });
        let scheduler = self.start_scheduler(&stop_rx);
        let webhooks = self.start_webhooks(&stop_rx);
        let journeys = self.engine.clone().map(|engine| {
            tracing::info!("kanta serve: journeys every {}", self.settings.journeys.tick);
            let stop = stop_rx.clone();
            tokio::spawn(async move { engine.run(stop).await })
        });
        let mut stopping = stop_rx;
        let stopped = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        let grace = Duration::from_secs(self.settings.server.grace_seconds);
        let served = kanta_api::serve_with(self.listener, self.router, stopped, grace, self.http_limits).await;
        if let Some(scheduler) = scheduler {
            if served.is_err() {
                scheduler.abort();
            }
            // It saw the stop signal too: a run in progress records itself as cancelled within
            // SHUTDOWN_WAIT; after that it is left behind.
            let wait = kanta_jobs::schedule::SHUTDOWN_WAIT + Duration::from_millis(500);
            if tokio::time::timeout(wait, scheduler).await.is_err() {
                tracing::warn!("kanta serve: the scoring run did not stop in time; leaving it");
            }
        }
        for task in webhooks {
            task.abort();
        }
        if let Some(mut journeys) = journeys {
            // It saw the stop signal: the batch in hand is finished within the grace period.
            if tokio::time::timeout(grace, &mut journeys).await.is_err() {
                tracing::warn!("kanta serve: the journey engine did not stop in time; leaving it");
                journeys.abort();
            }
        }
        served.map_err(ServerError::Serve)?;
        tracing::info!("kanta serve: stopped");
        Ok(())
    }

    /// The scoring scheduler, unless `[scoring] every` is `off`.
    fn start_scheduler(&self, stop: &watch::Receiver<bool>) -> Option<JoinHandle<()>> {
        let scoring = &self.settings.scoring;
        let every = scoring.every.0?;
        tracing::info!("kanta serve: scoring every {}", scoring.every);
        let schedule = kanta_jobs::schedule::Schedule { every, budget: scoring.budget.0 };
        Some(tokio::spawn(kanta_jobs::schedule::run(
            self.store.clone(),
            scoring.job(),
            schedule,
            self.clock.clone(),
            stop.clone(),
            report_cycle,
        )))
    }

    /// One webhook loop per configured endpoint.
    fn start_webhooks(&self, stop: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        for e in &self.endpoints {
            tracing::info!("kanta serve: webhook `{}` → {}", e.name, e.masked_url());
        }
        kanta_webhooks::dispatch::spawn(&self.dispatcher, self.endpoints.clone(), stop, report_tick)
    }
}

/// Logs a scheduler cycle, one event per line: a failed or cancelled run and a failed segment
/// refresh are warnings, the rest information.
fn report_cycle(cycle: &kanta_jobs::schedule::Cycle) {
    let lines = kanta_jobs::schedule::describe_cycle(cycle);
    let (score, segments) = lines.split_at(1.min(lines.len()));
    for line in score {
        log_line(cycle.score.is_ok(), line);
    }
    for line in segments {
        log_line(cycle.segments.is_ok(), line);
    }
}

/// Logs an eventful webhook tick: a store error or a failed attempt is a warning.
fn report_tick(endpoint: &Endpoint, tick: &Result<kanta_webhooks::Tick, kanta_webhooks::WebhookError>) {
    let fine = tick.as_ref().is_ok_and(|t| t.failed.is_none());
    log_line(fine, &kanta_webhooks::dispatch::describe(endpoint, tick));
}

fn log_line(fine: bool, line: &str) {
    if fine {
        tracing::info!("kanta serve: {line}");
    } else {
        tracing::warn!("kanta serve: {line}");
    }
}

/// This process's name in leases: host, process id and a random part, so two servers (on one
/// host or many) never take each other's claims for their own.
pub fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "kanta".into());
    // Not a time reading for any decision: only entropy for a name.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{host}:{}:{nanos:08x}", std::process::id())
}
