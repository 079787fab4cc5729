//! The dispatcher: one loop per endpoint that turns new events into queued deliveries and sends
//! them, oldest first.
//!
//! Each tick: (1) read the stage-change and segment-transition logs after the endpoint's
//! cursors, keep what it subscribes to, and queue it — the cursors move in the same transaction,
//! so an event is queued exactly once even across restarts; (2) unless the endpoint is paused
//! or backing off, send pending deliveries in order until one fails. A failure counts against
//! the endpoint (its next attempt waits `backoff · 2^(n−1)`, capped) and against the delivery
//! (given up after `max_attempts`); `pause_after` failures in a row pause the endpoint until
//! an operator resumes it, while events keep queueing, so nothing is lost.
//!
//! Isolation: every endpoint has its own task, every request a timeout, and no database
//! transaction is open while a request is in flight, so a hanging endpoint delays only its own
//! deliveries — never scoring, the API or the other endpoints.
//!
//! Only configured addresses are contacted: the client follows no redirects (a 3xx is a
//! failed attempt) and ignores `HTTP_PROXY`-style variables, which would send the request to
//! an address the configuration does not name. Nor does it connect to private or link-local
//! addresses unless the endpoint has `allow_private` ([`crate::destination`]): its resolver
//! drops them from every answer, and a literal IP is checked before the request.

use kanta_domain::{Clock, SystemClock};
use kanta_store::{Attempt, Delivery, Storage};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::destination::{self, GuardedResolver, Lookup, SystemLookup};
use crate::endpoint::{Endpoint, literal_ip};
use crate::{WebhookError, event, sign};

/// Events read from each log per query.
const LOG_PAGE: u32 = 10_000;
/// Deliveries sent per tick before looking for new events again.
const SEND_BATCH: u32 = 100;

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    /// Deliveries queued.
    pub queued: u64,
    /// Deliveries that arrived.
    pub delivered: u64,
    /// The failed attempt, if one ended the tick: delivery id and why.
    pub failed: Option<(i64, String)>,
    /// Deliveries given up on.
    pub given_up: u64,
    /// Why the endpoint is paused, if it is (newly or still).
    pub paused: Option<String>,
    /// A full batch went out: tick again at once.
    pub more: bool,
}

impl Tick {
    /// Whether anything happened worth a log line.
    pub fn eventful(&self) -> bool {
        self.queued > 0 || self.delivered > 0 || self.failed.is_some()
    }
}

/// Sends deliveries for configured endpoints.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    store: Arc<dyn Storage>,
    /// For endpoints without `allow_private`: resolves to global and loopback addresses only.
    guarded: reqwest::Client,
    /// For endpoints with `allow_private`.
    open: reqwest::Client,
    /// What decides what is due (backoffs) and stamps attempts and signatures; tests move a
    /// `ManualClock` through the backoffs instead of sleeping.
    clock: Arc<dyn Clock>,
}

impl Dispatcher {
    /// A dispatcher over `store`, resolving names with the system resolver.
    pub fn new(store: Arc<dyn Storage>) -> Result<Dispatcher, WebhookError> {
        Dispatcher::with_lookup(store, Arc::new(SystemLookup))
    }

    /// A dispatcher whose clients resolve names with `lookup` (tests answer without DNS).
    pub fn with_lookup(store: Arc<dyn Storage>, lookup: Arc<dyn Lookup>) -> Result<Dispatcher, WebhookError> {
        let client = |allow_private: bool| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(Arc::new(GuardedResolver::new(lookup.clone(), allow_private)))
                .user_agent(concat!("kanta-webhooks/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| WebhookError::Client(e.to_string()))
        };
        Ok(Dispatcher { store, guarded: client(false)?, open: client(true)?, clock: Arc::new(SystemClock) })
    }

    /// With this clock instead of the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Dispatcher {
        self.clock = clock;
        self
    }

    fn now(&self) -> i64 {
        self.clock.now().micros()
    }

