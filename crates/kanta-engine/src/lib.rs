//! The journey engine: customers enter journeys ([`Engine::enter`], [`Engine::on_event`]),
//! their runs advance step by step on the injected clock ([`Engine::advance`]), and the outbox
//! of their messages is sent with the guardrails checked at send time ([`Engine::deliver`]).
//!
//! ```text
//! event / trigger ──enter──▶ JourneyStore::start_run (entry rules, one active run per key)
//! claim_due_runs ──advance──▶ walk the compiled steps until a wait or the end
//!                              (branch: customer_matches; send_email: render; webhook; update)
//!                ──▶ JourneyStore::advance_run (position, history, messages: one transaction)
//! claim_messages ──deliver──▶ consent, suppression, cap, quiet hours (guard::decide)
//!                ──▶ compose + Mailer::send ──▶ complete_message (sent | failed | retry | …)
//! ```
//!
//! **Architecture Invariant:** every decision of what is due takes `now` from the caller, who
//! reads it from the injected [`Clock`]; nothing here reads the system clock, so a 30-day
//! journey runs in milliseconds in tests.
//!
//! **Architecture Invariant:** at most once. A message is `sending` (committed by the claim),
//! and its send is marked started (committed) just before its SMTP transaction; an answer that
//! leaves it unknown whether the server took the message leaves the row in `sending`, and
//! `mark_in_doubt` (first thing in every [`Engine::deliver`]) moves it to `in_doubt` after its
//! lease, which nothing claims again — unless its send never started, then it is due again. So
//! a crash leaves at most the sends in flight in doubt, and the message lease must outlast the
//! SMTP timeout ([`Engine::new`] refuses otherwise).
//!
//! **Where a run waits.** A run waiting sits *at* its wait step (`wait`, `wait_until`,
//! `wait_for`) with the due time of the wait's end; a run claimed at a wait step has finished
//! waiting. [`Engine::enter`] places a run whose first step is a wait at that wait already, so
//! the rule has no exception.

mod advance;
mod cache;
mod context;
mod deliver;
mod entry;
mod feed;
mod goal;
pub mod simulate;
mod triggers;
pub mod uplift;

/// A day in microseconds, the unit of stored instants (per-day tallies of simulations and
/// uplift curves).
const DAY_MICROS: i64 = 86_400_000_000;

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use kanta_domain::{Clock, Timestamp};
use kanta_journey::{Guardrails, Holdout};
use kanta_mail::{EmailConfig, Mailer};
use kanta_store::{Storage, StoreError};

pub use advance::{Advanced, Preview};
pub use deliver::Delivered;
pub use entry::{EngineSignal, EventOutcome};
pub use feed::FeedOutcome;
pub use triggers::{JourneyTriggered, TriggerOutcome};

/// A configured webhook endpoint a journey's `webhook: { endpoint: NAME }` names.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    /// The name journeys use.
    pub name: String,
    /// Where to post.
    pub url: String,
    /// The signing secret (`Kanta-Signature`, as kanta's outbound webhooks sign).
    pub secret: Vec<u8>,
}

/// What the engine needs from the settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Consent mode, frequency cap and quiet hours, checked at send time.
    pub guardrails: Guardrails,
    /// The settings' default zone (after the customer's and the journey's).
    pub default_zone: Option<Tz>,
    /// SMTP and unsubscribe links; without it email messages wait (retry) and nothing is sent.
    pub email: Option<EmailConfig>,
    /// This worker's name in leases (unique per process: host, pid, a random part).
    pub owner: String,
    /// How long a claimed run is held.
    pub run_lease: Duration,
    /// How long a claimed message is held; must exceed the SMTP timeout.
    pub message_lease: Duration,
    /// Runs claimed per [`Engine::advance`].
    pub run_batch: u32,
    /// Messages claimed per [`Engine::deliver`].
    pub message_batch: u32,
    /// Journey feed rows claimed per [`Engine::consume_feed`].
    pub feed_batch: u32,
    /// An order, event or transition older than this when the engine sees it starts no
    /// journey (it still ends runs and wakes waits); `None`: no limit. See the `feed` module.
    pub max_event_age: Option<Duration>,
    /// The pause between two ticks of [`Engine::run`].
    pub tick: Duration,
    /// Endpoints journeys' webhook steps may name.
    pub webhooks: Vec<WebhookEndpoint>,
    /// Signs `webhook: { url: … }` steps (`[journeys] webhook_secret`); without it such a step's
    /// call fails unsent: every webhook kanta sends is signed.
    pub webhook_secret: Option<Vec<u8>>,
    /// The share of customers kept out of every marketing journey (`[guardrails]
    /// global_holdout`): recorded as entered in arm `global_control`, followed for the goal.
    pub global_holdout: Holdout,
}

