//! `kanta webhooks list | deliveries | resume | listen`.

use std::io::Write;

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};

use super::with_store;
use crate::UsageError;
use crate::cli::{WebhooksDeliveriesArgs, WebhooksListArgs, WebhooksListenArgs, WebhooksResumeArgs};

pub fn list(args: &WebhooksListArgs) -> anyhow::Result<()> {
    let settings = args.store.settings()?;
    // Names and URLs only: listing needs no secrets.
    let configured = &settings.webhooks;
    let known = with_store(&args.store, async |store| Ok(store.webhook_endpoints().await?))?;
    outln!(
        "{:<20} {:>8} {:>10} {:>7} {:>9}  {:<10} url",
        "name",
        "pending",
        "delivered",
        "failed",
        "failures",
        "state"
    )?;
    let mut names: Vec<&str> = configured.iter().map(|e| e.name.as_str()).collect();
    names.extend(known.iter().map(|k| k.name.as_str()).filter(|n| !configured.iter().any(|e| e.name == *n)));
    for name in names {
        let state = known.iter().find(|k| k.name == name);
        // Credentials in the URL are masked (the store keeps them masked already).
        let url = configured
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.url.to_string())
            .or_else(|| state.map(|s| kanta_webhooks::mask_url(&s.url)))
            .unwrap_or_default();
        let status = match state {
            None => "not started",
            Some(_) if !configured.iter().any(|e| e.name == name) => "removed",
            Some(s) if s.paused_at.is_some() => "paused",
            Some(s) if s.failures > 0 => "retrying",
            Some(_) => "ok",
        };
        let (pending, delivered, failed, failures) =
            state.map_or((0, 0, 0, 0), |s| (s.pending, s.delivered, s.failed, s.failures));
        outln!("{name:<20} {pending:>8} {delivered:>10} {failed:>7} {failures:>9}  {status:<10} {url}")?;
        if let Some(reason) = state.and_then(|s| s.paused_reason.as_deref()) {
            outln!("{:<20} paused: {reason}", "")?;
        }
    }
    Ok(())
}

pub fn deliveries(args: &WebhooksDeliveriesArgs) -> anyhow::Result<()> {
    let (log, next) = with_store(&args.store, async |store| {
        Ok(store.deliveries(args.endpoint.as_deref(), args.after, args.limit).await?)
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for d in &log {
            writeln!(out, "{}", serde_json::to_string(d)?)?;
        }
    } else {
        writeln!(
            out,
            "{:>8}  {:<16} {:<24} {:<30} {:<9} {:>8}  last",
            "id", "endpoint", "time", "event", "state", "attempts"
        )?;
        for d in &log {
            let last = match (d.last_status, &d.last_error) {
                (_, Some(e)) => e.clone(),
                (Some(s), None) => format!("HTTP {s}"),
                (None, None) => "-".into(),
            };
            let time = kanta_store::rfc3339(d.last_attempt_at.unwrap_or(d.created_at));
            writeln!(
                out,
                "{:>8}  {:<16} {:<24} {:<30} {:<9} {:>8}  {last}",
                d.id, d.endpoint, time, d.event_id, d.state, d.attempts
            )?;
        }
    }
    if let Some(next) = next {
        eprintln!("more: --after {next}");
    }
    Ok(())
}

pub fn resume(args: &WebhooksResumeArgs) -> anyhow::Result<()> {
    let name = &args.name;
    if with_store(&args.store, async |store| Ok(store.resume_webhook(name, args.retry_failed).await?))? {
        eprintln!(
            "resumed webhook `{name}`{}",
            if args.retry_failed { " (failed deliveries queued again)" } else { "" }
        );
        Ok(())
    } else {
        Err(UsageError(format!("no webhook `{name}` in the store (see `kanta webhooks list`)")).into())
    }
}

/// A local receiver: verifies `Kanta-Signature` and prints each event as one JSON line.
pub fn listen(args: &WebhooksListenArgs) -> anyhow::Result<()> {
    let secret = std::env::var(&args.secret_env)
        .map_err(|_| UsageError(format!("set {} to the webhook's secret", args.secret_env)))?;
    let secret = kanta_webhooks::SigningSecret::parse(&secret).map_err(|e| UsageError(e.to_string()))?;
    let tolerance = args.tolerance;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| UsageError(format!("cannot listen on {}: {e}", args.listen)))?;
        let address = listener.local_addr().context("reading the listening address")?;
        eprintln!("kanta webhooks listen: listening on http://{address}/");
        let (done_tx, mut done_rx) = tokio::sync::watch::channel(0u64);
        let limit = args.count;
        let app = axum::Router::new()
            .fallback(move |headers: HeaderMap, body: Bytes| {
                let secret = secret.clone();
                let done_tx = done_tx.clone();
                async move {
                    let header = headers.get(kanta_webhooks::sign::HEADER).and_then(|h| h.to_str().ok()).unwrap_or("");
                    let now = kanta_store::now_micros().div_euclid(1_000_000);
                    if let Err(e) = kanta_webhooks::sign::verify(secret.expose(), header, &body, now, tolerance) {
                        eprintln!("kanta webhooks listen: refused a request: {e}");
                        return StatusCode::UNAUTHORIZED;
                    }
                    let line = String::from_utf8_lossy(&body);
                    // Deliveries run concurrently and graceful shutdown lets the requests in
                    // flight finish, so the limit is checked under the stdout lock: once `--count`
                    // events are printed, later ones get a 503 (the sender keeps them queued and
                    // retries) instead of an extra line.
                    let mut out = std::io::stdout().lock();
                    if limit.is_some_and(|l| *done_tx.borrow() >= l) {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    done_tx.send_modify(|n| *n += 1);
                    StatusCode::NO_CONTENT
                }
            })
            .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024));
        let stop = async move {
            tokio::select! {
                _ = done_rx.wait_for(|n| limit.is_some_and(|l| *n >= l)) => {}
                () = kanta_api::shutdown_signal() => {}
            }
        };
        axum::serve(listener, app).with_graceful_shutdown(stop).await.context("serving")?;
        Ok(())
    })
}
