//! Journeys: versioned journey documents, the runs of customers through them, the outbox of
//! their messages and the suppression list ([`JourneyStore`]).
//!
//! The store keeps documents as opaque JSON text (the engine parses them with `kanta-journey`)
//! and decides nothing about what is due or allowed; it makes the engine's decisions durable and
//! safe under crashes and concurrent workers:
//!
//! - [`definition`]: applying a document creates a version only when its digest changed; runs
//!   keep the version they started on.
//! - [`run`]: never two active runs of one journey for one customer and key (a partial unique
//!   index, checked with the re-entry rule and the concurrency limit under a lock on the
//!   customer); runs are claimed with leases and every later change of a claimed run is
//!   conditioned on still holding its lease, in one transaction with the history rows and the
//!   messages it enqueues.
//! - [`outbox`]: messages move `pending → sending → sent | failed | retry`; `sending` is
//!   committed by the claim, the start of each send (`started_at`) just before its SMTP
//!   transaction; a row found in `sending` after its lease ran out becomes `in_doubt` if its send
//!   had started — never sent again unless an operator asks (at most once) — and due again if
//!   not, so a crash leaves only the sends in flight in doubt, not the whole claimed batch.
//! - [`suppression`]: addresses not to mail.
//! - [`trigger`]: the calendar triggers' candidate scans and per-journey cursors.
//! - [`view`]: what the API, the CLI and `/metrics` show.
//!
//! **Leases.** A claim sets `lease_owner`, `lease_until` and bumps `lease_seq`, a fencing
//! counter; a claimed row is handed out as a [`Lease`]. An update by a worker matches the
//! owner and the counter, so it fails (and reports `false`) once anyone else has claimed the
//! row since, even with the same owner name. A lease that ran out but was not taken over still
//! lets its holder finish: nobody else can have acted on the row.

pub mod definition;
pub mod feed;
pub mod goal;
pub mod history;
pub mod outbox;
pub mod run;
pub mod suppression;
pub mod trigger;
pub mod view;

use std::time::Duration;

use crate::StoreError;
use crate::dialect::Dialect;
use crate::store::Store;
use kanta_domain::Timestamp;

pub use definition::{Applied, JourneyHead, JourneyVersion};
pub use feed::{FeedItem, FeedKind};
pub use goal::{FunnelRow, GoalSource, GoalStore, NewConversion, RevenueAtRisk, SplitChoice, UpliftEntry};
pub use history::{CustomerKey, EarlierRun, Happened, Happening, HistoryStore};
pub use outbox::{Channel, ClaimedMessage, MessageId, MessageStatus, NewMessage, Outcome, Skip, idempotency_key};
pub use run::{
    ClaimedRun, Entered, EntryRules, NewRun, Next, Reentry, RunArm, RunEnd, RunId, RunUpdate, Signal, StepRecord, Wait,
};
pub use suppression::{Bounce, Suppression, SuppressionReason};
pub use trigger::{DateCandidate, DateScan, DateValue, DayMatch, TriggerCursor, TriggerStore, Zones};
pub use view::{
    CustomerRun, JourneyMetrics, JourneyReport, JourneySummary, MessageCount, MessageView, RunStatus, RunView,
    StepCounts, StepView, VersionInfo,
};

/// A worker's hold on a claimed run or message: who, until when, and the claim's fencing
/// number. Updates of the row are conditioned on it (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The claiming worker (unique per process, e.g. host, pid and a random part).
    pub owner: String,
    /// The row's claim counter after this claim.
    pub seq: i64,
    /// When the lease runs out: a run may then be claimed again; a message in `sending`
    /// becomes `in_doubt`.
    pub until: Timestamp,
}

/// Journeys: documents and versions, runs, the message outbox, suppressions.
#[async_trait::async_trait]
pub trait JourneyStore: Send + Sync {
    /// Store `definition` (canonical JSON text) as the journey's current version, unless the
    /// current version has the same `digest`: then nothing is written and `created` is false.
    /// New runs start on the current version; runs in progress keep theirs.
    async fn apply_journey(
        &self,
        name: &str,
        definition: &str,
        digest: &str,
        now: Timestamp,
    ) -> Result<Applied, StoreError>;

    /// Pause or resume a journey (a paused journey's runs and messages are not claimed).
    /// Returns whether the journey exists.
    async fn set_journey_paused(&self, name: &str, paused: bool, now: Timestamp) -> Result<bool, StoreError>;

    /// One version of a journey.
    async fn journey_version(&self, name: &str, version: i64) -> Result<Option<JourneyVersion>, StoreError>;