    /// Queue new events for `endpoint` and send what is due.
    pub async fn tick(&self, endpoint: &Endpoint) -> Result<Tick, WebhookError> {
        // The store (and so `GET /v1/webhooks`) keeps the URL with its credentials masked.
        let state = self.store.webhook_endpoint(&endpoint.name, &endpoint.masked_url(), self.now()).await?;
        let mut tick = Tick { queued: self.enqueue(endpoint, &state).await?, ..Tick::default() };
        if state.paused_at.is_some() {
            tick.paused = state.paused_reason.or_else(|| Some("paused".into()));
            return Ok(tick);
        }
        if state.retry_at.is_some_and(|at| at > self.now()) {
            return Ok(tick);
        }
        let policy = &endpoint.policy;
        let mut failures = state.failures;
        let pending = self.store.pending_deliveries(&endpoint.name, SEND_BATCH).await?;
        for delivery in &pending {
            let outcome = self.send(endpoint, delivery).await;
            let time = self.now();
            let attempt = match outcome {
                Ok(status) => {
                    failures = 0;
                    tick.delivered += 1;
                    Attempt {
                        delivery: delivery.id,
                        time,
                        status: Some(status),
                        error: None,
                        give_up: false,
                        failures: 0,
                        retry_at: None,
                        pause: None,
                    }
                }
                Err((status, error)) => {
                    failures += 1;
                    let n = u32::try_from(failures).unwrap_or(u32::MAX);
                    let give_up = delivery.attempts + 1 >= i64::from(policy.max_attempts);
                    let wait = i64::try_from(policy.delay(n).as_micros()).unwrap_or(i64::MAX);
                    let pause = (n >= policy.pause_after)
                        .then(|| format!("{failures} failed attempts in a row; the last: {error}"));
                    tick.given_up += u64::from(give_up);
                    tick.paused.clone_from(&pause);
                    tick.failed = Some((delivery.id, error.clone()));
                    Attempt {
                        delivery: delivery.id,
                        time,
                        status,
                        error: Some(error),
                        give_up,
                        failures,
                        retry_at: Some(time.saturating_add(wait)),
                        pause,
                    }
                }
            };
            self.store.record_attempt(&attempt).await?;
            if attempt.error.is_some() {
                return Ok(tick);
            }
        }
        tick.more = pending.len() == SEND_BATCH as usize;
        Ok(tick)
    }

    /// Move the endpoint's cursors to the ends of the logs, queueing what it subscribes to.
    async fn enqueue(&self, endpoint: &Endpoint, state: &kanta_store::EndpointState) -> Result<u64, WebhookError> {
        let store = self.store.as_ref();
        let (mut stage_cursor, mut transition_cursor) = (state.stage_cursor, state.transition_cursor);
        let mut queued = 0;
        loop {
            let (stages, stages_more) = store.stage_events(Some(stage_cursor), LOG_PAGE).await?;
            let (moves, moves_more) = store.transitions(None, Some(transition_cursor), LOG_PAGE).await?;
            if stages.is_empty() && moves.is_empty() {
                return Ok(queued);
            }
            let sub = &endpoint.subscription;
            // Contact fields and scores of the customers of this page, read once.
            let mut keys: Vec<i64> =
                stages.iter().map(|e| e.customer_key).chain(moves.iter().map(|t| t.customer_key)).collect();
            keys.sort_unstable();
            keys.dedup();
            let contexts: std::collections::HashMap<i64, kanta_store::CustomerContext> =
                store.customer_contexts(&keys).await?.into_iter().collect();
            let deliveries: Vec<_> = stages
                .iter()
                .filter_map(|e| event::stage_change(sub, e, contexts.get(&e.customer_key)))
                .chain(moves.iter().filter_map(|t| event::transition(sub, t, contexts.get(&t.customer_key))))
                .collect();
            stage_cursor = stages.last().map_or(stage_cursor, |e| e.id);
            transition_cursor = moves.last().map_or(transition_cursor, |t| t.id);
            queued += store
                .enqueue_deliveries(&endpoint.name, stage_cursor, transition_cursor, &deliveries, self.now())
                .await?;
            if stages_more.is_none() && moves_more.is_none() {
                return Ok(queued);
            }
        }
    }