impl EngineConfig {
    /// Defaults around `owner`: no email, no guardrails beyond opt-in consent, leases of 5
    /// minutes, batches of 100 (500 feed rows), a tick every second, events up to a day old
    /// start journeys.
    pub fn new(owner: impl Into<String>) -> EngineConfig {
        EngineConfig {
            guardrails: Guardrails {
                consent: kanta_journey::ConsentMode::OptIn,
                cap: kanta_journey::FrequencyCap::Off,
                quiet: kanta_journey::QuietHours::Off,
            },
            default_zone: None,
            email: None,
            owner: owner.into(),
            run_lease: Duration::from_secs(300),
            message_lease: Duration::from_secs(300),
            run_batch: 100,
            message_batch: 100,
            feed_batch: 500,
            max_event_age: Some(Duration::from_secs(24 * 3600)),
            tick: Duration::from_secs(1),
            webhooks: Vec::new(),
            webhook_secret: None,
            global_holdout: Holdout::NONE,
        }
    }

    /// The domain of Message-IDs: the sender's, or `kanta.invalid` without email settings
    /// (dry runs still record a Message-ID).
    fn message_domain(&self) -> String {
        self.email.as_ref().map_or_else(|| "kanta.invalid".to_owned(), |e| e.from.email.domain().to_owned())
    }
}

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The store failed (retried at the next tick).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No journey has this name.
    #[error("no journey named `{0}`")]
    UnknownJourney(String),
    /// The journey is paused: it admits nobody.
    #[error("journey `{0}` is paused")]
    Paused(String),
    /// No customer has this id.
    #[error("no customer with id `{0}`")]
    UnknownCustomer(String),
    /// A stored journey version does not validate any more.
    #[error("stored journey `{name}` version {version} is not valid: {problem}")]
    StoredJourney {
        /// The journey.
        name: String,
        /// The version.
        version: i64,
        /// What is wrong.
        problem: String,
    },
    /// The journey has no such step, or it is not a `send_email`.
    #[error(
        "journey `{journey}` has no send_email step `{step}`; its send_email steps: {}",
        if email_steps.is_empty() { "none".to_owned() } else { email_steps.join(", ") }
    )]
    NotAnEmailStep {
        /// The journey.
        journey: String,
        /// The step id asked for.
        step: String,
        /// The ids of the journey's `send_email` steps, in document order.
        email_steps: Vec<String>,
    },
    /// Loading or rendering templates failed.
    #[error(transparent)]
    Render(#[from] kanta_mail::RenderError),
    /// The uplift statistics could not be computed from the rows read.
    #[error("the uplift report: {0}")]
    Report(String),
    /// A rendered message could not be composed (a recipient that is not an address).
    #[error(transparent)]
    Compose(#[from] kanta_mail::ComposeError),
    /// The SMTP settings cannot make a mailer.
    #[error(transparent)]
    Mailer(#[from] kanta_mail::smtp::MailerError),
    /// The message lease does not outlast the SMTP timeout.
    #[error(
        "the message lease ({} s) must be longer than the SMTP timeout ({} s), or a slow send could be claimed twice",
        lease.as_secs(),
        timeout.as_secs()
    )]
    LeaseTooShort {
        /// The configured lease.
        lease: Duration,
        /// The SMTP timeout.
        timeout: Duration,
    },
    /// A webhook HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// A message payload could not be written as JSON.
    #[error("cannot write a message payload: {0}")]
    Json(#[from] serde_json::Error),
    /// A claimed message's lease ran out before its send started; another worker may have it.
    #[error("the message's lease ran out before its send started; it was not sent")]
    LeaseLost,
    /// A journey cannot be simulated on this store (no fitted model, an unknown segment).
    #[error("cannot simulate: {0}")]
    Simulate(String),
    /// A time outside the calendar (never from a real clock).
    #[error(transparent)]
    OutOfRange(#[from] kanta_journey::OutOfRange),
}

/// What one [`Engine::pass`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Journey feed rows claimed.
    pub fed: usize,
    /// Runs claimed and the steps they went through.
    pub advanced: Advanced,
    /// Messages claimed, by outcome.
    pub delivered: Delivered,
}

impl Pass {
    /// Nothing was due: no feed rows, runs or messages. Waits due later are not looked at.
    pub fn is_idle(&self) -> bool {
        self.fed == 0 && self.advanced.runs == 0 && self.delivered.claimed == 0
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Pass) {
        self.fed += other.fed;
        self.advanced.runs += other.advanced.runs;
        self.advanced.steps += other.advanced.steps;
        self.delivered.add(&other.delivered);
    }
}

/// The journey engine. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Engine {
    store: Arc<dyn Storage>,
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    mailer: Option<Mailer>,
    http: reqwest::Client,
    cache: cache::Cache,
    domain: String,
    nudge: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("owner", &self.config.owner).finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `store`: sets up the mailer (connecting lazily) and checks that the
    /// message lease outlasts the SMTP timeout. Templates come with each journey version.
    pub fn new(store: Arc<dyn Storage>, config: EngineConfig, clock: Arc<dyn Clock>) -> Result<Engine, EngineError> {
        let mailer = match &config.email {
            Some(email) => {
                if config.message_lease <= email.timeout {
                    return Err(EngineError::LeaseTooShort { lease: config.message_lease, timeout: email.timeout });
                }
                Some(Mailer::new(email)?)
            }
            None => None,
        };
        // Webhook calls are bounded well inside the message lease, for the same reason.
        let http = reqwest::Client::builder().timeout(config.message_lease / 2).build()?;
        let domain = config.message_domain();
        Ok(Engine {
            store,
            config,
            clock,
            mailer,
            http,
            cache: cache::Cache::default(),
            domain,
            nudge: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// The clock the engine was given (what [`Engine::run`] ticks with).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A handle that wakes [`Engine::run`] before its next tick: the API notifies it after
    /// writing orders or events, so a first order starts its journey at once rather than up
    /// to a tick later.
    pub fn nudge(&self) -> Arc<tokio::sync::Notify> {
        self.nudge.clone()
    }

    /// One pass of everything due: [`Engine::evaluate_triggers`] once (calendar triggers
    /// first, so a run they start takes its first step in this pass), then
    /// [`Engine::consume_feed`], [`Engine::advance`] and [`Engine::deliver`], repeated until all
    /// three find nothing (or `stop`), with `now` read from the clock each time. Errors are
    /// logged; they are retried at the next pass.
    pub async fn work(&self, stop: &tokio::sync::watch::Receiver<bool>) {
        if let Err(e) = self.evaluate_triggers(self.clock.now()).await {
            tracing::warn!("journey engine: evaluating date and schedule triggers failed: {e}");
        }
        loop {
            if self.pass().await.is_idle() || *stop.borrow() {
                return;
            }
        }
    }

    /// One batch of each: the journey feed, due runs, due messages, with `now` read from the
    /// clock before each; what [`Engine::work`] repeats. Errors are logged and count as
    /// nothing done (they are retried at the next pass).
    pub async fn pass(&self) -> Pass {
        let fed = self.consume_feed(self.clock.now()).await.map_or_else(
            |e| {
                tracing::warn!("journey engine: reading the journey feed failed: {e}");
                0
            },
            |o| o.claimed,
        );
        let advanced = self.advance_counted(self.clock.now()).await.unwrap_or_else(|e| {
            tracing::warn!("journey engine: advancing runs failed: {e}");
            Advanced::default()
        });
        let delivered = self.deliver_counted(self.clock.now()).await.unwrap_or_else(|e| {
            tracing::warn!("journey engine: delivering messages failed: {e}");
            Delivered::default()
        });
        Pass { fed, advanced, delivered }
    }

    /// [`Engine::work`] every [`EngineConfig::tick`], and at once when nudged
    /// ([`Engine::nudge`]), until `stop` turns true.
    pub async fn run(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            self.work(&stop).await;
            tokio::select! {
                () = tokio::time::sleep(self.config.tick) => {}
                () = self.nudge.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}