    /// Every journey's current version with its document, by name: what the engine runs.
    async fn journey_heads(&self) -> Result<Vec<JourneyHead>, StoreError>;

    /// A number that changes whenever a journey is applied, paused or resumed: a server polls
    /// it to pick up changes made by the CLI.
    async fn journeys_generation(&self) -> Result<i64, StoreError>;

    /// The internal id of a customer (as runs and messages name them), by external id.
    async fn customer_key(&self, customer: &str) -> Result<Option<i64>, StoreError>;

    /// The external id of a customer (as the API and templates name them), by internal id;
    /// `None` when there is no such customer.
    async fn customer_external_id(&self, customer: i64) -> Result<Option<String>, StoreError>;

    /// Whether a customer (internal id), not erased, matches a segment expression at `now`: a
    /// journey's `branch` condition. The expression is compiled like a segment's, every value
    /// bound as a parameter, and runs under the preview budget and the segment query slots.
    async fn customer_matches(
        &self,
        customer: i64,
        expr: &kanta_segment::Expr,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Claim up to `limit` rows of the journey feed (new orders and events, stage changes,
    /// segment transitions; see [`feed`]), oldest first, for `lease`. Rows another worker
    /// holds are passed over; a row whose lease ran out (its worker died) is claimed again.
    async fn claim_feed(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<FeedItem>, StoreError>;

    /// Delete feed rows `owner` has handled and still holds; returns how many.
    async fn ack_feed(&self, owner: &str, ids: &[i64]) -> Result<u64, StoreError>;

    /// Feed rows waiting to be handled.
    async fn feed_depth(&self) -> Result<i64, StoreError>;

    /// Enter a customer into a journey, unless they have an active run of it with the same key
    /// or `rules` forbid it (re-entry, the limit of concurrent runs). Decided and written in
    /// one transaction, under a lock on the customer, so concurrent entries cannot both pass.
    /// Whether a paused journey admits new customers is the engine's call: this does not check.
    async fn start_run(&self, run: &NewRun<'_>, rules: &EntryRules, now: Timestamp) -> Result<Entered, StoreError>;

    /// [`JourneyStore::start_run`] for several runs under the same rules in one transaction:
    /// each decided as if entered alone, in the order given (give them by internal id), the
    /// results in that order. The calendar triggers enter a chunk of customers at a time.
    async fn start_runs(
        &self,
        runs: &[NewRun<'_>],
        rules: &EntryRules,
        now: Timestamp,
    ) -> Result<Vec<Entered>, StoreError>;

    /// Claim up to `limit` active runs due at `now` (oldest due first) whose lease is free or
    /// ran out, of journeys not paused, for `lease`; one committed statement.
    async fn claim_due_runs(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedRun>, StoreError>;

    /// Move a claimed run on (or end it), record the steps it passed and enqueue its messages,
    /// in one transaction, releasing the lease. Nothing is written and `false` is returned when
    /// `lease` no longer holds the run or the run is no longer active.
    async fn advance_run(
        &self,
        run: RunId,
        lease: &Lease,
        update: &RunUpdate,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// [`JourneyStore::advance_run`] for several runs in one transaction (give them by run
    /// id), each decided alone; `false` for a run whose lease no longer holds.
    async fn advance_runs(&self, runs: &[(RunId, &Lease, &RunUpdate)], now: Timestamp)
    -> Result<Vec<bool>, StoreError>;

    /// The awaited event or segment entry arrived for a customer: every active run of theirs
    /// waiting for it becomes due at `now` with `woken_at` set and its wait cleared. Returns
    /// the runs woken.
    async fn wake_runs(&self, customer: i64, signal: &Signal<'_>, now: Timestamp) -> Result<Vec<RunId>, StoreError>;

    /// End a customer's active runs of a journey (of one key, or all) as `exited` with
    /// `reason`, also mid-wait and whoever holds their lease, and cancel their messages not yet
    /// being sent. Returns the runs ended.
    async fn exit_runs(
        &self,
        customer: i64,
        journey: &str,
        key: Option<&str>,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<RunId>, StoreError>;

    /// Enqueue a message of a run outside [`JourneyStore::advance_run`]; idempotent on its key
    /// (`None` when a message with that key or Message-ID exists).
    async fn enqueue_message(
        &self,
        run: RunId,
        message: &NewMessage,
        now: Timestamp,
    ) -> Result<Option<MessageId>, StoreError>;

    /// Claim up to `limit` messages due at `now` (`pending` or `retry`, oldest due first, of
    /// journeys not paused): they become `sending` with a lease, committed before this returns
    /// so a crash during the send leaves them `sending`.
    async fn claim_messages(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedMessage>, StoreError>;

    /// The send of a claimed message starts now: committed just before the SMTP transaction
    /// (or HTTP call), so that a message whose lease runs out in `sending` is in doubt only if
    /// its send had started — one claimed but never started becomes due again. Returns `false`
    /// (send nothing) when `lease` no longer holds the message.
    async fn start_message(&self, id: MessageId, lease: &Lease, now: Timestamp) -> Result<bool, StoreError> {
        Ok(self.start_messages(&[(id, lease)], now).await?.first().copied().unwrap_or(false))
    }

    /// [`JourneyStore::start_message`] for the sends about to run side by side, in one commit.
    async fn start_messages(&self, sends: &[(MessageId, &Lease)], now: Timestamp) -> Result<Vec<bool>, StoreError>;

    /// Record what became of a claimed message. Returns `false` (nothing written) when `lease`
    /// no longer holds it: claimed again, resent by an operator, or already completed. A
    /// message marked `in_doubt` after its lease ran out is still completed by its holder,
    /// whose answer ends the doubt.
    async fn complete_message(
        &self,
        id: MessageId,
        lease: &Lease,
        outcome: &Outcome,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        Ok(self.complete_messages(&[(id, lease, outcome)], now).await?.first().copied().unwrap_or(false))
    }

    /// [`JourneyStore::complete_message`] for several messages, in one transaction.
    async fn complete_messages(
        &self,
        done: &[(MessageId, &Lease, &Outcome)],
        now: Timestamp,
    ) -> Result<Vec<bool>, StoreError>;

    /// Messages still `sending` whose lease ran out by `now` become `in_doubt` if their send
    /// had started (the worker died mid-send: the message may or may not have gone), or due
    /// again if it had not. Returns how many became in doubt.
    async fn mark_in_doubt(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// Every message in doubt, oldest first.
    async fn in_doubt_messages(&self) -> Result<Vec<MessageView>, StoreError>;

    /// An operator's explicit resend of a message in doubt: it becomes `pending`, due at `now`,
    /// and the audit log records it (with the token, if the API asked). Returns whether the
    /// message was in doubt.
    async fn resend_message(&self, id: MessageId, token: Option<i64>, now: Timestamp) -> Result<bool, StoreError>;

    /// A customer's non-transactional email messages since `since` (inclusive: a message
    /// sent at exactly `since` counts) that went or may have gone:
    ///
    /// - `sent` ones, by `sent_at`;
    /// - `in_doubt` ones, by `claimed_at`: they may have arrived, and a cap errs on the side of
    ///   sending less;
    /// - `sending` ones, by `claimed_at`, claimed before `excluding` (by claim time, then id): the
    ///   worker checking the cap for `excluding` holds it in `sending` itself, and of two
    ///   messages being sent to one customer at once the earlier claim counts against the later
    ///   one but not the other way round, so both cannot pass a cap of one, nor both be held back.
    ///
    /// Webhook calls are not messages to the customer and do not count.
    async fn marketing_sent_since(
        &self,
        customer: i64,
        since: Timestamp,
        excluding: Option<MessageId>,
    ) -> Result<u32, StoreError>;

    /// Record a bounce or complaint for an address; returns whether it is suppressed now.
    /// Soft bounces suppress once `soft_threshold` of them were recorded.
    async fn record_bounce(
        &self,
        address: &str,
        bounce: Bounce,
        soft_threshold: u32,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Suppress an address by hand or after an unsubscribe.
    async fn suppress(&self, address: &str, reason: SuppressionReason, now: Timestamp) -> Result<(), StoreError>;

    /// Take an address off the list (with its soft bounce count); returns whether it was there.
    async fn unsuppress(&self, address: &str) -> Result<bool, StoreError>;

    /// Whether an address is suppressed (compared lowercased).
    async fn is_suppressed(&self, address: &str) -> Result<bool, StoreError>;

    /// Every address on the list, with those only counting soft bounces, by address.
    async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError>;

    /// Every journey with its current version, pause state and active runs, by name.
    async fn journeys(&self) -> Result<Vec<JourneySummary>, StoreError>;

    /// One journey: its versions with their runs, and per version and step the active runs
    /// there and the messages by status.
    async fn journey_report(&self, name: &str) -> Result<Option<JourneyReport>, StoreError>;

    /// A journey's runs after position `after`, oldest first.
    async fn journey_runs(
        &self,
        name: &str,
        after: Option<RunId>,
        limit: u32,
    ) -> Result<(Vec<RunView>, Option<RunId>), StoreError>;

    /// A customer's runs (by external id), oldest first, each with its steps and messages.
    async fn customer_journeys(&self, customer: &str) -> Result<Vec<CustomerRun>, StoreError>;

    /// What `/metrics` shows, read from the tables (so every server reports the same): messages
    /// by journey, step and status; the outbox depth and what of it is due at `now`; the age of
    /// the oldest due message at `now`; the messages in doubt; active runs by journey.
    async fn journey_metrics(&self, now: Timestamp) -> Result<JourneyMetrics, StoreError>;
}

#[async_trait::async_trait]
impl<DB: Dialect> JourneyStore for Store<DB> {
    async fn apply_journey(
        &self,
        name: &str,
        definition: &str,
        digest: &str,
        now: Timestamp,
    ) -> Result<Applied, StoreError> {
        definition::apply(self, name, definition, digest, now).await
    }

    async fn set_journey_paused(&self, name: &str, paused: bool, now: Timestamp) -> Result<bool, StoreError> {
        definition::set_paused(self, name, paused, now).await
    }

    async fn journey_version(&self, name: &str, version: i64) -> Result<Option<JourneyVersion>, StoreError> {
        definition::version(self, name, version).await
    }

    async fn journey_heads(&self) -> Result<Vec<JourneyHead>, StoreError> {
        definition::heads(self).await
    }

    async fn journeys_generation(&self) -> Result<i64, StoreError> {
        definition::generation(self).await
    }

    async fn customer_key(&self, customer: &str) -> Result<Option<i64>, StoreError> {
        let row = crate::sql::query::<DB>("SELECT id FROM customers WHERE external_id = $1")
            .bind(customer)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| crate::sql::Row::try_get(&r, 0)).transpose()?)
    }

    async fn customer_external_id(&self, customer: i64) -> Result<Option<String>, StoreError> {
        let row = crate::sql::query::<DB>("SELECT external_id FROM customers WHERE id = $1")
            .bind(customer)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| crate::sql::Row::try_get(&r, 0)).transpose()?)
    }

    async fn customer_matches(
        &self,
        customer: i64,
        expr: &kanta_segment::Expr,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        crate::segments::customer_matches(self, customer, expr, now.micros()).await
    }

    async fn claim_feed(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<FeedItem>, StoreError> {
        feed::claim(self, owner, now, lease, limit).await
    }

    async fn ack_feed(&self, owner: &str, ids: &[i64]) -> Result<u64, StoreError> {
        feed::ack(self, owner, ids).await
    }

    async fn feed_depth(&self) -> Result<i64, StoreError> {
        feed::depth(self).await
    }

    async fn start_run(&self, new: &NewRun<'_>, rules: &EntryRules, now: Timestamp) -> Result<Entered, StoreError> {
        run::start(self, new, rules, now).await
    }

    async fn start_runs(
        &self,
        runs: &[NewRun<'_>],
        rules: &EntryRules,
        now: Timestamp,
    ) -> Result<Vec<Entered>, StoreError> {
        run::start_many(self, runs, rules, now).await
    }

    async fn claim_due_runs(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedRun>, StoreError> {
        run::claim_due(self, owner, now, lease, limit).await
    }

    async fn advance_run(
        &self,
        id: RunId,
        lease: &Lease,
        update: &RunUpdate,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        run::advance(self, id, lease, update, now).await
    }

    async fn advance_runs(
        &self,
        runs: &[(RunId, &Lease, &RunUpdate)],
        now: Timestamp,
    ) -> Result<Vec<bool>, StoreError> {
        run::advance_many(self, runs, now).await
    }

    async fn wake_runs(&self, customer: i64, signal: &Signal<'_>, now: Timestamp) -> Result<Vec<RunId>, StoreError> {
        run::wake(self, customer, signal, now).await
    }

    async fn exit_runs(
        &self,
        customer: i64,
        journey: &str,
        key: Option<&str>,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<RunId>, StoreError> {
        run::exit(self, customer, journey, key, reason, now).await
    }

    async fn enqueue_message(
        &self,
        id: RunId,
        message: &NewMessage,
        now: Timestamp,
    ) -> Result<Option<MessageId>, StoreError> {
        outbox::enqueue(self, id, message, now).await
    }

    async fn start_messages(&self, sends: &[(MessageId, &Lease)], now: Timestamp) -> Result<Vec<bool>, StoreError> {
        outbox::start(self, sends, now).await
    }

    async fn claim_messages(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        outbox::claim(self, owner, now, lease, limit).await
    }

    async fn complete_messages(
        &self,
        done: &[(MessageId, &Lease, &Outcome)],
        now: Timestamp,
    ) -> Result<Vec<bool>, StoreError> {
        outbox::complete(self, done, now).await
    }

    async fn mark_in_doubt(&self, now: Timestamp) -> Result<u64, StoreError> {
        outbox::mark_in_doubt(self, now).await
    }

    async fn in_doubt_messages(&self) -> Result<Vec<MessageView>, StoreError> {
        view::in_doubt(self).await
    }

    async fn resend_message(&self, id: MessageId, token: Option<i64>, now: Timestamp) -> Result<bool, StoreError> {
        outbox::resend(self, id, token, now).await
    }

    async fn marketing_sent_since(
        &self,
        customer: i64,
        since: Timestamp,
        excluding: Option<MessageId>,
    ) -> Result<u32, StoreError> {
        outbox::marketing_sent_since(self, customer, since, excluding).await
    }

    async fn record_bounce(
        &self,
        address: &str,
        bounce: Bounce,
        soft_threshold: u32,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        suppression::record_bounce(self, address, bounce, soft_threshold, now).await
    }

    async fn suppress(&self, address: &str, reason: SuppressionReason, now: Timestamp) -> Result<(), StoreError> {
        suppression::suppress(self, address, reason, now).await
    }

    async fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        suppression::unsuppress(self, address).await
    }

    async fn is_suppressed(&self, address: &str) -> Result<bool, StoreError> {
        suppression::is_suppressed(self, address).await
    }

    async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        suppression::list(self).await
    }

    async fn journeys(&self) -> Result<Vec<JourneySummary>, StoreError> {
        view::journeys(self).await
    }

    async fn journey_report(&self, name: &str) -> Result<Option<JourneyReport>, StoreError> {
        view::report(self, name).await
    }

    async fn journey_runs(
        &self,
        name: &str,
        after: Option<RunId>,
        limit: u32,
    ) -> Result<(Vec<RunView>, Option<RunId>), StoreError> {
        view::runs(self, name, after, limit).await
    }

    async fn customer_journeys(&self, customer: &str) -> Result<Vec<CustomerRun>, StoreError> {
        view::customer_runs(self, customer).await
    }

    async fn journey_metrics(&self, now: Timestamp) -> Result<JourneyMetrics, StoreError> {
        view::metrics(self, now).await
    }
}

#[async_trait::async_trait]
impl<DB: Dialect> GoalStore for Store<DB> {
    async fn record_conversion(
        &self,
        conversion: &NewConversion<'_>,
        now: Timestamp,
    ) -> Result<Option<RunId>, StoreError> {
        goal::record(self, conversion, now).await
    }

    async fn uplift_entries(
        &self,
        journey: &str,
        window: Duration,
        pre_window: Duration,
        after: Option<RunId>,
        limit: u32,
    ) -> Result<(Vec<UpliftEntry>, Option<RunId>), StoreError> {
        goal::entries(self, journey, window, pre_window, after, limit).await
    }

    async fn entries_by_arm(&self, journey: &str) -> Result<Vec<(RunArm, i64)>, StoreError> {
        goal::by_arm(self, journey).await
    }

    async fn split_choices(
        &self,
        journey: &str,
        after: Option<RunId>,
        limit: u32,
    ) -> Result<(Vec<SplitChoice>, Option<RunId>), StoreError> {
        goal::splits(self, journey, after, limit).await
    }

    async fn step_funnel(&self, journey: &str) -> Result<Vec<FunnelRow>, StoreError> {
        goal::funnel(self, journey).await
    }

    async fn revenue_at_risk(&self, now: Timestamp) -> Result<RevenueAtRisk, StoreError> {
        goal::at_risk(self, now).await
    }
}

/// `now + lease`, as the end of a claim.
fn lease_end(now: Timestamp, lease: Duration) -> Timestamp {
    now.saturating_add(lease)
}

/// A stored JSON text parsed back, or [`StoreError::Corrupt`].
fn parse_json(text: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// RFC 3339 in the JSON of the read models.
fn serialize_at<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::rfc3339(t.micros()))
}

/// RFC 3339 (or null) in the JSON of the read models.
fn serialize_opt_at<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&crate::rfc3339(t.micros())),
        None => s.serialize_none(),
    }
}

/// A nullable time column as an instant.
fn opt_time(micros: Option<i64>) -> Option<Timestamp> {
    micros.map(Timestamp::from_micros)
}

/// A text column's value as one of a fixed set, or [`StoreError::Corrupt`].
fn parse_enum<T: Copy>(text: &str, all: &[(T, &str)], what: &str) -> Result<T, StoreError> {
    all.iter()
        .find(|(_, name)| *name == text)
        .map(|(value, _)| *value)
        .ok_or_else(|| StoreError::Corrupt(format!("{what} `{text}`")))
}