    /// POST one delivery: the status of a 2xx answer, or the status (if any) and why it failed.
    async fn send(&self, endpoint: &Endpoint, d: &Delivery) -> Result<u16, (Option<u16>, String)> {
        let allow_private = endpoint.policy.allow_private;
        // A literal IP bypasses the resolver; `Endpoint::new` refused a private one already.
        if let Some(why) = literal_ip(&endpoint.url).and_then(|ip| destination::check(ip, allow_private)) {
            return Err((None, format!("refused to connect: {why}")));
        }
        let client = if allow_private { &self.open } else { &self.guarded };
        let timestamp = self.now().div_euclid(1_000_000);
        let signature = sign::sign(endpoint.secret.expose(), timestamp, d.payload.as_bytes());
        let timeout = endpoint.policy.timeout;
        let response = client
            .post(endpoint.url.clone())
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("kanta-event-id", &d.event_id)
            .header("kanta-event-type", &d.event_type)
            .header("kanta-delivery-id", d.id)
            .header(sign::HEADER, signature)
            .body(d.payload.clone())
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
            Ok(r) if r.status().is_redirection() => {
                Err((Some(r.status().as_u16()), format!("HTTP {} (redirects are not followed)", r.status())))
            }
            Ok(r) => Err((Some(r.status().as_u16()), format!("HTTP {}", r.status()))),
            Err(e) if e.is_timeout() => Err((None, format!("no answer within {} ms", timeout.as_millis()))),
            // reqwest's message quotes the URL, credentials and all: the log must not.
            Err(e) => Err((None, error_chain(&e.without_url()))),
        }
    }

    /// Run `endpoint`'s loop until `stop` turns true; `report` hears every eventful tick and
    /// every error (a store error is retried at the next poll).
    pub async fn run(
        self,
        endpoint: Endpoint,
        mut stop: watch::Receiver<bool>,
        report: impl Fn(&Endpoint, &Result<Tick, WebhookError>) + Send,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            let tick = tokio::select! {
                t = self.tick(&endpoint) => t,
                _ = stop.wait_for(|s| *s) => return,
            };
            if tick.as_ref().map_or(true, Tick::eventful) {
                report(&endpoint, &tick);
            }
            if tick.as_ref().is_ok_and(|t| t.more) {
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(endpoint.policy.poll) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// Start one task per endpoint.
pub fn spawn(
    dispatcher: &Dispatcher,
    endpoints: Vec<Endpoint>,
    stop: &watch::Receiver<bool>,
    report: impl Fn(&Endpoint, &Result<Tick, WebhookError>) + Send + Clone + 'static,
) -> Vec<JoinHandle<()>> {
    endpoints
        .into_iter()
        .map(|endpoint| tokio::spawn(dispatcher.clone().run(endpoint, stop.clone(), report.clone())))
        .collect()
}

/// A log line for a tick.
pub fn describe(endpoint: &Endpoint, tick: &Result<Tick, WebhookError>) -> String {
    let name = &endpoint.name;
    match tick {
        Err(e) => format!("webhook `{name}`: {e}"),
        Ok(t) => {
            let mut line = format!("webhook `{name}`: {} queued, {} delivered", t.queued, t.delivered);
            if let Some((id, why)) = &t.failed {
                line.push_str(&format!("; delivery {id} failed: {why}"));
            }
            if t.given_up > 0 {
                line.push_str("; given up after the last attempt");
            }
            if let Some(why) = &t.paused {
                line.push_str(&format!("; endpoint paused ({why}) until `kanta webhooks resume {name}`"));
            }
            line
        }
    }
}

/// An error with its causes (reqwest's own message omits why a connection failed).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
